"""What the dispatcher did with each command, per partition of the commands topic.

The source of truth is the compacted ``actions.ledger`` topic: entries are keyed
by command id and written to the *same partition number* as the command, inside
the dispatcher's Kafka transactions. When a partition is assigned, its ledger
partition is read to the end (read_committed) before any command of it is
handled, so a restarted or rebalanced dispatcher knows every command that was
delivered, and every one that was being attempted when a process died.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from typing import Protocol

import structlog
from aiokafka import AIOKafkaConsumer, TopicPartition

from signalbox.common import schemas
from signalbox.common.codec import AvroCodec, DecodeError
from signalbox.common.kafka import aiokafka_options
from signalbox.common.settings import KafkaSettings

log = structlog.get_logger(__name__)


async def read_partitions(kafka: KafkaSettings, topic: str, partitions: Sequence[int],
                          apply: Callable[[int, bytes | None, bytes | None], int]) -> int:
    """Read ``partitions`` of ``topic`` from the beginning (read_committed) to their *high
    watermark*, calling ``apply(partition, key, value)``; the sum of its returns.

    Not just to the last stable offset: records written outside transactions (the
    'attempting' markers) after a transaction a dead process left open become
    visible only once that transaction is aborted (the producer's transaction
    timeout), and a new owner must see them before it handles anything.
    """
    options = aiokafka_options(kafka)
    tps = [TopicPartition(topic, p) for p in partitions]
    probe = AIOKafkaConsumer(**options, enable_auto_commit=False, group_id=None,
                             isolation_level="read_uncommitted")
    await probe.start()
    try:
        end = await probe.end_offsets(tps)
    finally:
        await probe.stop()
    consumer = AIOKafkaConsumer(**options, enable_auto_commit=False,
                                isolation_level="read_committed", group_id=None)
    await consumer.start()
    count, started, warned = 0, time.monotonic(), False
    try:
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        remaining = {tp for tp in tps if end[tp] > 0}
        while remaining:
            batch = await consumer.getmany(*remaining, timeout_ms=1000)
            for tp, records in batch.items():
                for r in records:
                    count += apply(tp.partition, r.key, r.value)
            for tp in list(remaining):
                if await consumer.position(tp) >= end[tp]:
                    remaining.discard(tp)
            if remaining and not warned and time.monotonic() - started > 5:
                warned = True
                log.warning("waiting_for_open_transaction", topic=topic,
                            partitions=sorted(tp.partition for tp in remaining))
    finally:
        await consumer.stop()
    return count


class Ledger(Protocol):
    """Storage of command states, by partition."""

    def get(self, partition: int, command_id: str) -> str | None: ...

    def put(self, partition: int, command_id: str, state: str) -> None: ...

    def discard(self, partition: int, command_id: str) -> None: ...

    async def load(self, partitions: Iterable[int]) -> None: ...

    def forget(self, partitions: Iterable[int]) -> None: ...


class MemoryLedger:
    """The in-memory view; also the whole ledger in unit tests."""

    def __init__(self) -> None:
        self._states: dict[int, dict[str, str]] = {}

    def get(self, partition: int, command_id: str) -> str | None:
        return self._states.get(partition, {}).get(command_id)

    def put(self, partition: int, command_id: str, state: str) -> None:
        self._states.setdefault(partition, {})[command_id] = state

    def discard(self, partition: int, command_id: str) -> None:
        self._states.get(partition, {}).pop(command_id, None)

    async def load(self, partitions: Iterable[int]) -> None:
        for p in partitions:
            self._states.setdefault(p, {})

    def forget(self, partitions: Iterable[int]) -> None:
        for p in partitions:
            self._states.pop(p, None)

    def size(self) -> int:
        return sum(len(s) for s in self._states.values())


class KafkaLedger(MemoryLedger):
    """:class:`MemoryLedger` restored from the ``actions.ledger`` topic."""

    def __init__(self, kafka: KafkaSettings, topic: str, codec: AvroCodec) -> None:
        super().__init__()
        self._kafka = kafka
        self._topic = topic
        self._codec = codec

    async def load(self, partitions: Iterable[int]) -> None:
        parts = sorted(set(partitions))
        if not parts:
            return
        for p in parts:
            self._states[p] = {}
        count = await read_partitions(self._kafka, self._topic, parts, self._apply)
        log.info("ledger_loaded", partitions=parts, entries=count)

    def _apply(self, partition: int, key: bytes | None, value: bytes | None) -> int:
        if key is None:
            return 0
        command_id = key.decode("utf-8", "replace")
        if value is None:  # tombstone: the entry was retired
            self._states[partition].pop(command_id, None)
            return 0
        try:
            entry = self._codec.decode(schemas.LEDGER_ENTRY, value)
        except DecodeError as exc:
            log.error("ledger_entry_unreadable", command_id=command_id[:100],
                      key_bytes=len(key), reason=exc.why)
            return 0
        self._states[partition][command_id] = entry["state"]
        return 1
