"""Demo data: the templates a dialysis clinic needs, a synthetic roster and a test group.

`seed_demo` is idempotent — the demo runs it at every start — and goes through the same
API as the UI and the import (same validation, same audit rows), so the demo shows the
appliance as a clinic would see it. Every name and number in the roster is made up
(090-1000-xxxx); use it only with the simulated modem.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import sqlite_utils

from . import contacts, templates

SEED_DIR = Path(__file__).with_name("seed")
TEMPLATES_FILE = SEED_DIR / "templates_ja.json"
ROSTER_FILE = SEED_DIR / "demo_roster_cp932.csv"
# Staff phones in the test group, so a drill reaches the staff and not the patients.
TEST_PHONES = (
    ("テスト端末1（受付）", "テストタンマツイチ", "+819010009901"),
    ("テスト端末2（看護師長）", "テストタンマツニ", "+819010009902"),
    ("テスト端末3（事務長）", "テストタンマツサン", "+819010009903"),
)


@dataclass(frozen=True)
class SeedResult:
    templates_created: int
    contacts_created: int
    contacts_updated: int
    groups_created: int
    test_members_added: int

    def __str__(self) -> str:
        return (f"templates +{self.templates_created}, contacts +{self.contacts_created} "
                f"(updated {self.contacts_updated}), groups +{self.groups_created}, "
                f"test group +{self.test_members_added}")


def seed_demo(db: sqlite_utils.Database, clinic_name: str, *, test_group: str = "テスト",
              actor: str = "seed") -> SeedResult:
    """Add whatever of the demo data is missing; running it again changes nothing."""
    created_templates = _seed_templates(db, clinic_name, actor)
    groups_before = len(contacts.list_groups(db))
    roster = ROSTER_FILE.read_bytes()
    planned = contacts.preview(db, roster)
    created = updated = 0
    if planned.new or planned.updated:
        # Only import when something would change: an import is audited, a no-op is noise.
        result = contacts.import_contacts(db, roster, actor=actor, filename=ROSTER_FILE.name)
        created, updated = result.created, result.updated
    added, staff_created = _seed_test_group(db, test_group, actor)
    return SeedResult(templates_created=created_templates,
                      contacts_created=created + staff_created, contacts_updated=updated,
                      groups_created=len(contacts.list_groups(db)) - groups_before,
                      test_members_added=added)


def _seed_templates(db: sqlite_utils.Database, clinic_name: str, actor: str) -> int:
    created = 0
    for item in json.loads(TEMPLATES_FILE.read_text(encoding="utf-8")):
        if templates.get_template_by_name(db, item["name"]) is None:
            templates.create_template(db, item["name"], item["text"], actor=actor,
                                      clinic=clinic_name,
                                      priority=item.get("priority", "routine"),
                                      choices=item.get("choices", ()))
            created += 1
    return created


def _seed_test_group(db: sqlite_utils.Database, name: str, actor: str) -> tuple[int, int]:
    group = contacts.get_group_by_name(db, name)
    if group is None:
        group = contacts.create_group(db, name, kind="test", actor=actor,
                                      note="訓練・送信テスト用（スタッフの携帯）")
    ids, created = [], 0
    for staff_name, kana, number in TEST_PHONES:
        contact = contacts.find_by_phone(db, number)
        if contact is None:
            contact = contacts.add_contact(db, name=staff_name, kana=kana, phone=number,
                                           note="デモ用のスタッフ端末", actor=actor)
            created += 1
        ids.append(contact.id)
    return contacts.add_to_group(db, group.id, ids, actor=actor), created
