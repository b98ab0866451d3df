"""The time source of the delivery policy: injectable, so tests can move the clock
(:class:`signalbox.testing.ManualClock`)."""

from __future__ import annotations

import time
from typing import Protocol


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
