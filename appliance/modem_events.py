"""What a modem reports unprompted, saved: delivery reports, replies — each first offered to
appliance.sms_commands, as a staff phone's command is not a patient's reply — and ETWS
warnings (appliance.etws).

Both wait in the modem's storage (announced with +CDSI and +CMTI; see
modem.device.cnmi_setting) until they are saved here. Save first, then delete from the
modem's store: a crash in between reads the message again at the next start (replies.record
stores it once, a report applied twice changes nothing the second time), never loses it.
Reports read together are saved in one commit (save_stored_reports).

A report routed straight to us (+CDS, from a modem set up by someone else) and the "is the
broadcast done?" refresh are written by a recorder thread with its own connection, in
batches, while the worker is busy waiting for the modem's next send: off the send path,
which is then only the writes crash safety needs (claim, part sending, part submitted).
"""
from __future__ import annotations

import logging
import queue
import threading

import sqlite_utils

from modem import device as dev
from modem.errors import CommandError

from . import etws, replies, reports, sms_commands
from .db import write

log = logging.getLogger(__name__)

GATHER_SECONDS = 0.25  # reports wait at most this long to be written with others


def _unix(moment) -> float | None:
    return moment.timestamp() if moment is not None else None


class ModemEvents:
    def __init__(self, db: sqlite_utils.Database, modem: str, clock, *,
                 database: str | None = None, storage=None, config=None) -> None:
        self.db = db
        self.modem = modem
        self.clock = clock
        self.config = config  # appliance.config.Config: commands and warnings need it
        self.storage = storage  # appliance.storage.Watch: told of writes the disk refuses
        self._jobs: queue.SimpleQueue = queue.SimpleQueue()
        self._stored_reports: list[dev.StatusReport] = []  # read, not yet saved
        self._stop_gathering = threading.Event()
        self._recorder: threading.Thread | None = None
        if database is not None:
            self._recorder = threading.Thread(target=self._record_loop, args=(database,),
                                              name=f"recorder-{modem}", daemon=True)
            self._recorder.start()

    def close(self) -> None:
        """Write what is still queued, then stop the recorder."""
        if self._recorder is not None:
            self._stop_gathering.set()
            self._jobs.put(None)
            self._recorder.join(timeout=30)
            self._recorder = None

    def refresh_later(self, broadcast_id: int) -> None:
        """Mark the broadcast done if nobody is left to send to (soon, off the send path)."""
        if self._recorder is None:
            from . import broadcasts
            with write(self.db) as conn:
                broadcasts.refresh_state(conn, broadcast_id, self.clock.now())
        else:
            self._jobs.put(("refresh", broadcast_id))

    def _record_loop(self, database: str) -> None:
        from .db import connect
        db = connect(database, migrate=False)
        unwritten: list = []  # kept while the disk refuses them, written once it takes them
        try:
            while True:
                try:
                    jobs = [self._jobs.get(timeout=self._retry_after() if unwritten
                                           else None)]
                except queue.Empty:
                    jobs = []
                if jobs and jobs[0] is not None:
                    # Gather a little: one commit for many reports takes the database's write
                    # lock away from the sending worker once, not once per report.
                    self._stop_gathering.wait(GATHER_SECONDS)
                while True:  # everything that queued up meanwhile: one transaction
                    try:
                        jobs.append(self._jobs.get_nowait())
                    except queue.Empty:
                        break
                stop = None in jobs
                unwritten += [j for j in jobs if j is not None]
                try:
                    self._apply(db, unwritten)
                except Exception as exc:
                    if self.storage is None or self.storage.met(exc, self.modem) is None:
                        # A database error must not silently end report recording for good.
                        log.exception("%s: recording delivery reports failed", self.modem)
                        unwritten = []
                    elif stop:
                        log.error("%s: %d delivery report(s) could not be written before the "
                                  "stop (the disk): those recipients stay 'submitted'",
                                  self.modem, len(unwritten))
                else:
                    unwritten = []
                if stop:
                    return
        finally:
            db.conn.close()

    def _retry_after(self) -> float:
        return self.storage.config.daemon.heartbeat_interval if self.storage else 1.0

    def _apply(self, db: sqlite_utils.Database, jobs: list) -> None:
        from . import broadcasts
        now = self.clock.now()
        refresh: set[int] = set()
        with write(db) as conn:
            for kind, value in jobs:
                if kind == "refresh":
                    refresh.add(value)
                    continue
                part = self._report(conn, value, now)
                if part is not None:
                    refresh.add(self._broadcast_of(conn, part))
            for broadcast_id in refresh - {None}:
                broadcasts.refresh_state(conn, broadcast_id, now)

    def _report(self, conn, event: dev.StatusReport, now: float) -> int | None:
        part = reports.record(conn, self.modem, mr=event.mr, number=event.recipient,
                              status=event.status, outcome=event.outcome,
                              discharge_at=_unix(event.discharge_at), now=now)
        if part is None:
            log.info("%s: delivery report for TP-MR %d matches no part", self.modem, event.mr)
        return part

    @staticmethod
    def _broadcast_of(conn, part_id: int) -> int | None:
        row = conn.execute("SELECT r.broadcast_id FROM parts p JOIN recipients r ON "
                           "r.id = p.recipient_id WHERE p.id = ?", [part_id]).fetchone()
        return row[0] if row else None

    def sweep(self, device) -> int:
        """Handle what is already waiting (stored while we were away), without waiting."""
        handled = 0
        try:
            while (event := device.next_event(0.0)) is not None:
                self.handle(device, event)
                handled += 1
        finally:
            self.save_stored_reports(device)
        return handled

    def handle(self, device, event) -> None:
        """Save one event. A report read from the modem's storage waits for
        save_stored_reports(), which saves the reports read together in one commit."""
        now = self.clock.now()
        if isinstance(event, dev.StatusReport) and event.location is None \
                and self._recorder is not None:
            self._jobs.put(("report", event))
        elif isinstance(event, dev.StatusReport) and event.location is not None:
            self._stored_reports.append(event)
        elif isinstance(event, dev.StatusReport):
            self._save_reports([event])
        elif isinstance(event, dev.Inbound):
            with write(self.db) as conn:
                command = self.config is not None and sms_commands.receive(
                    conn, self.config, sender=event.sender, text=event.text,
                    sent_at=_unix(event.sent_at), now=now)
                if not command:
                    inbound_id = replies.record(conn, self.modem, sender=event.sender,
                                                text=event.text, sent_at=_unix(event.sent_at),
                                                now=now)
            if command:
                log.info("%s: command from staff phone %s", self.modem, event.sender[-4:])
            else:
                log.info("%s: inbound message %d from %s", self.modem, inbound_id,
                         event.sender[-4:])
            self._delete(device, list(event.locations))
        elif isinstance(event, dev.CellBroadcast):
            if self.config is not None and self.config.etws.enabled:
                with write(self.db) as conn:
                    etws.record(conn, self.config, self.modem, event, now)
        else:
            log.debug("%s: %s", self.modem, getattr(event, "line", event))

    def save_stored_reports(self, device) -> int:
        """Save the reports read from the modem's storage, then delete them there: a crash
        in between reads them again at the next start (a report applied twice changes
        nothing the second time)."""
        stored, self._stored_reports = self._stored_reports, []
        if stored:
            self._save_reports(stored)
            self._delete(device, [event.location for event in stored])
        return len(stored)

    def _save_reports(self, events: list) -> None:
        from . import broadcasts
        now = self.clock.now()
        refresh: set[int] = set()
        with write(self.db) as conn:
            for event in events:
                part = self._report(conn, event, now)
                if part is not None and (bid := self._broadcast_of(conn, part)):
                    refresh.add(bid)
            for bid in refresh:
                broadcasts.refresh_state(conn, bid, now)

    def _delete(self, device, locations) -> None:
        for store, index in locations:
            try:
                device.delete_stored(index, store)
            except CommandError as exc:
                # Left in the store, it is read (and stored once) again at the next start.
                log.warning("%s: could not delete stored message %s/%d: %s", self.modem,
                            store, index, exc)
