"""Is the broker answering? Readiness that notices a lost broker within seconds.

The Kafka clients retry a lost broker quietly and forever, so nothing in the
delivery loop fails when it is gone; readiness has to ask. Every ``interval_s``
a metadata request for one topic goes to the brokers the client knows until one
answers, bounded by ``timeout_s``; with no answer for ``grace_s`` the service is not
ready, and it is ready again at the first answer. ``signalbox_broker_up`` follows the
same fact.

Why 2.5 s: a lost broker shows in /readyz (and the gauge) within about three seconds,
well inside any probe period, while one failed probe (a dropped connection, a leader
moving) does not flip it: the next, a second later, still answers within the grace.
The Kubernetes probe's ``failureThreshold`` adds its own patience on top.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Callable
from typing import Any

from aiokafka.client import AIOKafkaClient
from aiokafka.protocol.metadata import MetadataRequest

from signalbox.common.metrics import BROKER_UP


class BrokerWatch:
    def __init__(self, topic: str, interval_s: float = 1.0, timeout_s: float = 2.0,
                 grace_s: float = 2.5, clock: Callable[[], float] = time.monotonic) -> None:
        self.topic = topic
        self.interval_s, self.timeout_s, self.grace_s = interval_s, timeout_s, grace_s
        self._clock = clock
        self._answered_at: float | None = None
        self._error = ""

    def problem(self) -> str | None:
        """None while the broker answers; otherwise for how long it has not, and why."""
        if self._answered_at is None:
            return f"broker not reached yet{f' ({self._error})' if self._error else ''}"
        silent = self._clock() - self._answered_at
        if silent <= self.grace_s:
            return None
        return f"no answer from the broker for {silent:.1f}s ({self._error or 'timed out'})"

    async def probe(self, client: AIOKafkaClient) -> None:
        """Ask the known brokers in random order until one answers, all within
        ``timeout_s``: one broker down in a cluster (a rolling restart) answers "refused"
        at once and the next one is asked, so readiness does not flap with it."""
        nodes = [b.nodeId for b in client.cluster.brokers()]
        random.shuffle(nodes)
        try:
            if not nodes:
                raise ConnectionError("no broker in the cluster metadata")
            async with asyncio.timeout(self.timeout_s):
                await _first_answer(client, nodes, MetadataRequest([self.topic]))
        except Exception as exc:  # any failure to get an answer is the answer
            self._error = f"{type(exc).__name__}: {exc}"[:200]
        else:
            self._answered_at, self._error = self._clock(), ""

    async def run(self, client: AIOKafkaClient, stop: asyncio.Event) -> None:
        """Probe until ``stop`` is set. ``signalbox_broker_up`` is this watch's verdict,
        computed when scraped (as /readyz computes it when asked), so the two agree."""
        BROKER_UP.set_function(lambda: 0.0 if self.problem() else 1.0)
        while not stop.is_set():
            await self.probe(client)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.interval_s)


async def _first_answer(client: AIOKafkaClient, nodes: list[int], request: Any) -> None:
    """Send ``request`` to each of ``nodes`` in turn until one answers; the last error
    if none does."""
    for n, node in enumerate(nodes, 1):
        try:
            await client.send(node, request)
            return
        except Exception:
            if n == len(nodes):
                raise
