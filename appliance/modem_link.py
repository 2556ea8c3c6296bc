"""The life of one modem, as the daemon sees it: open it, set it up, ask how it is, listen to
what it says about itself, close it and open it again — and, when it hangs, climb the
recovery ladder.

The worker (appliance.dispatcher) owns the sending; this object owns the hardware's state
(as gpiozero's pin factory owns a pin while the device uses it). It tells the worker, through
the callbacks it was given, when the modem is closing (commit the last answers, hand back
the message claimed ahead) or stops being usable.

The ladder, for a modem that stops answering (no answer to a command, twice no answer to a
send): 1. resync — the modem is closed and opened again, and initialise() takes it back from
whatever state it was in; 2. reset — AT+CFUN=1,1; 3. power cycle — the modem's
power_cycle_command (uhubctl through tsunagu-usb-power@.service); then it gives up: the
modem's status says so, `tsunagu check` is critical, the LED and the dashboard's banner tell
staff to unplug and replug it. Each rung is given [recovery] rung_wait to work, each is
written to modem_recovery (the dashboard shows the latest), and resets and power cycles
together are limited to [recovery] max_resets_per_hour — counted from that table, so a
daemon restarted again and again cannot reset a modem again and again either.
"""
from __future__ import annotations

import logging
import os
import shlex
import sqlite3
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import sqlite_utils

from modem.errors import ModemError

from . import health
from .config import Config, ModemConfig, RecoveryConfig
from .db import write

log = logging.getLogger(__name__)

RECONNECT_FIRST = 0.5      # seconds before the first re-open of a failed modem…
RECONNECT_MAX = 15.0       # …doubling up to this (a replugged USB modem is back within it)
NOTICE_GAP = 0.5           # at most one look per this long brought forward by the modem's notices
WRONG_PASSWORD = 16        # +CME ERROR: 16, incorrect password (the SIM PIN)
SENDS_UNANSWERED = 2       # sends in a row the modem took but never answered: it is hung
RESET_TIMEOUT = 5.0        # for AT+CFUN=1,1 (a hung modem may not answer at all)
RUNGS = ("resync", "reset", "power_cycle")


@dataclass
class Backoff:
    """Seconds to wait before the next re-open: doubles per failure, reset on success."""
    first: float = RECONNECT_FIRST
    maximum: float = RECONNECT_MAX
    delay: float = field(init=False, default=0.0)

    def failed(self) -> float:
        self.delay = min(self.maximum, self.delay * 2 if self.delay else self.first)
        return self.delay

    def reset(self) -> None:
        self.delay = 0.0


class Ladder:
    """Which rung to climb for a modem that does not answer, rate-limited; see the module
    docstring. Pure decisions plus its rows in modem_recovery: the link does the climbing."""

    def __init__(self, config: RecoveryConfig, modem: ModemConfig, db: sqlite_utils.Database
                 ) -> None:
        self.config = config
        self.modem = modem
        self.db = db
        self.rung: int | None = None   # index into RUNGS of the rung last climbed
        self.rung_at = 0.0
        self.gave_up = False
        # Climbed because sends went unanswered: the modem still answers plain commands, so
        # only an answered send shows that a rung helped (a poll answered proves nothing,
        # and taking it for recovery kept the ladder at its first rung for ever).
        self.for_sends = False
        self._row: int | None = None   # the modem_recovery row of the rung being tried

    def available(self) -> tuple[str, ...]:
        rungs = ["resync"]
        if self.config.reset:
            rungs.append("reset")
        if self.modem.power_cycle_command:
            rungs.append("power_cycle")
        return tuple(rungs)

    def resets_in_last_hour(self, now: float) -> int:
        return self.db.conn.execute(
            "SELECT count(*) FROM modem_recovery WHERE modem = ? AND rung IN ('reset', "
            "'power_cycle') AND started_at > ?", [self.modem.name, now - 3600]).fetchone()[0]

    def fault(self, now: float, *, sends: bool = False) -> str | None:
        """The modem failed to answer (*sends*: sends went unanswered while it still
        answers commands): the rung to climb now ('gave_up' when none is left or allowed),
        or None while the rung being tried still has time to work."""
        self.for_sends = self.for_sends or sends
        if self.gave_up:
            if self._limited(now) or self.rung is not None and \
                    RUNGS[self.rung] == self.available()[-1]:
                return None  # staff have been told; nothing more is tried on our own
            self.gave_up = False  # the hour has passed: the ladder may be climbed again
            self.rung = None
        # A rung is given time to work; two sends unanswered after it show that it did
        # not, however soon they came (each wait made a message uncertain).
        if self.rung is not None and not sends and now - self.rung_at < self.config.rung_wait:
            return None
        rungs = self.available()
        following = 0 if self.rung is None else \
            next((i for i, r in enumerate(rungs) if RUNGS.index(r) > self.rung), len(rungs))
        if following >= len(rungs):
            return self._give_up(now, "every rung was tried")
        rung = rungs[following]
        if rung != "resync" and self._limited(now):
            return self._give_up(now, f"{self.config.max_resets_per_hour} resets and power "
                                 "cycles in the last hour already")
        self._finish("failed")
        self.rung, self.rung_at = RUNGS.index(rung), now
        self._row = self._write(rung, now, None, None)
        return rung

    def recovered(self, now: float, *, by_send: bool = False) -> bool:
        """The modem answers again (*by_send*: a send was answered): the ladder is left;
        True if it had been climbed. A ladder climbed for unanswered sends is left only by
        an answered send."""
        if self.for_sends and not by_send:
            return False
        self.for_sends = False
        climbed = self.rung is not None
        if climbed:
            self._finish("recovered")
            if self.gave_up:
                self._write("recovered", now, "recovered", "it answers again")
        self.rung, self.gave_up = None, False
        return climbed

    def _limited(self, now: float) -> bool:
        return self.resets_in_last_hour(now) >= self.config.max_resets_per_hour

    def _give_up(self, now: float, why: str) -> str:
        self._finish("failed")
        self.gave_up = True
        self._write("gave_up", now, "failed", why)
        return "gave_up"

    def _finish(self, outcome: str) -> None:
        if self._row is not None:
            with write(self.db) as conn:
                conn.execute("UPDATE modem_recovery SET outcome = ? WHERE id = ?",
                             [outcome, self._row])
            self._row = None

    def _write(self, rung: str, now: float, outcome: str | None, detail: str | None) -> int:
        with write(self.db) as conn:
            return conn.execute(
                "INSERT INTO modem_recovery (modem, rung, started_at, outcome, detail) "
                "VALUES (?, ?, ?, ?, ?)", [self.modem.name, rung, now, outcome, detail]
            ).lastrowid


def latest(conn, modem: str) -> dict | None:
    """The modem's latest recovery row (its ladder's state), for check and the dashboard."""
    row = conn.execute("SELECT rung, started_at, outcome, detail FROM modem_recovery WHERE "
                       "modem = ? ORDER BY started_at DESC, id DESC LIMIT 1", [modem]).fetchone()
    return dict(row) if row is not None else None


class ModemLink:
    """One modem's connection, health, notices and recovery; see the module docstring."""

    def __init__(self, config: Config, modem: ModemConfig, *, db: sqlite_utils.Database,
                 clock, open_device: Callable[[str], Any], clock_keeper: Any = None,
                 storage: Any = None,
                 closing: Callable[[], None] = lambda: None,
                 unusable: Callable[[], None] = lambda: None,
                 decorate: Callable[[health.ModemHealth], health.ModemHealth] = lambda h: h,
                 opened: Callable[[Any], None] = lambda device: None,
                 run: Callable[..., Any] = subprocess.run) -> None:
        self.config = config
        self.modem = modem
        self.name = modem.name
        self.db = db
        self.clock = clock
        self._open_device = open_device
        self.clock_keeper = clock_keeper
        self.storage = storage  # appliance.storage.Watch: told of writes the disk refuses
        self._closing, self._unusable, self._decorate, self._opened = \
            closing, unusable, decorate, opened
        self._run = run
        self.device: Any = None
        self.identity = health.Identity()
        self.health: health.ModemHealth | None = None
        self.backoff = Backoff(maximum=min(RECONNECT_MAX, config.daemon.poll_interval))
        self.ladder = Ladder(config.recovery, modem, db)
        self.next_connect = 0.0
        self.next_poll = 0.0
        self._initialised = False
        self._pin_refused = False
        self._port_was_missing = False
        self._noticed_at = 0.0
        self._unanswered_sends = 0

    @property
    def sendable(self) -> bool:
        return self.device is not None and self.health is not None and self.health.sendable

    # -- opening and looking -------------------------------------------------------------

    def connect(self) -> bool:
        """Open and initialise the modem and poll it; False (and a reason) when it fails."""
        now = self.clock.now()
        if "://" not in self.modem.port and not os.path.exists(self.modem.port):
            self.drop(health.unavailable(self.modem, "port_missing",
                                         f"{self.modem.port} does not exist", now))
            return False
        try:
            device = self._open_device(self.modem.port)
        except (ModemError, OSError) as exc:
            self.drop(health.unavailable(self.modem, "port_missing", str(exc), now))
            return False
        self.device = device
        device.send_timeout = self.config.daemon.send_timeout
        try:
            device.initialise(pin=self._pin(),
                              request_status_reports=self.modem.request_status_reports,
                              cell_broadcasts=self.config.etws.enabled)
            self.identity = _identity(device.identify())
        except _silent_errors() as exc:
            # Not a word from it (or its port went): asking again how it is would only
            # wait out another deadline before the same conclusion.
            self.lost(exc)
            return False
        except ModemError as exc:
            if getattr(exc, "code", None) == WRONG_PASSWORD and self._pin():
                # Never try a refused PIN again: three wrong PINs lock the SIM (PUK), and
                # that cannot be undone on site in a disaster.
                self._pin_refused = True
                log.error("%s: the SIM refused the PIN in the configuration; not trying it "
                          "again (fix [[modem]] pin and restart the daemon)", self.name)
            # A modem without its SIM may refuse initialisation; the poll says why.
            log.info("%s: initialisation incomplete: %s", self.name, exc)
            self._initialised = False
        else:
            self._initialised = True
        current = self.poll_health()
        if current is None:
            return False
        log.info("%s: open (%s)", self.name, current.reason or "ready")
        if current.sendable:
            self._opened(device)
        return True

    def reinitialise(self) -> bool:
        """Set the opened modem up again (which also reads what its stores kept); False when
        it did not answer (it is dropped then)."""
        try:
            self.device.initialise(pin=self._pin(),
                                   request_status_reports=self.modem.request_status_reports,
                                   cell_broadcasts=self.config.etws.enabled)
        except ModemError as exc:
            self.lost(exc)
            return False
        return True

    def _pin(self) -> str | None:
        """The configured PIN, unless the SIM has refused it once."""
        return None if self._pin_refused else (self.modem.pin or None)

    def poll_health(self) -> health.ModemHealth | None:
        """Ask the modem how it is and record it; None when it stopped answering."""
        if self.device is None:
            return None
        now = self.clock.now()
        try:
            current = health.poll(self.device, self.modem,
                                  min_signal_dbm=self.config.daemon.min_signal_dbm, now=now,
                                  identity=self.identity)
            if current.sendable and self._initialised and not self.device.settings_intact(
                    request_status_reports=self.modem.request_status_reports):
                log.warning("%s: the modem lost its settings (it rebooted?); setting it up "
                            "again", self.name)
                self._initialised = False
            if current.sim_state == "READY" and not self._initialised:
                # The SIM is back (or was late): PIN, message format, reports and the
                # registration notices again — before registration, so that the modem
                # tells us the moment it registers.
                self.device.initialise(pin=self._pin(),
                                       request_status_reports=self.modem.request_status_reports,
                                       cell_broadcasts=self.config.etws.enabled)
                self._initialised = True
        except ModemError as exc:
            self.lost(exc)
            return None
        if self.ladder.recovered(now):
            log.warning("%s: it answers again after the recovery ladder", self.name)
        self.record(current)
        if current.sendable:
            self.backoff.reset()
            self.next_poll = now + self.config.daemon.poll_interval
            self._offer_network_time()
        else:
            # Not usable yet: the modem's notices (heard()) say when it is back; this
            # doubling look is the backstop for a modem that says nothing.
            if current.sim_state != "READY":
                self._initialised = False
            self.next_poll = now + self.backoff.failed()
        return current

    def _offer_network_time(self) -> None:
        """The network's time, to the clock keeper when it wants a look (every few minutes)."""
        if self.clock_keeper is None or not self.clock_keeper.due():
            return
        try:
            network_now = self.device.network_time()
        except ModemError as exc:
            log.info("%s: reading the network's time: %s", self.name, exc)
            return
        self.clock_keeper.observe(self.db, self.name, network_now)

    def heard(self, event: Any) -> None:
        """A notice from the modem about itself (modem.device.StateChange): look at it now
        instead of at the next poll. A modem that says it restarted has forgotten our
        settings and is set up again as soon as its SIM is ready."""
        from modem.device import StateChange
        if not isinstance(event, StateChange):
            return
        if event.kind == "restarted":
            self._initialised = False
        now = self.clock.now()
        # At most one look per NOTICE_GAP, however fast a flapping network talks.
        self.next_poll = min(self.next_poll, max(now, self._noticed_at + NOTICE_GAP))
        self._noticed_at = self.next_poll
        log.info("%s: the modem says %s", self.name, event.line)

    def port_came_back(self) -> bool:
        """Whether the modem's port, missing when last looked at, is there again (a USB
        modem replugged, or booted after a reset): worth opening now, not at the end of the
        back-off. Once per appearance, so a port that exists but will not open still backs off."""
        if "://" in self.modem.port:
            return False
        present = os.path.exists(self.modem.port)
        came_back = present and self._port_was_missing
        self._port_was_missing = not present
        return came_back

    # -- sends, as far as the modem's health goes ------------------------------------------

    def send_answered(self) -> None:
        self._unanswered_sends = 0
        if self.ladder.recovered(self.clock.now(), by_send=True):
            log.warning("%s: sends are answered again after the recovery ladder", self.name)

    def send_unanswered(self) -> None:
        """The modem took a part and never answered. Once may be the network; twice in a
        row, a modem whose SMS side has hung while it still answers plain commands: it is
        dropped and the ladder climbed."""
        self._unanswered_sends += 1
        if self._unanswered_sends >= SENDS_UNANSWERED and self.device is not None:
            self._unanswered_sends = 0
            self.drop(health.unavailable(self.modem, "not_answering",
                                         f"{SENDS_UNANSWERED} sends in a row never answered",
                                         self.clock.now(), self.identity), sends=True)

    # -- losing it ---------------------------------------------------------------------

    def lost(self, exc: ModemError) -> None:
        from modem.errors import PortGone
        reason = "port_missing" if isinstance(exc, PortGone) else "not_answering"
        self.drop(health.unavailable(self.modem, reason, str(exc), self.clock.now(),
                                     self.identity))

    def drop(self, current: health.ModemHealth, *, sends: bool = False) -> None:
        """The modem is unusable: close it, record why, schedule a re-open, and, when it
        stopped answering (*sends*: its sends did), climb the recovery ladder."""
        was_open = self.device is not None
        self.close()
        now = self.clock.now()
        if current.reason == "not_answering":
            rung = self.ladder.fault(now, sends=sends)
            if rung is not None:
                current = self._climb(rung, current)
        self.record(current)
        self.next_connect = self.clock.now() + self.backoff.failed()
        if was_open:
            log.warning("%s: %s (%s); re-opening with back-off", self.name, current.reason,
                        current.detail)

    def _climb(self, rung: str, current: health.ModemHealth) -> health.ModemHealth:
        log.warning("%s: recovery ladder: %s", self.name, rung)
        if rung == "reset":
            self._reset()
        elif rung == "power_cycle":
            self._power_cycle()
            self._port_was_missing = True  # open it the moment it is back
        elif rung == "gave_up":
            log.error("%s: the modem does not answer and the recovery ladder is exhausted; "
                      "unplug it and plug it in again", self.name)
            return health.unavailable(
                self.modem, "not_answering",
                "recovery failed: resync, reset and power cycle did not help (unplug and "
                "replug the modem)", self.clock.now(), self.identity)
        # resync: the re-open does it (initialise() begins with one)
        return current

    def _reset(self) -> None:
        """AT+CFUN=1,1 on a port opened for the purpose (a hung modem may not hear it)."""
        try:
            device = self._open_device(self.modem.port)
        except (ModemError, OSError) as exc:
            log.info("%s: reset: cannot open the port: %s", self.name, exc)
            return
        try:
            device.reset(timeout=RESET_TIMEOUT)
        except ModemError as exc:
            log.info("%s: reset: %s", self.name, exc)
        finally:
            try:
                device.close()
            except (ModemError, OSError) as exc:
                log.info("%s: reset: closing the port: %s", self.name, exc)

    def _power_cycle(self) -> None:
        command = self.modem.power_cycle_command.replace("{name}", self.name)
        argv = [part.replace("{port}", self.modem.port) for part in shlex.split(command)]
        try:
            result = self._run(argv, capture_output=True, text=True, timeout=120)
        except (OSError, subprocess.SubprocessError) as exc:
            log.error("%s: power cycle: %s", self.name, exc)
            return
        if result.returncode != 0:
            log.error("%s: power cycle: %s exited %d: %s", self.name, argv[0], result.returncode,
                      (result.stderr or result.stdout).strip()[:200])

    def close(self) -> None:
        self._closing()
        device, self.device = self.device, None
        if device is not None:
            try:
                device.close()
            except (ModemError, OSError) as exc:
                log.info("%s: closing the port: %s", self.name, exc)

    def record(self, current: health.ModemHealth) -> None:
        current = self._decorate(current)
        changed = self.health is None or (self.health.ready, self.health.reason) != \
            (current.ready, current.reason)
        self.health = current
        if not current.sendable:
            self._unusable()
        try:
            with write(self.db) as conn:
                health.write_status(conn, current)
        except sqlite3.Error as exc:
            # The modem's state is kept here and written with the next poll; a storage
            # fault is told where staff look, anything else is a real error.
            if self.storage is None or self.storage.met(exc, self.name) is None:
                raise
        if changed:
            log.info("%s: %s", self.name, "ready" if current.ready else
                     f"not ready: {current.reason} ({current.detail})")

    def health_json(self) -> dict:
        if self.health is None:
            return {"name": self.name, "port": self.modem.port, "ready": False,
                    "reason": "not_answering", "detail": "not polled yet"}
        return self.health.as_json()


def _silent_errors() -> tuple[type[BaseException], ...]:
    from modem.errors import ATTimeout, PortGone
    return (ATTimeout, PortGone)


def _identity(raw: Any) -> health.Identity:
    fields = ("manufacturer", "model", "revision", "imei", "imsi", "iccid")
    return health.Identity(**{f: getattr(raw, f, None) for f in fields})
