"""Crash recovery at start: every half-done message is settled per the documented policy."""
from __future__ import annotations

import pytest

from appliance import audit, outbox
from appliance.recovery import recover
from tests.queue_rows import TEXT_2_PARTS, add_broadcast, parts, recipient


def crash_with_part_in_flight(db, *, priority="routine", text="中止です", sent=0):
    """A claimed message whose parts 1..sent went out and part sent+1 was 'sending'."""
    _, [rid] = add_broadcast(db, 1, priority=priority, text=text)
    c = outbox.claim(db, "m0", 100.0, max_parts=10)
    for seq in range(1, sent + 1):
        outbox.part_sending(db, c, seq, 100.0)
        outbox.part_submitted(db, c, seq, seq, 100.1, last=False)
    outbox.part_sending(db, c, sent + 1, 100.2)
    return rid


@pytest.mark.parametrize("policy, priority, resent", [
    ("emergency", "emergency", True), ("emergency", "routine", False),
    ("always", "routine", True), ("never", "emergency", False)])
def test_a_part_in_flight_becomes_uncertain_and_the_policy_decides(db, policy, priority,
                                                                  resent):
    rid = crash_with_part_in_flight(db, priority=priority)
    result = recover(db, policy=policy, now=200.0)
    row = recipient(db, rid)
    assert parts(db, rid)[0]["state"] == "uncertain"
    if resent:
        assert result.resent == [rid] and row["state"] == "queued"
        assert row["last_error"].endswith("— resent")
        assert row["next_attempt_at"] == 200.0
    else:
        assert result.uncertain == [rid] and row["state"] == "uncertain"
        assert "not resent" in row["last_error"]
    actions = [e.action for e in audit.entries(db)]
    assert actions == ["recipient_resent" if resent else "recipient_uncertain"]


def test_a_claim_with_nothing_sent_is_queued_again_without_counting_the_attempt(db):
    _, [rid] = add_broadcast(db, 1)
    outbox.claim(db, "m0", 100.0, max_parts=10)
    result = recover(db, policy="never", now=200.0)
    row = recipient(db, rid)
    assert result.requeued == [rid]
    assert (row["state"], row["attempts"], row["last_error"]) == ("queued", 0, None)
    assert audit.count(db) == 0, "nothing could have been duplicated: nothing to record"


def test_a_crash_between_parts_resends_the_whole_message_visibly(db):
    _, [rid] = add_broadcast(db, 1, priority="routine", text=TEXT_2_PARTS)
    c = outbox.claim(db, "m0", 100.0, max_parts=10)
    outbox.part_sending(db, c, 1, 100.0)
    outbox.part_submitted(db, c, 1, 1, 100.1, last=False)
    result = recover(db, policy="never", now=200.0)
    assert result.resent == [rid]
    row = recipient(db, rid)
    assert row["state"] == "queued" and "after part 1/2" in row["last_error"]
    assert [e.detail["recipient_id"] for e in audit.entries(db, action="recipient_resent")] \
        == [rid]


def test_a_second_part_in_flight_is_uncertain_even_though_the_first_went_out(db):
    rid = crash_with_part_in_flight(db, priority="routine", text=TEXT_2_PARTS, sent=1)
    recover(db, policy="emergency", now=200.0)
    assert [p["state"] for p in parts(db, rid)] == ["submitted", "uncertain"]
    assert recipient(db, rid)["state"] == "uncertain"
    assert "part 2/2" in recipient(db, rid)["last_error"]


def test_a_message_whose_parts_all_went_out_is_submitted(db):
    _, [rid] = add_broadcast(db, 1)
    c = outbox.claim(db, "m0", 100.0, max_parts=10)
    outbox.part_sending(db, c, 1, 100.0)
    # The last part's commit included the recipient; simulate an older row shape.
    db.conn.execute("UPDATE parts SET state = 'submitted', mr = 3, submitted_at = 100.5")
    assert recover(db, policy="never", now=200.0).submitted == [rid]
    row = recipient(db, rid)
    assert (row["state"], row["submitted_at"]) == ("submitted", 100.5)


def test_recovery_leaves_finished_and_queued_work_alone(db):
    _, ids = add_broadcast(db, 3)
    c = outbox.claim(db, "m0", 100.0, max_parts=10)
    outbox.part_sending(db, c, 1, 100.0)
    outbox.part_submitted(db, c, 1, 1, 100.1, last=True)
    before = [recipient(db, i) for i in ids]
    result = recover(db, policy="always", now=200.0)
    assert result.total == 0
    assert [recipient(db, i) for i in ids] == before


def test_a_crash_with_the_next_part_marked_ahead_is_uncertain_not_resent(db):
    """Part 1 in flight and part 2 marked 'sending' during it (outbox.part_in_flight)."""
    _, [rid] = add_broadcast(db, 1, priority="routine", text=TEXT_2_PARTS)
    c = outbox.claim(db, "m0", 100.0, max_parts=10)
    outbox.part_sending(db, c, 1, 100.0)
    outbox.part_in_flight(db, c, 1, 100.0, prepare=True)
    result = recover(db, policy="emergency", now=200.0)
    assert result.uncertain == [rid]
    assert [p["state"] for p in parts(db, rid)] == ["uncertain", "uncertain"]
    assert "part 1/2" in recipient(db, rid)["last_error"]


def test_a_crash_with_part_1_of_2_in_flight_resends_from_it_with_its_reference(db):
    import dataclasses
    _, [rid] = add_broadcast(db, 1, text=TEXT_2_PARTS, priority="emergency")
    c = dataclasses.replace(outbox.claim(db, "m0", 100.0, max_parts=10), reference=9)
    outbox.part_sending(db, c, 1, 100.0)          # …and the power went
    recover(db, policy="emergency", now=200.0)
    row = recipient(db, rid)
    assert (row["state"], row["resume_from"], row["resume_modem"], row["concat_ref"]) == \
        ("queued", 1, "m0", 9)
    assert "same reference" in row["last_error"]


def test_a_crash_between_parts_resumes_after_the_parts_sent(db):
    import dataclasses
    _, [rid] = add_broadcast(db, 1, text=TEXT_2_PARTS)
    c = dataclasses.replace(outbox.claim(db, "m0", 100.0, max_parts=10), reference=9)
    outbox.part_sending(db, c, 1, 100.0)
    outbox.part_submitted(db, c, 1, 3, 100.5, last=False)
    recover(db, policy="never", now=200.0)
    row = recipient(db, rid)
    assert (row["state"], row["resume_from"], row["reason"]) == ("queued", 2, "resumed")
