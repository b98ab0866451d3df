"""The time source of the delivery policy: injectable, so tests can move the clock."""

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


class ManualClock:
    """A clock that moves only when told to: the test seam."""

    def __init__(self, now_ms: int, monotonic: float = 1000.0) -> None:
        self._now_ms = now_ms
        self._mono = monotonic

    def now_ms(self) -> int:
        return self._now_ms

    def monotonic(self) -> float:
        return self._mono

    def advance(self, seconds: float) -> None:
        self._now_ms += int(seconds * 1000)
        self._mono += seconds

    def set(self, now_ms: int) -> None:
        self._mono += max(0, now_ms - self._now_ms) / 1000
        self._now_ms = now_ms
