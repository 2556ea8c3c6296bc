"""/api/v1 against the real server process (`tsunagu web`, waitress): tokens and their
scopes, rate limits, idempotency, every error as an RFC 9457 problem naming the field, and
each operation doing what the web UI's door does."""
from __future__ import annotations

import json
import re
import time

import pytest
from click.testing import CliRunner

from appliance import audit, replies
from appliance.cli import main
from appliance.db import write
from tests.api_support import WebServer, seed

pytestmark = pytest.mark.slow
PROBLEM = "application/problem+json"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    web = WebServer(tmp_path_factory.mktemp("api"))
    web.people = seed(web.db)
    try:
        yield web
    finally:
        web.close()


@pytest.fixture(scope="module")
def full(server):
    """A token with every scope."""
    return server.api(server.token("予約システム", "send,read,contacts,reminders"))


def assert_problem(answer, status: int, kind: str, field: str | None = None):
    assert answer.status == status, answer.body
    assert answer.content_type.startswith(PROBLEM), answer.content_type
    body = answer.body
    assert body["type"] == f"/api/v1/problems/{kind}" and body["status"] == status
    assert body["title"] and body["detail"]
    if field is not None:
        assert body["field"] == field, body
        assert body["errors"][0]["field"] == field
    return body


# -- tokens ---------------------------------------------------------------------------------

def test_a_token_made_by_the_cli_is_printed_once_and_only_its_hash_is_kept(server):
    result = CliRunner().invoke(main, ["api-token", "add", "電子カルテ", "--scope", "read",
                                       "--config", str(server.directory / "tsunagu.toml")])
    assert result.exit_code == 0, result.output
    token = re.search(r"tsu_\S+", result.output).group()
    assert token.startswith("tsu_") and len(token) > 40
    # Not by reading the file: closing another descriptor of it would drop SQLite's locks.
    assert token not in "\n".join(server.db.conn.iterdump())
    row = server.db.conn.execute("SELECT token_hash, scopes FROM api_tokens WHERE name = ?",
                                 ["電子カルテ"]).fetchone()
    assert row["scopes"] == "read" and token not in row["token_hash"]
    assert server.api(token).call("GET", "/status").status == 200
    listed = CliRunner().invoke(main, ["api-token", "list", "--config",
                                       str(server.directory / "tsunagu.toml")])
    assert "電子カルテ" in listed.output and token not in listed.output


def test_no_token_a_wrong_one_or_a_revoked_one_is_401(server):
    token = server.token("古いシステム", "read")
    api = server.api(token)
    assert api.call("GET", "/status").status == 200
    for answer in (server.api().call("GET", "/status"),
                   server.api("tsu_not-a-real-token").call("GET", "/status"),
                   api.call("GET", "/status", headers={"Authorization": f"Basic {token}"})):
        assert_problem(answer, 401, "unauthorized")
    result = CliRunner().invoke(main, ["api-token", "revoke", "古いシステム", "--config",
                                       str(server.directory / "tsunagu.toml")])
    assert result.exit_code == 0, result.output
    answer = api.call("GET", "/status")
    assert_problem(answer, 401, "unauthorized")
    assert answer.headers["WWW-Authenticate"].startswith("Bearer")


def test_a_token_without_the_scope_is_refused_and_told_which_scope(server):
    reader = server.api(server.token("閲覧だけ", "read"))
    answer = reader.call("POST", "/broadcasts", {"text": "テスト", "everyone": True})
    body = assert_problem(answer, 403, "forbidden")
    assert body["scope"] == "send"
    assert server.db.conn.execute("SELECT count(*) FROM broadcasts WHERE created_by = "
                                  "'api:閲覧だけ'").fetchone()[0] == 0
    assert_problem(reader.call("GET", "/contacts/P001"), 403, "forbidden")
    assert reader.call("GET", "/contacts/P001").body["scope"] == "contacts"


def test_each_token_has_its_own_rate_limit_and_429_says_when_to_retry(server):
    slow = server.api(server.token("少しだけ", "read", rate=3))
    other = server.api(server.token("別のシステム", "read", rate=3))
    answers = [slow.call("GET", "/inbox") for _ in range(4)]
    assert [a.status for a in answers[:3]] == [200, 200, 200]
    assert answers[0].headers["RateLimit-Limit"] == "3"
    body = assert_problem(answers[3], 429, "rate-limited")
    assert int(answers[3].headers["Retry-After"]) >= 1 and body["retry_after"] >= 1
    assert other.call("GET", "/inbox").status == 200   # another token is not held back


def test_the_audit_log_names_the_token_as_the_actor(server, full):
    answer = full.call("PUT", "/contacts/P900", {"name": "監査 確認", "phone": "090-9000-0001"})
    assert answer.status == 201
    rows = audit.entries(server.db, action="contact_add", actor="api:予約システム")
    assert rows and rows[0].detail["contact_id"] == answer.body["id"]


# -- broadcasts ------------------------------------------------------------------------------

def test_a_broadcast_is_planned_checked_and_queued_like_the_confirm_page(server, full):
    answer = full.call("POST", "/broadcasts", {
        "text": "{name}様 停電のため本日の透析は中止です", "groups": ["月水金 午前"],
        "priority": "emergency", "choices": ["来院できる", "来院できない"]})
    assert answer.status == 201, answer.body
    b = answer.body
    assert answer.headers["Location"] == f"/api/v1/broadcasts/{b['id']}"
    assert b["total"] == 2 and b["counts"]["queued"] == 2 and b["priority"] == "emergency"
    assert b["created_by"] == "api:予約システム" and b["choices"] == ["来院できる", "来院できない"]
    assert "Set-Cookie" not in answer.headers          # a token, never a session
    texts = [r[0] for r in server.db.conn.execute(
        "SELECT text FROM recipients WHERE broadcast_id = ? ORDER BY name", [b["id"]])]
    assert texts[0].startswith("山田 太郎様 停電") and "1 来院できる" in texts[0]
    got = full.call("GET", f"/broadcasts/{b['id']}")
    assert got.status == 200 and got.body["id"] == b["id"] and got.body["state"] == "queued"
    people = full.call("GET", f"/broadcasts/{b['id']}/recipients").body["recipients"]
    assert {p["patient_id"] for p in people} == {"P001", None}
    assert {p["state"] for p in people} == {"queued"}


def test_the_recipients_of_a_large_broadcast_come_a_page_at_a_time(server, full):
    b = full.call("POST", "/broadcasts", {"text": "停電のため本日の透析は中止です",
                                          "groups": ["月水金 午前"]}).body
    path = f"/broadcasts/{b['id']}/recipients"
    everyone = full.call("GET", path).body
    assert everyone["more"] is False and len(everyone["recipients"]) == b["total"] == 2
    first = full.call("GET", f"{path}?limit=1").body
    assert first["more"] is True and len(first["recipients"]) == 1
    rest = full.call("GET", f"{path}?limit=1&after_id={first['last_id']}").body
    assert rest["more"] is False
    assert [r["id"] for r in first["recipients"] + rest["recipients"]] == \
        [r["id"] for r in everyone["recipients"]]
    assert_problem(full.call("GET", f"{path}?limit=1001"), 422, "validation", "limit")


def test_reading_patients_through_the_api_is_recorded_as_a_read(server, full):
    b = full.call("POST", "/broadcasts", {"text": "停電のため本日の透析は中止です",
                                          "groups": ["月水金 午前"]}).body
    for _ in range(2):   # an integration polling the same page: one read
        assert full.call("GET", f"/broadcasts/{b['id']}/recipients?limit=5").status == 200
    assert full.call("GET", f"/broadcasts/{b['id']}").status == 200   # counts, no names
    reads = [e for e in audit.entries(server.db, action="api_read", limit=50)
             if f"/broadcasts/{b['id']}/" in e.detail["request"]]
    assert [e.detail["request"] for e in reads] == \
        [f"/api/v1/broadcasts/{b['id']}/recipients?limit=5"]
    assert reads[0].actor == "api:予約システム" and reads[0].remote_addr


def test_patient_ids_and_phone_numbers_choose_recipients(server, full):
    answer = full.call("POST", "/broadcasts", {"text": "明日の予約の確認です",
                                               "patient_ids": ["P001"],
                                               "phones": ["070-1111-2222", "090-1234-5678"]})
    assert answer.status == 201, answer.body
    rows = server.db.conn.execute("SELECT contact_id, phone FROM recipients WHERE "
                                  "broadcast_id = ? ORDER BY phone", [answer.body["id"]]).fetchall()
    assert [(r[0] is not None, r[1]) for r in rows] == [(False, "+817011112222"),
                                                        (True, "+819012345678")]


def test_the_same_idempotency_key_sends_once_and_a_changed_request_is_refused(server, full):
    request = {"text": "再送テスト", "patient_ids": ["P001"]}
    first = full.call("POST", "/broadcasts", request, headers={"Idempotency-Key": "abc-123"})
    again = full.call("POST", "/broadcasts", request, headers={"Idempotency-Key": "abc-123"})
    assert first.status == again.status == 201
    assert again.body["id"] == first.body["id"] and again.headers["Idempotent-Replayed"] == "true"
    assert again.headers["Location"] == first.headers["Location"]
    assert server.db.conn.execute("SELECT count(*) FROM broadcasts WHERE text = '再送テスト'"
                                  ).fetchone()[0] == 1
    changed = full.call("POST", "/broadcasts", {**request, "text": "別の本文"},
                        headers={"Idempotency-Key": "abc-123"})
    body = assert_problem(changed, 422, "idempotency-key-reused", "Idempotency-Key")
    assert body["errors"][0]["in"] == "header"
    other_token = server.api(server.token("二つ目", "send"))
    # Keys are per token: another system's key of the same text is its own.
    assert other_token.call("POST", "/broadcasts", request,
                            headers={"Idempotency-Key": "abc-123"}).status == 201


def test_cancel_stops_a_broadcast_and_a_finished_one_is_a_conflict(server, full):
    b = full.call("POST", "/broadcasts", {"text": "中止テスト", "patient_ids": ["P001"]}).body
    answer = full.call("POST", f"/broadcasts/{b['id']}/cancel")
    assert answer.status == 200 and answer.body["cancelled"] == 1
    assert answer.body["broadcast"]["state"] == "cancelled"
    assert_problem(full.call("POST", f"/broadcasts/{b['id']}/cancel"), 409, "conflict")
    assert_problem(full.call("POST", "/broadcasts/999999/cancel"), 404, "not-found")


# -- every error shape --------------------------------------------------------------------------

@pytest.mark.parametrize("body, field", [
    ({"text": "こんにちは"}, "groups"),                                   # nobody chosen
    ({"everyone": True}, "text"),                                        # no text
    ({"text": "a", "template_id": 1, "everyone": True}, "text"),          # both
    ({"text": "{nmae}様", "everyone": True}, "text"),                    # unknown placeholder
    ({"text": "{date}に来院", "everyone": True}, "text"),                 # a value missing
    ({"text": "あ" * 680, "everyone": True}, "text"),                     # over 10 parts
    ({"template_id": 4242, "everyone": True}, "template_id"),
    ({"text": "a", "groups": ["ない班"]}, "groups[0]"),
    ({"text": "a", "patient_ids": ["NOPE"]}, "patient_ids[0]"),
    ({"text": "a", "phones": ["03-1234-5678"]}, "phones"),               # a landline
    ({"text": "{name}様", "phones": ["070-3333-4444"]}, "phones"),       # nobody's name
    ({"text": "a", "everyone": True, "priority": "urgent"}, "priority"),
    ({"text": "a", "everyone": True, "colour": "red"}, "colour"),
    ({"text": "a", "everyone": True, "choices": [str(i) for i in range(10)]}, "choices"),
    ({"text": "a", "everyone": True, "send_at": "tomorrow"}, "send_at"),
    ({"text": "a", "everyone": True, "send_at": "2020-01-01T09:00:00+09:00"}, "send_at"),
    ({"text": "a\x00b", "everyone": True}, "text"),
    ({"text": "a", "everyone": True, "followup": {"after_minutes": 0, "times": 1}},
     "followup.after_minutes"),
])
def test_a_refused_broadcast_is_a_problem_that_names_the_field_and_sends_nothing(
        server, full, body, field):
    before = server.db.conn.execute("SELECT count(*) FROM broadcasts").fetchone()[0]
    answer = full.call("POST", "/broadcasts", body)
    problem = assert_problem(answer, 422, "validation", field)
    assert problem["errors"][0]["pointer"] == "/" + field.replace("[", "/").replace(
        "]", "").replace(".", "/")
    assert server.db.conn.execute("SELECT count(*) FROM broadcasts").fetchone()[0] == before


def test_malformed_requests_are_problems_too(server, full):
    assert_problem(full.call("POST", "/broadcasts", raw=b"{not json"), 400, "invalid-json")
    assert_problem(full.call("POST", "/broadcasts", raw=b'{"text": NaN}'), 400, "invalid-json")
    assert_problem(full.call("POST", "/broadcasts", raw="text=a".encode(),
                             content_type="application/x-www-form-urlencoded"),
                   415, "unsupported-media-type")
    assert_problem(full.call("POST", "/broadcasts", raw=b"[1, 2]"), 422, "validation")
    assert_problem(full.call("POST", "/broadcasts", raw=b'{"text": "\\ud800", "everyone": true}'),
                   422, "validation", "text")
    assert_problem(full.call("GET", "/nothing-here"), 404, "not-found")
    assert_problem(full.call("GET", "/broadcasts/424242"), 404, "not-found")
    wrong = full.call("DELETE", "/status")
    assert_problem(wrong, 405, "method-not-allowed")
    assert "GET" in wrong.headers["Allow"]
    assert_problem(full.call("GET", "/inbox?after_id=abc"), 422, "validation", "after_id")
    assert full.call("GET", "/inbox?after_id=abc").body["errors"][0]["in"] == "query"
    assert_problem(full.call("POST", "/broadcasts", {"text": "a", "everyone": True},
                             headers={"Idempotency-Key": "a key"}), 400, "validation",
                   "Idempotency-Key")
    too_big = full.call("POST", "/broadcasts", raw=b'{"text": "' + b"a" * (9 * 1024 * 1024)
                        + b'"}')
    assert_problem(too_big, 413, "too-large")
    explained = full.call("GET", "/problems/validation")
    assert explained.status == 200 and explained.body["title"]


# -- contacts, inbox, status ------------------------------------------------------------------

def test_put_contact_upserts_by_patient_id_with_groups(server, full):
    created = full.call("PUT", "/contacts/P100", {
        "name": "佐藤 一郎", "kana": "ｻﾄｳ ｲﾁﾛｳ", "phone": "０９０－５５５５－６６６６",
        "facility": "本院", "groups": ["月水金 午前"]})
    assert created.status == 201, created.body
    c = created.body
    assert c["patient_id"] == "P100" and c["phone"] == "+819055556666" and c["kana"] == "サトウ イチロウ"
    assert sorted(c["groups"]) == ["月水金 午前", "本院"]
    updated = full.call("PUT", "/contacts/P100", {"name": "佐藤 一郎", "phone": "090-5555-7777",
                                                  "groups": []})
    assert updated.status == 200 and updated.body["id"] == c["id"]
    assert updated.body["phone"] == "+819055557777" and updated.body["groups"] == ["本院"]
    assert full.call("GET", "/contacts/P100").body == updated.body
    taken = full.call("PUT", "/contacts/P101", {"name": "別の人", "phone": "090-5555-7777"})
    assert_problem(taken, 422, "validation", "phone")
    assert_problem(full.call("PUT", "/contacts/P102", {"name": "", "phone": "090-1"}),
                   422, "validation")
    assert_problem(full.call("PUT", "/contacts/P103", {"name": "某", "phone": "090-5555-8888",
                                                      "groups": ["ない"]}),
                   422, "validation", "groups[0]")
    assert_problem(full.call("GET", "/contacts/NOBODY"), 404, "not-found")


def test_inbox_gives_replies_after_a_cursor_with_the_choice(server, full):
    b = full.call("POST", "/broadcasts", {"text": "来院できますか", "patient_ids": ["P001"],
                                          "choices": ["はい", "いいえ"]}).body
    with write(server.db) as conn:
        conn.execute("UPDATE recipients SET state = 'submitted', submitted_at = 1 "
                     "WHERE broadcast_id = ?", [b["id"]])
        first = replies.record(conn, "m0", sender="090-1234-5678", text="１", sent_at=None,
                               now=time.time())
        replies.record(conn, "m0", sender="09099998888", text="どなた？", sent_at=None,
                       now=time.time())
    answer = full.call("GET", f"/inbox?after_id={first - 1}")
    assert answer.status == 200
    mine, other = answer.body["messages"][:2]
    assert mine["choice"] == 1 and mine["choice_text"] == "はい" and mine["patient_id"] == "P001"
    assert mine["broadcast_id"] == b["id"] and other["recipient_id"] is None
    assert full.call("GET", f"/inbox?after_id={answer.body['last_id']}").body["messages"] == []


def test_status_says_what_check_knows_and_each_sims_budget(server, full):
    answer = full.call("GET", "/status")
    assert answer.status == 200
    s = answer.body
    assert s["status"] == "critical" and s["daemon_alive"] is False   # no daemon here
    assert any(c["name"] == "daemon" and c["status"] == "critical" for c in s["checks"])
    modem = s["modems"][0]
    assert modem["name"] == "m0" and modem["daily_limit"] == 180
    assert modem["remaining"] == 180 - modem["sent_today"]


def test_the_openapi_document_is_served_and_lists_every_operation(server):
    answer = server.api().call("GET", "/openapi.json")
    assert answer.status == 200 and answer.body["openapi"] == "3.1.0"
    operations = {(m.upper(), p) for p, item in answer.body["paths"].items() for m in item}
    assert {("POST", "/broadcasts"), ("GET", "/broadcasts/{broadcast_id}"),
            ("GET", "/broadcasts/{broadcast_id}/recipients"),
            ("POST", "/broadcasts/{broadcast_id}/cancel"), ("GET", "/contacts/{patient_id}"),
            ("PUT", "/contacts/{patient_id}"), ("GET", "/inbox"), ("GET", "/status"),
            ("PUT", "/reminders/{external_id}"), ("GET", "/reminders/{external_id}"),
            ("DELETE", "/reminders/{external_id}")} <= operations
    assert json.dumps(answer.body["webhooks"]).count("WebhookEvent") == 6


# -- reminders -------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def examination(server):
    """The reminder kind 診察: the day before at 17:00."""
    from appliance import reminders
    with write(server.db) as conn:
        return reminders.save_kind(conn, server.config, name="診察",
                                   text="{name}様 {date} {time}から診察です", days_before=1,
                                   send_time="17:00", quiet_start="21:00", quiet_end="08:00",
                                   choices="はい / 変更したい", actor="t", now=0.0)


def test_reminders_are_added_moved_and_withdrawn_by_the_clinics_appointment_id(
        server, full, examination):
    at = "2031-03-04T10:00:00+09:00"
    created = full.call("PUT", "/reminders/APPT-1", {"patient_id": "P001", "kind": "診察", "at": at})
    assert created.status == 201, created.body
    r = created.body
    assert r["state"] == "pending" and r["change"] == "new" and r["patient_id"] == "P001"
    assert r["appointment_at"] == at and r["planned_at"] == "2031-03-03T17:00:00+09:00"
    assert created.headers["Location"] == "/api/v1/reminders/APPT-1"
    same = full.call("PUT", "/reminders/APPT-1", {"phone": "090-1234-5678", "kind": "診察",
                                                  "at": "2031-03-04 10:00"})
    assert same.status == 200 and same.body["change"] == "unchanged"
    moved = full.call("PUT", "/reminders/APPT-1", {"patient_id": "P001", "kind": "診察",
                                                   "at": "2031-03-05T14:30:00+09:00"})
    assert moved.body["change"] == "changed" and moved.body["planned_at"].startswith("2031-03-04T17")
    assert full.call("GET", "/reminders/APPT-1").body["appointment_at"] == "2031-03-05T14:30:00+09:00"
    gone = full.call("DELETE", "/reminders/APPT-1")
    assert gone.status == 200 and gone.body["state"] == "withdrawn" and gone.body["change"] == "withdrawn"
    cancelled = full.call("PUT", "/reminders/APPT-2", {"patient_id": "P001", "kind": "診察",
                                                       "at": at, "status": "cancelled"})
    assert cancelled.body["state"] == "withdrawn"
    assert audit.count(server.db, action="reminder_withdraw", actor="api:予約システム") == 2
    assert_problem(full.call("GET", "/reminders/NOPE"), 404, "not-found")
    assert_problem(full.call("DELETE", "/reminders/NOPE"), 404, "not-found")


@pytest.mark.parametrize("body, field", [
    ({"patient_id": "P001", "kind": "歯科", "at": "2031-03-04T10:00:00+09:00"}, "kind"),
    ({"patient_id": "NOBODY", "kind": "診察", "at": "2031-03-04T10:00:00+09:00"}, "patient_id"),
    ({"kind": "診察", "at": "2031-03-04T10:00:00+09:00"}, "patient_id"),
    ({"patient_id": "P001", "phone": "080-2222-3333", "kind": "診察",
      "at": "2031-03-04T10:00:00+09:00"}, "patient_id"),
    ({"patient_id": "P001", "kind": "診察", "at": "2020-03-04T10:00:00+09:00"}, "at"),
    ({"patient_id": "P001", "kind": "診察", "at": "来週"}, "at"),
    ({"patient_id": "P001", "kind": "診察"}, "at"),
])
def test_a_refused_reminder_names_the_field(server, full, examination, body, field):
    assert_problem(full.call("PUT", "/reminders/BAD-1", body), 422, "validation", field)
    assert full.call("GET", "/reminders/BAD-1").status == 404
