"""Who looked at patients' data, and when: the reads the audit log keeps (MHLW guideline,
access records), next to the changes it keeps anyway.

A read is recorded on its own, so two things differ from a change's audit row:

- **The page is shown whatever the storage says.** On a full or read-only SD card the row
  cannot be written; the call list and the contacts are then what staff phone patients
  from, so a record of the read must never keep them from it. The read goes to the
  process log (the journal) instead, and the page carries the storage banner that says
  what is wrong and what to do (webui.storage_errors).
- **A page that reloads itself is one read.** A live broadcast page without JavaScript
  reloads every few seconds; the same person reading the same thing again within
  REREAD_SECONDS adds no row.
"""
from __future__ import annotations

import logging
import sqlite3
import threading
import time
from typing import Any

from flask import current_app

from appliance import audit

from . import db
from .auth import actor, remote

log = logging.getLogger(__name__)

REREAD_SECONDS = 10 * 60
_lock = threading.Lock()


def _last_reads() -> dict[tuple, float]:
    """(who, what, which) → when last recorded, for this app (its process)."""
    return current_app.extensions.setdefault("tsunagu_reads", {})


def record_read(action: str, *, key: Any = None, who: str | None = None,
                **detail: Any) -> None:
    """Record that the user (or *who*: an API token's actor) read *action*'s data (*key*:
    what was read — a broadcast's id, a search — for telling a re-read from a new read;
    *detail* goes in the row)."""
    who = who or actor()
    seen = (who, action, key)
    at = time.monotonic()
    last_reads = _last_reads()
    with _lock:
        if at - last_reads.get(seen, -REREAD_SECONDS) < REREAD_SECONDS:
            return
        if len(last_reads) > 10_000:   # a long-running process: forget the old ones
            for old in [k for k, t in last_reads.items() if at - t >= REREAD_SECONDS]:
                del last_reads[old]
    try:
        audit.record(db(), who, action, remote(), **detail)
    except (sqlite3.Error, OSError) as exc:
        from . import storage_errors
        if storage_errors.met(exc) is None:
            raise
        # The journal keeps what the audit log could not; the banner says why.
        log.warning("read not in the audit log (the storage refused it): %s %s %s from %s",
                    who, action, detail, remote())
        return
    with _lock:
        last_reads[seen] = at
