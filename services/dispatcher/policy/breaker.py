"""Circuit breakers, one per endpoint: stop calling a provider that keeps failing.

Closed → (``failures`` consecutive failures) → open for ``cooldown`` → half-open:
one trial call; its success closes the breaker, its failure opens it again.
While open, commands go to the retry path without touching the network.
"""

from __future__ import annotations

from dataclasses import dataclass

from signalbox.common.clock import Clock


@dataclass
class _State:
    failures: int = 0
    open_until: float = 0.0
    trial_running: bool = False


class Breakers:
    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._states: dict[str, _State] = {}

    def wait_seconds(self, endpoint: str, failures: int, cooldown: float) -> float:
        """0 if a call may go ahead now (claiming the half-open trial), else seconds to wait."""
        wait = self.peek_seconds(endpoint, failures, cooldown)
        if wait == 0:
            self.claim(endpoint, failures)
        return wait

    def peek_seconds(self, endpoint: str, failures: int, cooldown: float) -> float:
        """:meth:`wait_seconds` without claiming anything (the pure delivery core asks this)."""
        s = self._states.get(endpoint)
        if s is None or s.failures < failures or failures == 0:
            return 0.0
        left = s.open_until - self._clock.monotonic()
        if left > 0:
            return left
        if s.trial_running:
            return max(cooldown / 4, 0.05)
        return 0.0

    def claim(self, endpoint: str, failures: int) -> None:
        """A call goes ahead now (peeked 0): if the breaker is half-open, it is the trial."""
        s = self._states.get(endpoint)
        if s is not None and failures and s.failures >= failures:
            s.trial_running = True

    def succeeded(self, endpoint: str) -> None:
        self._states.pop(endpoint, None)

    def failed(self, endpoint: str, failures: int, cooldown: float) -> bool:
        """Record a failure; True when this opened the breaker."""
        s = self._states.setdefault(endpoint, _State())
        s.failures += 1
        s.trial_running = False
        if failures and s.failures >= failures:
            s.open_until = self._clock.monotonic() + cooldown
            return True
        return False
