"""The broadcast domain in-process: planning, creating, cancelling, retrying, resending,
follow-ups, scheduling, delivery reports and replies, over a real SQLite database."""
from __future__ import annotations

import json

import pytest

from appliance import broadcasts, config as config_mod, contacts, replies, reports
from appliance.db import connect, write
from modem import pdu

NOW = 1_800_000_000.0


@pytest.fixture
def config(tmp_path):
    path = tmp_path / "tsunagu.toml"
    path.write_text('database = "t.db"\nclinic_name = "つなぐ透析クリニック"\n'
                    '[[modem]]\nname = "m0"\nport = "/dev/null"\npace = 20\ndaily_limit = 200\n'
                    '[[modem]]\nname = "m1"\nport = "/dev/null"\npace = 20\ndaily_limit = 50\n',
                    encoding="utf-8")
    return config_mod.load(path)


@pytest.fixture
def db(config):
    database = connect(config.database)
    morning = contacts.create_group(database, "月水金 午前", actor="t", kind="shift")
    test = contacts.create_group(database, "テスト", actor="t", kind="test")
    for i in range(6):
        contacts.add_contact(database, name=f"患者{i}", kana=f"かんじゃ{i}",
                             phone=f"090-1234-{i:04d}", actor="t", group_ids=[morning.id])
    contacts.add_contact(database, name="𠮷田 花子", phone="080-1111-2222", actor="t",
                         group_ids=[test.id])
    return database


def group_id(db, name):
    return db.conn.execute("SELECT id FROM groups WHERE name = ?", [name]).fetchone()[0]


def make(db, config, **kw) -> int:
    kw.setdefault("group_ids", [group_id(db, "月水金 午前")])
    p = broadcasts.plan(db.conn, config, text=kw.pop("text", "{name}様 本日は中止です"),
                        now=NOW, **kw)
    with write(db) as conn:
        return broadcasts.create(conn, p, title="", actor="staff", now=NOW)


def test_plan_renders_each_name_and_counts_parts_and_budget(db, config):
    p = broadcasts.plan(db.conn, config, text="{name}様 {clinic}です", now=NOW,
                        group_ids=[group_id(db, "月水金 午前")], choices="来院できる / できない")
    assert p.people == 6 and p.recipients[0].text.startswith("患者0様 つなぐ透析クリニックです")
    assert "1 来院できる\n2 できない" in p.recipients[0].text
    assert p.parts == sum(pdu.count(r.text).parts for r in p.recipients)
    assert p.budget == {"m0": 200, "m1": 50} and p.fits


def test_a_drill_goes_only_to_the_test_group_whatever_else_was_chosen(db, config):
    p = broadcasts.plan(db.conn, config, text="訓練です", drill=True, everyone=True, now=NOW)
    assert [r.name for r in p.recipients] == ["𠮷田 花子"]


@pytest.mark.parametrize("kwargs, field", [
    ({"text": "  "}, "text"),
    ({"text": "{nmae}様"}, "text"),
    ({"text": "あ" * 700}, "text"),
    ({"text": "x", "group_ids": []}, "groups"),
    ({"text": "x", "priority": "urgent"}, "priority"),
    ({"text": "x", "choices": "/".join("abcdefghij")}, "choices"),
])
def test_bad_broadcasts_are_refused_naming_the_field(db, config, kwargs, field):
    kwargs.setdefault("group_ids", [group_id(db, "月水金 午前")])
    with pytest.raises(broadcasts.BroadcastError) as refused:
        broadcasts.plan(db.conn, config, now=NOW, **kwargs)
    assert refused.value.field == field


def _leave_three_parts_today(conn) -> None:
    """Spend all but 3 parts of both SIMs' budget today (m0: 2 left, m1: 1): a message
    sent in 247 parts a minute ago."""
    conn.execute("INSERT INTO broadcasts (title, text, created_by, created_at) "
                 "VALUES ('x', 'x', 't', ?)", [NOW])
    conn.execute("INSERT INTO recipients (broadcast_id, name, phone, text, parts_count, "
                 "state) VALUES (1, 'x', '+819012340000', 'x', 1, 'submitted')")
    conn.executemany("INSERT INTO parts (recipient_id, seq, state, modem, sending_at, "
                     "submitted_at) VALUES (1, ?, 'submitted', ?, ?, ?)",
                     [(i, "m0" if i <= 198 else "m1", NOW - 60, NOW - 60)
                      for i in range(1, 248)])


def test_a_plan_beyond_the_budget_says_how_many_are_sent_now(db, config):
    with write(db) as conn:
        _leave_three_parts_today(conn)
    p = broadcasts.plan(db.conn, config, text="本日は中止です", now=NOW,
                        group_ids=[group_id(db, "月水金 午前")])
    assert p.budget == {"m0": 2, "m1": 1} and not p.fits and p.parts_that_fit == 3
    assert "the first 3 of 6 people" in p.warnings[0]


def test_a_plan_held_back_by_the_budget_says_how_much_shorter_would_send_more_now(db, config):
    # Found walking the demo with the shipped settings: the power-cut template with its reply
    # choices is 104 characters, two parts, so one SIM's 200 parts a day reach 100 of 200
    # patients today. In one part (70 characters) all 200 would go now: the page must say so.
    with write(db) as conn:
        _leave_three_parts_today(conn)
    group = [group_id(db, "月水金 午前")]
    text = "停電のため本日の透析は中止です。" + "あ" * 60     # 76 characters: two parts
    p = broadcasts.plan(db.conn, config, text=text, now=NOW, group_ids=group)
    assert p.parts_that_fit == 1       # m0's 2 parts take one person; m1's 1 part nobody
    [note] = [v for code, v in p.notes if code == "shorter"]
    assert note == {"cut": 6, "chars": 70, "people": 3, "everyone": False,
                    "without_choices": False}
    assert "6 characters shorter, as one SMS (70 characters), it would go to 3 people now" \
        in p.warnings
    assert "本文をあと6文字短くして1通（70文字以内）にすると、今すぐ3名に送れます" \
        in broadcasts.note_texts(p, "ja", config)
    # With reply choices that alone push it past one part, the note says leaving them out
    # is enough.
    text = "停電のため本日の透析は中止です。" + "あ" * 30    # 46 characters: one part
    choices = ["来院できる", "来院できない", "連絡がほしい"]
    p = broadcasts.plan(db.conn, config, text=text, now=NOW, group_ids=group, choices=choices)
    [note] = [v for code, v in p.notes if code == "shorter"]
    assert note["without_choices"]
    assert note["cut"] == len(text) + len(broadcasts.choices_block(choices)) - 70 == 14
    assert "（返信の選択肢を外すだけでも1通になります）" in broadcasts.note_texts(p, "ja", config)[1]
    # A text already in one part, or one that all fit anyway, gets no such note.
    short = broadcasts.plan(db.conn, config, text="中止です", now=NOW, group_ids=group)
    assert not [v for code, v in short.notes if code == "shorter"]


def test_a_plan_counts_the_room_that_messages_queued_ahead_of_it_will_spend(db, config):
    # Found walking the demo: a second broadcast's confirm page said "the first 95 of 100
    # are sent now" while the first broadcast, still queued, was about to spend that room.
    with write(db) as conn:  # 3 parts left today, and 2 messages waiting
        _leave_three_parts_today(conn)
        conn.executemany("INSERT INTO recipients (broadcast_id, name, phone, text, "
                         "parts_count, priority_rank) VALUES (1, 'y', ?, 'y', 1, 1)",
                         [("+819012340001",), ("+819012340002",)])
    group = [group_id(db, "月水金 午前")]
    routine = broadcasts.plan(db.conn, config, text="本日は中止です", now=NOW, group_ids=group)
    assert (routine.parts_that_fit, routine.queued_ahead, routine.fits) == (1, 2, False)
    assert "2 of them for messages already queued ahead" in routine.warnings[0]
    assert "the first 1 of 6 people" in routine.warnings[0]
    [note] = [v for code, v in routine.notes if code == "over_budget"]
    assert (note["fit"], note["ahead"]) == (1, 2)
    # An emergency goes ahead of the routine messages waiting: the room is its own.
    urgent = broadcasts.plan(db.conn, config, text="本日は中止です", now=NOW, group_ids=group,
                             priority="emergency")
    assert (urgent.parts_that_fit, urgent.queued_ahead) == (3, 0)


def test_the_same_request_key_creates_one_broadcast(db, config):
    p = broadcasts.plan(db.conn, config, text="中止", group_ids=[group_id(db, "月水金 午前")],
                        now=NOW)
    with write(db) as conn:
        first = broadcasts.create(conn, p, title="t", actor="a", now=NOW, request_key="k1")
        second = broadcasts.create(conn, p, title="t", actor="a", now=NOW, request_key="k1")
    assert first == second
    assert db.conn.execute("SELECT count(*) FROM recipients").fetchone()[0] == 6


def test_cancel_stops_the_queued_and_keeps_what_was_sent(db, config):
    bid = make(db, config)
    db.conn.execute("UPDATE recipients SET state = 'submitted' WHERE id = 1")
    with write(db) as conn:
        assert broadcasts.cancel(conn, bid, actor="a", now=NOW) == 5
    summary = broadcasts.summary(db.conn, bid)
    assert summary["state"] == "cancelled"
    assert summary["counts"]["cancelled"] == 5 and summary["counts"]["submitted"] == 1
    with write(db) as conn, pytest.raises(broadcasts.BroadcastError):
        broadcasts.cancel(conn, bid, actor="a", now=NOW)


def test_cancel_also_stops_a_message_claimed_ahead_but_keeps_one_on_the_air(db, config):
    from appliance import outbox
    bid = make(db, config)
    on_air = outbox.claim(db, "m0", NOW, max_parts=10)
    outbox.part_sending(db, on_air, 1, NOW)
    ahead = outbox.claim(db, "m0", NOW, max_parts=10)  # claimed while on_air was sent
    with write(db) as conn:
        assert broadcasts.cancel(conn, bid, actor="a", now=NOW) == 5
    assert not outbox.still_claimed(db, ahead)  # the worker will not begin it
    assert outbox.still_claimed(db, on_air)     # this one finishes, as on a real modem
    outbox.unclaim(db, ahead, NOW)               # a later hand-back changes nothing
    assert broadcasts.summary(db.conn, bid)["counts"]["cancelled"] == 5


def test_staff_see_a_message_claimed_ahead_as_waiting_and_only_the_one_on_the_air_sending(
        db, config):
    from appliance import outbox
    bid = make(db, config)
    on_air = outbox.claim(db, "m0", NOW, max_parts=10)
    outbox.part_sending(db, on_air, 1, NOW)
    ahead = outbox.claim(db, "m0", NOW, max_parts=10)  # claimed while on_air was sent
    counts = broadcasts.summary(db.conn, bid)["counts"]
    assert counts["sending"] == 1 and counts["queued"] == 5
    shown = {r["id"]: r["state"] for r in broadcasts.recipients(db.conn, bid)}
    assert shown[on_air.recipient_id] == "sending" and shown[ahead.recipient_id] == "queued"
    outbox.part_sending(db, ahead, 1, NOW)  # begun: now it is sending
    assert broadcasts.summary(db.conn, bid)["counts"]["sending"] == 2


def test_retry_queues_the_failed_and_uncertain_again(db, config):
    bid = make(db, config)
    db.conn.execute("UPDATE recipients SET state = 'failed', attempts = 5 WHERE id IN (1, 2)")
    db.conn.execute("UPDATE recipients SET state = 'uncertain' WHERE id = 3")
    db.conn.execute("UPDATE recipients SET state = 'delivered' WHERE id > 3")
    with write(db) as conn:
        broadcasts.refresh_state(conn, bid, NOW)
        assert broadcasts.get(conn, bid)["state"] == "done"
        assert broadcasts.retry_failed(conn, bid, actor="a", now=NOW) == 3
    assert broadcasts.summary(db.conn, bid)["counts"]["queued"] == 3
    assert broadcasts.get(db.conn, bid)["state"] == "queued"


def test_replies_acknowledge_with_full_width_and_circled_choices(db, config):
    bid = make(db, config, choices=["来院できる", "来院できない", "連絡がほしい"])
    db.conn.execute("UPDATE recipients SET state = 'delivered'")
    with write(db) as conn:
        replies.record(conn, "m0", sender="+819012340000", text="２", sent_at=NOW, now=NOW)
        replies.record(conn, "m0", sender="09012340001", text="③ 電話ください", sent_at=NOW,
                       now=NOW)
        replies.record(conn, "m0", sender="+819012340002", text="来院できる", sent_at=NOW,
                       now=NOW)
        replies.record(conn, "m0", sender="+819012340003", text="わかりました", sent_at=NOW,
                       now=NOW)
        replies.record(conn, "m0", sender="+817011112222", text="どなた？", sent_at=NOW,
                       now=NOW)
    summary = broadcasts.summary(db.conn, bid)
    assert summary["acknowledged"] == 4
    assert summary["tally"] == {"来院できる": 1, "来院できない": 1, "連絡がほしい": 1}
    unmatched = replies.inbox(db.conn, unmatched_only=True)
    assert [m["text"] for m in unmatched] == ["どなた？"]


def test_the_same_reply_read_twice_after_a_crash_is_stored_once(db, config):
    make(db, config)
    with write(db) as conn:
        first = replies.record(conn, "m0", sender="+819012340000", text="1", sent_at=NOW, now=NOW)
        again = replies.record(conn, "m0", sender="+819012340000", text="1", sent_at=NOW, now=NOW)
    assert first == again
    assert db.conn.execute("SELECT count(*) FROM inbound_messages").fetchone()[0] == 1


def test_resend_goes_to_the_silent_and_the_call_list_counts_the_whole_family(db, config):
    bid = make(db, config, choices=["はい", "いいえ"])
    db.conn.execute("UPDATE recipients SET state = 'delivered' WHERE id <= 4")
    db.conn.execute("UPDATE recipients SET state = 'failed' WHERE id = 5")
    with write(db) as conn:
        replies.record(conn, "m0", sender="+819012340000", text="1", sent_at=NOW, now=NOW)
        child = broadcasts.resend_unacknowledged(conn, bid, actor="a", now=NOW + 60)
    kids = broadcasts.recipients(db.conn, child)
    assert len(kids) == 5 and "+819012340000" not in {r["phone"] for r in kids}
    db.conn.execute("UPDATE recipients SET state = CASE phone WHEN '+819012340004' THEN "
                    "'failed' ELSE 'delivered' END WHERE broadcast_id = ?", [child])
    with write(db) as conn:
        replies.record(conn, "m0", sender="+819012340001", text="2", sent_at=NOW + 90,
                       now=NOW + 90)
    calls = broadcasts.call_list(db.conn, bid)
    phones = [c["phone"] for c in calls]
    assert "+819012340000" not in phones            # "1 はい" to the first: nothing to do
    # "2 いいえ" to the resend: an answer that asks for a call (issue 11, finding 1).
    assert {c["phone"]: c["reason"] for c in calls}["+819012340001"] == "asked"
    assert len(calls) == 5
    assert calls[0]["phone"] == "+819012340004" and calls[0]["reason"] == "not_reached"


def test_follow_ups_fall_due_after_n_minutes_up_to_k_times(db, config):
    p = broadcasts.plan(db.conn, config, text="中止", group_ids=[group_id(db, "月水金 午前")],
                        now=NOW)
    with write(db) as conn:
        bid = broadcasts.create(conn, p, title="t", actor="a", now=NOW,
                                followup_after_minutes=30, followup_max=1)
    db.conn.execute("UPDATE recipients SET state = 'delivered'")
    db.conn.execute("UPDATE broadcasts SET state = 'done'")
    assert broadcasts.due_followups(db.conn, NOW + 29 * 60) == []
    assert broadcasts.due_followups(db.conn, NOW + 30 * 60) == [bid]
    with write(db) as conn:
        assert broadcasts.create_followup(conn, bid, NOW + 30 * 60) is not None
    assert broadcasts.due_followups(db.conn, NOW + 120 * 60) == []


def test_a_scheduled_broadcast_waits_for_its_time(db, config):
    p = broadcasts.plan(db.conn, config, text="採血日です", group_ids=[group_id(db, "月水金 午前")],
                        now=NOW)
    with write(db) as conn:
        bid = broadcasts.create(conn, p, title="t", actor="a", now=NOW, scheduled_at=NOW + 3600)
        assert broadcasts.get(conn, bid)["state"] == "scheduled"
        assert broadcasts.promote_scheduled(conn, NOW + 3599) == []
        assert broadcasts.promote_scheduled(conn, NOW + 3600) == [bid]
    assert broadcasts.get(db.conn, bid)["state"] == "queued"


def _submitted_part(db, rid, seq, mr, at, modem="m0"):
    db.conn.execute("INSERT INTO parts (recipient_id, seq, state, modem, mr, sending_at, "
                    "submitted_at) VALUES (?, ?, 'submitted', ?, ?, ?, ?)",
                    [rid, seq, modem, mr, at, at])


def test_reports_match_the_latest_part_with_that_mr_after_it_wrapped(db, config):
    make(db, config)
    db.conn.execute("UPDATE recipients SET state = 'submitted', parts_count = 2 WHERE id = 1")
    db.conn.execute("UPDATE recipients SET state = 'submitted', parts_count = 1 WHERE id = 2")
    _submitted_part(db, 1, 1, 7, NOW - 3600)       # TP-MR 7, an hour ago (reported already)
    db.conn.execute("UPDATE parts SET state = 'delivered'")
    _submitted_part(db, 2, 1, 7, NOW - 5)          # TP-MR 7 again after wrapping
    _submitted_part(db, 1, 2, 8, NOW - 4)
    with write(db) as conn:
        part = reports.record(conn, "m0", mr=7, number="+819012340001", status=0,
                              outcome="delivered", discharge_at=None, now=NOW)
        assert conn.execute("SELECT recipient_id FROM parts WHERE id = ?", [part]).fetchone()[0] == 2
        reports.record(conn, "m1", mr=8, number=None, status=0, outcome="delivered",
                       discharge_at=None, now=NOW)  # other modem: matches nothing
        reports.record(conn, "m0", mr=8, number=None, status=0x41, outcome="failed",
                       discharge_at=None, now=NOW)
    people = {r["id"]: r for r in broadcasts.recipients(db.conn, 1)}
    assert people[2]["state"] == "delivered"
    assert people[1]["state"] == "failed" and "0x41" in people[1]["last_error"]
    unmatched = db.conn.execute("SELECT count(*) FROM delivery_reports WHERE part_id IS NULL")
    assert unmatched.fetchone()[0] == 1


def test_history_lists_newest_first_with_counts(db, config):
    first, second = make(db, config), make(db, config, text="再開します")
    rows = broadcasts.history(db.conn)
    assert [r["id"] for r in rows] == [second, first] and rows[0]["people"] == 6
    assert json.loads(json.dumps(broadcasts.summary(db.conn, first)))["total"] == 6


def test_a_default_title_never_carries_a_patients_name(db, config):
    bid = make(db, config, text="{name}様\n本日は中止です")
    assert broadcasts.get(db.conn, bid)["title"] == "本日は中止です"
    only = make(db, config, text="{name}")
    assert broadcasts.get(db.conn, only)["title"] == "一斉送信"
    within = make(db, config, text="停電です。{name}さん、自宅で待機してください")
    assert broadcasts.get(db.conn, within)["title"] == "停電です。〇〇さん、自宅で待機してください"
