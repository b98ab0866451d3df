"""Per-channel rate limit (token bucket) and concurrency (semaphore)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from signalbox.common.clock import Clock
from signalbox.dispatcher.policy.rules import ChannelPolicy


class TokenBucket:
    """``rate`` tokens per second, at most ``burst`` saved up; rate 0 means unlimited."""

    def __init__(self, rate: float, burst: int, clock: Clock) -> None:
        self.rate, self.burst, self._clock = rate, burst, clock
        self._tokens = float(burst)
        self._at = clock.monotonic()

    def take(self) -> float:
        """Take a token: 0.0 when granted now, else the seconds until one would be there.

        A refused caller takes nothing; it asks again after the wait.
        """
        if self.rate <= 0:
            return 0.0
        now = self._clock.monotonic()
        self._tokens = min(float(self.burst), self._tokens + (now - self._at) * self.rate)
        self._at = now
        if self._tokens >= 1:
            self._tokens -= 1
            return 0.0
        return (1 - self._tokens) / self.rate


class ChannelLimiter:
    """At most ``concurrency`` calls at once and ``rate_per_second`` calls per second.

    ``backlog`` says how many callers wait, so the worker can send overflow to the
    retry path instead of letting one slow channel fill every slot of the process.
    """

    def __init__(self, policy: ChannelPolicy, clock: Clock) -> None:
        self._sem = asyncio.Semaphore(policy.concurrency)
        self._bucket = TokenBucket(policy.rate_per_second, policy.burst, clock)
        self.backlog = 0
        self.max_backlog = policy.concurrency * 8

    @property
    def full(self) -> bool:
        return self.backlog >= self.max_backlog

    async def _token(self) -> None:
        wait = self._bucket.take()
        while wait > 0:  # a clock-driven wait: there is no event to wait for
            await asyncio.sleep(wait)
            wait = self._bucket.take()

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        self.backlog += 1
        try:
            await self._sem.acquire()
        finally:
            self.backlog -= 1
        try:
            await self._token()
            yield
        finally:
            self._sem.release()
