"""The wall clock, read only at the edges (ingest stamps, dispatcher outcomes, scheduler),
and the injectable :class:`Clock` the delivery policy reads, so tests can move time
(:class:`signalbox.testing.ManualClock`)."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Protocol

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



class Clock(Protocol):
    def now_ms(self) -> int:
        """Wall-clock epoch milliseconds (quiet hours, caps, due times)."""
        ...

    def monotonic(self) -> float:
        """Seconds for intervals (breakers, rate limits); never goes back."""
        ...


class SystemClock:
    def now_ms(self) -> int:
        return time.time_ns() // 1_000_000

    def monotonic(self) -> float:
        return time.monotonic()


class FixedClock:
    """A clock stopped at one instant: a preview is built as if sent then."""

    def __init__(self, now_ms: int, monotonic: float = 1000.0) -> None:
        self._now_ms = now_ms
        self._mono = monotonic

    def now_ms(self) -> int:
        return self._now_ms

    def monotonic(self) -> float:
        return self._mono
