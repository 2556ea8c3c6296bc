"""Modem health and the appliance's health record.

Two halves:

- the daemon's side: `poll()` asks an opened modem (SIM, registration, signal, operator)
  and `write_status()` stores the answer as the modem's modem_status row, ready or not
  ready with one reason: not_answering, port_missing, no_sim, sim_pin, not_registered,
  weak_signal;
- everyone else's side: `read_health(db, config, now)` reads the rows the daemon wrote into
  one `Health` record — modems, heartbeat age, queue depth, remaining budget — that the web
  dashboard, the LEDs, `tsunagu check` and /metrics all read, so they can never disagree.
"""
from __future__ import annotations

import dataclasses
import sqlite3
from dataclasses import dataclass

import sqlite_utils

from . import budget, storage
from .config import Config, ModemConfig

# Why a modem is not ready, most fundamental first (the first that applies is the reason).
REASONS = ("port_missing", "not_answering", "no_sim", "sim_pin", "not_registered",
           "weak_signal")
# Reasons under which a modem may still send: a weak signal often still gets SMS through,
# and refusing to try would stop an emergency broadcast on the only modem.
SENDABLE_REASONS = (None, "weak_signal")
# A part handed to the modem longer ago than this and still unanswered: the modem waits on
# the network (congested) or has hung. A send usually takes seconds; it may take 120 s.
SLOW_ANSWER_AFTER = 30.0
FLAG_ERROR_RATE = 0.5   # the dispatcher's RATE_FLAG: at or above it a modem is flagged


@dataclass(frozen=True)
class Identity:
    manufacturer: str | None = None
    model: str | None = None
    revision: str | None = None
    imei: str | None = None
    imsi: str | None = None
    iccid: str | None = None


@dataclass(frozen=True)
class ModemHealth:
    """One modem as the daemon found it: a modem_status row."""
    name: str
    port: str
    ready: bool
    reason: str | None
    checked_at: float
    detail: str | None = None
    identity: Identity = Identity()
    sim_state: str | None = None
    registration: str | None = None
    signal_dbm: int | None = None
    signal_bars: int | None = None
    operator: str | None = None
    pace_per_minute: int | None = None
    daily_limit: int | None = None
    error_rate: float | None = None     # recent sends failed for the modem's or network's sake
    cell_broadcasts: str | None = None  # ETWS: subscribed, refused, off (modem.device)

    @property
    def sendable(self) -> bool:
        """The worker may hand this modem messages (ready, or only a weak signal)."""
        return self.reason in SENDABLE_REASONS

    def as_json(self) -> dict:
        data = dataclasses.asdict(self)
        data.update(data.pop("identity"))
        return data


def unavailable(modem: ModemConfig, reason: str, detail: str, now: float,
                identity: Identity = Identity()) -> ModemHealth:
    """The health of a modem that could not be asked: its port is missing or silent."""
    if reason not in REASONS:
        raise ValueError(f"unknown reason {reason!r}")
    return ModemHealth(name=modem.name, port=modem.port, ready=False, reason=reason,
                       detail=detail, checked_at=now, identity=identity,
                       pace_per_minute=modem.pace, daily_limit=modem.daily_limit)


def poll(device, modem: ModemConfig, *, min_signal_dbm: int, now: float,
         identity: Identity = Identity()) -> ModemHealth:
    """Ask an opened modem for SIM, registration, signal and operator.

    Raises the modem's own errors (ATTimeout, PortGone) when it does not answer; the
    caller turns those into `unavailable()`.
    """
    base = dict(name=modem.name, port=modem.port, checked_at=now, identity=identity,
                pace_per_minute=modem.pace, daily_limit=modem.daily_limit,
                cell_broadcasts=getattr(device, "cell_broadcasts", None))
    sim = device.sim_state()
    sim_name = _sim_name(sim)
    if sim_name != "READY":
        reason = "sim_pin" if sim_name in ("SIM PIN", "SIM PUK", "PH-SIM PIN") else "no_sim"
        return ModemHealth(ready=False, reason=reason, sim_state=sim_name,
                           detail=f"SIM: {sim_name}", **base)
    reg = device.registration()
    sig = device.signal()
    operator = device.operator() if reg.registered else None
    values = dict(sim_state=sim_name, registration=_registration_name(reg),
                  signal_dbm=sig.dbm, signal_bars=sig.bars, operator=_operator_name(operator))
    if not reg.registered:
        return ModemHealth(ready=False, reason="not_registered",
                           detail=f"registration: {values['registration']}", **values, **base)
    if sig.dbm is None or sig.dbm < min_signal_dbm:
        shown = "unknown" if sig.dbm is None else f"{sig.dbm} dBm"
        return ModemHealth(ready=False, reason="weak_signal",
                           detail=f"signal {shown} (needs {min_signal_dbm} dBm or more)",
                           **values, **base)
    return ModemHealth(ready=True, reason=None, **values, **base)


# modem.device's SIM states, in the words AT+CPIN? uses (what modem_status shows).
_SIM_WORDS = {"ready": "READY", "pin_required": "SIM PIN", "puk_required": "SIM PUK",
              "not_inserted": "NOT INSERTED", "busy": "SIM BUSY"}


def _sim_name(sim) -> str:
    value = getattr(sim, "value", sim)
    if value is None:
        return "UNKNOWN"
    return _SIM_WORDS.get(str(value), str(value).upper())


def _registration_name(reg) -> str:
    value = getattr(reg, "state", None)
    value = getattr(value, "value", value)
    if value:
        return str(value)
    return "registered_home" if reg.registered else "not_registered"


def _operator_name(operator) -> str | None:
    if operator is None:
        return None
    name = getattr(operator, "name", operator)
    return str(name) if name else None


def write_status(conn: sqlite3.Connection, health: ModemHealth) -> None:
    """Upsert the modem's modem_status row (call inside a write transaction)."""
    row = health.as_json()
    row.pop("ready")
    columns = ["ready", *row]
    values = [int(health.ready), *row.values()]
    updates = ", ".join(f"{c} = excluded.{c}" for c in columns if c != "name")
    conn.execute(f"INSERT INTO modem_status ({', '.join(columns)}) VALUES "
                 f"({', '.join('?' * len(columns))}) ON CONFLICT (name) DO UPDATE SET {updates}",
                 values)


# -- the appliance's health record --------------------------------------------------------

@dataclass(frozen=True)
class ModemView:
    """A configured modem as the dashboard, LEDs, check and /metrics show it."""
    name: str
    port: str
    ready: bool                 # as last polled, and the poll is fresh
    reason: str | None          # None when ready; 'unknown' when never polled; 'stale'
    detail: str | None
    checked_at: float | None
    signal_dbm: int | None
    signal_bars: int | None
    operator: str | None
    sim_state: str | None
    registration: str | None
    manufacturer: str | None
    model: str | None
    pace: int
    daily_limit: int
    sent_today: int
    remaining: int
    error_rate: float | None = None
    cell_broadcasts: str | None = None   # ETWS subscription: subscribed, refused, off

    @property
    def failing_often(self) -> bool:
        """Many recent sends failed for the modem's or the network's sake (it still sends,
        and takes less work while another modem is healthy)."""
        return self.error_rate is not None and self.error_rate >= FLAG_ERROR_RATE


@dataclass(frozen=True)
class Heartbeat:
    pid: int
    started_at: float
    beat_at: float
    age: float
    version: str | None


@dataclass(frozen=True)
class Health:
    now: float
    heartbeat: Heartbeat | None         # None: the daemon never ran on this database
    daemon_alive: bool                  # heartbeat younger than check.heartbeat_max_age
    modems: tuple[ModemView, ...]
    queue_depth: int                    # recipient messages queued or being sent
    oldest_queued_at: float | None      # claim-due queued work waiting longest
    uncertain: int                      # recipient messages waiting for staff to decide
    sending_broadcasts: int
    remaining_budget: int               # parts the SIMs may still send today
    # Work is due and no SIM's daily limit has room for any of it (上限待ち): when the first
    # of it may go again (inf: none of it ever fits a SIM's limit).
    budget_blocked_until: float | None = None
    # What the daemon's writes meet now (its status file): nothing is sent meanwhile.
    storage_fault: storage.Fault | None = None

    @property
    def budget_blocked(self) -> bool:
        return self.budget_blocked_until is not None

    @property
    def heartbeat_age(self) -> float | None:
        return self.heartbeat.age if self.heartbeat else None

    @property
    def ready_modems(self) -> tuple[ModemView, ...]:
        return tuple(m for m in self.modems if m.ready)

    @property
    def sendable_modems(self) -> tuple[ModemView, ...]:
        """Ready, or only a weak signal, or waiting on a slow answer: the worker still sends
        with those (see SENDABLE_REASONS; a congested network is slow, not stopped)."""
        return tuple(m for m in self.modems
                     if m.ready or m.reason in ("weak_signal", "awaiting_answer"))

    @property
    def can_send(self) -> bool:
        """Something queued now would go out: daemon alive and able to record what it sends,
        a modem usable, budget left (and the work waiting fits in it)."""
        return (self.daemon_alive and self.storage_fault is None
                and bool(self.sendable_modems) and self.remaining_budget > 0
                and not self.budget_blocked)


def read_health(db: sqlite_utils.Database | sqlite3.Connection, config: Config,
                now: float) -> Health:
    """The one health record, read from what the daemon last wrote."""
    conn = db.conn if isinstance(db, sqlite_utils.Database) else db
    status = storage.read_daemon_status(config)
    heartbeat = _heartbeat(conn, now, status)
    alive = heartbeat is not None and heartbeat.age <= config.check.heartbeat_max_age
    # A poll older than three intervals (or the check's heartbeat limit) is not news.
    stale_after = max(3 * config.daemon.poll_interval, config.check.heartbeat_max_age)
    modems = tuple(_modem_view(conn, m, now, alive, stale_after) for m in config.modems)
    queue = conn.execute(
        "SELECT count(*), min(CASE WHEN r.state = 'queued' THEN "
        "max(r.next_attempt_at, b.created_at) END) FROM recipients r "
        "JOIN broadcasts b ON b.id = r.broadcast_id WHERE r.state IN ('queued', 'sending') "
        "AND b.state NOT IN ('cancelled', 'scheduled')").fetchone()
    uncertain = conn.execute("SELECT count(*) FROM recipients WHERE state = 'uncertain'"
                             ).fetchone()[0]
    sending = conn.execute("SELECT count(*) FROM broadcasts WHERE state IN ('queued', "
                           "'sending')").fetchone()[0]
    return Health(now=now, heartbeat=heartbeat, daemon_alive=alive, modems=modems,
                  queue_depth=queue[0], oldest_queued_at=queue[1], uncertain=uncertain,
                  sending_broadcasts=sending,
                  remaining_budget=sum(m.remaining for m in modems),
                  budget_blocked_until=_budget_blocked_until(conn, config, modems, now),
                  storage_fault=status.fault if alive and status is not None else None)


def _budget_blocked_until(conn: sqlite3.Connection, config: Config,
                          modems: tuple[ModemView, ...], now: float) -> float | None:
    """When due work that no SIM's remaining budget can take may go; None when some can."""
    smallest = conn.execute(
        "SELECT min(r.parts_count) FROM recipients r JOIN broadcasts b ON b.id = "
        "r.broadcast_id WHERE r.state = 'queued' AND r.next_attempt_at <= ? "
        "AND b.state NOT IN ('cancelled', 'scheduled')", [now]).fetchone()[0]
    if smallest is None or any(m.remaining >= smallest for m in modems):
        return None
    return min((budget.room_at(conn, m, now, smallest) for m in config.modems),
               default=float("inf"))


def _heartbeat(conn: sqlite3.Connection, now: float,
               status: storage.DaemonStatus | None = None) -> Heartbeat | None:
    """The daemon's heartbeat row, or its status file when that is newer: a daemon whose
    database cannot be written still beats there (appliance.storage)."""
    row = conn.execute("SELECT * FROM heartbeat WHERE name = 'daemon'").fetchone()
    beat = None if row is None else Heartbeat(
        pid=row["pid"], started_at=row["started_at"], beat_at=row["beat_at"],
        age=max(0.0, now - row["beat_at"]), version=row["version"])
    if status is not None and (beat is None or status.beat_at > beat.beat_at):
        beat = Heartbeat(pid=status.pid, started_at=status.started_at,
                         beat_at=status.beat_at, age=max(0.0, now - status.beat_at),
                         version=beat.version if beat else None)
    return beat


def daemon_heartbeat(config: Config, now: float) -> Heartbeat | None:
    """The heartbeat from the status file alone, for when the database cannot be read."""
    status = storage.read_daemon_status(config)
    if status is None:
        return None
    return Heartbeat(pid=status.pid, started_at=status.started_at, beat_at=status.beat_at,
                     age=max(0.0, now - status.beat_at), version=None)


def _awaiting_answer(conn: sqlite3.Connection, modem: ModemConfig) -> float | None:
    """When the modem's latest part was handed over, if it is not answered yet."""
    row = conn.execute("SELECT state, sending_at FROM parts WHERE modem = ? AND sending_at "
                       "IS NOT NULL ORDER BY sending_at DESC LIMIT 1", [modem.name]).fetchone()
    return row[1] if row is not None and row[0] == "sending" else None


def _modem_view(conn: sqlite3.Connection, modem: ModemConfig, now: float, alive: bool,
                stale_after: float) -> ModemView:
    row = conn.execute("SELECT * FROM modem_status WHERE name = ?", [modem.name]).fetchone()
    sent = budget.sent_today(conn, modem, now)
    common = dict(name=modem.name, port=modem.port, pace=modem.pace,
                  daily_limit=modem.daily_limit, sent_today=sent,
                  remaining=budget.remaining(conn, modem, now))
    if row is None:
        return ModemView(ready=False, reason="unknown", detail="not polled yet",
                         checked_at=None, signal_dbm=None, signal_bars=None, operator=None,
                         sim_state=None, registration=None, manufacturer=None, model=None,
                         **common)
    fresh = alive and now - row["checked_at"] <= stale_after
    reason = row["reason"] if fresh else "stale"
    detail = row["detail"] if fresh else "the daemon has not checked this modem recently"
    waiting_since = _awaiting_answer(conn, modem) if alive else None
    waiting = waiting_since is not None and (not fresh or
                                             now - waiting_since > SLOW_ANSWER_AFTER)
    if waiting:
        # Its worker waits on a send (and does not poll meanwhile): say that, not "ready"
        # or "stale" (a congested network answers in up to two minutes; a hung modem is
        # reset by the recovery ladder).
        reason, detail = "awaiting_answer", "waiting for the answer to a send"
    return ModemView(ready=bool(row["ready"]) and fresh and not waiting, reason=reason,
                     detail=detail,
                     checked_at=row["checked_at"], signal_dbm=row["signal_dbm"],
                     signal_bars=row["signal_bars"], operator=row["operator"],
                     sim_state=row["sim_state"], registration=row["registration"],
                     manufacturer=row["manufacturer"], model=row["model"],
                     error_rate=row["error_rate"] if fresh else None,
                     cell_broadcasts=row["cell_broadcasts"], **common)
