"""Helpers for tests and benchmarks of signalbox (as ``structlog.testing`` is for structlog).

Shipped with the package so that tests/ and bench/ share one copy; production code
never imports this module.
"""

from __future__ import annotations

from signalbox.dispatcher.policy.clock import FixedClock


class ManualClock(FixedClock):
    """A clock that moves only when told to: tests drive quiet hours, caps and breakers."""

    def advance(self, seconds: float) -> None:
        self._now_ms += int(seconds * 1000)
        self._mono += seconds

    def set(self, now_ms: int) -> None:
        self._mono += max(0, now_ms - self._now_ms) / 1000
        self._now_ms = now_ms
