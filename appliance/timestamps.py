"""Times as other systems write them: RFC 3339 in the clinic's zone (2027-01-15T17:00:00+09:00).

The database keeps Unix seconds; the API and the webhooks speak RFC 3339 with the offset, so
a receiver never has to guess the zone. A time without an offset is taken as the clinic's
local time, as the clinic's own systems write it.
"""
from __future__ import annotations

import datetime as dt
import zoneinfo


def to_text(at: float | None, zone: zoneinfo.ZoneInfo) -> str | None:
    if at is None or at == float("inf"):
        return None
    return dt.datetime.fromtimestamp(at, zone).isoformat(timespec="seconds")


def parse(text: str, zone: zoneinfo.ZoneInfo) -> float:
    """Unix seconds from '2027-01-15T17:00:00+09:00', '…Z', or a local '2027-01-15 17:00'.

    Raises ValueError with a message that says what is expected.
    """
    if not isinstance(text, str) or not text.strip():
        raise ValueError("a date and time is required, e.g. 2027-01-15T17:00:00+09:00")
    value = text.strip()
    if value.endswith(("Z", "z")):
        value = value[:-1] + "+00:00"
    try:
        moment = dt.datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{text!r} is not a date and time such as 2027-01-15T17:00:00+09:00"
                         ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone)
    return moment.timestamp()
