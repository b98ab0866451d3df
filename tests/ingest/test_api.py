"""The ingest HTTP API against a real broker: what is answered and what lands on Kafka."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest
from aiohttp import ClientResponse
from prometheus_client.parser import text_string_to_metric_families

from signalbox.common import schemas
from signalbox.common.clock import now_ms
from signalbox.common.codec import AvroCodec
from signalbox.common.settings import Settings
from signalbox.common.topics import EVENTS_BILLING, EVENTS_USAGE
from signalbox.ingest import KafkaEventProducer
from tests.ingest.support import (
    Client,
    ClientFactory,
    end_offsets,
    read_topic,
    readiness,
    usage_recorded,
)
from tests.support.events import payment_failed

pytestmark = pytest.mark.kafka

CODEC = AvroCodec()


async def post(client: Client, body: Any) -> tuple[int, dict[str, Any]]:
    response = await client.post("/v1/events", json=body)
    return response.status, await response.json()


async def nothing_written(settings: Settings) -> bool:
    offsets = [*await end_offsets(settings, EVENTS_BILLING),
               *await end_offsets(settings, EVENTS_USAGE)]
    return offsets == [0] * len(offsets)


async def refused(response: ClientResponse, status: int, error: str, settings: Settings
                  ) -> dict[str, Any]:
    """Check an error answer and that nothing reached Kafka; the body for further checks."""
    assert response.status == status
    body: dict[str, Any] = await response.json()
    assert body["error"] == error
    assert await nothing_written(settings)
    return body


async def metric(client: Client, name: str, **labels: str) -> float:
    """The current value of one Prometheus sample, as /metrics shows it (0 if absent)."""
    response = await client.get("/metrics")
    assert response.status == 200
    for family in text_string_to_metric_families(await response.text()):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return float(sample.value)
    return 0.0


async def test_batch_lands_on_the_type_topics_keyed_by_customer(
        client: Client, settings: Settings) -> None:
    batch = [
        payment_failed(event_id="evt_1", customer_id="cus_a", source="billing",
                       customer={"email": "a@example.com"}, attributes={"tier": "gold"}),
        usage_recorded(event_id="evt_2", customer_id="cus_a"),
        payment_failed(event_id="evt_3", customer_id="cus_b", type="payment.succeeded"),
        usage_recorded(event_id="evt_4", customer_id="cus_c", occurred_at=1_795_341_600_000),
        payment_failed(event_id="evt_5", customer_id="cus_a"),
        usage_recorded(event_id="evt_6", customer_id="cus_b"),
        payment_failed(event_id="evt_7", customer_id="cus_c", type="customer.signed_up",
                       data={"plan": "pro"}),
        usage_recorded(event_id="evt_8", customer_id="cus_a"),
    ]
    before = now_ms()
    status, body = await post(client, batch)
    after = now_ms()

    assert status == 202
    assert body == {"accepted": [f"evt_{i}" for i in range(1, 9)]}
    billing = await read_topic(settings, EVENTS_BILLING)
    usage = await read_topic(settings, EVENTS_USAGE)
    decoded = [(r, CODEC.decode(schemas.EVENT, r.value)) for r in billing + usage]
    by_id = {event["event_id"]: (r, event) for r, event in decoded}
    assert sorted(by_id) == [f"evt_{i}" for i in range(1, 9)]
    assert {by_id[f"evt_{i}"][0].topic for i in (1, 3, 5, 7)} == \
        {settings.kafka.topic(EVENTS_BILLING)}
    assert {by_id[f"evt_{i}"][0].topic for i in (2, 4, 6, 8)} == \
        {settings.kafka.topic(EVENTS_USAGE)}

    partition_of: dict[str, set[int]] = defaultdict(set)
    for record, event in decoded:
        assert record.key == event["customer_id"].encode("utf-8")
        partition_of[event["customer_id"]].add(record.partition)
        assert before <= event["received_at"].timestamp() * 1000 <= after
    # One customer, one partition number, on both topics (same partition count, same key).
    assert all(len(p) == 1 for p in partition_of.values()), partition_of
    # A customer's events keep the request's order within the partition.
    cus_a = [by_id[f"evt_{i}"][0].offset for i in (1, 5)]
    assert cus_a == sorted(cus_a)

    record, first = by_id["evt_1"]
    assert first["source"] == "billing"
    assert first["occurred_at"] == datetime(2026, 11, 22, 10, tzinfo=UTC)
    assert first["customer"]["email"] == "a@example.com"
    assert first["attributes"] == {"tier": "gold"}
    assert first["payload"] == ("signalbox.events.PaymentFailed", {
        "payment_id": "pay_1", "invoice_id": None, "product": "pro", "amount_minor": 4900,
        "currency": "EUR", "reason": None})
    assert by_id["evt_4"][1]["occurred_at"] == datetime(2026, 11, 22, 10, tzinfo=UTC)
    assert by_id["evt_2"][1]["payload"] == ("signalbox.events.UsageRecorded",
                                            {"metric": "api_calls", "quantity": 12.5})
    assert by_id["evt_7"][1]["payload"] == ("signalbox.events.CustomerSignedUp",
                                            {"plan": "pro"})


async def test_a_single_event_object_is_accepted(client: Client, settings: Settings) -> None:
    status, body = await post(client, usage_recorded(event_id="evt_solo"))
    assert (status, body) == (202, {"accepted": ["evt_solo"]})
    [record] = await read_topic(settings, EVENTS_USAGE)
    assert CODEC.decode(schemas.EVENT, record.value)["event_id"] == "evt_solo"
    assert await end_offsets(settings, EVENTS_BILLING) == [0, 0]


async def test_kafka_failure_is_a_503_with_retry_after(
        settings: Settings, make_client: ClientFactory) -> None:
    # The broker does not auto-create topics: writing to an unprovisioned prefix fails
    # in the broker, the way a missing or unavailable topic does in production.
    unprovisioned = replace(settings, kafka=replace(settings.kafka, topic_prefix="missing."))
    producer = KafkaEventProducer(settings.kafka, request_timeout_ms=1_000)
    await producer.start()
    try:
        client = await make_client(unprovisioned, producer)
        failures = await metric(client, "signalbox_ingest_produce_failures_total",
                                error="UnknownTopicOrPartitionError")
        response = await client.post("/v1/events", json=[payment_failed()])
        assert response.status == 503
        assert response.headers["Retry-After"] == "5"
        body = await response.json()
        assert body["error"] == "kafka_unavailable"
        assert "Retry the whole batch" in body["detail"]
        assert "deduplicated downstream by event_id" in body["detail"]
        assert await metric(client, "signalbox_ingest_produce_failures_total",
                            error="UnknownTopicOrPartitionError") == failures + 1

        ready = await client.get("/readyz")
        assert ready.status == 503
        reason = (await ready.json())["failing"]["kafka"]
        assert reason.startswith("topics missing on the cluster: missing.events.billing")
    finally:
        await producer.stop()


async def test_a_stopped_producer_is_not_ready_and_answers_503(
        settings: Settings, make_client: ClientFactory) -> None:
    producer = KafkaEventProducer(settings.kafka)
    client = await make_client(settings, producer)
    ready = await client.get("/readyz")
    assert ready.status == 503
    assert await ready.json() == {"status": "not ready",
                                  "failing": {"kafka": "the Kafka producer is not running"}}
    response = await client.post("/v1/events", json=payment_failed())
    await refused(response, 503, "kafka_unavailable", settings)
    assert response.headers["Retry-After"] == "5"
    await producer.stop()


async def test_ops_routes(client: Client) -> None:
    health = await client.get("/healthz")
    assert (health.status, await health.json()) == (200, {"status": "ok"})
    assert await readiness(lambda: client.get("/readyz")) == \
        (200, {"status": "ready", "failing": {}})


async def test_metrics_count_accepted_events_and_rejections(client: Client) -> None:
    accepted = "signalbox_ingest_events_accepted_total"
    rejected = "signalbox_ingest_requests_rejected_total"
    latency = "signalbox_ingest_request_seconds_count"
    before = {
        "failed": await metric(client, accepted, type="payment.failed"),
        "usage": await metric(client, accepted, type="usage.recorded"),
        "invalid": await metric(client, rejected, status="400", reason="invalid_event"),
        "media": await metric(client, rejected, status="415", reason="unsupported_media_type"),
        "latency": await metric(client, latency),
    }
    batch = [payment_failed(event_id="e1"), payment_failed(event_id="e2"), usage_recorded()]
    assert (await post(client, batch))[0] == 202
    assert (await post(client, [payment_failed(type="nope")]))[0] == 400
    assert (await client.post("/v1/events", data=b"{}")).status == 415

    assert await metric(client, accepted, type="payment.failed") == before["failed"] + 2
    assert await metric(client, accepted, type="usage.recorded") == before["usage"] + 1
    assert await metric(client, rejected, status="400", reason="invalid_event") == \
        before["invalid"] + 1
    assert await metric(client, rejected, status="415", reason="unsupported_media_type") == \
        before["media"] + 1
    assert await metric(client, latency) == before["latency"] + 3


async def test_event_types_catalogue(client: Client, settings: Settings) -> None:
    response = await client.get("/v1/event-types")
    assert response.status == 200
    body = await response.json()
    topics = {t["type"]: t["topic"] for t in body["event_types"]}
    assert topics == {name: settings.kafka.topic(t.topic)
                      for name, t in schemas.event_types().items()}
    usage = next(t for t in body["event_types"] if t["type"] == "usage.recorded")
    assert usage["fields"] == [
        {"name": "metric", "type": "string", "required": True},
        {"name": "quantity", "type": "double", "required": True},
    ]
    assert [f["name"] for f in body["envelope"] if f["required"]] == \
        ["event_id", "customer_id", "occurred_at", "type"]
