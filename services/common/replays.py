"""Replaying dead letters: reading a topic whole, and the marks that say what was replayed.

A replay writes the letter's original record back and, in the same Kafka
transaction, a :class:`Mark` on the compacted ``dlq.replays`` topic keyed by the
letter's position. Either both are written or neither; a later replay reads the
marks first and skips what they name, so replaying twice sends nothing twice and
says so. Every replay uses one transactional id: starting one fences a replay
still running elsewhere, and the marks are read only after that, so two operators
replaying at once cannot both send the same letter.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaException,
    Message,
    Producer,
    TopicPartition,
)

from signalbox.common import schemas
from signalbox.common.clock import epoch_ms
from signalbox.common.codec import AvroCodec, DecodeError
from signalbox.common.kafka import librdkafka_config
from signalbox.common.settings import KafkaSettings
from signalbox.common.topics import DLQ_REPLAYS


@dataclass(frozen=True)
class Mark:
    """One replayed dead letter (``signalbox.ReplayMark``)."""

    dead_letter_topic: str  # logical: actions.dlq | events.dlq
    partition: int
    offset: int
    target_topic: str
    replayed_at: int
    replayed_by: str

    @property
    def key(self) -> str:
        return mark_key(self.dead_letter_topic, self.partition, self.offset)


@dataclass(frozen=True)
class Write:
    """A record to write again, with the mark that records it."""

    topic: str
    partition: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...]
    mark: Mark


def mark_key(dead_letter_topic: str, partition: int, offset: int) -> str:
    return f"{dead_letter_topic}/{partition}:{offset}"


def read_to_end(kafka: KafkaSettings, topic: str, partitions: int,
                group: str = "signalbox-cli") -> Iterator[Message]:
    """Every committed record of ``topic`` now, oldest first per partition (blocking)."""
    consumer = Consumer({**librdkafka_config(kafka), "group.id": kafka.topic(group),
                         "enable.auto.commit": False, "isolation.level": "read_committed"})
    try:
        parts = range(partitions)
        ends = {p: _high_watermark(consumer, TopicPartition(topic, p)) for p in parts}
        remaining = {p for p in parts if ends[p] > 0}
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in remaining])
        while remaining:
            msg = consumer.poll(0.5)
            if msg is not None and msg.error():
                raise RuntimeError(f"reading {topic}: {msg.error()}")
            if msg is not None:
                yield msg
            # Positions, not record offsets: transaction markers take offsets too.
            for tp in consumer.position([TopicPartition(topic, p) for p in remaining]):
                if tp.offset >= ends[tp.partition]:
                    remaining.discard(tp.partition)
    finally:
        consumer.close()


def _high_watermark(consumer: Consumer, tp: TopicPartition, timeout_s: float = 10.0) -> int:
    """The partition's end, asked again for ``timeout_s`` while the broker answers with an
    error (a topic created a moment ago may have no leader known yet)."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return int(consumer.get_watermark_offsets(tp, timeout=timeout_s)[1])
        except KafkaException:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def read_marks(kafka: KafkaSettings, codec: AvroCodec) -> dict[str, Mark]:
    """The marks on ``dlq.replays`` by key (an unreadable one is left out)."""
    marks: dict[str, Mark] = {}
    for msg in read_to_end(kafka, kafka.topic(DLQ_REPLAYS), 1):
        key = (msg.key() or b"").decode("utf-8", "replace")
        if msg.value() is None:
            marks.pop(key, None)
            continue
        try:
            d = codec.decode(schemas.REPLAY_MARK, msg.value())
        except DecodeError:
            continue
        marks[key] = Mark(d["dead_letter_topic"], d["partition"], d["offset"],
                          d["target_topic"], epoch_ms(d["replayed_at"]), d["replayed_by"])
    return marks


def _encode(codec: AvroCodec, mark: Mark) -> bytes:
    return codec.encode(schemas.REPLAY_MARK, {
        "dead_letter_topic": mark.dead_letter_topic, "partition": mark.partition,
        "offset": mark.offset, "target_topic": mark.target_topic,
        "replayed_at": mark.replayed_at, "replayed_by": mark.replayed_by})


class Replayer:
    """The one transactional writer of replays; use as a context manager.

    ``marks()`` is read after the transactional id is claimed, so it includes every
    replay that committed before and none can commit while this one runs.
    """

    def __init__(self, kafka: KafkaSettings, codec: AvroCodec, timeout_s: float = 30.0) -> None:
        self.kafka, self.codec, self.timeout_s = kafka, codec, timeout_s
        self.producer = Producer({**librdkafka_config(kafka), "log_level": 3,
                                  "transactional.id": kafka.topic("signalbox-dlq-replay")})

    def __enter__(self) -> Replayer:
        self.producer.init_transactions(self.timeout_s)
        return self

    def __exit__(self, *exc: object) -> None:
        self.producer.flush(self.timeout_s)

    def marks(self) -> dict[str, Mark]:
        return read_marks(self.kafka, self.codec)

    def write(self, writes: Sequence[Write]) -> None:
        """Each record and its mark, in one transaction (all or nothing)."""
        if not writes:
            return
        errors: list[str] = []

        def delivered(err: Any, _: Any) -> None:
            if err is not None:
                errors.append(str(err))

        self.producer.begin_transaction()
        try:
            for w in writes:
                self.producer.produce(w.topic, key=w.key, value=w.value, partition=w.partition,
                                      headers=list(w.headers), on_delivery=delivered)
                self.producer.produce(self.kafka.topic(DLQ_REPLAYS), key=w.mark.key.encode(),
                                      value=_encode(self.codec, w.mark), partition=0,
                                      on_delivery=delivered)
            left = self.producer.flush(self.timeout_s)
            if left or errors:
                raise RuntimeError(f"replay not written: {left} record(s) unacknowledged; "
                                   f"errors: {errors}")
            self.producer.commit_transaction(self.timeout_s)
        except BaseException:
            self.producer.abort_transaction(self.timeout_s)
            raise
