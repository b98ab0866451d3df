"""POST /v1/sources/stripe against a real broker: Stripe's signed webhooks in, catalogue
events on Kafka out; nothing written for anything Stripe did not sign."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from signalbox.common import schemas
from signalbox.common.codec import AvroCodec
from signalbox.common.settings import Settings
from signalbox.common.topics import EVENTS_BILLING, EVENTS_USAGE
from signalbox.evaluator.engine import evaluate, parse_automations
from signalbox.evaluator.engine_records import event_from_record
from signalbox.ingest import KafkaEventProducer
from signalbox.ingest.event_records import PRODUCER_HEADER
from signalbox.ingest.sources.catalogue import load_sources
from tests.ingest.sources.support import (
    STRIPE_DUNNING,
    STRIPE_OLD_SECRET,
    STRIPE_SECRET,
    fixture,
    stripe_signed,
)
from tests.ingest.sources.test_mapping import STRIPE
from tests.ingest.support import Client, ClientFactory, Record, read_topic
from tests.ingest.test_api import metric, nothing_written

pytestmark = pytest.mark.kafka

CODEC = AvroCodec()
SOURCES = load_sources({"STRIPE_WEBHOOK_SECRETS": f"{STRIPE_SECRET},{STRIPE_OLD_SECRET}"})
CUSTOMER = "cus_QXg1o8vcGmoR32"


@pytest.fixture
async def stripe_client(settings: Settings, producer: KafkaEventProducer,
                        make_client: ClientFactory) -> Client:
    """Ingest with the Stripe source on; no API key is sent (the signature is the proof)."""
    return await make_client(settings, producer, headers={}, sources=SOURCES)


async def deliver(client: Client, event: dict[str, Any], **sign: Any) -> tuple[int, Any]:
    body, headers = stripe_signed(event, **sign)
    response = await client.post("/v1/sources/stripe", data=body, headers=headers)
    return response.status, await response.json()


async def events_on_kafka(settings: Settings) -> list[tuple[Record, dict[str, Any]]]:
    records = [*await read_topic(settings, EVENTS_BILLING),
               *await read_topic(settings, EVENTS_USAGE)]
    return [(r, CODEC.decode(schemas.EVENT, r.value, plain_times=True)) for r in records]


async def test_payment_failed_lands_as_a_catalogue_event(
        stripe_client: Client, settings: Settings) -> None:
    event = fixture("stripe", "invoice.payment_failed")
    status, body = await deliver(stripe_client, event)
    assert status == 202, body
    assert body == {"accepted": [event["id"]]}
    [(record, decoded)] = await events_on_kafka(settings)
    assert record.topic == settings.kafka.topic(EVENTS_BILLING)
    assert record.key == CUSTOMER.encode()
    assert (PRODUCER_HEADER, b"stripe") in record.headers
    assert decoded["event_id"] == event["id"]
    assert decoded["customer_id"] == CUSTOMER
    assert decoded["occurred_at"] == event["created"] * 1000
    assert decoded["source"] == "stripe"
    assert decoded["customer"]["email"] == "ada@example.com"
    assert decoded["attributes"] == {"stripe_attempt_count": "2"}
    name, data = decoded["payload"]
    assert schemas.event_type_by_record()[name] == "payment.failed"
    assert data == {"payment_id": "in_1Sb01B7WZ01zgkWpay#2", "invoice_id": "in_1Sb01B7WZ01zgkWpay",
                    "product": "prod_Pro", "amount_minor": 4900, "currency": "EUR",
                    "reason": None}


async def test_a_replayed_webhook_is_a_duplicate_downstream(
        stripe_client: Client, settings: Settings) -> None:
    """Stripe retries until it gets a 2xx; the copy carries the same event_id, so the
    evaluator ignores it exactly as it ignores a retried POST /v1/events."""
    event = fixture("stripe", "invoice.payment_failed")
    assert (await deliver(stripe_client, event))[0] == 202
    assert (await deliver(stripe_client, event))[0] == 202
    records = [*await read_topic(settings, EVENTS_BILLING)]
    assert len(records) == 2
    first, again = (event_from_record(CODEC.decode(schemas.EVENT, r.value)) for r in records)
    assert first.event_id == again.event_id == event["id"]
    automations = parse_automations(STRIPE_DUNNING, schemas.event_types())
    decision = evaluate(None, first, automations)
    assert len(decision.commands) == 1  # the customer is emailed once
    replay = evaluate(decision.state, again, automations)
    assert replay.duplicate and replay.commands == ()


@pytest.mark.parametrize("case", ["wrong_secret", "stale_timestamp", "tampered_body",
                                  "no_signature"])
async def test_unverified_webhooks_are_refused_and_nothing_is_written(
        case: str, stripe_client: Client, settings: Settings) -> None:
    event = fixture("stripe", "invoice.payment_failed")
    signing: dict[str, dict[str, Any]] = {
        "wrong_secret": {"secret": "whsec_someone_else"},
        "stale_timestamp": {"timestamp": int(time.time()) - 301}}
    body, headers = stripe_signed(event, **signing.get(case, {}))
    if case == "tampered_body":
        body = body.replace(b'"amount_due": 4900', b'"amount_due": 1')
    if case == "no_signature":
        del headers["Stripe-Signature"]
    expected = {"stale_timestamp": "stale_timestamp", "no_signature": "missing_signature"}.get(
        case, "bad_signature")
    before = await metric(stripe_client, "signalbox_ingest_source_auth_failures_total",
                          source="stripe", reason=expected)
    response = await stripe_client.post("/v1/sources/stripe", data=body, headers=headers)
    answer = await response.json()
    assert response.status == 400, answer
    assert answer["error"] == expected
    assert "secret" not in answer["detail"] or "whsec" not in answer["detail"]
    assert await metric(stripe_client, "signalbox_ingest_source_auth_failures_total",
                        source="stripe", reason=expected) == before + 1
    assert await nothing_written(settings)


async def test_the_previous_secret_still_verifies_while_rotating(
        stripe_client: Client, settings: Settings) -> None:
    status, _ = await deliver(stripe_client, fixture("stripe", "invoice.paid"),
                              secret=STRIPE_OLD_SECRET)
    assert status == 202
    assert len(await events_on_kafka(settings)) == 1


async def test_an_unmapped_type_is_acknowledged_and_counted(
        stripe_client: Client, settings: Settings) -> None:
    event = fixture("stripe", "plan.created")
    labels = {"source": "stripe", "type": "plan.created", "outcome": "unmapped"}
    before = await metric(stripe_client, "signalbox_ingest_source_events_total", **labels)
    status, body = await deliver(stripe_client, event)
    assert status == 200
    assert body["ignored"] == "unmapped" and body["source_event_id"] == event["id"]
    assert await metric(stripe_client, "signalbox_ingest_source_events_total",
                        **labels) == before + 1
    assert await nothing_written(settings)


async def test_a_mapped_event_ingest_would_refuse_is_a_4xx_naming_the_stripe_event(
        stripe_client: Client, settings: Settings) -> None:
    event = fixture("stripe", "invoice.finalized")
    event["data"]["object"]["currency"] = "xyz"
    status, body = await deliver(stripe_client, event)
    assert status == 400
    assert body["error"] == "invalid_event"
    assert body["source_event_id"] == event["id"]
    assert body["errors"][0]["path"] == "$[0].data.currency"
    assert "ISO 4217" in body["errors"][0]["reason"]
    assert await nothing_written(settings)


async def test_each_rule_of_one_stripe_type_has_its_own_event_id(
        stripe_client: Client, settings: Settings) -> None:
    """One customer.subscription.updated that changed status, cancel_at and the period at
    once gives three events, each with a deterministic id of its own."""
    event = fixture("stripe", "customer.subscription.updated.period")
    cancel = fixture("stripe", "customer.subscription.updated.cancel")
    cancel_at = cancel["data"]["object"]["cancel_at"]
    event["data"]["object"].update(status="past_due", cancel_at=cancel_at)
    event["data"]["previous_attributes"].update(status="active", cancel_at=None)
    status, body = await deliver(stripe_client, event)
    assert status == 202, body
    assert body["accepted"] == [f"{event['id']}:status", f"{event['id']}:cancel",
                                f"{event['id']}:period"]
    kinds = sorted(schemas.event_type_by_record()[d["payload"][0]]
                   for _, d in await events_on_kafka(settings))
    assert kinds == ["service.status_changed", "subscription.cancelled", "subscription.renewed"]


async def test_a_source_without_secrets_is_off(
        settings: Settings, producer: KafkaEventProducer, make_client: ClientFactory) -> None:
    client = await make_client(settings, producer, headers={}, sources=load_sources({}))
    response = await client.post("/v1/sources/stripe", data=json.dumps({}),
                                 headers={"Content-Type": "application/json"})
    body = await response.json()
    assert response.status == 404
    assert body["error"] == "source_not_configured"
    assert "STRIPE_WEBHOOK_SECRETS" in body["detail"]


async def test_every_mapped_stripe_fixture_lands_as_its_catalogue_events(
        stripe_client: Client, settings: Settings) -> None:
    expected: dict[str, str] = {}
    for name, types in STRIPE.items():
        event = fixture("stripe", name)
        status, body = await deliver(stripe_client, event)
        assert status == (202 if types else 200), (name, body)
        for kind in types:
            type_name, _, suffix = kind.partition(":")
            expected[event["id"] + (f":{suffix}" if suffix else "")] = type_name
    landed = {d["event_id"]: schemas.event_type_by_record()[d["payload"][0]]
              for _, d in await events_on_kafka(settings)}
    assert landed == expected
