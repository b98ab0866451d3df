"""What the ingest HTTP API refuses, and that nothing of a refused request is sent.

No broker: this module's ``settings``, ``producer`` and ``make_client`` (and so
``client``) are the offline ones of tests/ingest/conftest.py, the app writing to an
in-memory producer whose ``sent`` holds what a broker would have received.
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest
from aiohttp import ClientResponse

from signalbox.common.settings import Settings
from signalbox.testing import InMemoryEventProducer
from tests.ingest.support import Client, ClientFactory, usage_recorded
from tests.support.events import payment_failed


@pytest.fixture
def settings(offline_settings: Settings) -> Settings:
    return offline_settings


@pytest.fixture
def producer(memory_producer: InMemoryEventProducer) -> InMemoryEventProducer:
    return memory_producer


@pytest.fixture
def make_client(make_offline_client: ClientFactory) -> ClientFactory:
    return make_offline_client


async def post(client: Client, body: Any) -> tuple[int, dict[str, Any]]:
    response = await client.post("/v1/events", json=body)
    return response.status, await response.json()


async def refused(response: ClientResponse, status: int, error: str,
                  producer: InMemoryEventProducer) -> dict[str, Any]:
    """Check an error answer and that nothing was sent; the body for further checks."""
    assert response.status == status
    body: dict[str, Any] = await response.json()
    assert body["error"] == error
    assert producer.sent == []
    return body


async def test_one_invalid_event_and_nothing_of_the_batch_is_written(
        client: Client, producer: InMemoryEventProducer) -> None:
    batch = [payment_failed(event_id="evt_1"), usage_recorded(event_id="evt_2"),
             payment_failed(event_id="evt_3", data={"payment_id": "p", "product": "pro",
                                                    "amount_minor": "49", "currency": "EUR"}),
             usage_recorded(event_id="evt_4", customer_id="")]
    status, body = await post(client, batch)
    assert status == 400
    assert body["error"] == "invalid_event"
    assert body["errors"] == [
        {"path": "$[2].data.amount_minor", "reason": "expected an integer, got string"},
        {"path": "$[3].customer_id", "reason": "must not be empty"},
    ]
    assert producer.sent == []


async def test_invalid_json_is_a_400_with_path_and_reason(
        client: Client, producer: InMemoryEventProducer) -> None:
    response = await client.post("/v1/events", data=b'[{"event_id": "evt_1",',
                                 headers={"Content-Type": "application/json"})
    body = await refused(response, 400, "invalid_json", producer)
    assert body["errors"] == [{"path": "$", "reason": body["detail"]}]
    assert body["detail"].startswith("invalid JSON: Expecting")


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded",
                                          None])
async def test_other_content_types_are_a_415(client: Client, producer: InMemoryEventProducer,
                                             content_type: str | None) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    response = await client.post("/v1/events", data=json.dumps(payment_failed()).encode(),
                                 headers=headers, skip_auto_headers=["Content-Type"])
    await refused(response, 415, "unsupported_media_type", producer)


async def test_a_body_over_the_limit_is_a_413(
        settings: Settings, producer: InMemoryEventProducer, make_client: ClientFactory) -> None:
    settings = replace(settings, ingest=replace(settings.ingest, max_body_bytes=1_000))
    client = await make_client(settings, producer)
    batch = [payment_failed(event_id=f"evt_{i}") for i in range(10)]
    assert len(json.dumps(batch)) > 1_000
    status, body = await post(client, batch)
    assert status == 413
    assert body == {"error": "body_too_large",
                    "detail": "the body exceeds 1000 bytes; send smaller batches"}
    assert await post(client, batch[:2]) == (202, {"accepted": ["evt_0", "evt_1"]})


async def test_a_chunked_body_over_the_limit_is_a_413(
        settings: Settings, producer: InMemoryEventProducer, make_client: ClientFactory) -> None:
    settings = replace(settings, ingest=replace(settings.ingest, max_body_bytes=1_000))
    client = await make_client(settings, producer)

    async def chunks() -> Any:  # no Content-Length: the limit is found while reading
        for i in range(10):
            yield (b"[" if i == 0 else b",") + json.dumps(payment_failed()).encode()
        yield b"]"

    response = await client.post("/v1/events", data=chunks(),
                                 headers={"Content-Type": "application/json"})
    await refused(response, 413, "body_too_large", producer)


async def test_a_batch_over_the_limit_is_a_413(
        settings: Settings, producer: InMemoryEventProducer, make_client: ClientFactory) -> None:
    settings = replace(settings, ingest=replace(settings.ingest, max_batch=2))
    client = await make_client(settings, producer)
    response = await client.post("/v1/events",
                                 json=[payment_failed(event_id=f"evt_{i}") for i in range(3)])
    body = await refused(response, 413, "batch_too_large", producer)
    assert body["detail"] == "the batch has 3 events; at most 2 are accepted per request"
