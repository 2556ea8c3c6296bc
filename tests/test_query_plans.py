"""The queries that run for every part sent, or on every page load, follow an index in
the order they need (issue 16, finding 1): a temporary B-tree sorts the whole queue each
time, which made the time per part grow with the number of people queued.

SQLite's own plan is read (`EXPLAIN QUERY PLAN`), so the test fails the day a change of
the query, the schema or the index makes SQLite sort again; the bench measures the time.
"""
from __future__ import annotations

import pytest

from appliance import budget, outbox
from tests.queue_rows import TEXT_2_PARTS, add_broadcast

PARAMS = {"now": 1_000.0, "max_parts": 10, "modem": "m0", "daily_limit": 200}


def query_plan(db, query: str) -> list[str]:
    return [row[3] for row in db.conn.execute("EXPLAIN QUERY PLAN " + query, PARAMS)]


@pytest.fixture
def queued(db):
    """A queue as a busy day leaves it: emergency and routine, one- and two-part messages."""
    add_broadcast(db, 400, text=TEXT_2_PARTS)
    add_broadcast(db, 50, priority="emergency", first_number=1_000)
    add_broadcast(db, 300, first_number=2_000, created_at=500.0)
    return db


@pytest.mark.parametrize("name, query", [
    ("the claim (each message a modem takes)", outbox._CLAIM_NEXT),
    ("the waiting queue (上限待ち on each broadcast page)", budget._WAITING),
])
@pytest.mark.parametrize("analysed", [False, True], ids=["fresh", "analysed"])
def test_the_queue_is_read_in_index_order_without_a_temporary_b_tree(db, queued, name, query,
                                                                     analysed):
    if analysed:  # statistics gathered: SQLite plans with what it knows of the data
        db.conn.execute("ANALYZE")
    plan = query_plan(db, query)
    assert not [step for step in plan if "TEMP B-TREE" in step], (name, plan)
    assert any("recipients_claim" in step for step in plan), (name, plan)

