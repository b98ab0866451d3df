"""The benches' input: a mix of billing and usage events, encoded as ingest encodes them.

The mix is ``bench.pipeline``'s: every ``failed_every``-th event is a failed
payment for *pro* (the default automations send a customer email and a finance
alert for it), the next one a successful payment, the rest logins. Customers are
taken in turn from ``customers``; payment ids are unique, so every mail names the
event that caused it ("Payment reference: ..." in the default templates).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from confluent_kafka import KafkaError, Message, Producer

from signalbox.common import schemas
from signalbox.common.codec import AvroCodec
from signalbox.common.kafka import librdkafka_config
from signalbox.common.settings import KafkaSettings
from signalbox.ingest.validation import validate_batch

T0 = 1_790_000_000_000


def mix(n: int, customers: int, failed_every: int = 4, first: int = 0,
        run: str = "bench") -> list[dict[str, object]]:
    """``n`` JSON events as a client POSTs them, numbered from ``first``."""
    if failed_every < 2:
        raise ValueError(f"failed_every must be at least 2, got {failed_every}")
    out: list[dict[str, object]] = []
    for i in range(first, first + n):
        customer = f"cus-{i % customers}"
        base = {"event_id": f"{run}-{i}", "customer_id": customer, "occurred_at": T0 + i,
                "customer": {"email": f"{customer}@example.com"}}
        money = {"payment_id": payment_id(run, i), "product": "pro", "amount_minor": 4900,
                 "currency": "EUR"}
        if i % failed_every == 0:
            out.append({**base, "type": "payment.failed", "data": money})
        elif i % failed_every == 1:
            out.append({**base, "type": "payment.succeeded", "data": money})
        else:
            out.append({**base, "type": "user.logged_in", "data": {}})
    return out


def payment_id(run: str, i: int) -> str:
    return f"{run}-pay-{i}"


@dataclass(frozen=True)
class Record:
    """One encoded event for a logical topic (``events.billing`` or ``events.usage``)."""

    topic: str
    key: bytes
    value: bytes


def encode(events: Sequence[dict[str, object]], codec: AvroCodec,
           received_at: int = T0) -> list[Record]:
    """The records ingest would write for ``events`` (validated as ingest validates them)."""
    return [Record(e.event_type.topic, e.key, codec.encode(schemas.EVENT, e.record))
            for e in validate_batch(list(events), received_at)]


def preload(kafka: KafkaSettings, records: Sequence[Record]) -> dict[tuple[str, int], int]:
    """Write ``records`` to the prefixed topics; the end offset of each (topic, partition).

    Keys are partitioned with murmur2 like aiokafka (ingest), so a customer lands on
    the partition the services expect.
    """
    producer = Producer({**librdkafka_config(kafka), "partitioner": "murmur2_random",
                         "linger.ms": 20, "acks": "all"})
    ends: dict[tuple[str, int], int] = {}
    failures: list[str] = []

    def delivered(err: KafkaError | None, msg: Message) -> None:
        if err is not None:
            failures.append(str(err))
            return
        topic, partition, offset = msg.topic(), msg.partition(), msg.offset()
        assert topic is not None and partition is not None and offset is not None
        ends[topic, partition] = max(ends.get((topic, partition), 0), offset + 1)

    for r in records:
        while True:
            try:
                producer.produce(kafka.topic(r.topic), r.value, r.key, on_delivery=delivered)
                break
            except BufferError:  # the local queue is full: let deliveries drain it
                producer.poll(0.05)
        producer.poll(0)
    left = producer.flush(60)
    if left or failures:
        raise RuntimeError(f"preload: {left} records undelivered, {len(failures)} failed "
                           f"({failures[:1]})")
    return ends
