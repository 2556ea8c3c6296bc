"""The test button and status lights under gpiozero's MockFactory: hold to test (a bump does
not count), a cool-down, LED states, and a daemon that runs on without GPIO."""
from __future__ import annotations

import dataclasses

import pytest
from gpiozero.pins.mock import MockFactory

from appliance import config as config_mod, health
from appliance.config import GpioConfig
from appliance.db import connect, write
from appliance.panel import Panel, PanelService, state_from
from tests.helpers import wait_for

GPIO = GpioConfig(enabled=True, button_pin=17, button_hold_seconds=0.1, cooldown_seconds=60,
                  green_led_pin=27, red_led_pin=22, buzzer_pin=23)


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def factory():
    f = MockFactory()
    try:
        yield f
    finally:
        f.reset()


@pytest.fixture
def panel(factory):
    requests, clock = [], Clock()
    p = Panel(GPIO, on_test_request=lambda: requests.append(clock()), clock=clock,
              pin_factory=factory)
    try:
        yield p, factory.pin(17), requests, clock
    finally:
        p.close()


def hold(pin, requests, expect: int) -> None:
    pin.drive_low()  # pressed (pull-up: low is pressed)
    if expect:
        wait_for(lambda: len(requests) >= expect, 5, message="the held button to act")
    pin.drive_high()


def test_holding_the_button_sends_one_test_and_the_cool_down_ignores_the_next(panel):
    p, pin, requests, clock = panel
    hold(pin, requests, expect=1)
    assert len(requests) == 1
    pin.drive_low()
    wait_for(lambda: p.button.is_held, 5, message="held again")
    pin.drive_high()
    assert len(requests) == 1           # within the cool-down
    clock.t += 61
    hold(pin, requests, expect=2)
    assert len(requests) == 2


def test_a_short_press_sends_nothing(panel, factory):
    p, pin, requests, _ = panel
    pin.drive_low()
    pin.drive_high()                    # released long before the hold time
    assert not p.button.is_held and requests == []


def test_the_lights_show_each_state(panel, factory):
    p, *_ = panel
    green, red = factory.pin(27), factory.pin(22)
    p.show("ready")
    assert (green.state, red.state) == (True, False)
    p.show("cannot_send")
    assert (green.state, red.state) == (False, True)
    p.show("sending")
    green.clear_states()
    wait_for(lambda: len(green.states) >= 3, 5, message="the green light blinking")
    assert red.state is False
    p.show("test_failed")
    red.clear_states()
    wait_for(lambda: len(red.states) >= 3, 5, message="the red light blinking")
    with pytest.raises(ValueError):
        p.show("party")


def test_the_buzzer_beeps_when_the_appliance_becomes_unable_to_send(panel, factory):
    p, *_ = panel
    buzzer = factory.pin(23)
    p.show("ready")
    buzzer.clear_states()
    p.show("cannot_send")
    wait_for(lambda: len(buzzer.states) >= 6, 5, message="three beeps")


def test_no_panel_when_disabled_or_without_gpio():
    assert Panel.create(dataclasses.replace(GPIO, enabled=False),
                        on_test_request=lambda: None) is None
    from gpiozero.exc import BadPinFactory

    def broken(*a, **k):
        raise BadPinFactory("Unable to load any default pin factory!")
    assert Panel.create(GPIO, on_test_request=lambda: None,
                        pin_factory=type("F", (MockFactory,), {"pin": broken})()) is None


def test_lights_follow_the_health_record():
    base = health.Health(now=0, heartbeat=None, daemon_alive=True, modems=(), queue_depth=0,
                         oldest_queued_at=None, uncertain=0, sending_broadcasts=0,
                         remaining_budget=0)
    assert state_from(base, sending=False, last_test_failed=False) == "cannot_send"


def test_the_button_asks_the_daemon_for_a_test_and_the_lights_show_ready(tmp_path, factory):
    path = tmp_path / "tsunagu.toml"
    path.write_text('database = "t.db"\n[gpio]\nbutton_hold_seconds = 0.1\n'
                    '[[modem]]\nname = "m0"\nport = "/dev/null"\n', encoding="utf-8")
    config = config_mod.load(path)
    db = connect(config.database)
    with write(db) as conn:  # a live daemon and a ready modem, as the daemon records them
        import time
        now = time.time()
        conn.execute("INSERT INTO heartbeat VALUES ('daemon', 1, ?, ?, '0')", [now, now])
        conn.execute("INSERT INTO modem_status (name, port, ready, checked_at) VALUES "
                     "('m0', '/dev/null', 1, ?)", [now])
    service = PanelService(config, panel_factory=lambda gpio, on_test_request: Panel(
        gpio, on_test_request=on_test_request, pin_factory=factory), interval=0.05)
    service.start()
    try:
        assert service.refresh(db) == "ready" and factory.pin(27).state is True
        factory.pin(17).drive_low()
        wait_for(lambda: db.conn.execute("SELECT count(*) FROM daemon_requests WHERE kind = "
                                         "'send_test' AND requested_by = 'button'").fetchone()[0],
                 5, message="the test request from the button")
        factory.pin(17).drive_high()
        # The recovery ladder gave up on the modem: the red light blinks for someone to
        # replug it, even while the appliance can still send.
        with write(db) as conn:
            conn.execute("INSERT INTO modem_recovery (modem, rung, started_at, outcome) "
                         "VALUES ('m0', 'gave_up', ?, 'failed')", [now])
        assert service.refresh(db) == "modem_failed"
        factory.pin(22).clear_states()
        wait_for(lambda: len(factory.pin(22).states) >= 3, 5, message="the red light blinking")
    finally:
        service.stop()


def _ready_appliance(tmp_path):
    """A config and database with a live daemon and a ready modem, as the daemon writes them."""
    import time
    path = tmp_path / "tsunagu.toml"
    path.write_text(f'database = "t.db"\n[daemon]\nruntime_directory = "{tmp_path / "run"}"\n'
                    '[[modem]]\nname = "m0"\nport = "/dev/null"\n', encoding="utf-8")
    config = config_mod.load(path)
    db = connect(config.database)
    now = time.time()
    with write(db) as conn:
        conn.execute("INSERT INTO heartbeat VALUES ('daemon', 1, ?, ?, '0')", [now, now])
        conn.execute("INSERT INTO modem_status (name, port, ready, checked_at) VALUES "
                     "('m0', '/dev/null', 1, ?)", [now])
    return config, db


def _service(config, factory) -> PanelService:
    return PanelService(config, panel_factory=lambda gpio, on_test_request: Panel(
        gpio, on_test_request=on_test_request, pin_factory=factory), interval=0.05)


def test_the_lights_turn_red_while_the_daemon_cannot_record_what_it_would_send(tmp_path,
                                                                               factory):
    import sqlite3

    from appliance import storage
    config, db = _ready_appliance(tmp_path)
    service = _service(config, factory)
    service.start()
    try:
        assert service.refresh(db) == "ready"
        watch = storage.Watch(config)  # the daemon's: it meets a read-only disk
        refused = sqlite3.OperationalError("attempt to write a readonly database")
        refused.sqlite_errorname = "SQLITE_READONLY"
        watch.met(refused, "modem0")
        assert service.refresh(db) == "cannot_send"
        assert factory.pin(22).state is True and factory.pin(27).state is False
    finally:
        service.stop()


def test_the_lights_turn_red_when_the_health_record_cannot_be_read(tmp_path, factory):
    config, db = _ready_appliance(tmp_path)
    service = _service(config, factory)
    service.start()
    try:
        wait_for(lambda: factory.pin(27).state is True, 5, message="green")
        with write(db) as conn:  # what a damaged database does to the reads: they fail
            conn.execute("DROP TABLE heartbeat")
        wait_for(lambda: factory.pin(22).state is True and factory.pin(27).state is False, 5,
                 message="red")
    finally:
        service.stop()
