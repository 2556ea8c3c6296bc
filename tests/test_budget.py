"""The SIM's daily budget and pace, read from the parts each modem handed over."""
from __future__ import annotations

import pytest

from appliance import budget, outbox
from appliance.config import ModemConfig
from tests.queue_rows import TEXT_2_PARTS, add_broadcast

MODEM = ModemConfig(name="m0", port="/dev/null", pace=30, daily_limit=5)


def test_parts_handed_over_in_the_last_24_hours_count_against_the_daily_limit(db):
    _, [old, new] = add_broadcast(db, 2, text=TEXT_2_PARTS)
    first = outbox.claim(db, "m0", 0.0, max_parts=10)
    for seq in (1, 2):
        outbox.part_sending(db, first, seq, 0.0)
        outbox.part_submitted(db, first, seq, seq, 1.0, last=seq == 2)
    second = outbox.claim(db, "m0", 90_000.0, max_parts=10)
    outbox.part_sending(db, second, 1, 90_000.0)
    outbox.part_in_flight(db, second, 1, 90_000.0, prepare=True)
    # A day later the first message no longer counts. Of the second, part 1 was handed
    # over; part 2, marked ahead, was not: it is not sent yet, but it is about to spend a
    # part of the room (a broadcast page must not count that part as free for a moment).
    assert budget.sent_today(db.conn, MODEM, 90_001.0) == 1
    assert budget.remaining(db.conn, MODEM, 90_001.0) == 3


def test_the_next_part_waits_for_the_pace_after_the_last_hand_over(db):
    _, [rid] = add_broadcast(db, 1, text=TEXT_2_PARTS)
    c = outbox.claim(db, "m0", 100.0, max_parts=10)
    outbox.part_sending(db, c, 1, 100.0)
    outbox.part_in_flight(db, c, 1, 100.5, prepare=True)
    assert budget.next_send_allowed_at(db.conn, MODEM, 101.0) == 102.5  # 60 s / 30


@pytest.mark.parametrize("query", [
    "SELECT max(sending_at) FROM parts WHERE modem = 'm0'",
    "SELECT count(*) FROM parts WHERE modem = 'm0' AND sending_at > 0 AND state = 'sending'"])
def test_the_pace_and_budget_do_not_walk_the_whole_history(db, query):
    plan = " ".join(r[3] for r in db.conn.execute("EXPLAIN QUERY PLAN " + query))
    assert "parts_pace" in plan, plan


def test_the_parts_still_to_go_are_found_from_the_messages_being_sent_not_the_queue(db):
    # Read before every claim: it must look at the few messages being sent, not scan all.
    plan = " ".join(r[3] for r in db.conn.execute("EXPLAIN QUERY PLAN " + budget._IN_FLIGHT,
                                                  ["m0"]))
    assert "SEARCH r USING INDEX recipients_claim (state=?)" in plan, plan
