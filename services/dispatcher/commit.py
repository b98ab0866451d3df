"""Group commit: outcomes and consumer offsets in Kafka transactions, never past open work.

Commands of one partition are handled concurrently, so they finish out of order.
Each finished command hands its records (ledger entry, result, dead letter, retry
copy) to the :class:`Committer`, which writes whatever has accumulated in one
transaction together with, per partition, the offset *below the oldest command
still in flight* — never beyond it. A crash therefore re-reads only commands whose
outcome may be missing; the ledger recognises those that have one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import structlog
from aiokafka import AIOKafkaProducer, TopicPartition

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Write:
    topic: str
    key: bytes | None
    value: bytes | None
    partition: int
    headers: Sequence[tuple[str, bytes]] = ()
    timestamp_ms: int | None = None


class OffsetTracker:
    """Per topic-partition: offsets started and not yet committed, and the next one."""

    def __init__(self) -> None:
        self._open: dict[TopicPartition, set[int]] = {}
        self._next: dict[TopicPartition, int] = {}

    def start(self, tp: TopicPartition, offset: int) -> None:
        self._open.setdefault(tp, set()).add(offset)
        self._next[tp] = max(self._next.get(tp, 0), offset + 1)

    def done(self, tp: TopicPartition, offset: int) -> None:
        self._open.get(tp, set()).discard(offset)

    def position(self, tp: TopicPartition) -> int:
        """The offset to commit: the oldest open one, or the next after the last seen."""
        pending = self._open.get(tp)
        return min(pending) if pending else self._next[tp]

    def forget(self, tps: Iterable[TopicPartition]) -> None:
        for tp in tps:
            self._open.pop(tp, None)
            self._next.pop(tp, None)


@dataclass
class _Finished:
    tp: TopicPartition
    offset: int
    writes: Sequence[Write]
    done: asyncio.Future[None] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future())


class Committer:
    """Writes finished commands' records and offsets, batching what is ready at once."""

    def __init__(self, producer: AIOKafkaProducer, group_id: str, offsets: OffsetTracker,
                 max_batch: int = 500) -> None:
        self._producer = producer
        self._group = group_id
        self._offsets = offsets
        self._queue: asyncio.Queue[_Finished] = asyncio.Queue()
        self._max_batch = max_batch
        self._failed: Exception | None = None

    async def commit(self, tp: TopicPartition, offset: int, writes: Sequence[Write]) -> None:
        """Returns once ``writes`` and the offset bookkeeping for ``offset`` are committed."""
        if self._failed is not None:
            raise RuntimeError("the outcome transactions failed earlier") from self._failed
        item = _Finished(tp, offset, writes)
        self._queue.put_nowait(item)
        await item.done

    async def run(self) -> None:
        """Until cancelled; a failed transaction fails its waiters and ends the loop."""
        while True:
            batch = [await self._queue.get()]
            while len(batch) < self._max_batch and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            try:
                await self._write(batch)
            except BaseException as exc:
                self._failed = exc if isinstance(exc, Exception) else RuntimeError("stopped")
                while not self._queue.empty():
                    batch.append(self._queue.get_nowait())
                for item in batch:
                    if not item.done.done():
                        item.done.set_exception(self._failed)
                raise
            for item in batch:
                item.done.set_result(None)

    async def _write(self, batch: list[_Finished]) -> None:
        p = self._producer
        async with p.transaction():
            for item in batch:
                for w in item.writes:
                    await p.send(w.topic, key=w.key, value=w.value, partition=w.partition,
                                 headers=list(w.headers) or None, timestamp_ms=w.timestamp_ms)
            for item in batch:
                self._offsets.done(item.tp, item.offset)
            positions = {item.tp: self._offsets.position(item.tp) for item in batch}
            await p.send_offsets_to_transaction(positions, self._group)
