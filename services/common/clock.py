"""The wall clock, read only at the edges (ingest stamps, dispatcher outcomes, scheduler)."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def epoch_ms(value: datetime | int) -> int:
    """Exact epoch milliseconds of a decoded ``timestamp-millis`` (no float rounding).

    fastavro decodes the logical type to a datetime; a plain int passes through.
    """
    if isinstance(value, int):
        return value
    return int((value - _EPOCH) // _MS)
