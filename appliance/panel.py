"""The front panel: a test button and two status lights (and an optional buzzer), via gpiozero.

- Button held for `button_hold_seconds` (a bump does not count): asks the daemon for the test
  message to the test group; a cool-down stops a second test from repeated presses.
- Green steady: ready. Green blinking: sending. Red steady: cannot send (no modem, no SIM,
  no network, daemon not beating). Red blinking: the last test did not reach everyone.
- Buzzer (optional): beeps three times when the appliance becomes unable to send, and sounds
  for half a minute when an earthquake or tsunami warning opens an event (appliance.etws).

The daemon runs on without GPIO (a PC, a container): `Panel.create()` says so once and
returns None. Tests use gpiozero's MockFactory.
"""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from .config import GpioConfig

log = logging.getLogger(__name__)

STATES = ("ready", "sending", "cannot_send", "test_failed", "modem_failed")
BLINK = {"on_time": 0.5, "off_time": 0.5}
ALARM_BEEPS = 30        # a warning: half a second on, half off, for half a minute
ALARM_FRESH = 300.0     # a warning event older than this at start was sounded already


class Panel:
    def __init__(self, gpio: GpioConfig, *, on_test_request: Callable[[], None],
                 clock: Callable[[], float] = time.monotonic, pin_factory=None) -> None:
        from gpiozero import LED, Button, Buzzer
        self.gpio = gpio
        self._on_test_request = on_test_request
        self._clock = clock
        self._last_test: float | None = None
        self._lock = threading.Lock()
        self.state: str | None = None
        kw = {"pin_factory": pin_factory} if pin_factory is not None else {}
        self.button = Button(gpio.button_pin, hold_time=gpio.button_hold_seconds, **kw)
        self.green = LED(gpio.green_led_pin, **kw)
        self.red = LED(gpio.red_led_pin, **kw)
        self.buzzer = Buzzer(gpio.buzzer_pin, **kw) if gpio.buzzer_pin is not None else None
        self.button.when_held = self._held

    @classmethod
    def create(cls, gpio: GpioConfig, **kw) -> Panel | None:
        """The panel, or None when disabled or when this machine has no GPIO (said once)."""
        if not gpio.enabled:
            return None
        import warnings

        from gpiozero.exc import GPIOZeroError, PinFactoryFallback
        try:
            with warnings.catch_warnings():
                # gpiozero warns once per pin library it cannot load; we say it once below.
                warnings.simplefilter("ignore", PinFactoryFallback)
                return cls(gpio, **kw)
        except (GPIOZeroError, OSError, RuntimeError, ImportError) as exc:
            log.warning("no GPIO on this machine (%s): running without the test button and "
                        "status lights", exc)
            return None

    def _held(self) -> None:
        with self._lock:
            now = self._clock()
            if self._last_test is not None and now - self._last_test < self.gpio.cooldown_seconds:
                log.info("test button held again within the cool-down; ignored")
                return
            self._last_test = now
        log.info("test button held: sending the test message")
        self._on_test_request()

    def show(self, state: str) -> None:
        if state not in STATES:
            raise ValueError(f"unknown panel state {state!r}")
        if state == self.state:
            return  # restarting a blink would make it stutter
        became_unable = state == "cannot_send" and self.state is not None
        self.state = state
        self.green.off()
        self.red.off()
        if state == "ready":
            self.green.on()
        elif state == "sending":
            self.green.blink(**BLINK)
        elif state == "cannot_send":
            self.red.on()
            if self.buzzer is not None and became_unable:
                self.buzzer.beep(on_time=0.2, off_time=0.2, n=3)
        else:
            self.red.blink(**BLINK)

    def alarm(self) -> None:
        """An earthquake or tsunami warning: the buzzer for half a minute (the dashboard's
        red banner says what it is)."""
        if self.buzzer is not None:
            self.buzzer.beep(on_time=0.5, off_time=0.5, n=ALARM_BEEPS)

    def close(self) -> None:
        for device in (self.button, self.green, self.red, self.buzzer):
            if device is not None:
                device.close()


def state_from(health, *, sending: bool, last_test_failed: bool,
               modem_gave_up: bool = False) -> str:
    """What the lights show, from the same health record as the dashboard and the check.
    *modem_gave_up*: the recovery ladder could not bring a modem back (another may still
    send: the red light blinks, someone must replug it)."""
    if not health.can_send:
        return "cannot_send"
    if modem_gave_up:
        return "modem_failed"
    if last_test_failed:
        return "test_failed"
    return "sending" if sending else "ready"


class PanelService:
    """Runs beside the daemon's workers: updates the lights, turns a held button into a
    'send_test' request that the daemon's main loop answers like any other."""

    def __init__(self, config, *, panel_factory=Panel.create, interval: float = 1.0) -> None:
        self.config = config
        self.interval = interval
        self._factory = panel_factory
        self.panel: Panel | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._sounded: set[int] | None = None   # warning events the buzzer announced

    def start(self) -> None:
        self.panel = self._factory(self.config.gpio, on_test_request=self.request_test)
        if self.panel is None:
            return
        self._thread = threading.Thread(target=self._run, name="panel", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self.panel is not None:
            self.panel.close()

    def request_test(self) -> None:
        import json

        from . import audit
        from .db import connect, write
        db = connect(self.config.database, migrate=False)
        try:
            with write(db) as conn:
                conn.execute("INSERT INTO daemon_requests (kind, args, requested_by, requested_at) "
                             "VALUES ('send_test', ?, 'button', ?)",
                             [json.dumps({"actor": "button"}), time.time()])
                audit.record(conn, "button", "test_button")
        finally:
            db.conn.close()

    def refresh(self, db) -> str:
        from . import health
        h = health.read_health(db.conn, self.config, time.time())
        last = db.conn.execute(
            "SELECT id FROM broadcasts WHERE drill = 1 AND state = 'done' ORDER BY id DESC "
            "LIMIT 1").fetchone()
        failed = bool(last) and db.conn.execute(
            "SELECT count(*) FROM recipients WHERE broadcast_id = ? AND state IN "
            "('failed', 'uncertain')", [last[0]]).fetchone()[0] > 0
        from .modem_link import latest
        gave_up = any((latest(db.conn, m.name) or {}).get("rung") == "gave_up"
                      for m in self.config.modems)
        state = state_from(h, sending=h.sending_broadcasts > 0, last_test_failed=failed,
                           modem_gave_up=gave_up)
        self.panel.show(state)
        self.sound_warnings(db, time.time())
        return state

    def sound_warnings(self, db, now: float) -> list[int]:
        """The buzzer for each warning event not sounded yet (once per event; those older
        than ALARM_FRESH when the daemon started were sounded by the one before)."""
        from . import etws
        events = etws.open_events(db.conn, self.config, now)
        if self._sounded is None:
            self._sounded = {e["id"] for e in events if e["first_at"] < now - ALARM_FRESH}
        new = [e["id"] for e in events if e["id"] not in self._sounded]
        if new:
            log.warning("warning event(s) %s: sounding the buzzer", new)
            self.panel.alarm()
            self._sounded.update(new)
        return new

    def _run(self) -> None:
        from .db import connect
        db = connect(self.config.database, migrate=False)
        try:
            failing = False
            while not self._stop.wait(self.interval):
                try:
                    self.refresh(db)
                except Exception:
                    # Unknown is not "ready": red until the health record can be read again
                    # (a damaged database, say). Logged once per run of failures.
                    if not failing:
                        log.exception("updating the status lights failed; showing red")
                    failing = True
                    self.panel.show("cannot_send")
                else:
                    failing = False
        finally:
            db.conn.close()
