"""The send queue's claim and state transitions, against a real temporary database."""
from __future__ import annotations

import threading

import pytest

from appliance import audit, outbox
from appliance.db import connect, write
from tests.queue_rows import TEXT_2_PARTS, add_broadcast, parts, recipient, states


def test_emergency_is_claimed_before_routine_then_creation_order(db):
    _, routine = add_broadcast(db, 3)
    _, emergency = add_broadcast(db, 2, priority="emergency")
    order = []
    while (c := outbox.claim(db, "m0", 100.0, max_parts=99)) is not None:
        order.append(c.recipient_id)
    assert order == emergency + routine


def test_claim_marks_the_message_sending_for_one_modem_and_counts_the_attempt(db):
    bid, [rid] = add_broadcast(db, 1)
    c = outbox.claim(db, "m0", 100.0, max_parts=10)
    row = recipient(db, rid)
    assert (row["state"], row["modem"], row["attempts"], row["claimed_at"]) == \
        ("sending", "m0", 1, 100.0)
    assert c.attempts == 1 and c.modem == "m0"
    b = db.conn.execute("SELECT state, started_at FROM broadcasts WHERE id = ?", [bid]).fetchone()
    assert tuple(b) == ("sending", 100.0)
    assert outbox.claim(db, "m1", 100.0, max_parts=10) is None


def test_two_workers_racing_claim_every_message_exactly_once(tmp_path):
    path = tmp_path / "race.db"
    setup = connect(path)
    _, ids = add_broadcast(setup, 120)
    claimed: dict[str, list[int]] = {"a": [], "b": [], "c": []}
    start = threading.Barrier(len(claimed))

    def work(name: str) -> None:
        own = connect(path)  # each worker its own connection, as in the daemon
        start.wait()
        while (c := outbox.claim(own, name, 100.0, max_parts=10)) is not None:
            claimed[name].append(c.recipient_id)
        own.conn.close()

    threads = [threading.Thread(target=work, args=(n,)) for n in claimed]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    everything = sum(claimed.values(), [])
    assert sorted(everything) == ids, "each message claimed once, none left behind"
    owners = {r["id"]: r["modem"] for r in setup.conn.execute("SELECT id, modem FROM recipients")}
    for name, got in claimed.items():
        assert all(owners[i] == name for i in got)


def test_cancelled_and_scheduled_broadcasts_are_not_claimed(db):
    add_broadcast(db, 2, state="cancelled")
    add_broadcast(db, 2, state="scheduled")
    assert outbox.claim(db, "m0", 100.0, max_parts=10) is None


def test_a_message_waits_for_its_retry_time(db):
    _, [rid] = add_broadcast(db, 1)
    db.conn.execute("UPDATE recipients SET next_attempt_at = 150 WHERE id = ?", [rid])
    assert outbox.claim(db, "m0", 149.9, max_parts=10) is None
    assert outbox.claim(db, "m0", 150.0, max_parts=10).recipient_id == rid


def test_a_message_that_does_not_fit_the_budget_is_left_and_a_smaller_one_taken(db):
    _, [long_id] = add_broadcast(db, 1, text=TEXT_2_PARTS)
    _, [short_id] = add_broadcast(db, 1, text="短い連絡")
    assert outbox.claim(db, "m0", 100.0, max_parts=1).recipient_id == short_id
    assert recipient(db, long_id)["state"] == "queued"
    assert outbox.claim(db, "m0", 100.0, max_parts=0) is None
    assert outbox.claim(db, "m0", 100.0, max_parts=2).recipient_id == long_id


def test_parts_are_recorded_before_and_after_the_send(db):
    _, [rid] = add_broadcast(db, 1, text=TEXT_2_PARTS)
    c = outbox.claim(db, "m0", 100.0, max_parts=10)
    outbox.part_sending(db, c, 1, 101.0)
    assert [(p["seq"], p["state"], p["sending_at"]) for p in parts(db, rid)] == \
        [(1, "sending", 101.0)]
    outbox.part_submitted(db, c, 1, 7, 101.5, last=False)
    assert recipient(db, rid)["state"] == "sending"
    outbox.part_sending(db, c, 2, 102.0)
    outbox.part_submitted(db, c, 2, 8, 102.5, last=True)
    assert [(p["state"], p["mr"], p["modem"]) for p in parts(db, rid)] == \
        [("submitted", 7, "m0"), ("submitted", 8, "m0")]
    row = recipient(db, rid)
    assert (row["state"], row["submitted_at"]) == ("submitted", 102.5)


def test_an_unknown_temporary_error_is_retried_until_max_attempts_then_fails(db):
    _, [rid] = add_broadcast(db, 1)
    now = 1000.0
    for attempt in range(1, 4):
        c = outbox.claim(db, "m0", now, max_parts=10)
        assert c.attempts == attempt
        outbox.part_sending(db, c, 1, now)
        state = outbox.retry_or_fail(db, c, 1, "+CMS ERROR: 500", now, permanent=False,
                                     max_attempts=3, delay=20)
        row = recipient(db, rid)
        if attempt < 3:
            assert state == "queued" and row["next_attempt_at"] == now + 20
            now = row["next_attempt_at"]
    row = recipient(db, rid)
    assert (row["state"], row["failed_at"], row["reason"]) == ("failed", now, "gave_up")
    assert "+CMS ERROR: 500" in row["last_error"] and "3 attempts" in row["last_error"]


def test_an_error_that_passes_is_retried_past_max_attempts(db):
    _, [rid] = add_broadcast(db, 1)
    for now in (1000.0, 1001.0, 1002.0):
        c = outbox.claim(db, "m0", now, max_parts=10)
        outbox.part_sending(db, c, 1, now)
        assert outbox.retry_or_fail(db, c, 1, "+CMS ERROR: 42", now, permanent=False,
                                    give_up=False, max_attempts=1, delay=0,
                                    reason="cms:42") == "queued"
    assert (recipient(db, rid)["attempts"], recipient(db, rid)["reason"]) == (3, "cms:42")


def test_a_recipients_own_back_off_waits_for_nothing_first_then_doubles_to_a_cap():
    assert [outbox.retry_delay(a, 5, 120) for a in range(1, 8)] == [0, 5, 10, 20, 40, 80, 120]
    assert outbox.retry_delay(10_000, 5, 120) == 120


def test_a_message_retried_at_once_goes_behind_those_already_waiting(db):
    _, [first, second, third] = add_broadcast(db, 3)
    c = outbox.claim(db, "m0", 100.0, max_parts=10)
    assert c.recipient_id == first
    outbox.part_sending(db, c, 1, 100.0)
    outbox.retry_or_fail(db, c, 1, "+CMS ERROR: 41", 100.5, permanent=False, give_up=False,
                         delay=0)
    order = []
    while (c := outbox.claim(db, "m0", 101.0, max_parts=10)) is not None:
        order.append(c.recipient_id)
    assert order == [second, third, first]


def test_permanent_error_fails_at_once_and_others_go_on(db):
    _, [bad, good] = add_broadcast(db, 2)
    c = outbox.claim(db, "m0", 100.0, max_parts=10)
    outbox.part_sending(db, c, 1, 100.0)
    assert outbox.retry_or_fail(db, c, 1, "+CMS ERROR: 1 (unassigned number)", 100.0,
                                permanent=True, max_attempts=5, delay=20) == "failed"
    assert recipient(db, bad)["state"] == "failed"
    assert recipient(db, bad)["last_error"] == "+CMS ERROR: 1 (unassigned number)"
    assert parts(db, bad)[0]["state"] == "failed"
    assert outbox.claim(db, "m0", 100.0, max_parts=10).recipient_id == good


def test_release_hands_the_message_back_without_counting_the_attempt(db):
    _, [rid] = add_broadcast(db, 1)
    c = outbox.claim(db, "m0", 100.0, max_parts=10)
    outbox.part_sending(db, c, 1, 100.0)
    outbox.release(db, c, 1, "m0: SIM removed", 100.0)
    row = recipient(db, rid)
    assert (row["state"], row["attempts"], row["next_attempt_at"]) == ("queued", 0, 100.0)
    again = outbox.claim(db, "m1", 100.0, max_parts=10)
    assert again.recipient_id == rid and again.modem == "m1"


def test_a_retry_after_a_partial_send_resends_the_whole_message_and_says_so(db):
    _, [rid] = add_broadcast(db, 1, text=TEXT_2_PARTS)
    c = outbox.claim(db, "m0", 100.0, max_parts=10)
    outbox.part_sending(db, c, 1, 100.0)
    outbox.part_submitted(db, c, 1, 5, 100.1, last=False)
    outbox.part_sending(db, c, 2, 100.2)
    outbox.retry_or_fail(db, c, 2, "+CMS ERROR: 500", 100.2, permanent=False,
                         max_attempts=5, delay=0)
    row = recipient(db, rid)
    assert row["state"] == "queued"
    assert "parts 1-1 of 2 had gone out" in row["last_error"]
    [entry] = audit.entries(db, action="recipient_partial_send")
    assert entry.detail == {"recipient_id": rid, "broadcast_id": c.broadcast_id,
                            "parts_sent": 1, "parts": 2, "outcome": "resent"}
    outbox.claim(db, "m0", 100.3, max_parts=10)
    assert [p["state"] for p in parts(db, rid)] == ["queued", "queued"], "both parts again"


@pytest.mark.parametrize("policy, priority, expected", [
    ("emergency", "emergency", "queued"), ("emergency", "routine", "uncertain"),
    ("always", "routine", "queued"), ("never", "emergency", "uncertain")])
def test_an_uncertain_send_follows_the_policy_and_is_recorded(db, policy, priority, expected):
    _, [rid] = add_broadcast(db, 1, priority=priority)
    c = outbox.claim(db, "m0", 100.0, max_parts=10)
    outbox.part_sending(db, c, 1, 100.0)
    assert outbox.uncertain(db, c, 1, "no answer to AT+CMGS", 100.0, policy=policy) == expected
    row = recipient(db, rid)
    assert row["state"] == expected and "uncertain" in row["last_error"]
    assert parts(db, rid)[0]["state"] == "uncertain"
    action = "recipient_resent" if expected == "queued" else "recipient_uncertain"
    assert [e.detail["recipient_id"] for e in audit.entries(db, action=action)] == [rid]
    assert states(db) == {expected: 1}


def test_while_a_part_is_in_flight_its_hand_over_is_written_and_the_next_marked_sending(db):
    _, [rid] = add_broadcast(db, 1, text=TEXT_2_PARTS)
    c = outbox.claim(db, "m0", 100.0, max_parts=10)
    outbox.part_sending(db, c, 1, 101.0)
    outbox.part_in_flight(db, c, 1, 101.1, prepare=True)
    assert [(p["seq"], p["state"], p["sending_at"]) for p in parts(db, rid)] == \
        [(1, "sending", 101.1), (2, "sending", None)]  # part 2's pace counts from its send
    outbox.part_submitted(db, c, 1, 7, 101.5, last=False)
    outbox.part_in_flight(db, c, 2, 101.6, prepare=False)
    assert [(p["state"], p["mr"], p["sending_at"]) for p in parts(db, rid)] == \
        [("submitted", 7, 101.1), ("sending", None, 101.6)]
    outbox.part_submitted(db, c, 2, 8, 102.0, last=True)
    assert recipient(db, rid)["state"] == "submitted"


def test_a_part_marked_ahead_goes_back_to_queued_when_the_pace_makes_it_wait(db):
    _, [rid] = add_broadcast(db, 1, text=TEXT_2_PARTS)
    c = outbox.claim(db, "m0", 100.0, max_parts=10)
    outbox.part_sending(db, c, 1, 101.0)
    outbox.part_in_flight(db, c, 1, 101.0, prepare=True)
    outbox.part_submitted(db, c, 1, 7, 101.5, last=False, unprepare=True)
    assert [(p["seq"], p["state"]) for p in parts(db, rid)] == [(1, "submitted"), (2, "queued")]


def test_a_failed_part_leaves_no_later_part_marked_sending(db):
    _, [rid] = add_broadcast(db, 1, text=TEXT_2_PARTS)
    c = outbox.claim(db, "m0", 100.0, max_parts=10)
    outbox.part_sending(db, c, 1, 101.0)
    outbox.part_in_flight(db, c, 1, 101.0, prepare=True)
    outbox.retry_or_fail(db, c, 1, "+CMS ERROR: 500", 101.5, permanent=False, max_attempts=3,
                         delay=10)
    assert [(p["seq"], p["state"]) for p in parts(db, rid)] == [(1, "failed"), (2, "queued")]
    assert recipient(db, rid)["state"] == "queued"


def test_a_message_claimed_ahead_and_never_begun_is_handed_back_uncounted(db):
    _, [rid] = add_broadcast(db, 1)
    c = outbox.claim(db, "m0", 100.0, max_parts=10)
    outbox.unclaim(db, c, 105.0)
    row = recipient(db, rid)
    assert (row["state"], row["attempts"], row["next_attempt_at"]) == ("queued", 0, 105.0)
    assert outbox.claim(db, "m1", 106.0, max_parts=10).recipient_id == rid


def test_unclaim_never_takes_back_a_message_that_has_begun(db):
    _, [rid] = add_broadcast(db, 1)
    c = outbox.claim(db, "m0", 100.0, max_parts=10)
    outbox.part_sending(db, c, 1, 101.0)
    outbox.unclaim(db, c, 105.0)
    assert recipient(db, rid)["state"] == "sending"



def test_an_emergency_queued_after_a_routine_claim_ahead_outranks_it(db):
    add_broadcast(db, 2)
    routine = outbox.claim(db, "m0", 100.0, max_parts=10)
    assert not outbox.outranked(db, routine, 100.0)
    _, [urgent] = add_broadcast(db, 1, priority="emergency")
    assert outbox.outranked(db, routine, 100.0)
    outbox.unclaim(db, routine, 100.0)
    assert outbox.claim(db, "m0", 100.0, max_parts=10).recipient_id == urgent


def test_beginning_a_message_claimed_ahead_records_the_answer_before_it_in_the_same_commit(db):
    _, [before, ahead] = add_broadcast(db, 2)
    a = outbox.claim(db, "m0", 100.0, max_parts=10)
    outbox.part_sending(db, a, 1, 100.0)
    b = outbox.claim(db, "m0", 100.5, max_parts=10)  # claimed while a's part was on the air
    answer = outbox.Accepted(a, 1, mr=42, at=101.0, last=True)
    assert outbox.begin_claimed(db, b, 101.0, accepted=[answer]) == "begun"
    assert (recipient(db, before)["state"], parts(db, before)[0]["mr"]) == ("submitted", 42)
    assert [(p["seq"], p["state"], p["sending_at"]) for p in parts(db, ahead)] == \
        [(1, "sending", 101.0)]


def test_a_message_claimed_ahead_of_a_cancel_is_not_begun_but_the_answer_is_recorded(db):
    bid, [before, ahead] = add_broadcast(db, 2)
    a = outbox.claim(db, "m0", 100.0, max_parts=10)
    outbox.part_sending(db, a, 1, 100.0)
    b = outbox.claim(db, "m0", 100.5, max_parts=10)
    db.conn.execute("UPDATE recipients SET state = 'cancelled' WHERE id = ?", [ahead])
    answer = outbox.Accepted(a, 1, mr=7, at=101.0, last=True)
    assert outbox.begin_claimed(db, b, 101.0, accepted=[answer]) == "cancelled"
    assert recipient(db, before)["state"] == "submitted"
    assert parts(db, ahead) == [] and recipient(db, ahead)["state"] == "cancelled"


def test_a_routine_message_claimed_ahead_of_an_emergency_is_handed_back_not_begun(db):
    _, [routine] = add_broadcast(db, 1)
    r = outbox.claim(db, "m0", 100.0, max_parts=10)
    _, [urgent] = add_broadcast(db, 1, priority="emergency")
    assert outbox.begin_claimed(db, r, 101.0) == "outranked"
    assert parts(db, routine) == [] and recipient(db, routine)["state"] == "queued"
    assert outbox.claim(db, "m0", 101.0, max_parts=10).recipient_id == urgent


def test_the_answer_to_a_part_is_recorded_with_the_next_parts_hand_over(db):
    _, [rid] = add_broadcast(db, 1, text=TEXT_2_PARTS)
    c = outbox.claim(db, "m0", 100.0, max_parts=10)
    outbox.part_sending(db, c, 1, 100.0)
    outbox.part_in_flight(db, c, 1, 100.0, prepare=True)
    answer = outbox.Accepted(c, 1, mr=9, at=101.0, last=False)
    outbox.part_in_flight(db, c, 2, 101.1, prepare=False, accepted=[answer])
    assert [(p["state"], p["mr"], p["sending_at"]) for p in parts(db, rid)] == \
        [("submitted", 9, 100.0), ("sending", None, 101.1)]
    assert recipient(db, rid)["state"] == "sending"


# -- a long message stopped half-way ----------------------------------------------------------

def _stopped_after_part_1(db, now=100.0):
    """m0 sent part 1 of a 2-part message with reference 77; part 2 met congestion."""
    import dataclasses
    _, [rid] = add_broadcast(db, 1, text=TEXT_2_PARTS)
    c = dataclasses.replace(outbox.claim(db, "m0", now, max_parts=10), reference=77)
    outbox.part_sending(db, c, 1, now)
    outbox.part_submitted(db, c, 1, 5, now + 0.1, last=False)
    outbox.part_sending(db, c, 2, now + 0.2)
    outbox.retry_or_fail(db, c, 2, "+CMS ERROR: 42", now + 0.2, permanent=False,
                         give_up=False, delay=0, reason="cms:42")
    return rid


def _modem_ready(db, name: str, ready: bool) -> None:
    from appliance import health
    with write(db) as conn:
        health.write_status(conn, health.ModemHealth(
            name=name, port="/dev/null", ready=ready, reason=None if ready else "no_sim",
            checked_at=100.0))


def test_a_message_stopped_half_way_goes_on_from_there_with_its_reference(db):
    rid = _stopped_after_part_1(db)
    _modem_ready(db, "m0", True)
    assert outbox.claim(db, "m1", 101.0, max_parts=10) is None  # m0 finishes its own
    c = outbox.claim(db, "m0", 101.0, max_parts=1)   # one part left to send: fits 1
    assert (c.first_seq, c.reference) == (2, 77)
    assert [p["state"] for p in parts(db, rid)] == ["submitted", "queued"]
    assert "the rest is sent with the same reference" in recipient(db, rid)["last_error"]
    [entry] = audit.entries(db, action="recipient_partial_send")
    assert entry.detail["outcome"] == "resumed"


def test_when_its_modem_is_down_another_sends_the_message_whole_and_says_so(db):
    rid = _stopped_after_part_1(db)
    _modem_ready(db, "m0", False)
    c = outbox.claim(db, "m1", 101.0, max_parts=10)
    assert (c.recipient_id, c.first_seq, c.reference) == (rid, 1, None)
    assert [p["state"] for p in parts(db, rid)] == ["queued", "queued"]
    assert recipient(db, rid)["reason"] == "whole_again"
    assert sorted(e.detail["outcome"] for e in audit.entries(
        db, action="recipient_partial_send")) == ["resumed", "whole_again"]


def test_after_the_resume_window_any_modem_sends_it_whole(db):
    rid = _stopped_after_part_1(db)
    _modem_ready(db, "m0", True)
    later = 100.0 + outbox.RESUME_WINDOW + 1
    c = outbox.claim(db, "m1", later, max_parts=10)
    assert c.recipient_id == rid and c.first_seq == 1


def test_a_cancel_stops_a_resumable_message_claimed_ahead(db):
    from appliance import broadcasts
    rid = _stopped_after_part_1(db)
    _modem_ready(db, "m0", True)
    outbox.claim(db, "m0", 101.0, max_parts=10)    # claimed ahead, part 2 not begun
    bid = recipient(db, rid)["broadcast_id"]
    with write(db) as conn:
        assert broadcasts.cancel(conn, bid, actor="test", now=101.5) == 1


def test_a_routine_message_never_takes_the_room_an_emergency_waits_for(db):
    # A week of one-part reminders queued behind the daily limit took each part of room as
    # it came back, one at a time, and a two-part emergency waited until they were all sent.
    _, [urgent] = add_broadcast(db, 1, text=TEXT_2_PARTS, priority="emergency")
    _, reminders = add_broadcast(db, 3, text="明日は採血日です", first_number=100)
    assert outbox.claim(db, "m0", 100.0, max_parts=1, daily_limit=200) is None
    assert outbox.claim(db, "m0", 100.0, max_parts=2, daily_limit=200).recipient_id == urgent
    assert outbox.claim(db, "m0", 100.0, max_parts=1, daily_limit=200).recipient_id \
        == reminders[0]


def test_within_one_priority_a_shorter_message_still_uses_the_room_left(db):
    _, [long_id] = add_broadcast(db, 1, text=TEXT_2_PARTS, priority="emergency")
    _, [short_id] = add_broadcast(db, 1, text="短い連絡", priority="emergency",
                                  first_number=100)
    assert outbox.claim(db, "m0", 100.0, max_parts=1, daily_limit=200).recipient_id == short_id
    assert recipient(db, long_id)["state"] == "queued"


def test_an_emergency_that_cannot_take_the_room_holds_nothing_back(db):
    # Longer than this SIM's whole daily limit: it can only go on another SIM.
    _, [huge] = add_broadcast(db, 1, text=TEXT_2_PARTS, priority="emergency")
    _, [routine] = add_broadcast(db, 1, text="短い連絡", first_number=100)
    assert outbox.claim(db, "m0", 100.0, max_parts=1, daily_limit=1).recipient_id == routine
    # Not due yet (waiting to be retried): it holds nothing back either.
    db.conn.execute("UPDATE recipients SET next_attempt_at = 500 WHERE id = ?", [huge])
    _, [later] = add_broadcast(db, 1, text="短い連絡", first_number=200)
    assert outbox.claim(db, "m0", 100.0, max_parts=1, daily_limit=200).recipient_id == later
