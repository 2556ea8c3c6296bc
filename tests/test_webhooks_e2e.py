"""Webhooks end to end: the real daemon (a subprocess) sends a broadcast through a simulated
modem while the webhook's receiver is down, is killed with kill -9, and once the receiver is
back and the daemon restarted, every event arrives, signed (checked by an independent
HMAC), none lost."""
from __future__ import annotations

from collections import Counter

import pytest

from appliance import api_tokens, webhooks
from appliance.db import write
from tests.daemon_harness import seed_patients, wait_until
from tests.webhook_receiver import Receiver

pytestmark = pytest.mark.slow
EVENTS = ["message.sent", "message.delivered", "broadcast.finished"]


def test_webhook_delivery_survives_kill_9_and_a_receiver_that_is_down_for_a_while(rig_factory):
    rig = rig_factory(1)
    with open(rig.config_path, "a", encoding="utf-8") as f:
        f.write("\n[api]\nwebhook_retry_first = 0.2\nwebhook_retry_max = 0.5\n")
    group = seed_patients(rig.db, 5)
    receiver = Receiver()                       # down: nothing listens on its port yet
    with write(rig.db) as conn:
        token, _ = api_tokens.create(conn, "電子カルテ", "read", actor="test", now=0.0,
                                     rate_per_minute=60)
        _hook, secret = webhooks.set_webhook(conn, token.id, url=receiver.url, events=EVENTS,
                                             actor="test", now=0.0)
    rig.daemon.start()
    try:
        broadcast_id = rig.broadcast(group)
        rig.wait_delivered(5)

        def tried_and_failing() -> bool:
            row = rig.db.conn.execute("SELECT count(*), min(attempts) FROM api_deliveries "
                                      "WHERE state = 'pending'").fetchone()
            return row[0] == 11 and rig.db.conn.execute(
                "SELECT failures FROM api_webhooks").fetchone()[0] >= 2
        wait_until(tried_and_failing, 60, "11 deliveries queued while the receiver is down")
        rig.daemon.kill()                        # kill -9: nothing recorded on the way out
        receiver.up()
        rig.daemon.start()
        wait_until(lambda: rig.db.conn.execute(
            "SELECT count(*) FROM api_deliveries WHERE state = 'delivered'").fetchone()[0] == 11
            or not rig.daemon.alive(), 60, "every delivery delivered after the restart")
        assert rig.daemon.alive(), rig.daemon.stderr()[-3000:]
    finally:
        receiver.down()
    got = receiver.received
    assert all(r.signed_with(secret) for r in got)
    # At least once: a repeat (a kill between the 2xx and its record) is dropped by its id.
    unique = {r.headers["tsunagu-event-id"]: r.event for r in got}
    assert Counter(e["type"] for e in unique.values()) == {
        "message.sent": 5, "message.delivered": 5, "broadcast.finished": 1}
    assert {e["data"]["broadcast_id"] for e in unique.values()} == {broadcast_id}
    finished = next(e for e in unique.values() if e["type"] == "broadcast.finished")
    assert finished["data"]["counts"]["delivered"] == 5
    stored = {str(r[0]) for r in rig.db.conn.execute("SELECT id FROM api_events")}
    assert set(unique) == stored
