"""What a modem reports unprompted, saved: delivery reports and replies.

Save first, then delete from the modem's store: a crash in between reads the message again
at the next start (replies.record stores it once), never loses it.
"""
from __future__ import annotations

import logging

import sqlite_utils

from modem import device as dev
from modem.errors import CommandError

from . import replies, reports
from .db import write

log = logging.getLogger(__name__)


def _unix(moment) -> float | None:
    return moment.timestamp() if moment is not None else None


class ModemEvents:
    def __init__(self, db: sqlite_utils.Database, modem: str, clock) -> None:
        self.db = db
        self.modem = modem
        self.clock = clock

    def sweep(self, device) -> int:
        """Handle what is already waiting (stored while we were away), without waiting."""
        handled = 0
        while (event := device.next_event(0.0)) is not None:
            self.handle(device, event)
            handled += 1
        return handled

    def handle(self, device, event) -> None:
        now = self.clock.now()
        if isinstance(event, dev.StatusReport):
            with write(self.db) as conn:
                part = reports.record(conn, self.modem, mr=event.mr, number=event.recipient,
                                      status=event.status, outcome=event.outcome,
                                      discharge_at=_unix(event.discharge_at), now=now)
                if part is not None:
                    self._refresh(conn, part, now)
            if part is None:
                log.info("%s: delivery report for TP-MR %d matches no part", self.modem, event.mr)
            self._delete(device, [event.location] if event.location else [])
        elif isinstance(event, dev.Inbound):
            with write(self.db) as conn:
                inbound_id = replies.record(conn, self.modem, sender=event.sender,
                                            text=event.text, sent_at=_unix(event.sent_at),
                                            now=now)
            log.info("%s: inbound message %d from %s", self.modem, inbound_id, event.sender[-4:])
            self._delete(device, list(event.locations))
        else:
            log.debug("%s: %s", self.modem, getattr(event, "line", event))

    @staticmethod
    def _refresh(conn, part_id: int, now: float) -> None:
        from . import broadcasts
        row = conn.execute("SELECT r.broadcast_id FROM parts p JOIN recipients r ON "
                           "r.id = p.recipient_id WHERE p.id = ?", [part_id]).fetchone()
        if row:
            broadcasts.refresh_state(conn, row[0], now)

    def _delete(self, device, locations) -> None:
        for store, index in locations:
            try:
                device.delete_stored(index, store)
            except CommandError as exc:
                # Left in the store, it is read (and stored once) again at the next start.
                log.warning("%s: could not delete stored message %s/%d: %s", self.modem,
                            store, index, exc)
