"""The call list as the nurse's work list, and the tally of replies (issue 11, findings 1, 2
and 12): who to phone and why, the outcome and note of each call, undo; every reply counted
somewhere."""
from __future__ import annotations

import pytest

from appliance import broadcasts, calls, config as config_mod, contacts, replies
from appliance.db import connect, write

NOW = 1_800_000_000.0
CHOICES = ["来院できる", "来院できない", "連絡がほしい"]


@pytest.fixture
def config(tmp_path):
    path = tmp_path / "tsunagu.toml"
    path.write_text('database = "t.db"\nclinic_name = "つなぐ透析クリニック"\n'
                    '[[modem]]\nname = "m0"\nport = "/dev/null"\n', encoding="utf-8")
    return config_mod.load(path)


@pytest.fixture
def db(config):
    database = connect(config.database)
    group = contacts.create_group(database, "月水金 午前", actor="t", kind="shift")
    for i in range(8):
        contacts.add_contact(database, name=f"患者{i}", kana=f"カンジャ{i}",
                             phone=f"090-1234-{i:04d}", actor="t", group_ids=[group.id])
    yield database
    database.conn.close()


def number(i: int) -> str:
    return f"+81901234{i:04d}"


@pytest.fixture
def broadcast(db, config):
    """Eight patients, all delivered; replies from 0-5 as in the demo's power cut."""
    group_id = db.conn.execute("SELECT id FROM groups").fetchone()[0]
    plan = broadcasts.plan(db.conn, config, text="停電のため中止です", group_ids=[group_id],
                           choices=CHOICES, now=NOW)
    with write(db) as conn:
        bid = broadcasts.create(conn, plan, title="停電", actor="nurse", now=NOW)
        conn.execute("UPDATE recipients SET state = 'delivered', submitted_at = ?, "
                     "delivered_at = ?", [NOW, NOW + 5])
        for i, text in enumerate(["1", "１ 行けます", "2", "3 連絡がほしい", "はい",
                                  "行けません。どうしたらいいですか"]):
            replies.record(conn, "m0", sender=number(i), text=text, sent_at=NOW + i,
                           now=NOW + 60 + i)
    return bid


def by_phone(rows):
    return {r["phone"]: r for r in rows}


def test_people_who_asked_to_be_called_or_wrote_something_else_are_on_the_call_list(
        db, broadcast):
    rows = by_phone(broadcasts.call_list(db.conn, broadcast))
    assert number(0) not in rows and number(1) not in rows   # "1": all is well
    assert rows[number(2)]["reason"] == "asked" and rows[number(2)]["answer"] == "2 来院できない"
    assert rows[number(3)]["reason"] == "asked" and rows[number(3)]["answer"] == "3 連絡がほしい"
    assert rows[number(4)]["reason"] == "free_text" and rows[number(4)]["answer"] == "はい"
    assert rows[number(5)]["answer"] == "行けません。どうしたらいいですか"
    assert rows[number(6)]["reason"] == rows[number(7)]["reason"] == "no_reply"
    assert len(rows) == 6


def test_the_call_list_puts_those_who_heard_nothing_first_and_says_how_long_ago(
        db, broadcast):
    db.conn.execute("UPDATE recipients SET state = 'failed', last_error = "
                    "'the network could not deliver it (status 0x41)' WHERE phone = ?",
                    [number(7)])
    rows = broadcasts.call_list(db.conn, broadcast, now=NOW + 25 * 60)
    assert rows[0]["phone"] == number(7) and rows[0]["reason"] == "not_reached"
    silent = by_phone(rows)[number(6)]
    assert silent["minutes_since_sent"] == 25


def test_the_tally_counts_every_reply_with_the_unclassified_listed(db, broadcast):
    summary = broadcasts.summary(db.conn, broadcast)
    assert summary["tally"] == {"来院できる": 2, "来院できない": 1, "連絡がほしい": 1}
    assert [r["text"] for r in summary["other_replies"]] == ["はい",
                                                             "行けません。どうしたらいいですか"]
    assert sum(summary["tally"].values()) + len(summary["other_replies"]) \
        == summary["acknowledged"] == 6


def recipient_id(db, phone: str) -> int:
    return db.conn.execute("SELECT id FROM recipients WHERE phone = ?", [phone]).fetchone()[0]


def test_a_call_is_recorded_with_its_note_and_stays_on_the_list_marked_done(db, broadcast):
    rid = recipient_id(db, number(3))
    with write(db) as conn:
        calls.record(conn, rid, "reached", note="明日の午前に来院", actor="nurse", now=NOW + 600)
    row = by_phone(broadcasts.call_list(db.conn, broadcast))[number(3)]
    assert row["call"]["outcome"] == "reached" and row["call"]["note"] == "明日の午前に来院"
    assert row["done"] is True
    rows = broadcasts.call_list(db.conn, broadcast)
    assert rows[-1]["phone"] == number(3)           # done: below those still to call
    actions = [r[0] for r in db.conn.execute("SELECT action FROM audit_log")]
    assert "call_outcome" in actions


def test_no_answer_keeps_the_person_to_call_with_the_attempt_shown(db, broadcast):
    rid = recipient_id(db, number(6))
    with write(db) as conn:
        calls.record(conn, rid, "no_answer", note="", actor="nurse", now=NOW + 600)
    row = by_phone(broadcasts.call_list(db.conn, broadcast))[number(6)]
    assert row["done"] is False and row["call"]["outcome"] == "no_answer"
    assert broadcasts.summary(db.conn, broadcast)["acknowledged"] == 6


def test_reached_by_phone_counts_as_acknowledged_and_undo_puts_it_back(db, broadcast):
    rid = recipient_id(db, number(6))
    with write(db) as conn:
        call_id = calls.record(conn, rid, "reached", note="", actor="nurse", now=NOW + 600)
    assert broadcasts.summary(db.conn, broadcast)["acknowledged"] == 7
    with write(db) as conn:
        calls.undo(conn, call_id, actor="nurse", now=NOW + 620)
    row = by_phone(broadcasts.call_list(db.conn, broadcast))[number(6)]
    assert row["done"] is False and row["call"] is None
    assert broadcasts.summary(db.conn, broadcast)["acknowledged"] == 6
    actions = [r[0] for r in db.conn.execute("SELECT action FROM audit_log")]
    assert "call_outcome_undone" in actions


def test_undoing_a_call_never_takes_back_a_real_reply(db, broadcast):
    rid = recipient_id(db, number(3))        # replied "3 連絡がほしい"
    with write(db) as conn:
        call_id = calls.record(conn, rid, "reached", note="", actor="nurse", now=NOW + 600)
        calls.undo(conn, call_id, actor="nurse", now=NOW + 620)
    assert broadcasts.summary(db.conn, broadcast)["acknowledged"] == 6
    assert by_phone(broadcasts.call_list(db.conn, broadcast))[number(3)]["reason"] == "asked"


def test_a_bad_outcome_or_an_unknown_recipient_is_refused(db, broadcast):
    with pytest.raises(calls.CallError) as bad:
        with write(db) as conn:
            calls.record(conn, recipient_id(db, number(6)), "maybe", note="", actor="n",
                         now=NOW)
    assert bad.value.field == "outcome"
    with pytest.raises(calls.CallError):
        with write(db) as conn:
            calls.record(conn, 999, "reached", note="", actor="n", now=NOW)


def test_those_the_daily_limit_holds_back_are_phoned_before_those_about_to_be_sent(
        db, config):
    # Found walking the demo on a power cut with the shipped settings (one SIM, 200 parts a
    # day, a two-part message to 200 patients): 100 patients would get the SMS only the next
    # evening, yet the call list called all 200 "not sent", in name order, mixed with those
    # whose SMS was going out that minute.
    from appliance import budget
    with write(db) as conn:   # 197 of m0's 200 parts spent a minute ago: 3 left today
        conn.execute("INSERT INTO broadcasts (title, text, created_by, created_at) "
                     "VALUES ('x', 'x', 't', ?)", [NOW])
        spent = conn.execute("INSERT INTO recipients (broadcast_id, name, phone, text, "
                             "parts_count, state) VALUES (last_insert_rowid(), 'x', "
                             "'+819099990000', 'x', 1, 'submitted')").lastrowid
        conn.executemany("INSERT INTO parts (recipient_id, seq, state, modem, sending_at, "
                         "submitted_at) VALUES (?, ?, 'submitted', 'm0', ?, ?)",
                         [(spent, i, NOW - 60, NOW - 60) for i in range(1, 198)])
    group_id = db.conn.execute("SELECT id FROM groups").fetchone()[0]
    plan = broadcasts.plan(db.conn, config, text="停電のため中止です", group_ids=[group_id],
                           now=NOW)
    with write(db) as conn:
        bid = broadcasts.create(conn, plan, title="停電", actor="nurse", now=NOW)
    held = budget.held_back(db.conn, config, NOW, broadcast_id=bid)
    rows = broadcasts.call_list(db.conn, bid, now=NOW, held=held)
    reasons = [r["reason"] for r in rows]
    assert reasons == ["budget_wait"] * 5 + ["not_sent"] * 3
    assert all(r["budget_until"] == pytest.approx(NOW - 60 + 86_400) for r in rows[:5])
    assert all(r["budget_until"] is None for r in rows[5:])
