"""The modem worker: one per modem, the only code that talks to it.

A worker claims one whole recipient message at a time (appliance.outbox), sends its parts
through its own modem at the SIM's pace and within its daily limit, and between sends
drains what the modem reports unprompted (delivery reports, replies). The AT session does
one command at a time, so sending and reading events share this one thread.

The modem's own life — opening it, setting it up, polling it, listening to its notices,
re-opening it and the recovery ladder when it hangs — is appliance.modem_link.ModemLink's:
when its modem fails (no answer, port gone, SIM removed, no network) the worker stops
claiming (claims are per message, so the other workers simply take the rest) until the link
says it is usable again, without a restart.

When the database cannot be written (a full or read-only disk, a damaged file:
appliance.storage), the worker keeps its modem and the message in hand, gives the modem
nothing whose state it could not write first, and tries the write again every heartbeat
interval; the message goes on from where it stopped once the write goes through.

Single steps (`connect()`, `poll_health()`, `process_one()`, `drain_events()`) are public
and take time from an injectable clock, so each can be tested alone; `run()` loops them.
"""
from __future__ import annotations

import dataclasses
import logging
import os
import random
import sqlite3
import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from queue import Empty, SimpleQueue
from typing import Any, Protocol, TypeVar

import sqlite_utils

from modem import pdu
from modem.errors import ModemError

from . import budget, error_policy, health, outbox, storage as storage_mod
from .clock import Clock, SystemClock
from .config import Config, ModemConfig
from .modem_events import ModemEvents
from .modem_link import Backoff, ModemLink

log = logging.getLogger(__name__)

IDLE_WAIT = 0.05           # how long an idle worker waits for an event before looking for
                           # work again: bounds the time from "queued" to "on the wire".
                           # 0.02 measured 1.75 % CPU idle against 1.0 % here: not worth
                           # 15 ms, on a box that may be running on its UPS
AWAY_WAIT = 0.25           # while the modem is away: how often probes are answered
HOLD_FIRST = 1.0           # after this modem could not send a message (its SIM, its network:
HOLD_MAX = 30.0            # error_policy.ELSEWHERE) it claims nothing for a moment, doubling,
                           # so that another modem takes the message
FAILURES_BEFORE_BACKOFF = 3  # this modem's sends failing in a row (the network's fault)
                             # before the retries it makes wait (retry_backoff, doubling)
RATE_WINDOW = 20           # the recent sends an error rate is taken over…
RATE_MIN_SENDS = 10        # …once there are this many…
RATE_FLAG = health.FLAG_ERROR_RATE  # …and at this rate it is flagged (dashboard, check)…
DEGRADED_GAP = 5.0         # …and, while another modem is healthy, claims one message per gap
ERROR_PAUSE = 1.0          # after an unexpected error, before the loop goes on
STORED_BATCH = 8           # announced stored messages (reports, replies) read together…
STORED_WAIT = 2.0          # …or once the first has waited this long, while there is work;
                           # well within any modem's storage (an EC25 holds 255)

T = TypeVar("T")


class ModemUnavailable(RuntimeError):
    """A task was asked of a modem that is not open."""


def _open_device(path: str):
    from modem.device import Modem
    return Modem.open(path)


def _modem_fault_errors() -> tuple[type[BaseException], ...]:
    """The errors after which nobody knows whether the modem sent what it was given."""
    from modem.errors import ATTimeout, PortGone
    return (ATTimeout, PortGone)


class Device(Protocol):
    """What the worker needs of modem.device.Modem (a real or a simulated modem)."""
    def initialise(self, *, pin: str | None, request_status_reports: bool,
                   cell_broadcasts: bool = True) -> Any: ...
    def identify(self) -> Any: ...
    def network_time(self) -> Any: ...
    def reset(self, *, timeout: float) -> None: ...
    def send_pdu(self, submit: pdu.SubmitPdu, *,
                 meanwhile: Callable[[], None] | None = None) -> int: ...
    def next_event(self, timeout: float, *, read_stored: bool = True,
                   wake: int | None = None) -> Any: ...
    @property
    def has_announced(self) -> bool: ...
    @property
    def announced(self) -> int: ...
    def close(self) -> None: ...


class Worker:
    """Sends through one modem and reads what it reports; see the module docstring."""

    def __init__(self, config: Config, modem: ModemConfig, *,
                 db: sqlite_utils.Database | None = None, clock: Clock | None = None,
                 open_device: Callable[[str], Device] | None = None,
                 stop: threading.Event | None = None, clock_keeper: Any = None,
                 storage: storage_mod.Watch | None = None):
        from .db import connect
        self.config = config
        self.modem = modem
        self.name = modem.name
        self.clock = clock or SystemClock()
        self.stop = stop or threading.Event()
        # Told of every write the storage refuses (the daemon shares one among its threads).
        self.storage = storage or storage_mod.Watch(config, clock=self.clock.now)
        # Each thread its own connection; migrations were applied by the daemon at start.
        self.db = db if db is not None else connect(config.database, migrate=False)
        self.events = ModemEvents(self.db, modem.name, self.clock,
                                  database=None if db is not None else str(config.database),
                                  storage=self.storage, config=config)
        # The modem's life (see appliance.modem_link); it tells us when it closes the modem
        # or finds it unusable, and asks us to add this modem's error rate to its health.
        self.link = ModemLink(config, modem, db=self.db, clock=self.clock,
                              open_device=open_device or _open_device,
                              clock_keeper=clock_keeper, storage=self.storage,
                              closing=self._modem_closing, unusable=self._give_back_ahead,
                              decorate=self._with_error_rate, opened=self.events.sweep)
        # The concatenation reference: our own 8-bit counter (never the TP-MR), starting
        # anywhere so a restart does not reuse the references the phones just saw.
        self._reference = random.randrange(256)
        self._probes: SimpleQueue[Future] = SimpleQueue()
        # Work other processes asked to be done on this modem (tsunagu modem doctor):
        # a function of the opened device, run on this thread between two sends.
        self._tasks: SimpleQueue[tuple[Callable[[Any], Any], Future]] = SimpleQueue()
        self._announced_since: float | None = None  # when stored messages were first waiting
        self.thread: threading.Thread | None = None
        self.sent_parts = 0
        self._read_store_again = False  # after a storage fault: what the modem kept meanwhile
        # The next message, claimed (and its PDUs made) while the modem sent the last part
        # of the one before, so that neither sits between two sends.
        self._ahead: outbox.Claim | None = None
        self._ahead_submits: list[pdu.SubmitPdu] | None = None
        # The modem's answers to parts sent (normally the last one only), until they are
        # committed with the next write (the next part's mark or hand-over): see
        # outbox.Accepted. Kept until a commit succeeds: an answer is never forgotten.
        self._unrecorded: list[outbox.Accepted] = []
        # When this SIM last handed a part to the network (the pace counts from it); None
        # until known, then the database is asked once.
        self._last_handed_at: float | None = None
        # Recent sends, True for an error of the modem or the network (error_policy RETRY or
        # ELSEWHERE, or no answer), False for a part the modem took: the modem's error rate.
        self._recent: deque[bool] = deque(maxlen=RATE_WINDOW)
        self._failures_in_a_row = 0
        self._hold_until = 0.0   # claims nothing before this (after an ELSEWHERE error)
        self._hold = Backoff(first=HOLD_FIRST, maximum=HOLD_MAX)
        self._next_degraded_claim = 0.0
        # Written to by wake() (the daemon's doorbell: work was queued); an idle worker's
        # wait ends when it is readable.
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)

    # -- the loop ----------------------------------------------------------------------

    def start(self) -> None:
        self.thread = threading.Thread(target=self.run, name=f"worker-{self.name}",
                                       daemon=True)
        self.thread.start()

    def join(self, timeout: float) -> bool:
        if self.thread is not None:
            self.thread.join(timeout)
            return not self.thread.is_alive()
        return True

    def run(self) -> None:
        """Loop the single steps until the stop event is set, then close the modem."""
        try:
            while not self.stop.is_set():
                try:
                    self.step()
                except Exception as exc:
                    if self.storage.met(exc, self.name) is not None:
                        # The disk or the database, not the modem: keep the modem and
                        # what is in hand, and try the write again in a while. What the
                        # modem reported meanwhile stays in its storage: read it again
                        # once the disk takes writes.
                        self._read_store_again = True
                        self.stop.wait(self.config.daemon.heartbeat_interval)
                        continue
                    # A bug or a database error must not end sending for good: say it
                    # loudly, drop the modem (it is re-opened) and go on after a pause.
                    log.exception("%s: unexpected error in the worker", self.name)
                    self._drop(health.unavailable(self.modem, "not_answering",
                                                  "worker error (see the daemon log)",
                                                  self.clock.now(), self.identity))
                    self.stop.wait(ERROR_PAUSE)
        finally:
            self._close()
            self._answer_probes()
            self.events.close()

    def step(self) -> None:
        """One turn of the loop: (re)connect, answer probes, poll, send or wait."""
        now = self.clock.now()
        if self.device is None:
            if now >= self.link.next_connect or self.link.port_came_back():
                self.connect()
            self._answer_probes()
            if self.device is None:
                self.stop.wait(min(AWAY_WAIT, max(0.0, self.link.next_connect - now)))
            return
        if self._read_store_again and self.storage.fault is None and self.sendable:
            self._read_store_again = False
            self._reread_store()
        if not self._probes.empty() or not self._tasks.empty() or \
                now >= self.link.next_poll or self._stored_due(now):
            # Each of these gives the modem commands: not between two sends, so the answer
            # to the last part is committed first.
            self.record_accepted()
            self._answer_probes()
            if now >= self.link.next_poll:
                self.poll_health()
            self.drain_events()
        if not self.process_one():
            self.record_accepted()
            # Held back only by the SIM's pace: wait just until it allows the next part.
            wait = IDLE_WAIT
            if self.sendable:
                now = self.clock.now()
                allowed = self._next_send_allowed_at(now)
                if allowed > now:
                    wait = min(wait, allowed - now)
            self.drain_events(timeout=wait, wake=self._wake_r)
            self._take_wakes()

    def _stored_due(self, now: float) -> bool:
        """Whether to read the messages the modem announced as stored before the next send.

        Reading takes commands between two sends, so while there is work they are read a
        batch at a time (one commit for the batch), or once the first has waited
        STORED_WAIT; an idle worker reads them at once (drain_events in step()).
        """
        waiting = self.device.announced if self.device is not None else 0
        if not waiting:
            self._announced_since = None
            return False
        if self._announced_since is None:
            self._announced_since = now
        return waiting >= STORED_BATCH or now - self._announced_since >= STORED_WAIT

    def wake(self) -> None:
        """Work was queued: an idle worker looks now instead of at the end of its wait."""
        try:
            os.write(self._wake_w, b"!")
        except BlockingIOError:
            return  # the pipe is full of wakes already: one is as good as many

    def _take_wakes(self) -> None:
        """Empty the wake pipe, so the next wait waits again."""
        taken = b"!"
        while taken:
            try:
                taken = os.read(self._wake_r, 512)
            except BlockingIOError:
                return  # all taken

    # -- the modem (appliance.modem_link) -------------------------------------------------

    @property
    def device(self) -> Device | None:
        return self.link.device

    @property
    def health(self) -> health.ModemHealth | None:
        return self.link.health

    @property
    def identity(self) -> health.Identity:
        return self.link.identity

    def _reread_store(self) -> None:
        """Read the replies and reports a storage fault kept in the modem's storage: they
        were announced once, and could not be saved then (nothing is deleted from the modem
        before it is saved). Setting the modem up again reads its stores."""
        if not self.link.reinitialise():
            return
        log.info("%s: reading the modem's storage again after the storage fault", self.name)
        self.drain_events()

    @property
    def sendable(self) -> bool:
        return self.link.sendable

    def connect(self) -> bool:
        """Open and initialise the modem and poll it; False (and a reason) when it fails."""
        return self.link.connect()

    def poll_health(self) -> health.ModemHealth | None:
        """Ask the modem how it is and record it; None when it stopped answering."""
        return self.link.poll_health()

    def heard(self, event: Any) -> None:
        self.link.heard(event)

    def _lost(self, exc: ModemError) -> None:
        self.link.lost(exc)

    def _drop(self, current: health.ModemHealth) -> None:
        self.link.drop(current)

    def _close(self) -> None:
        self.link.close()

    def _record(self, current: health.ModemHealth) -> None:
        self.link.record(current)

    def _modem_closing(self) -> None:
        """The link closes the modem: what it answered still counts, and the message claimed
        ahead goes back for another modem."""
        try:
            self.record_accepted()
        except sqlite3.Error:
            # Kept for the next write to try again; the modem is closed regardless.
            log.exception("%s: recording the last answer failed", self.name)
        self._give_back_ahead()

    def _with_error_rate(self, current: health.ModemHealth) -> health.ModemHealth:
        return dataclasses.replace(current, error_rate=self.error_rate)

    # -- how well this modem sends ------------------------------------------------------

    @property
    def error_rate(self) -> float | None:
        """The share of recent sends that failed for the modem's or the network's reasons;
        None until there are enough sends to tell."""
        if len(self._recent) < RATE_MIN_SENDS:
            return None
        return round(sum(self._recent) / len(self._recent), 2)

    @property
    def degraded(self) -> bool:
        rate = self.error_rate
        return rate is not None and rate >= RATE_FLAG

    def _sent_ok(self) -> None:
        self._note(error=False)
        self._hold.reset()
        self.link.send_answered()

    def _note(self, *, error: bool) -> None:
        was = self.degraded
        self._recent.append(error)
        self._failures_in_a_row = self._failures_in_a_row + 1 if error else 0
        if self.degraded != was and self.health is not None:
            log.warning("%s: %s (error rate %s over the last %d sends)", self.name,
                        "many sends fail: flagged" if self.degraded else "sends work again",
                        self.error_rate, len(self._recent))
            self._record(self.health)  # the dashboard and check see it now, not at the poll

    def _others_healthy(self) -> bool:
        """Whether another modem could take this one's work (ready, not flagged, fresh)."""
        stale = self.clock.now() - 3 * self.config.daemon.poll_interval
        return self.db.conn.execute(
            "SELECT 1 FROM modem_status WHERE name != ? AND ready = 1 AND checked_at >= ? "
            "AND coalesce(error_rate, 0) < ? LIMIT 1",
            [self.name, stale, RATE_FLAG]).fetchone() is not None

    def _may_claim(self, now: float) -> bool:
        """Not while held back after an ELSEWHERE error; one message per DEGRADED_GAP while
        this modem is flagged and another is healthy (it takes less work, not none: it is
        tried again, and recovers its rate by sending)."""
        if self.name == self.config.ring.modem:
            return False   # set aside for calls (appliance.ringing): it sends no SMS
        if now < self._hold_until:
            return False
        if self.degraded and self._others_healthy():
            if now < self._next_degraded_claim:
                return False
            self._next_degraded_claim = now + DEGRADED_GAP
        return True

    # -- probes from other processes (tsunagu check --live) --------------------------------

    def request_probe(self) -> Future:
        """A fresh poll of this modem, answered by the worker's own thread."""
        future: Future = Future()
        self._probes.put(future)
        return future

    def request_task(self, task: Callable[[Any], Any]) -> Future:
        """Run *task(device)* on this worker's thread, between two sends; its result (or
        its error) in the Future. A modem that is not open gets ModemUnavailable."""
        future: Future = Future()
        self._tasks.put((task, future))
        return future

    def _run_tasks(self) -> None:
        while True:
            try:
                task, future = self._tasks.get_nowait()
            except Empty:
                return
            if self.device is None or self.stop.is_set():
                future.set_exception(ModemUnavailable(
                    f"{self.name}: the modem is not open ({self._health_json().get('reason')})"))
                continue
            try:
                future.set_result(task(self.device))
            except ModemError as exc:
                future.set_exception(exc)
                if isinstance(exc, _modem_fault_errors()):
                    self._lost(exc)

    def _answer_probes(self) -> None:
        self._run_tasks()
        while True:
            try:
                future = self._probes.get_nowait()
            except Empty:
                return
            if self.stop.is_set():
                future.set_result(self._health_json())
                continue
            if self.device is None:
                self.connect()
            else:
                self.poll_health()
            future.set_result(self._health_json())

    def _health_json(self) -> dict:
        return self.link.health_json()

    # -- sending -----------------------------------------------------------------------

    def process_one(self) -> bool:
        """Claim and send one recipient message if one is due; True when one was handled.

        A message claimed ahead is begun in the same commit as the answer to the part sent
        before it, so that one commit sits between the two sends.
        """
        if not self.sendable:
            self.record_accepted()
            self._give_back_ahead()
            return False
        if not self._pace_allows_now():
            return False
        now = self.clock.now()
        claim, submits = self._ahead, self._ahead_submits
        begun = False
        if claim is not None:
            answers = list(self._unrecorded)
            # On a database error the claim stays ahead, to be handed back (_close).
            begun = self._until_written(lambda: outbox.begin_claimed(
                self.db, claim, now, accepted=answers)) == "begun"
            self._ahead = self._ahead_submits = None
            self._committed(answers)
            if not begun:  # cancelled, or handed back for an emergency
                claim = submits = None
        if claim is None:
            self.record_accepted()
            if not self._may_claim(now):
                return False
            claim = self._claim(now)
        if claim is None:
            return False
        self.send(claim, submits, begun=begun)
        return True

    def _claim(self, now: float) -> outbox.Claim | None:
        room = budget.remaining(self.db.conn, self.modem, now)
        return outbox.claim(self.db, self.name, now, max_parts=room,
                            daily_limit=self.modem.daily_limit)

    def _claim_ahead(self) -> None:
        """During a message's last part: claim the next one and make its PDUs."""
        self._ahead = self._claim(self.clock.now())
        if self._ahead is not None:
            try:
                self._ahead, self._ahead_submits = self._encode(self._ahead)
            except (ModemError, ValueError):
                self._ahead_submits = None  # send() encodes again and records why it fails

    def _give_back_ahead(self) -> None:
        if self._ahead is not None:
            try:
                outbox.unclaim(self.db, self._ahead, self.clock.now())
            except sqlite3.Error as exc:
                # Kept in hand: given back (or begun) once the database can be written;
                # after a stop, recovery queues it again (nothing of it was sent).
                if self.storage.met(exc, self.name) is None:
                    raise
                return
            self._ahead = self._ahead_submits = None

    def record_accepted(self, *, unprepare: bool = False) -> None:
        """Commit the answers to the parts sent that the next write has not taken."""
        if self._unrecorded:
            answers = list(self._unrecorded)
            outbox.record_answers(self.db, answers, unprepare=unprepare)
            self._committed(answers)

    def _committed(self, answers: list[outbox.Accepted]) -> None:
        """*answers* are in the database: forget them; a last part may end its broadcast."""
        for a in answers:
            self._unrecorded.remove(a)
            if a.last:
                self.events.refresh_later(a.claim.broadcast_id)

    def _encode(self, claim: outbox.Claim) -> tuple[outbox.Claim, list[pdu.SubmitPdu]]:
        """The message's parts, and the claim with the concatenation reference they carry:
        a resumed message keeps the one its first parts had (the phone joins them by it)."""
        if claim.reference is None:
            claim = dataclasses.replace(claim, reference=self._next_reference())
        submits = pdu.encode_submit(claim.phone, claim.text, reference=claim.reference,
                                    request_status_report=self.modem.request_status_reports)
        return claim, submits

    def send(self, claim: outbox.Claim, submits: list[pdu.SubmitPdu] | None = None, *,
             begun: bool = False) -> str:
        """Send every part of a claimed message; returns the message's new state.

        Each part is committed 'sending' before its AT+CMGS and 'submitted' (with its
        TP-MR) right after the modem's answer, in the next commit: with the next part's
        hand-over while the modem sends it, or with the next message's first mark. What
        else need not come first — the hand-over time, marking the next part of this
        message, claiming and encoding the next message, delivery reports — is done while
        the modem is busy sending: see outbox.part_in_flight. *begun*: its first part is
        already marked 'sending' (outbox.begin_claimed). A resumed message sends from
        claim.first_seq on: the parts before it reached the phone already.
        """
        if submits is None:
            try:
                claim, submits = self._encode(claim)
            except (ModemError, ValueError) as exc:
                why = f"cannot encode the message: {exc}"
                self._until_written(self.record_accepted)
                return self._finish(claim, self._until_written(lambda: outbox.retry_or_fail(
                    self.db, claim, 1, why, self.clock.now(), permanent=True, delay=0,
                    reason="encode")))
        prepared = begun  # this part is marked 'sending' already
        for submit in submits[claim.first_seq - 1:]:
            seq, last = submit.seq, submit.seq == submit.total
            if not prepared:
                self._until_written(self.record_accepted)
                if seq > claim.first_seq:
                    self._wait_for_pace()
                self._until_written(lambda: outbox.part_sending(self.db, claim, seq,
                                                                self.clock.now()))
            written = []

            def meanwhile(seq=seq, last=last) -> None:
                handed_at = self._last_handed_at = self.clock.now()
                answers = list(self._unrecorded)
                try:
                    outbox.part_in_flight(self.db, claim, seq, handed_at, prepare=not last,
                                          accepted=answers)
                    self._committed(answers)
                    written.append(seq)
                    self._drain_reports()
                    if last and self._ahead is None and not self.stop.is_set():
                        self._claim_ahead()
                except sqlite3.Error as exc:
                    # Nothing here may cost the answer to the part on the air. What was not
                    # written is written by the next commit (the answers are kept; the next
                    # part is then marked before its AT+CMGS), which meets the error again
                    # if it lasts.
                    if self.storage.met(exc, self.name) is None:
                        log.exception("%s: bookkeeping during a send failed", self.name)
            try:
                mr = self.device.send_pdu(submit, meanwhile=meanwhile)
            except ModemError as exc:
                self._until_written(self.record_accepted)
                return self._finish(claim, self._send_failed(claim, seq, exc))
            self.sent_parts += 1
            self._sent_ok()
            self._unrecorded.append(outbox.Accepted(claim, seq, mr, self.clock.now(), last))
            prepared = bool(written) and not last
            if prepared and not self._pace_allows_now():
                # A wait for the pace must not find the next part marked 'sending': a crash
                # then would make a message "in flight" that was only half sent.
                self.record_accepted(unprepare=True)
                prepared = False
        return "submitted"  # its broadcast is looked at once the answer is committed

    def _until_written(self, write_: Callable[[], T]) -> T:
        """*write_*, a write that must be in the database before the modem is given
        anything more, tried again while the storage refuses it (nothing is sent
        meanwhile). The daemon stopping ends the wait with the storage's error: what is
        in hand is then settled by recovery at the next start, like after a crash.
        """
        while True:
            try:
                return write_()
            except sqlite3.Error as exc:
                if self.storage.met(exc, self.name) is None or self.stop.is_set():
                    raise
            self.stop.wait(self.config.daemon.heartbeat_interval)

    def _pace_allows_now(self) -> bool:
        now = self.clock.now()
        return self._next_send_allowed_at(now) <= now

    def _next_send_allowed_at(self, now: float) -> float:
        if self._last_handed_at is None:
            return budget.next_send_allowed_at(self.db.conn, self.modem, now)
        # min(): a clock set back after the last send must not stop the SIM for hours.
        return min(self._last_handed_at, now) + 60.0 / self.modem.pace

    def _send_failed(self, claim: outbox.Claim, seq: int, exc: ModemError) -> str:
        """What a failed send means (appliance.error_policy): uncertain, retry, another
        modem, or fail the recipient; returns the message's new state."""
        now = self.clock.now()
        detail = f"{self.name}: {exc}"
        from modem.errors import PortGone
        fault = isinstance(exc, _modem_fault_errors())
        if fault and exc.handed_over is not False:
            # The modem may have sent the part before it went silent or away.
            self._note(error=True)
            state = self._until_written(lambda: outbox.uncertain(
                self.db, claim, seq, detail, now, policy=self.config.daemon.resend_uncertain))
            if self.device is not None:
                self.poll_health()  # a single missed answer need not cost the modem
            if self.device is not None and not isinstance(exc, PortGone):
                self.link.send_unanswered()  # twice in a row: hung, the ladder is climbed
            return state
        if fault:
            # It failed before the PDU was written (no "> " prompt, the port gone): nothing
            # reached the network, so it is not uncertain — it goes again.
            verdict = error_policy.for_driver(
                "port_gone_before" if isinstance(exc, PortGone) else "no_prompt")
        else:
            verdict = error_policy.for_send_error(exc)
        if verdict.action != error_policy.FAIL:
            self._note(error=True)
        current = self.health
        if verdict.action == error_policy.ELSEWHERE or verdict.give_up:
            # Is the modem itself the problem? An error of the modem, its SIM or an unknown
            # one may be the first sign. (The network's answer — congestion — or the
            # recipient's — an unknown number — says the modem works: no poll, no time.)
            current = self.poll_health() if self.device is not None else None
        if verdict.action == error_policy.ELSEWHERE or current is None or not current.sendable:
            why = current.reason if current is not None and current.reason else verdict.en
            self._until_written(lambda: outbox.release(
                self.db, claim, seq, f"{detail} ({why}) — handed back", now,
                reason=verdict.key))
            self._hold_until = now + self._hold.failed()
            return "queued"
        delay = self._retry_delay(claim, verdict)
        # Written before the modem is given anything else: the outcome must not be lost.
        return self._until_written(lambda: outbox.retry_or_fail(
            self.db, claim, seq, f"{detail} ({verdict.en})", now,
            permanent=verdict.action == error_policy.FAIL, give_up=verdict.give_up,
            max_attempts=self.config.daemon.max_attempts, delay=delay, reason=verdict.key))

    def _retry_delay(self, claim: outbox.Claim, verdict: error_policy.Verdict) -> float:
        """A recipient's own back-off when the cause is theirs (or unknown); for the
        network's state, the modem's run of failures: none while its other sends go
        through, doubling while it fails again and again (a network that refuses
        everything is given room, one that refuses one send in five costs no time)."""
        daemon = self.config.daemon
        if verdict.personal:
            attempts = claim.attempts
        else:
            # A few failures in a row happen by chance when one send in five fails; after
            # FAILURES_BEFORE_BACKOFF of them the network is taken to refuse everything.
            attempts = self._failures_in_a_row - FAILURES_BEFORE_BACKOFF + 1
        return outbox.retry_delay(attempts, daemon.retry_backoff, daemon.retry_backoff_max)

    def _finish(self, claim: outbox.Claim, state: str) -> str:
        self.events.refresh_later(claim.broadcast_id)
        return state

    def _wait_for_pace(self) -> None:
        """Between two parts of one message: keep the SIM's pace, reading events meanwhile."""
        while True:
            now = self.clock.now()
            allowed = self._next_send_allowed_at(now)
            if allowed <= now:
                return
            self.drain_events()
            self.clock.sleep(min(allowed - now, IDLE_WAIT * 2))

    def _next_reference(self) -> int:
        self._reference = (self._reference + 1) % 256
        return self._reference

    # -- what the modem reports ----------------------------------------------------------

    def _drain_reports(self) -> None:
        """While the modem sends: what came whole in a URC (delivery reports, replies routed
        straight to us). Stored ones need a command and wait for drain_events()."""
        try:
            while (event := self.device.next_event(0.0, read_stored=False)) is not None:
                self.events.handle(self.device, event)
        except ModemError as exc:
            # The port is going: the send in flight finds out and says so.
            log.info("%s: reading reports during a send: %s", self.name, exc)

    def drain_events(self, timeout: float = 0.0, *, wake: int | None = None) -> int:
        """Handle every event the modem has queued (waiting up to *timeout* for the first,
        or until *wake* is readable)."""
        handled = 0
        device = self.device
        try:
            while self.device is not None:
                try:
                    event = self.device.next_event(timeout, wake=wake)
                    if event is None:
                        break
                    self.events.handle(self.device, event)
                    self.heard(event)
                except ModemError as exc:
                    self._lost(exc)
                    break
                handled += 1
                timeout = 0.0
        finally:
            self._save_stored_reports(device)
            if device is not None and not device.announced:
                # All read: the next announcement waits its own STORED_WAIT (_stored_due),
                # not what the first of this batch waited, which would read one at a time.
                self._announced_since = None
        return handled

    def _save_stored_reports(self, device: Device | None) -> None:
        """Save the reports read from the modem's storage in one commit, then delete them
        there (a modem gone meanwhile keeps them: they are read again when it is back)."""
        try:
            self.events.save_stored_reports(device)
        except ModemError as exc:
            log.info("%s: deleting saved reports from the modem: %s", self.name, exc)

