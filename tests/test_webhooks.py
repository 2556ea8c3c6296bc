"""Webhooks: events captured in the change's own transaction, signed deliveries from the
durable outbox to a receiver on 127.0.0.1, doubling back-off while it is down, refusals,
giving up after the window, re-sending — with an injected clock; and the README's
verification snippet run against a real delivery."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from appliance import api_tokens, config as config_mod, contacts, reminders, replies, webhooks
from appliance import broadcasts
from appliance.db import connect, write
from tests.helpers import wait_for
from tests.webhook_receiver import Receiver

ROOT = Path(__file__).resolve().parent.parent
T0 = 1_800_000_000.0


class Clock:
    def __init__(self) -> None:
        self.t = T0

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def setup(tmp_path):
    (tmp_path / "t.toml").write_text(
        'database = "t.db"\n[api]\nwebhook_retry_first = 10\nwebhook_retry_max = 60\n'
        'webhook_give_up_hours = 1\n[[modem]]\nname = "m0"\nport = "/dev/null"\n',
        encoding="utf-8")
    config = config_mod.load(tmp_path / "t.toml")
    db = connect(config.database)
    group = contacts.create_group(db, "月水金", actor="t", kind="shift")
    for i, name in enumerate(("山田 太郎", "鈴木 花子", "田中 一郎")):
        contacts.add_contact(db, name=name, phone=f"090-1000-200{i}", patient_id=f"P{i}",
                             actor="t", group_ids=[group.id])
    with write(db) as conn:
        token, _secret = api_tokens.create(conn, "予約システム", "read", actor="t", now=T0,
                                           rate_per_minute=60)
    clock = Clock()
    deliverer = webhooks.Deliverer(lambda: db, config, clock=clock)
    yield config, db, token, group, clock, deliverer
    deliverer.stop()
    db.conn.close()


def hook(db, token, url: str, events=webhooks.EVENTS) -> str:
    with write(db) as conn:
        _hook, secret = webhooks.set_webhook(conn, token.id, url=url, events=events, actor="t",
                                             now=T0)
    return secret


def broadcast(config, db, group, **kw) -> int:
    p = broadcasts.plan(db.conn, config, text="{name}様 テスト", group_ids=[group.id], now=T0, **kw)
    with write(db) as conn:
        return broadcasts.create(conn, p, title="t", actor="t", now=T0)


def deliver(config, db, recipients: list[int]) -> None:
    """What the outbox and the delivery reports do: sent, then delivered (or failed)."""
    with write(db) as conn:
        for rid in recipients:
            conn.execute("UPDATE recipients SET state = 'submitted', submitted_at = ? "
                         "WHERE id = ?", [T0 + 1, rid])
        for rid in recipients:
            conn.execute("UPDATE recipients SET state = 'delivered', delivered_at = ? "
                         "WHERE id = ?", [T0 + 2, rid])


def run_until_idle(deliverer, clock) -> None:
    """Run the job, let its threads answer, record: as the daemon's ticks would."""
    for _ in range(50):
        deliverer.run(clock())
        assert deliverer.wait(10)
        if not deliverer.busy():
            return
    raise AssertionError("the deliverer never settled")


def test_events_are_captured_only_while_a_webhook_wants_them(setup):
    config, db, token, group, clock, deliverer = setup
    b = broadcast(config, db, group)
    ids = [r[0] for r in db.conn.execute("SELECT id FROM recipients WHERE broadcast_id = ?", [b])]
    deliver(config, db, ids[:1])
    assert db.conn.execute("SELECT count(*) FROM api_events").fetchone()[0] == 0
    hook(db, token, "http://127.0.0.1:9/hook", events=["message.delivered"])
    deliver(config, db, ids[1:2])
    events = db.conn.execute("SELECT type, subject FROM api_events").fetchall()
    assert [tuple(e) for e in events] == [("message.delivered", str(ids[1]))]


def test_deliveries_are_signed_and_an_independent_hmac_verifies_them(setup):
    config, db, token, group, clock, deliverer = setup
    receiver = Receiver().up()
    try:
        secret = hook(db, token, receiver.url)
        with write(db) as conn:
            kind = reminders.save_kind(conn, config, name="採血", text="{name}様 {date} {time}",
                                       days_before=1, send_time="17:00", actor="t", now=T0,
                                       choices="はい / 変更したい")
            yamada = contacts.find_by_patient_id(conn, "P0")
            reminders.upsert(conn, contact_id=yamada.id, kind_id=kind, actor="t", now=T0,
                             appointment_at=T0 + 2 * 86400, source="api", external_id="A-1")
            created = reminders.run_due(conn, config, T0 + 86400 + 3600 * 8)
        rid = db.conn.execute("SELECT id FROM recipients WHERE broadcast_id = ?",
                              created).fetchone()[0]
        deliver(config, db, [rid])
        with write(db) as conn:
            replies.record(conn, "m0", sender="090-1000-2000", text="２", sent_at=None,
                           now=T0 + 3)
        run_until_idle(deliverer, clock)
        got = receiver.received
        assert [r.event["type"] for r in got] == ["message.sent", "message.delivered",
                                                  "reply.received"]
        assert all(r.signed_with(secret) for r in got)
        assert not got[0].signed_with(secret + "x")
        assert all(r.headers["tsunagu-event"] == r.event["type"] for r in got)
        assert all(r.headers["tsunagu-event-id"] == str(r.event["id"]) for r in got)
        sent, _delivered, reply = (r.event for r in got)
        assert sent["data"]["patient_id"] == "P0" and sent["data"]["recipient_id"] == rid
        assert sent["data"]["reminder"]["external_id"] == "A-1"
        assert reply["data"]["choice"] == 2 and reply["data"]["choice_text"] == "変更したい"
        assert reply["data"]["reminder"]["external_id"] == "A-1"
        assert reply["occurred_at"].endswith("+09:00")
        states = {r[0] for r in db.conn.execute("SELECT state FROM api_deliveries")}
        assert states == {"delivered"}
    finally:
        receiver.down()


def test_a_receiver_that_is_down_holds_the_queue_with_doubling_waits_then_gets_it_in_order(
        setup):
    config, db, token, group, clock, deliverer = setup
    receiver = Receiver()            # not listening yet
    secret = hook(db, token, receiver.url, events=["message.sent", "message.delivered"])
    b = broadcast(config, db, group)
    ids = [r[0] for r in db.conn.execute("SELECT id FROM recipients WHERE broadcast_id = ? "
                                         "ORDER BY id", [b])]
    deliver(config, db, ids)
    waits = []
    for _ in range(4):
        run_until_idle(deliverer, clock)
        w = webhooks.for_token(db.conn, token.id)
        waits.append(w.retry_at - clock())
        deliverer.run(clock())           # held: nothing is tried before retry_at
        assert not deliverer.busy()
        clock.t = w.retry_at
    assert waits == [10, 20, 40, 60]     # doubling from webhook_retry_first, capped
    first = db.conn.execute("SELECT attempts, state, last_error FROM api_deliveries "
                            "ORDER BY id LIMIT 1").fetchone()
    assert first["attempts"] == 4 and first["state"] == "pending"
    assert "Connection" in first["last_error"] or "refused" in first["last_error"]
    # Only the head of the queue was tried while it was down.
    assert db.conn.execute("SELECT sum(attempts) FROM api_deliveries").fetchone()[0] == 4
    receiver.up()
    try:
        run_until_idle(deliverer, clock)
        events = receiver.events()
        assert [e["type"] for e in events] == ["message.sent"] * 3 + ["message.delivered"] * 3
        assert [e["id"] for e in events] == sorted(e["id"] for e in events)
        assert all(r.signed_with(secret) for r in receiver.received)
        assert webhooks.for_token(db.conn, token.id).failures == 0
    finally:
        receiver.down()


def test_a_refusal_fails_that_delivery_at_once_and_the_rest_go_on(setup):
    config, db, token, group, clock, deliverer = setup
    receiver = Receiver().up()
    receiver.status = 400
    try:
        hook(db, token, receiver.url, events=["message.sent"])
        b = broadcast(config, db, group)
        ids = [r[0] for r in db.conn.execute("SELECT id FROM recipients WHERE broadcast_id = ? "
                                             "ORDER BY id", [b])]
        deliver(config, db, ids[:1])
        run_until_idle(deliverer, clock)
        receiver.status = 200
        deliver(config, db, ids[1:])
        run_until_idle(deliverer, clock)
        rows = db.conn.execute("SELECT state, last_status FROM api_deliveries ORDER BY id"
                               ).fetchall()
        assert [tuple(r) for r in rows] == [("failed", 400), ("delivered", 200),
                                            ("delivered", 200)]
        failed = webhooks.failed_ids(db.conn, webhooks.for_token(db.conn, token.id).id)
        with write(db) as conn:
            assert webhooks.resend(conn, config, failed, actor="admin", now=clock()) == 1
        run_until_idle(deliverer, clock)
        assert {r[0] for r in db.conn.execute("SELECT state FROM api_deliveries")} == {
            "delivered"}
        assert len(receiver.received) == 4
    finally:
        receiver.down()


def test_a_delivery_still_failing_when_the_window_ends_is_failed_reported_and_resendable(
        setup):
    from appliance import check
    config, db, token, group, clock, deliverer = setup
    receiver = Receiver()
    hook(db, token, receiver.url, events=["broadcast.finished"])
    b = broadcast(config, db, group)
    with write(db) as conn:
        broadcasts.cancel(conn, b, actor="t", now=T0)
    run_until_idle(deliverer, clock)
    alerts = check.check_webhooks(db.conn, config, "ja", now=clock())
    assert alerts and "予約システム" in alerts[0].message
    clock.t += 3600 + 1                  # webhook_give_up_hours = 1 in this config
    run_until_idle(deliverer, clock)
    row = db.conn.execute("SELECT state, last_error FROM api_deliveries").fetchone()
    assert row["state"] == "failed" and row["last_error"].startswith("gave up")
    assert check.check_webhooks(db.conn, config, "en", now=clock())[0].status == check.WARNING
    receiver.up()
    try:
        with write(db) as conn:
            webhooks.resend(conn, config, [1], actor="admin", now=clock())
        run_until_idle(deliverer, clock)
        assert receiver.events()[0]["data"]["state"] == "cancelled"
        assert receiver.events()[0]["data"]["broadcast_id"] == b
    finally:
        receiver.down()


def test_the_readmes_verification_snippet_accepts_a_real_delivery_and_refuses_a_forged_one(
        setup):
    config, db, token, group, clock, deliverer = setup
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text[text.index("## Integrating"):]
    snippet = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    receiver = Receiver().up()
    try:
        secret = hook(db, token, receiver.url, events=["message.sent"])
        b = broadcast(config, db, group)
        deliver(config, db, [db.conn.execute("SELECT id FROM recipients WHERE broadcast_id = ?",
                                             [b]).fetchone()[0]])
        clock.t = __import__("time").time()  # the snippet checks the timestamp's age
        run_until_idle(deliverer, clock)
        wait_for(lambda: receiver.received, 5)
        got = receiver.received[0]
        namespace: dict = {}
        exec(compile(snippet, "README.md", "exec"), namespace)
        headers = {k.title(): v for k, v in got.headers.items()}
        assert namespace["verify"](secret, headers, got.body) is True
        forged = json.dumps({**got.event, "type": "message.failed"}).encode()
        assert namespace["verify"](secret, headers, forged) is False
    finally:
        receiver.down()


def test_a_modem_becoming_ready_or_not_is_one_event_each_time_not_each_poll(setup):
    from appliance import health
    config, db, token, group, clock, deliverer = setup
    hook(db, token, "http://127.0.0.1:9/hook", events=["modem.state"])
    modem = config.modems[0]
    ready = health.ModemHealth(name="m0", port=modem.port, ready=True, reason=None,
                               checked_at=T0, signal_bars=3)
    for h in (ready, ready, health.unavailable(modem, "no_sim", "SIM: NOT INSERTED", T0 + 30),
              health.unavailable(modem, "no_sim", "SIM: NOT INSERTED", T0 + 60), ready):
        with write(db) as conn:
            health.write_status(conn, h)
    rows = db.conn.execute("SELECT data FROM api_events WHERE type = 'modem.state' ORDER BY id")
    states = [(json.loads(r[0])["ready"], json.loads(r[0])["reason"]) for r in rows]
    assert states == [(1, None), (0, "no_sim"), (1, None)]
