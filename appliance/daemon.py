"""`tsunagu daemon`: the process that owns the modems.

At start it takes the daemon lock (one daemon per database), applies migrations, settles
what a previous run left half-done (appliance.recovery), then starts one Worker thread
per modem and its services (the scheduler, GPIO… anything with start()/stop()). The main
thread then keeps time: a heartbeat row every heartbeat_interval (and the systemd
watchdog with it), requests from other processes (daemon_requests: 'probe', 'send_test'),
webhook deliveries (appliance.webhooks: handed to their own threads, never waited for),
and every few seconds scheduled broadcasts, follow-ups, personal reminders, the prompts after
an earthquake or tsunami warning (appliance.etws) and the calls to patients who did not
answer (appliance.ringing: handed to a worker, between two sends).

SIGTERM (or stop()) sets one event: workers stop claiming, finish the message they are
sending (so every AT command in flight is completed and recorded), close their modems;
services stop; the process exits 0.

A full disk, a read-only one or a damaged database never ends the process: it says so in
its status file on a RAM disk (appliance.storage), sends nothing it could not record first,
and tries again every heartbeat — at start too, so it begins as soon as it can write.
"""
from __future__ import annotations

import fcntl
import json
import logging
import os
import select
import sqlite3
import threading
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import IO, Any, Protocol

import sqlite_utils

from . import broadcasts, etws, reminders, ringing, schedules, storage, webhooks
from .clock import Clock, SystemClock
from .timekeeping import ClockKeeper
from .config import Config
from .db import connect, write
from .dispatcher import Worker
from .doorbell import Doorbell, ring
from .jobs import Jobs
from .recovery import recover

log = logging.getLogger(__name__)

TICK = 0.2                 # the main thread's loop: requests are answered within this
TIMERS_EVERY = 2.0         # scheduled broadcasts and follow-ups are looked at this often
PROBE_TIMEOUT = 30.0       # a probe answers with what it has after this long
DOCTOR_TIMEOUT = 120.0     # modem doctor on the daemon's modem (a send may be in flight)
WORKER_JOIN_TIMEOUT = 60.0  # the longest message at a slow pace, finishing on SIGTERM


class DaemonError(Exception):
    """The daemon cannot start (another one runs, the database cannot be opened…)."""


class Service(Protocol):
    """Something the daemon runs beside the workers: the scheduler, GPIO button and LEDs."""
    def start(self) -> None: ...
    def stop(self) -> None: ...


class Notifier:
    """systemd's sd_notify (READY, WATCHDOG, STOPPING), only when systemd asked for it."""

    def __init__(self) -> None:
        self._notifier = None
        if os.environ.get("NOTIFY_SOCKET"):
            import sdnotify
            self._notifier = sdnotify.SystemdNotifier()

    def __call__(self, state: str) -> None:
        if self._notifier is not None:
            self._notifier.notify(state)


def package_version() -> str | None:
    try:
        return version("tsunagu")
    except PackageNotFoundError:
        return None


class DaemonLock:
    """An exclusive lock beside the database: two daemons would fight over the modems
    and each would take the other's messages in flight for a crash to recover from."""

    def __init__(self, database: Path):
        self.path = Path(f"{database}.daemon.lock")
        self._file: IO[str] | None = None

    def acquire(self) -> None:
        """Take the lock (again a no-op); an OSError when the disk refuses the file."""
        if self._file is not None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(self.path, "a+", encoding="ascii")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            handle.close()
            raise DaemonError(f"another tsunagu daemon (pid {holder}) is running on "
                              f"this database ({self.path})") from None
        try:
            handle.seek(0)
            handle.truncate()
            handle.write(f"{os.getpid()}\n")
            handle.flush()
        except OSError as exc:
            # A full disk: the pid is only for people; the lock is the flock, held.
            log.warning("cannot write the pid into %s: %s", self.path, exc)
        self._file = handle

    def release(self) -> None:
        if self._file is not None:
            self._file.close()  # closing drops the flock
            self._file = None


@dataclass
class _Probe:
    request_id: int
    futures: dict[str, Future]
    deadline: float
    kind: str = "probe"


@dataclass
class Requests:
    """Answers daemon_requests rows: only the daemon may touch a modem."""
    daemon: Daemon
    in_flight: dict[int, _Probe] = field(default_factory=dict)

    def handle(self, now: float) -> None:
        db = self.daemon.db
        pending = db.conn.execute("SELECT id, kind, args, requested_by FROM daemon_requests "
                                  "WHERE state = 'pending' ORDER BY id").fetchall()
        for row in pending:
            if row["id"] in self.in_flight:
                continue
            try:
                self._start(row, now)
            except Exception as exc:  # answered as failed: one bad request never blocks others
                log.warning("request %d (%s) failed: %s", row["id"], row["kind"], exc)
                self._answer(row["id"], "failed", {"error": str(exc)}, now)
        for probe in list(self.in_flight.values()):
            self._finish_probe(probe, now)

    def _start(self, row: Any, now: float) -> None:
        args = json.loads(row["args"]) if row["args"] else {}
        if row["kind"] == "probe":
            futures = {w.name: w.request_probe() for w in self.daemon.workers}
            self.in_flight[row["id"]] = _Probe(row["id"], futures, now + PROBE_TIMEOUT)
        elif row["kind"] == "doctor":
            worker = next((w for w in self.daemon.workers if w.name == args.get("modem")), None)
            if worker is None:
                raise ValueError(f"no modem named {args.get('modem')!r} in the configuration")
            from . import doctor
            fix, loopback_to = bool(args.get("fix")), args.get("loopback_to")
            lang = self.daemon.config.language
            future = worker.request_task(lambda device: doctor.Doctor(
                device, worker.name, lang=lang, fix=fix).run(loopback_to=loopback_to).as_json())
            self.in_flight[row["id"]] = _Probe(row["id"], {worker.name: future},
                                               now + DOCTOR_TIMEOUT, kind="doctor")
        elif row["kind"] == "send_test":
            with write(self.daemon.db) as conn:
                broadcast_id = broadcasts.create_test_broadcast(
                    conn, self.daemon.config, actor=args.get("actor") or row["requested_by"],
                    now=now)
            self._answer(row["id"], "done", {"broadcast_id": broadcast_id}, now)
        else:
            raise ValueError(f"unknown request kind {row['kind']!r}")

    def _finish_probe(self, probe: _Probe, now: float) -> None:
        done = all(f.done() for f in probe.futures.values())
        if not done and now < probe.deadline:
            return
        if probe.kind == "doctor":
            (future,) = probe.futures.values()
            if not future.done():
                self._answer(probe.request_id, "failed", {"error": "the modem's worker did not "
                             f"answer within {DOCTOR_TIMEOUT:.0f} s"}, now)
            elif future.exception() is not None:
                self._answer(probe.request_id, "failed", {"error": str(future.exception())}, now)
            else:
                self._answer(probe.request_id, "done", future.result(), now)
            del self.in_flight[probe.request_id]
            return
        modems = []
        for name, future in probe.futures.items():
            if future.done():
                modems.append(future.result())
            else:
                modems.append({"name": name, "ready": False, "reason": "not_answering",
                               "detail": f"no answer within {PROBE_TIMEOUT:.0f} s "
                                         "(the modem is busy sending)"})
        self._answer(probe.request_id, "done", {"modems": modems}, now)
        del self.in_flight[probe.request_id]

    def _answer(self, request_id: int, state: str, result: dict, now: float) -> None:
        with write(self.daemon.db) as conn:
            conn.execute("UPDATE daemon_requests SET state = ?, answered_at = ?, result = ? "
                         "WHERE id = ? AND state = 'pending'",
                         [state, now, json.dumps(result, ensure_ascii=False), request_id])


class Daemon:
    """The daemon process's parts, startable and stoppable from a test."""

    def __init__(self, config: Config, *, clock: Clock | None = None,
                 open_device: Callable[[str], Any] | None = None,
                 services: list[Service] | None = None,
                 clock_keeper: ClockKeeper | None = None):
        self.config = config
        self.clock = clock or SystemClock()
        # Keeps the system clock right from the network's time (appliance.timekeeping);
        # a test gives one with its own NTP state and setter.
        self.clock_keeper = clock_keeper or ClockKeeper(config.time, self.clock)
        self.open_device = open_device
        self.services: list[Service] = list(services or [])
        self.stopping = threading.Event()
        self.db: sqlite_utils.Database | None = None
        self.workers: list[Worker] = []
        self.requests = Requests(self)
        self.notify = Notifier()
        self.lock = DaemonLock(config.database)
        self.storage = storage.Watch(config, clock=self.clock.now)
        self.started = False
        self.started_at = 0.0
        self._next_beat = 0.0
        self._next_timers = 0.0
        self.doorbell: Doorbell | None = None
        self._doorbell_tried = False
        self.jobs = Jobs(lambda: self.db, storage=self.storage)
        # Webhooks: its pool threads do the HTTP; the main thread only hands over and records.
        self.webhooks = webhooks.Deliverer(lambda: self.db, config, clock=self.clock.now)
        # Calls to the silent: one at a time, by a worker between two sends.
        self.ringer = ringing.Ringer(config, lambda: self.db, lambda: self.workers,
                                     clock=self.clock.now)

    def stop(self) -> None:
        """Ask the daemon to stop (safe from a signal handler)."""
        self.stopping.set()
        if self.doorbell is not None:
            ring(self.config.database)  # ends the main thread's wait at once

    def run(self) -> int:
        """Start, loop until stop(), stop cleanly; returns the exit status."""
        try:
            self.start_when_storage_allows()
            while not self.stopping.is_set():
                self.tick()
                self.wait(TICK)
            self.notify("STOPPING=1")
            log.info("stopping: finishing the messages in flight")
            return self.shutdown()
        finally:
            if self.doorbell is not None:
                self.doorbell.close()
            self._close_db()
            self.lock.release()
            self.storage.close()

    def start_when_storage_allows(self) -> None:
        """start(), tried again every heartbeat while the disk is full or read-only or the
        database damaged, so that the daemon sends as soon as it can record what it sends.

        systemd hears READY at once: a daemon waiting for its storage is up, and restarting
        it would not help (its status file says why it waits).
        """
        self.notify("READY=1")
        while not self.stopping.is_set():
            try:
                self.start()
            except (sqlite3.Error, OSError) as exc:
                if self.storage.met(exc, "start") is None:
                    raise
                self._close_db()
                self.stopping.wait(self.config.daemon.heartbeat_interval)
                self.storage.beat()
                self.notify("WATCHDOG=1")
                continue
            log.info("ready: %d modem(s)", len(self.workers))
            return

    def _close_db(self) -> None:
        if self.db is not None:
            self.db.conn.close()
            self.db = None

    def wait(self, seconds: float) -> None:
        """Until the next tick; a ring of the doorbell (work queued by the web UI or the
        CLI) wakes the idle workers at once on the way."""
        fd = self.doorbell.fileno() if self.doorbell is not None else None
        if fd is None:
            self.stopping.wait(seconds)
            return
        if select.select([fd], [], [], seconds)[0] and self.doorbell.clear():
            self.wake_workers()

    def wake_workers(self) -> None:
        for worker in self.workers:
            worker.wake()

    def start(self) -> None:
        self.started_at = self.clock.now()
        self.storage.beat(self.started_at)
        self.lock.acquire()
        if not self._doorbell_tried:  # once: a start tried again on a bad disk says it once
            self._doorbell_tried = True
            try:
                self.doorbell = Doorbell(self.config.database)
            except OSError as exc:
                # Sending does not depend on it: workers look for work every IDLE_WAIT.
                log.warning("no doorbell (%s); queued work is found within a moment instead",
                            exc)
        self.db = connect(self.config.database)
        result = recover(self.db, policy=self.config.daemon.resend_uncertain,
                         now=self.started_at)
        with write(self.db) as conn:
            for broadcast_id in sorted(result.broadcasts):
                broadcasts.refresh_state(conn, broadcast_id, self.started_at)
            if ringing.settle_interrupted(conn, self.started_at):
                log.warning("a call to a patient was under way when the daemon stopped: "
                            "kept as 'unknown', not rung again")
        if result.total:
            log.warning("recovered after an unclean stop: %d queued again, %d submitted, "
                        "%d resent, %d uncertain (left for staff)", len(result.requeued),
                        len(result.submitted), len(result.resent), len(result.uncertain))
        self.heartbeat(self.started_at)
        self.workers = [Worker(self.config, modem, clock=self.clock, stop=self.stopping,
                               open_device=self.open_device, storage=self.storage,
                               clock_keeper=self.clock_keeper)
                        for modem in self.config.modems]
        self.started = True
        for worker in self.workers:
            worker.start()
        for service in self.services:
            service.start()

    def tick(self) -> None:
        """The main thread's work: heartbeat, requests, timers — each under the job guard
        (appliance.jobs), so that one failing never stops the others or the sending."""
        now = self.clock.now()
        if now >= self._next_beat:
            self._next_beat = now + self.config.daemon.heartbeat_interval
            self.storage.beat(now)  # the status file: alive, even when the database is not
            self.jobs.run("heartbeat", lambda: self.heartbeat(now), now=now)
            self.watch_workers()
            self.notify("WATCHDOG=1")
        self.jobs.run("requests", lambda: self.requests.handle(now), now=now)
        self.jobs.run("webhooks", lambda: self.webhooks.run(now), now=now)
        if now >= self._next_timers:
            self._next_timers = now + TIMERS_EVERY
            self.run_timers(now)

    def heartbeat(self, now: float) -> None:
        """The heartbeat row; a write that goes through also ends a storage fault, and the
        disk reserve is made again when there is room (appliance.storage)."""
        self.storage.keep_reserve()
        with write(self.db) as conn:
            conn.execute(
                "INSERT INTO heartbeat (name, pid, started_at, beat_at, version) "
                "VALUES ('daemon', ?, ?, ?, ?) ON CONFLICT (name) DO UPDATE SET "
                "pid = excluded.pid, started_at = excluded.started_at, "
                "beat_at = excluded.beat_at, version = excluded.version",
                [os.getpid(), self.started_at, now, package_version()])
        self.storage.recovered(now)

    def watch_workers(self) -> None:
        for worker in self.workers:
            if worker.thread is not None and not worker.thread.is_alive():
                log.error("%s: worker thread ended unexpectedly; starting it again",
                          worker.name)
                worker.start()

    def run_timers(self, now: float) -> None:
        """Scheduled broadcasts whose time came, recurring schedules, and follow-ups to the
        silent: each its own job (a follow-up per broadcast), so one that fails cannot hold
        up the others."""
        def promote() -> list[int]:
            with write(self.db) as conn:
                return broadcasts.promote_scheduled(conn, now)

        def recurring() -> list[int]:
            with write(self.db) as conn:
                return schedules.run_due(conn, self.config, now)

        promoted = self.jobs.run("scheduled_broadcasts", promote, now=now)
        if promoted:
            log.info("scheduled broadcast(s) now queued: %s", promoted)
        created = self.jobs.run("schedules", recurring, now=now)
        if created:
            log.info("recurring schedule(s) queued broadcast(s) %s", created)
        reminded = self.jobs.run("reminders", lambda: self._reminders(now), now=now)
        prompted = self.jobs.run("warnings", lambda: self._warnings(now), now=now)
        self.jobs.run("ringing", lambda: self.ringer.run(now), now=now)
        queued = bool(promoted or created or reminded or prompted)
        due = self.jobs.run("followups", lambda: broadcasts.due_followups(self.db.conn, now),
                            now=now)
        for broadcast_id in due or ():
            if self.jobs.run(f"followup:{broadcast_id}",
                             lambda b=broadcast_id: self._followup(b, now), now=now):
                queued = True
        if queued:
            self.wake_workers()  # it goes now, not at the end of the workers' wait

    def _reminders(self, now: float) -> list[int]:
        with write(self.db) as conn:
            created = reminders.run_due(conn, self.config, now)
        if created:
            log.info("%d reminder(s) queued", len(created))
        return created

    def _warnings(self, now: float) -> bool:
        """Prompt the on-call staff phones (or send) for warnings whose wait is over."""
        with write(self.db) as conn:
            before = conn.total_changes
            queued = etws.run_due(conn, self.config, now)
            changed = conn.total_changes != before
        if queued:
            log.warning("warning broadcast(s) sent automatically: %s", queued)
        return changed  # prompts to staff phones are queued too: wake the workers

    def _followup(self, broadcast_id: int, now: float) -> int | None:
        with write(self.db) as conn:
            created = broadcasts.create_followup(conn, broadcast_id, now)
        if created:
            log.info("follow-up of broadcast %d queued as %d", broadcast_id, created)
        return created

    def shutdown(self) -> int:
        if not self.started:
            log.info("stopped (it never could start: %s)", self.storage.fault)
            return 0
        self.wake_workers()  # an idle worker sees the stop at once
        self.webhooks.stop()  # a delivery in flight is sent again at the next start
        for service in reversed(self.services):
            service.stop()
        stuck = [w.name for w in self.workers if not w.join(WORKER_JOIN_TIMEOUT)]
        if stuck:
            log.error("worker(s) %s did not finish within %.0f s; their message in flight "
                      "is settled at the next start", ", ".join(stuck), WORKER_JOIN_TIMEOUT)
        log.info("stopped")
        return 0
