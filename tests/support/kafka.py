"""Small synchronous Kafka helpers for tests (confluent-kafka)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence

from confluent_kafka import Consumer, Message, Producer, TopicPartition

from signalbox.evaluator.processor import Record

__all__ = ["Record", "consume", "drain", "end_offsets", "produce"]


def produce(bootstrap: str, topic: str, records: Sequence[tuple[bytes | None, bytes | None]],
            partition: int | None = None) -> None:
    p = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True})
    for key, value in records:
        if partition is None:
            p.produce(topic, key=key, value=value)
        else:
            p.produce(topic, key=key, value=value, partition=partition)
    assert p.flush(30) == 0, "records not delivered"


def _record(msg: Message) -> Record:
    """A consumed message as a Record (a fetched message always has its position)."""
    topic, partition, offset = msg.topic(), msg.partition(), msg.offset()
    assert topic is not None and partition is not None and offset is not None
    return Record(topic, partition, offset, msg.key(), msg.value())


def consume(bootstrap: str, topic: str, count: int, timeout: float = 60.0,
            committed_only: bool = True) -> list[Record]:
    """Read ``topic`` from the beginning until ``count`` records arrived (or fail)."""
    c = Consumer({
        "bootstrap.servers": bootstrap, "group.id": f"test-{uuid.uuid4().hex}",
        "auto.offset.reset": "earliest", "enable.auto.commit": False,
        "isolation.level": "read_committed" if committed_only else "read_uncommitted",
    })
    c.subscribe([topic])
    out: list[Record] = []
    deadline = time.monotonic() + timeout
    try:
        while len(out) < count and time.monotonic() < deadline:
            msg = c.poll(0.5)
            if msg is None or msg.error():
                continue
            out.append(_record(msg))
    finally:
        c.close()
    if len(out) < count:
        raise AssertionError(f"expected {count} records on {topic} in {timeout}s, got {len(out)}")
    return out


def drain(bootstrap: str, topic: str, settle: float = 3.0) -> list[Record]:
    """Everything on ``topic`` now: reads until no record arrived for ``settle`` seconds."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"test-{uuid.uuid4().hex}",
                  "auto.offset.reset": "earliest", "enable.auto.commit": False,
                  "isolation.level": "read_committed"})
    c.subscribe([topic])
    out: list[Record] = []
    quiet_since = time.monotonic()
    try:
        while time.monotonic() - quiet_since < settle:
            msg = c.poll(0.25)
            if msg is None or msg.error():
                continue
            quiet_since = time.monotonic()
            out.append(_record(msg))
    finally:
        c.close()
    return out


def end_offsets(bootstrap: str, topic: str, partitions: int) -> dict[int, int]:
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"test-{uuid.uuid4().hex}"})
    try:
        return {p: c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
                for p in range(partitions)}
    finally:
        c.close()
