"""Consumer lag of the partitions a process owns, as the broker sees it.

Lag here is *end offset minus committed offset*: the records a replacement would have
to read if this process died now. Both numbers come from the broker, every
``interval_s``: the group's committed offsets (one OffsetFetch to the group
coordinator) and the partitions' end offsets (one ListOffsets per partition leader,
``read_committed``: the last stable offset, so an open transaction is not counted).
Three small requests every ten seconds, whatever the traffic.

Why not the consumer's own ``highwater - position``: a consumer learns the high
watermark only from fetch responses, so one that is stuck, paused (the dispatcher's
retry tiers) or in another thread (Faust's) reports a stale or zero lag exactly when
lag matters; and its position runs ahead of what is committed (records in flight).

Each process exports only the partitions it owns now (summed over replicas, the
group's lag counts each partition once); a partition it no longer owns loses its
series at once (:meth:`LagCollector.keep_only`, from the rebalance callbacks) or at the
next collection. A partition nobody owns has no series: "a service not ready" covers it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Iterable, Mapping

import structlog
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from signalbox.common.kafka import aiokafka_options
from signalbox.common.metrics import CONSUMER_LAG
from signalbox.common.settings import KafkaSettings

log = structlog.get_logger(__name__)

#: Seconds between collections: under a usual scrape interval (15-30 s), so each scrape
#: sees a value at most this old, and three small requests per interval cost nothing.
INTERVAL_S = 10.0
#: Bound of one collection (the broker may be gone: readiness reports that).
TIMEOUT_S = 5.0


def lag_of(committed: Mapping[TopicPartition, int], ends: Mapping[TopicPartition, int],
           beginnings: Mapping[TopicPartition, int]) -> dict[TopicPartition, int]:
    """Records past the committed offset on each partition of ``ends``. Without a
    committed offset (``-1`` or absent) the group starts at the beginning
    (``auto.offset.reset=earliest``), so all records still on the partition count."""
    lag = {}
    for tp, end in ends.items():
        at = committed.get(tp, -1)
        if at < 0:
            at = beginnings.get(tp, 0)
        lag[tp] = max(0, end - at)
    return lag


class LagCollector:
    """Export ``signalbox_consumer_lag_records`` for group ``group``'s partitions that
    ``owned()`` returns, every ``interval_s`` until stopped."""

    def __init__(self, kafka: KafkaSettings, group: str,
                 owned: Callable[[], Iterable[TopicPartition]],
                 interval_s: float = INTERVAL_S, timeout_s: float = TIMEOUT_S) -> None:
        self.kafka, self.group, self.owned = kafka, group, owned
        self.interval_s, self.timeout_s = interval_s, timeout_s
        self._exported: set[TopicPartition] = set()
        self._admin: AIOKafkaAdminClient | None = None
        self._offsets: AIOKafkaConsumer | None = None

    async def run(self, stop: asyncio.Event) -> None:
        """Collect until ``stop`` is set; the series are removed when it returns. Never
        raises: a broker unreachable at start is tried again at the next interval."""
        try:
            while not stop.is_set():
                try:
                    await self.start()
                    await self.collect_once()
                except Exception as exc:
                    log.warning("lag_collector_failed", group=self.group,
                                error=f"{type(exc).__name__}: {exc}"[:200])
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self.interval_s)
        finally:
            await self.stop()

    async def start(self) -> None:
        """Connect the two clients (an admin client, a consumer outside any group); a
        client already started is left as it is."""
        options = aiokafka_options(self.kafka)
        if self._admin is None:
            admin = AIOKafkaAdminClient(**options, client_id=f"{self.group}-lag")
            await self._bounded(admin.start(), admin.close)
            self._admin = admin
        if self._offsets is None:
            offsets = AIOKafkaConsumer(**options, group_id=None, enable_auto_commit=False,
                                       isolation_level="read_committed",
                                       client_id=f"{self.group}-lag")
            await self._bounded(offsets.start(), offsets.stop)
            self._offsets = offsets

    async def _bounded(self, starting: Awaitable[None],
                       close: Callable[[], Awaitable[None]]) -> None:
        """A client's start, bounded; a client that did not start is closed again."""
        try:
            async with asyncio.timeout(self.timeout_s * 2):
                await starting
        except BaseException:
            await close()
            raise

    async def stop(self) -> None:
        """Remove this process's lag series and close the clients."""
        self.keep_only(())
        offsets, admin, self._offsets, self._admin = self._offsets, self._admin, None, None
        if offsets is not None:
            await offsets.stop()
        if admin is not None:
            await admin.close()

    async def collect_once(self) -> dict[TopicPartition, int] | None:
        """One collection; ``None`` (and a debug line) when the broker did not answer."""
        owned = {TopicPartition(tp.topic, tp.partition) for tp in self.owned()}
        self.keep_only(owned)
        if not owned:
            return {}
        try:
            async with asyncio.timeout(self.timeout_s):
                lag = await self._measure(owned)
        except Exception as exc:  # the broker may be gone; the last values stand
            log.debug("lag_not_collected", group=self.group, error=repr(exc)[:200])
            return None
        owned_now = {TopicPartition(tp.topic, tp.partition) for tp in self.owned()}
        for tp, records in lag.items():
            if tp in owned_now:  # not revoked while the broker answered
                CONSUMER_LAG.labels(self.group, tp.topic, str(tp.partition)).set(records)
                self._exported.add(tp)
        return lag

    async def _measure(self, owned: set[TopicPartition]) -> dict[TopicPartition, int]:
        assert self._admin is not None and self._offsets is not None
        parts = sorted(owned)
        found = await self._admin.list_consumer_group_offsets(self.group, partitions=parts)
        committed = {tp: meta.offset for tp, meta in found.items()}
        ends = await self._offsets.end_offsets(parts)
        unset = [tp for tp in parts if committed.get(tp, -1) < 0]
        beginnings = await self._offsets.beginning_offsets(unset) if unset else {}
        return lag_of(committed, ends, beginnings)

    def keep_only(self, owned: Iterable[TopicPartition]) -> None:
        """Remove the series of partitions not in ``owned`` (revoked, or stopping)."""
        keep = {TopicPartition(tp.topic, tp.partition) for tp in owned}
        for tp in self._exported - keep:
            with contextlib.suppress(KeyError):
                CONSUMER_LAG.remove(self.group, tp.topic, str(tp.partition))
        self._exported &= keep
