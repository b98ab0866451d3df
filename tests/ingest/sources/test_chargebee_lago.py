"""POST /v1/sources/chargebee (basic auth) and /v1/sources/lago (HMAC) against a real broker."""

from __future__ import annotations

import json

import pytest

from signalbox.common import schemas
from signalbox.common.codec import AvroCodec
from signalbox.common.settings import Settings
from signalbox.common.topics import EVENTS_BILLING
from signalbox.ingest import KafkaEventProducer
from signalbox.ingest.sources.catalogue import load_sources
from tests.ingest.sources.support import (
    CHARGEBEE_CREDENTIALS,
    LAGO_HMAC_KEY,
    basic_auth,
    fixture,
    lago_signed,
)
from tests.ingest.support import Client, ClientFactory, read_topic
from tests.ingest.test_api import nothing_written

pytestmark = pytest.mark.kafka

CODEC = AvroCodec()
SOURCES = load_sources({"CHARGEBEE_WEBHOOK_CREDENTIALS": CHARGEBEE_CREDENTIALS,
                        "LAGO_WEBHOOK_HMAC_KEYS": LAGO_HMAC_KEY})


@pytest.fixture
async def client(settings: Settings, producer: KafkaEventProducer,
                 make_client: ClientFactory) -> Client:
    return await make_client(settings, producer, headers={}, sources=SOURCES)


async def test_chargebee_payment_failed_with_basic_auth(client: Client,
                                                        settings: Settings) -> None:
    event = fixture("chargebee", "payment_failed")
    response = await client.post("/v1/sources/chargebee", json=event,
                                 headers={"Authorization": basic_auth(CHARGEBEE_CREDENTIALS)})
    assert response.status == 202, await response.text()
    [record] = await read_topic(settings, EVENTS_BILLING)
    decoded = CODEC.decode(schemas.EVENT, record.value)
    assert (decoded["event_id"], decoded["customer_id"]) == (event["id"], "16BjnKSOt3g1Ypy")
    assert decoded["payload"][1]["reason"] == "card_declined"


@pytest.mark.parametrize("credentials", ["signalbox:wrong", "other:7d1f0c9a2b3e4f5a6b7c8d9e"])
async def test_chargebee_with_wrong_credentials_writes_nothing(
        credentials: str, client: Client, settings: Settings) -> None:
    event = fixture("chargebee", "payment_failed")
    response = await client.post("/v1/sources/chargebee", json=event,
                                 headers={"Authorization": basic_auth(credentials)})
    assert response.status == 400
    assert (await response.json())["error"] == "bad_signature"
    assert await nothing_written(settings)


async def test_lago_payment_failure_with_hmac_and_unique_key(client: Client,
                                                             settings: Settings) -> None:
    body, headers = lago_signed(fixture("lago", "invoice.payment_status_updated.failed"))
    response = await client.post("/v1/sources/lago", data=body, headers=headers)
    assert response.status == 202, await response.text()
    assert (await response.json())["accepted"] == [headers["X-Lago-Unique-Key"]]
    [record] = await read_topic(settings, EVENTS_BILLING)
    decoded = CODEC.decode(schemas.EVENT, record.value)
    assert decoded["customer_id"] == "5eb02857-a71e-4ea2-bcf9-57d3a41bc6ba"
    assert decoded["customer"]["email"] == "dinesh@piedpiper.example.com"


@pytest.mark.parametrize("case", ["wrong_key", "tampered_body"])
async def test_lago_unverified_writes_nothing(case: str, client: Client,
                                              settings: Settings) -> None:
    payload = fixture("lago", "invoice.payment_status_updated.failed")
    key = "not-the-key" if case == "wrong_key" else LAGO_HMAC_KEY
    body, headers = lago_signed(payload, key=key)
    if case == "tampered_body":
        payload["invoice"]["total_amount_cents"] = 1
        body = json.dumps(payload).encode()
    response = await client.post("/v1/sources/lago", data=body, headers=headers)
    assert response.status == 400
    assert (await response.json())["error"] == "bad_signature"
    assert await nothing_written(settings)
