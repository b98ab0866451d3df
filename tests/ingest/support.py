"""Test helpers for ingest: event builders, and reading topics back with aiokafka."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol, TypeAlias

from aiohttp import ClientResponse, web
from aiohttp.test_utils import TestClient
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition

from signalbox.common.settings import Settings
from signalbox.ingest import EventProducer
from signalbox.ingest.sources.catalogue import Source
from signalbox.testing import eventually
from tests.support.events import payment_failed

Client: TypeAlias = TestClient[web.Request, web.Application]
#: Kafka's default ``max.message.bytes`` (what ingest reads from a broker left as shipped).
BROKER_DEFAULT_MAX_MESSAGE_BYTES = 1_048_588
class ClientFactory(Protocol):
    """``make_client`` fixture: the ingest app with these settings and this producer, started;
    the client sends the test's API key unless given other ``headers``."""

    def __call__(self, settings: Settings, producer: EventProducer,
                 headers: Mapping[str, str] | None = None,
                 sources: Mapping[str, Source] | None = None) -> Awaitable[Client]: ...


def usage_recorded(**overrides: Any) -> dict[str, Any]:
    """A valid ``usage.recorded`` JSON event (topic events.usage)."""
    return payment_failed(**{"type": "usage.recorded",
                             "data": {"metric": "api_calls", "quantity": 12.5}, **overrides})


async def readiness(fetch: Callable[[], Awaitable[ClientResponse]], within_s: float = 10.0
                    ) -> tuple[int, dict[str, Any]]:
    """/readyz once it answers 200, or its last answer after ``within_s``.

    Topics just created reach every broker's metadata a moment later, and ingest
    is rightly not ready until they have.
    """
    async def answer() -> tuple[int, dict[str, Any]]:
        response = await fetch()
        return response.status, await response.json()

    return await eventually(answer, lambda status_body: status_body[0] == 200,
                            within_s=within_s)


Record: TypeAlias = ConsumerRecord[bytes, bytes]


async def read_topic(settings: Settings, logical: str) -> list[Record]:
    """Every record of a topic, from the beginning to the current end offsets."""
    topic = settings.kafka.topic(logical)
    partitions = [TopicPartition(topic, p) for p in range(settings.kafka.partitions)]
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka.bootstrap_servers,
                                enable_auto_commit=False, auto_offset_reset="earliest")
    await consumer.start()
    try:
        consumer.assign(partitions)
        end = await consumer.end_offsets(partitions)
        await consumer.seek_to_beginning(*partitions)
        out: list[Record] = []
        while [tp for tp in partitions if await consumer.position(tp) < end[tp]]:
            batches = await consumer.getmany(timeout_ms=1_000)
            for tp, messages in batches.items():
                out += [m for m in messages if m.offset < end[tp]]
        return sorted(out, key=lambda r: (r.partition, r.offset))
    finally:
        await consumer.stop()


async def end_offsets(settings: Settings, logical: str) -> list[int]:
    """The end offset of each partition of a topic (0 everywhere: nothing was written)."""
    topic = settings.kafka.topic(logical)
    partitions = [TopicPartition(topic, p) for p in range(settings.kafka.partitions)]
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka.bootstrap_servers)
    await consumer.start()
    try:
        end = await consumer.end_offsets(partitions)
        return [end[tp] for tp in partitions]
    finally:
        await consumer.stop()
