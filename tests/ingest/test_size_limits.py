"""Size limits that hold from the HTTP body to the Kafka record (issue 9, findings 3, 5, 6)."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import replace
from typing import Any

import pytest
from confluent_kafka.admin import (  # type: ignore[attr-defined]  # re-exported, no __all__
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    ResourceType,
)

from signalbox.common import schemas
from signalbox.common.codec import AvroCodec
from signalbox.common.settings import Settings
from signalbox.common.topics import EVENTS_BILLING, EVENTS_USAGE
from signalbox.ingest import KafkaEventProducer
from signalbox.ingest.size_limits import read_budget
from signalbox.testing import eventually_sync
from tests.ingest.support import Client, ClientFactory, end_offsets, read_topic
from tests.support.events import payment_failed

pytestmark = pytest.mark.kafka


def exactly(size: int, **overrides: Any) -> bytes:
    """One payment.failed whose JSON body is exactly ``size`` bytes (padded in ``reason``)."""
    event = payment_failed(**overrides)
    event["data"]["reason"] = ""
    bare = len(json.dumps(event).encode())
    event["data"]["reason"] = "x" * (size - bare)
    body = json.dumps(event).encode()
    assert len(body) == size
    return body


async def post_bytes(client: Client, body: bytes) -> tuple[int, dict[str, Any]]:
    response = await client.post("/v1/events", data=body,
                                 headers={"Content-Type": "application/json"})
    return response.status, await response.json()


async def written(settings: Settings) -> int:
    return sum([*await end_offsets(settings, EVENTS_BILLING),
                *await end_offsets(settings, EVENTS_USAGE)])


def set_message_limit(settings: Settings, limit: int) -> None:
    """Give this test's event topics a ``max.message.bytes`` of their own, as an operator
    might; ingest must read it, not assume the default."""
    admin = AdminClient({"bootstrap.servers": settings.kafka.bootstrap_servers})
    resources = [
        ConfigResource(ResourceType.TOPIC, settings.kafka.topic(t), incremental_configs=[
            ConfigEntry("max.message.bytes", str(limit),
                        incremental_operation=AlterConfigOpType.SET)])
        for t in (EVENTS_BILLING, EVENTS_USAGE)]
    for future in admin.incremental_alter_configs(resources).values():
        future.result(timeout=30)
    topics = {r.name for r in resources}
    applied = eventually_sync(lambda: read_budget(settings.kafka, topics).max_message_bytes,
                              lambda now: now == limit, within_s=30, every_s=0.2)
    assert applied == limit, f"the broker did not apply max.message.bytes={limit}: {applied}"


@pytest.mark.parametrize("bulk_in", ["customer_id", "event_id"])
async def test_a_body_exactly_at_the_limit_with_a_huge_id_is_400_never_503(
        client: Client, settings: Settings, bulk_in: str) -> None:
    """Finding 6: with the bulk in customer_id (the Kafka key and a field of the value) the
    record was 2,096,876 bytes; the producer refused it and ingest answered 503 'retry
    later', so a client following the docs retried forever."""
    event = payment_failed()
    event[bulk_in] = ""
    event[bulk_in] = "x" * (settings.ingest.max_body_bytes - len(json.dumps(event).encode()))
    raw = json.dumps(event).encode()
    assert len(raw) == settings.ingest.max_body_bytes
    status, body = await post_bytes(client, raw)
    assert status == 400, body
    assert body["errors"] == [{"path": f"$.{bulk_in}",
                               "reason": f"id longer than 256 characters ({len(event[bulk_in])})"}]
    assert await written(settings) == 0


async def test_a_body_exactly_at_the_default_limit_is_413_never_503(
        client: Client, settings: Settings) -> None:
    """The same size in a free-text field: it fits Kafka, but not the event budget."""
    status, body = await post_bytes(client, exactly(settings.ingest.max_body_bytes))
    assert status == 413, body
    assert body["error"] == "event_too_large"
    assert body["max_message_bytes"] == 1_048_588  # the broker's default, as read
    assert body["limit_bytes"] == 524_294
    [problem] = body["errors"]
    assert problem["path"] == "$"
    assert "at most 524294 are accepted" in problem["reason"]
    assert await written(settings) == 0


async def test_a_body_exactly_at_a_small_limit_is_accepted_one_byte_more_is_413(
        settings: Settings, producer: KafkaEventProducer, make_client: ClientFactory) -> None:
    settings = replace(settings, ingest=replace(settings.ingest, max_body_bytes=4_096))
    client = await make_client(settings, producer)
    status, body = await post_bytes(client, exactly(4_096, event_id="at_limit"))
    assert (status, body) == (202, {"accepted": ["at_limit"]})
    status, body = await post_bytes(client, exactly(4_097, event_id="over"))
    assert status == 413 and body["error"] == "body_too_large"
    assert [r.key for r in await read_topic(settings, EVENTS_BILLING)] == [b"cus_1"]


async def test_the_budget_is_half_the_topics_limit_as_the_broker_reports_it(
        settings: Settings, producer: KafkaEventProducer, make_client: ClientFactory) -> None:
    set_message_limit(settings, 20_000)
    topics = {settings.kafka.topic(t) for t in (EVENTS_BILLING, EVENTS_USAGE)}
    budget = read_budget(settings.kafka, topics)
    assert (budget.max_message_bytes, budget.event_bytes) == (20_000, 10_000)
    client = await make_client(settings, producer)

    fits = payment_failed(event_id="fits")
    fits["data"]["reason"] = "x" * 9_500
    status, body = await post_bytes(client, json.dumps(fits).encode())
    assert status == 202, body
    [record] = await read_topic(settings, EVENTS_BILLING)
    assert len(record.value) <= 10_000
    assert AvroCodec().decode(schemas.EVENT, record.value)["event_id"] == "fits"

    big = payment_failed(event_id="big")
    big["data"]["reason"] = "x" * 10_500
    status, body = await post_bytes(client, json.dumps([fits, big]).encode())
    assert status == 413
    assert body["limit_bytes"] == 10_000 and body["max_message_bytes"] == 20_000
    assert [p["path"] for p in body["errors"]] == ["$[1]"]
    assert len(await read_topic(settings, EVENTS_BILLING)) == 1  # nothing of that batch


async def test_error_lists_are_capped_and_cheap(client: Client, settings: Settings) -> None:
    """Finding 5: 65,000 unknown fields gave a 9 MB answer after 2.4 s and stalled /healthz."""
    event = payment_failed()
    event["data"].update({f"u{i}": 1 for i in range(65_000)})
    raw = json.dumps(event).encode()
    assert len(raw) < settings.ingest.max_body_bytes
    started = time.perf_counter()
    response = await client.post("/v1/events", data=raw,
                                 headers={"Content-Type": "application/json"})
    elapsed = time.perf_counter() - started
    answer = await response.read()
    body = json.loads(answer)
    assert response.status == 400
    assert body["error_count"] == 65_000
    assert len(body["errors"]) == 50
    assert body["detail"].startswith("65000 problem(s)")
    assert len(answer) < 10_000
    assert elapsed < 1.5, f"{elapsed:.2f}s"
    print(f"65,000 unknown fields, {len(raw)} bytes: 400 in {elapsed * 1000:.0f} ms, "
          f"answer {len(answer)} bytes")


async def test_long_values_are_cut_in_answers(client: Client) -> None:
    long_type, long_key = "t" * 100_000, "k" * 100_000
    event = payment_failed(type=long_type)
    event[long_key] = 1
    response = await client.post("/v1/events", json=event)
    answer = await response.read()
    assert response.status == 400
    assert len(answer) < 2_000, answer[:300]
    body = json.loads(answer)
    assert any("(100000 characters)" in p["reason"] for p in body["errors"])


async def test_health_checks_are_answered_while_large_bodies_are_checked(
        client: Client) -> None:
    """Finding 5: eight such bodies in parallel delayed /healthz by 19 s."""
    event = payment_failed()
    event["data"].update({f"u{i}": 1 for i in range(65_000)})
    raw = json.dumps(event).encode()

    async def heavy() -> int:
        response = await client.post("/v1/events", data=raw,
                                     headers={"Content-Type": "application/json"})
        return response.status

    done = asyncio.Event()

    async def health() -> float:
        slowest = 0.0
        while not done.is_set():
            started = time.perf_counter()
            assert (await client.get("/healthz")).status == 200
            slowest = max(slowest, time.perf_counter() - started)
        return slowest

    async def all_heavy() -> list[int]:
        statuses = await asyncio.gather(*(heavy() for _ in range(8)))
        done.set()
        return statuses

    statuses, slowest = await asyncio.gather(all_heavy(), health())
    assert statuses == [400] * 8
    print(f"/healthz while 8 bodies of {len(raw)} bytes are checked: slowest "
          f"{slowest * 1000:.0f} ms")
    assert slowest < 1.0
