"""Read a whole compacted topic from the beginning, then keep following it.

Every evaluator worker needs *all* automations and *all* approvals, not a share
of them, so this is a plain consumer with no group (a group would split the
partitions between workers) and not a Faust GlobalTable (known sync bugs). It
assigns every partition itself, starts at the beginning, and calls the
handler with each batch of records in offset order per partition.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from signalbox.common.kafka import aiokafka_options
from signalbox.common.settings import KafkaSettings
from signalbox.common.topics import catalogue

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Entry:
    """One record of a compacted topic; ``value`` ``None`` is a tombstone."""

    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


BatchHandler = Callable[[Sequence[Entry]], Awaitable[None] | None]


class CompactedReader:
    """Follows one topic in full. ``caught_up`` is set once it has read to the end it
    found at start; :meth:`wait_for` lets a writer wait until its own record was applied."""

    def __init__(self, kafka: KafkaSettings, logical_topic: str, handle: BatchHandler,
                 poll_ms: int = 500) -> None:
        spec = catalogue(kafka)[kafka.topic(logical_topic)]
        self.topic = spec.name
        self.caught_up = asyncio.Event()
        self._kafka = kafka
        self._partitions = spec.partitions
        self._handle = handle
        self._poll_ms = poll_ms
        self._positions: dict[int, int] = {}
        self._progress = asyncio.Condition()
        self._task: asyncio.Task[None] | None = None
        self._consumer: AIOKafkaConsumer | None = None

    async def start(self) -> None:
        # Partitions from the catalogue, not from metadata, which lags a new topic.
        consumer = AIOKafkaConsumer(**aiokafka_options(self._kafka), group_id=None,
                                    enable_auto_commit=False, auto_offset_reset="earliest")
        await consumer.start()
        try:
            tps = [TopicPartition(self.topic, p) for p in range(self._partitions)]
            consumer.assign(tps)
            await consumer.seek_to_beginning(*tps)
            end = await consumer.end_offsets(tps)
        except BaseException:
            await consumer.stop()
            raise
        self._consumer = consumer
        self._task = asyncio.create_task(self._run(consumer, tps, end), name=f"read:{self.topic}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._consumer is not None:
            await self._consumer.stop()

    def failed(self) -> BaseException | None:
        """The exception that ended the reader, if it ended."""
        if self._task is None or not self._task.done() or self._task.cancelled():
            return None
        return self._task.exception()

    def not_ready(self, what: str) -> str | None:
        """Why the ``what`` topic is not usable yet (a readiness reason), or ``None``."""
        failed = self.failed()
        if failed is not None:
            return f"{what} reader stopped: {type(failed).__name__}: {failed}"
        return None if self.caught_up.is_set() else f"{what} topic not read to its end"

    async def wait_for(self, partition: int, offset: int, timeout_s: float = 10.0) -> None:
        """Return once the record at ``offset`` of ``partition`` has been handled."""
        async with asyncio.timeout(timeout_s), self._progress:
            await self._progress.wait_for(lambda: self._positions.get(partition, 0) > offset)

    async def read_to_end(self, timeout_s: float = 10.0) -> None:
        """Return once every record written before this call has been handled."""
        if self._consumer is None:
            raise RuntimeError(f"the reader of {self.topic} is not started")
        tps = [TopicPartition(self.topic, p) for p in range(self._partitions)]
        for tp, end in (await self._consumer.end_offsets(tps)).items():
            if end > 0:
                await self.wait_for(tp.partition, end - 1, timeout_s)

    async def _run(self, consumer: AIOKafkaConsumer, tps: list[TopicPartition],
                   end: dict[TopicPartition, int]) -> None:
        behind = {tp for tp in tps if end[tp] > 0}
        if not behind:
            self.caught_up.set()
        while True:
            batch = await consumer.getmany(timeout_ms=self._poll_ms)
            entries = [Entry(tp.partition, r.offset, r.key, r.value)
                       for tp, records in sorted(batch.items()) for r in records]
            if entries:
                result = self._handle(entries)
                if result is not None:
                    await result
            for tp in tps:
                self._positions[tp.partition] = await consumer.position(tp)
            async with self._progress:
                self._progress.notify_all()
            if behind:
                behind = {tp for tp in behind if self._positions[tp.partition] < end[tp]}
                if not behind:
                    log.info("topic_read_to_end", topic=self.topic)
                    self.caught_up.set()


class Producer:
    """An idempotent producer acknowledged by every in-sync replica, created on start
    (aiokafka clients belong to the running event loop)."""

    def __init__(self, kafka: KafkaSettings, owner: str) -> None:
        self._kafka, self._owner = kafka, owner
        self._client: AIOKafkaProducer | None = None

    @property
    def client(self) -> AIOKafkaProducer:
        if self._client is None:
            raise RuntimeError(f"{self._owner} used before start()")
        return self._client

    async def start(self) -> None:
        self._client = AIOKafkaProducer(**aiokafka_options(self._kafka), acks="all",
                                        enable_idempotence=True)
        await self._client.start()

    async def stop(self) -> None:
        if self._client is not None:
            await self._client.stop()
