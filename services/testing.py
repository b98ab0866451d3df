"""Helpers for tests and benchmarks of signalbox (as ``structlog.testing`` is for structlog).

Shipped with the package so that tests/ and bench/ share one copy; production code
never imports this module.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Collection, Sequence
from typing import TypeVar

from signalbox.dispatcher.policy.clock import FixedClock
from signalbox.ingest.producer import Message, ProduceError

T = TypeVar("T")


class ManualClock(FixedClock):
    """A clock that moves only when told to: tests drive quiet hours, caps and breakers."""

    def advance(self, seconds: float) -> None:
        self._now_ms += int(seconds * 1000)
        self._mono += seconds

    def set(self, now_ms: int) -> None:
        self._mono += max(0, now_ms - self._now_ms) / 1000
        self._now_ms = now_ms


class InMemoryEventProducer:
    """An :class:`~signalbox.ingest.producer.EventProducer` that keeps what it is sent:
    ingest's HTTP layer (auth, validation, limits) tested without a broker."""

    def __init__(self, failure: ProduceError | None = None, problem: str | None = None) -> None:
        #: Every acknowledged message, in order.
        self.sent: list[Message] = []
        #: Raised by :meth:`send_all` instead of acknowledging (a broker refusing).
        self.failure = failure
        #: What :meth:`check` answers (``None``: ready).
        self.problem = problem

    async def send_all(self, messages: Sequence[Message]) -> None:
        if self.failure is not None:
            raise self.failure
        self.sent.extend(messages)

    async def check(self, topics: Collection[str]) -> str | None:
        return self.problem


async def eventually(probe: Callable[[], Awaitable[T]], done: Callable[[T], bool] = bool,
                     *, within_s: float = 10.0, every_s: float = 0.1) -> T:
    """The first result of ``probe()`` that is ``done``, or the last one after ``within_s``.

    For state another task or process reaches in its own time (a topic in every broker's
    metadata, a keys file re-read): the caller asserts on what is returned, so a timeout
    fails showing what was last seen rather than a bare "timed out".
    """
    deadline = time.monotonic() + within_s
    while True:
        result = await probe()
        if done(result) or time.monotonic() > deadline:
            return result
        await asyncio.sleep(every_s)
