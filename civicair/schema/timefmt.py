"""How civicair writes times: ISO 8601, UTC with ``Z``, whole seconds.

A reading's time is the end of its window in UTC seconds since the epoch; the API,
the archive and the SensorThings view print it with :func:`iso_utc` (or, where a
client asked for a time zone, :func:`format_time` with that zone: an offset instead
of ``Z``).
"""

from __future__ import annotations

import time
from datetime import datetime, tzinfo

ISO_UTC = "%Y-%m-%dT%H:%M:%SZ"


def iso_utc(epoch_s: int | float) -> str:
    """``2026-11-29T13:05:00Z`` for an epoch time [s]; a fraction of a second is dropped."""
    return time.strftime(ISO_UTC, time.gmtime(epoch_s))


def format_time(epoch_s: int | float, tz: tzinfo | None = None) -> str:
    """:func:`iso_utc`, or ISO 8601 with the zone's offset (``2026-11-29T14:05:00+01:00``)."""
    if tz is None:
        return iso_utc(epoch_s)
    return datetime.fromtimestamp(epoch_s, tz).isoformat()
