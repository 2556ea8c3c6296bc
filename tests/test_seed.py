"""The demo seed: templates, the 200-patient roster, the test group — and idempotent."""
from __future__ import annotations

import json

import pytest

from appliance import audit, contacts, db as db_mod, seed, templates

CLINIC = "つなぐ透析クリニック"


@pytest.fixture
def db(tmp_path):
    database = db_mod.connect(tmp_path / "t.db")
    yield database
    database.conn.close()


def everything(db) -> tuple:
    tables = ("contacts", "groups", "contact_groups", "templates", "audit_log")
    return tuple(tuple(tuple(r) for r in db.execute(f"SELECT * FROM {t} ORDER BY 1, 2"))
                 for t in tables)


def test_seed_creates_templates_roster_and_test_group(db):
    result = seed.seed_demo(db, CLINIC)
    wanted = json.loads(seed.TEMPLATES_FILE.read_text(encoding="utf-8"))
    assert result.templates_created == len(wanted) == 6
    assert {t.name for t in templates.list_templates(db)} == {t["name"] for t in wanted}
    assert result.contacts_created == 200 + len(seed.TEST_PHONES)
    assert contacts.count_contacts(db) == 203
    test = contacts.get_group_by_name(db, "テスト")
    assert test.kind == "test" and test.member_count == 3
    members = contacts.group_members(db, [test.id])
    assert {c.phone for c in members} == {"+819010009901", "+819010009902", "+819010009903"}
    assert all(c.patient_id is None for c in members), "staff phones, not patients"
    assert result.groups_created == 2 + 6 + 1          # facilities, shifts, test
    assert "templates +6" in str(result)


def test_seed_twice_changes_nothing_the_second_time(db):
    seed.seed_demo(db, CLINIC)
    before = everything(db)
    again = seed.seed_demo(db, CLINIC)
    assert (again.templates_created, again.contacts_created, again.contacts_updated,
            again.groups_created, again.test_members_added) == (0, 0, 0, 0, 0)
    assert everything(db) == before, "not even an audit row"


def test_seed_puts_back_what_was_removed_and_keeps_what_staff_changed(db):
    seed.seed_demo(db, CLINIC)
    outage = templates.get_template_by_name(db, "停電・透析中止")
    templates.delete_template(db, outage.id, actor="nurse")
    drill = templates.get_template_by_name(db, "訓練")
    templates.update_template(db, drill.id, actor="nurse", clinic=CLINIC,
                              text="【{clinic}】訓練です。「1」と返信してください。")
    result = seed.seed_demo(db, CLINIC)
    assert result.templates_created == 1
    assert templates.get_template_by_name(db, "訓練").text.startswith("【{clinic}】訓練です")


def test_seed_uses_the_configured_test_group_name(db):
    seed.seed_demo(db, CLINIC, test_group="訓練用")
    assert contacts.get_group_by_name(db, "訓練用").member_count == 3
    assert contacts.get_group_by_name(db, "テスト") is None
    assert audit.entries(db, action="contacts_import")[0].actor == "seed"
