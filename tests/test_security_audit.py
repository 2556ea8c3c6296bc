"""Issue 12, finding 7: the audit log as evidence — every door says from where, reads of
patients' data are recorded, a change keeps old → new, the service's own connections cannot
remove rows or triggers, and the hash chain finds an edited, deleted or reordered row, also
against the chain heads saved with the backups."""
from __future__ import annotations

import csv
import io
import re
import sqlite3

import pytest
from click.testing import CliRunner

from appliance import audit, backup, contacts
from appliance.cli import main
from appliance.db import connect, write
from tests import web_support
from tests.web_support import csrf_token, post_form

web, staff, admin = web_support.web, web_support.staff, web_support.admin  # shared fixtures
NURSE_ADDRESS = "192.0.2.7"


def _from(web, client, address=NURSE_ADDRESS):
    client.environ_base["REMOTE_ADDR"] = address
    return client


def _send(web, client) -> int:
    page = post_form(client, "/send", {"text": "停電のため本日の透析は中止です。", "template_id": "0",
                                       "groups": str(web.group_id), "priority": "emergency"})
    form = page.get_data(as_text=True).split('id="confirm-form"')[1].split("</form>")[0]
    fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', form))
    fields["csrf_token"] = csrf_token(client, "/send")
    location = client.post("/send/commit", data=fields).headers["Location"]
    return int(location.rsplit("/", 1)[1])


def test_every_door_of_the_web_ui_records_the_clients_address(web, admin):
    nurse = _from(web, web.logged_in(*web_support.STAFF))
    _from(web, admin, "192.0.2.9")
    first = len(web.audit_actions())
    broadcast = _send(web, nurse)
    post_form(nurse, f"/broadcasts/{broadcast}/cancel", form_page=f"/broadcasts/{broadcast}")
    post_form(nurse, f"/broadcasts/{broadcast}/retry", form_page=f"/broadcasts/{broadcast}")
    recipient = web.db.conn.execute("SELECT id FROM recipients").fetchone()[0]
    # The call list's outcome of a call (issue 11) replaced the bare "reached" mark.
    post_form(nurse, f"/recipients/{recipient}/call", {"outcome": "reached", "note": ""},
              form_page=f"/broadcasts/{broadcast}/calls")
    with write(web.db) as conn:
        inbound = conn.execute("INSERT INTO inbound_messages (modem, number, text, received_at) "
                               "VALUES ('m0', '+819012345678', '1', 1)").lastrowid
    post_form(nurse, f"/inbox/{inbound}/handled", form_page="/inbox")
    post_form(nurse, "/schedules", {"name": "採血", "days": ["mon"], "at": "17:00",
                                    "groups": ["月水金 午前"], "text": "採血日です",
                                    "priority": "routine", "template_id": "0"})
    schedule = web.db.conn.execute("SELECT id FROM schedules").fetchone()[0]
    post_form(nurse, f"/schedules/{schedule}/disable", form_page="/schedules")
    post_form(admin, "/admin/users", {"username": "clerk", "role": "staff",
                                      "password": "spring-rain-2026"})
    rows = web.db.conn.execute("SELECT actor, action, remote_addr FROM audit_log WHERE id > ?",
                               [first]).fetchall()
    actions = {r["action"] for r in rows}
    for expected in ("broadcast_create", "broadcast_cancel", "call_outcome",
                     "inbound_handled", "schedule_add", "schedule_disable", "user_create"):
        assert any(expected in a for a in actions), (expected, actions)
    missing = [(r["action"]) for r in rows if not r["remote_addr"]]
    assert missing == [], missing
    assert {r["remote_addr"] for r in rows if r["actor"] == "nurse1"} == {NURSE_ADDRESS}


def test_reading_and_searching_patients_is_recorded(web, staff):
    staff.get("/contacts")
    staff.get("/contacts?q=やまだ")
    staff.get(f"/contacts/{web.contact_id}")
    entries = {e.action: e for e in reversed(audit.entries(web.db, limit=10))
               if e.action in ("contacts_view", "contacts_search", "contact_view")}
    assert entries["contacts_view"].detail["shown"] == 1
    assert entries["contacts_search"].detail["query"] == "やまだ"
    assert entries["contact_view"].detail["contact_id"] == web.contact_id
    assert all(e.actor == "nurse1" and e.remote_addr for e in entries.values())


def test_the_pages_that_name_patients_record_who_read_them(web, staff):
    broadcast = _send(web, staff)
    staff.get(f"/broadcasts/{broadcast}")
    staff.get(f"/broadcasts/{broadcast}/calls")
    staff.get("/inbox")
    entries = {e.action: e for e in audit.entries(web.db, limit=20)}
    assert entries["broadcast_view"].detail == {"broadcast_id": broadcast, "page": 1,
                                                "people": 1}
    assert entries["call_list_view"].detail["broadcast_id"] == broadcast
    assert "inbox_view" in entries
    assert all(entries[a].actor == "nurse1" and entries[a].remote_addr
               for a in ("broadcast_view", "call_list_view", "inbox_view"))


def test_a_page_read_again_and_again_is_one_read_per_person(web, staff, admin):
    # A live broadcast page without JavaScript reloads itself every 5 s.
    broadcast = _send(web, staff)
    for _ in range(3):
        staff.get(f"/broadcasts/{broadcast}")
    admin.get(f"/broadcasts/{broadcast}")
    reads = [e.actor for e in audit.entries(web.db, action="broadcast_view")]
    assert sorted(reads) == ["admin1", "nurse1"], reads


def test_a_contact_change_keeps_old_and_new_values(web, staff):
    post_form(staff, f"/contacts/{web.contact_id}", {"name": "山田 太一", "kana": "ヤマダ タイチ",
                                                     "phone": "090-1234-5678",
                                                     "groups": [str(web.group_id)],
                                                     "active": "y"})
    entry = audit.entries(web.db, action="contact_update")[0]
    assert entry.detail["old"] == {"kana": "ヤマダ タロウ", "name": "山田 太郎"}
    assert entry.detail["new"] == {"kana": "ヤマダ タイチ", "name": "山田 太一"}


def test_an_import_records_old_and_new_values_of_every_updated_contact(web):
    contacts.import_contacts(web.db, "氏名,携帯電話\n山田 花子,090-1234-5678\n".encode(),
                             actor="office1", remote_addr=NURSE_ADDRESS)
    entry = audit.entries(web.db, action="contacts_import")[0]
    assert entry.detail["changes"] == [{"contact_id": web.contact_id,
                                        "old": {"name": "山田 太郎"}, "new": {"name": "山田 花子"}}]


@pytest.mark.parametrize("statement", [
    "DELETE FROM audit_log", "UPDATE audit_log SET actor = 'x'",
    "DROP TRIGGER audit_log_no_delete", "DROP TRIGGER audit_log_no_update",
    "DROP TABLE audit_log", "ALTER TABLE audit_log RENAME TO old_log",
    "PRAGMA writable_schema = ON"])
def test_the_services_own_connection_cannot_remove_or_change_evidence(db, statement):
    audit.record(db, "t", "probe")
    with pytest.raises(sqlite3.DatabaseError, match="not authorized|append-only"):
        db.conn.execute(statement)
    assert audit.verify(db).ok and audit.count(db) == 1


def _log(db, n=6):
    for i in range(n):
        audit.record(db, "nurse1", "probe", n=i)


def _tamper(path, *statements):
    """What someone with a shell and the database file could do (not the service)."""
    raw = sqlite3.connect(path)
    raw.execute("DROP TRIGGER audit_log_no_update")
    raw.execute("DROP TRIGGER audit_log_no_delete")
    for statement in statements:
        raw.execute(statement)
    raw.commit()
    raw.close()


def test_an_intact_chain_verifies(db):
    _log(db)
    result = audit.verify(db)
    assert result.ok and result.rows == 6 and result.head == audit.head(db)


@pytest.mark.parametrize("statements, row", [
    (["UPDATE audit_log SET detail = '{\"n\": 99}' WHERE id = 3"], "row 3"),
    (["UPDATE audit_log SET remote_addr = '10.0.0.1' WHERE id = 5"], "row 5"),
    (["DELETE FROM audit_log WHERE id = 2"], "rows 2–2 are missing"),
    # Two rows swapped, each with its own hash: the order is what the chain holds.
    (["UPDATE audit_log SET detail = CASE id WHEN 2 THEN '{\"n\": 2}' ELSE '{\"n\": 1}' END, "
      "hash = CASE id WHEN 2 THEN (SELECT hash FROM audit_log WHERE id = 3) "
      "ELSE (SELECT hash FROM audit_log WHERE id = 2) END WHERE id IN (2, 3)"], "row 2"),
])
def test_the_chain_finds_an_edited_deleted_or_reordered_row(db, tmp_path, statements, row):
    _log(db)
    _tamper(tmp_path / "t.db", *statements)
    result = audit.verify(db)
    assert not result.ok and any(row in p for p in result.problems), result.problems


def test_rows_cut_off_the_end_are_found_against_a_head_saved_with_a_backup(tmp_path):
    config = _config(tmp_path)
    db = connect(config.database)
    _log(db)
    made = backup.backup(config)
    audit.record(db, "nurse1", "probe", n=7)
    db.conn.close()
    last = made.head.id
    _tamper(config.database, f"DELETE FROM audit_log WHERE id >= {last}")
    result = CliRunner().invoke(main, ["audit", "verify", "--config", str(config.path)])
    assert result.exit_code == 1 and f"{last}行目" in result.output, result.output


def test_audit_verify_says_intact_and_counts_the_saved_heads(tmp_path):
    config = _config(tmp_path)
    db = connect(config.database)
    _log(db)
    backup.backup(config)
    result = CliRunner().invoke(main, ["audit", "verify", "--config", str(config.path)])
    assert result.exit_code == 0 and "改ざんなし：7行" in result.output
    assert "先頭の記録 1件と照合" in result.output


def test_the_log_exports_as_csv_for_an_inspector(web, admin):
    audit.record(web.db, "nurse1", "probe", remote_addr="192.0.2.7", note="=HYPERLINK(\"x\")")
    response = admin.get("/admin/audit/export.csv")
    assert response.status_code == 200 and response.data.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(response.data.decode("utf-8-sig"))))
    assert rows[0] == list(audit.EXPORT_COLUMNS)
    probe = [r for r in rows if r[3] == "probe"][0]
    assert probe[2] == "nurse1" and probe[5] == "192.0.2.7" and len(probe[6]) == 64
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+09:00", probe[1])
    assert "audit_export" in web.audit_actions()


def test_the_cli_exports_a_date_range(tmp_path):
    config = _config(tmp_path)
    db = connect(config.database)
    _log(db, 2)
    out = tmp_path / "audit.csv"
    result = CliRunner().invoke(main, ["audit", "export", "--since", "2000-01-01", "--out",
                                       str(out), "--config", str(config.path)])
    assert result.exit_code == 0 and out.read_bytes().count(b"probe") == 2
    bad = CliRunner().invoke(main, ["audit", "export", "--since", "yesterday", "--config",
                                    str(config.path)])
    assert bad.exit_code == 2 and "2027-01-31" in bad.output


def _config(tmp_path):
    from appliance import config as config_mod
    path = tmp_path / "tsunagu.toml"
    path.write_text('database = "t.db"\n[[modem]]\nname = "m0"\nport = "/dev/null"\n',
                    encoding="utf-8")
    return config_mod.load(path)
