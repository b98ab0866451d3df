"""signalbox.client against a real broker: the records are the ones ingest writes, in
either framing; what ingest would refuse is refused before anything is sent."""

from __future__ import annotations

from contextlib import closing
from dataclasses import replace
from typing import Any

import pytest

from signalbox.client import EventClient, EventTooLarge, InvalidEvents
from signalbox.common import schemas
from signalbox.common.codec import CONFLUENT_MAGIC, MAGIC
from signalbox.common.registry import codec_for
from signalbox.common.settings import RegistrySettings, Settings
from signalbox.common.topics import EVENTS_BILLING, EVENTS_USAGE
from signalbox.ingest import KafkaEventProducer
from signalbox.ingest.event_records import PRODUCER_HEADER
from tests.ingest.support import ClientFactory, read_topic, usage_recorded
from tests.ingest.test_api import nothing_written
from tests.support.events import payment_failed

pytestmark = pytest.mark.kafka


async def _same_as_ingest(settings: Settings, producer: KafkaEventProducer,
                          make_client: ClientFactory, event: dict[str, Any]) -> None:
    """The client's record and ingest's record of the same event decode to the same."""
    async with EventClient(settings, producer="tests") as client:
        assert await client.send(event) == [event["event_id"]]
    http = await make_client(settings, producer)
    response = await http.post("/v1/events", json={**event, "event_id": "via-http"})
    assert response.status == 202
    client_record, http_record = await read_topic(settings, EVENTS_BILLING)
    assert client_record.key == http_record.key == b"cus_1"
    assert list(client_record.headers) == list(http_record.headers) == [(PRODUCER_HEADER, b"tests")]
    with closing(codec_for(settings.registry)) as codec:
        mine, theirs = (codec.decode(schemas.EVENT, r.value)
                        for r in (client_record, http_record))
    for decoded in (mine, theirs):
        decoded.pop("received_at")
    assert {**mine, "event_id": "via-http"} == theirs


async def test_records_match_ingest_in_single_object_encoding(
        settings: Settings, producer: KafkaEventProducer, make_client: ClientFactory) -> None:
    await _same_as_ingest(settings, producer, make_client, payment_failed())
    [record, _] = await read_topic(settings, EVENTS_BILLING)
    assert record.value[:2] == MAGIC


@pytest.mark.registry
async def test_records_match_ingest_with_the_registry(
        settings: Settings, schema_registry_url: str, producer: KafkaEventProducer,
        make_client: ClientFactory) -> None:
    registry = replace(settings, registry=RegistrySettings(schema_registry_url))
    await _same_as_ingest(registry, producer, make_client, payment_failed())
    [record, _] = await read_topic(settings, EVENTS_BILLING)
    assert record.value[:1] == CONFLUENT_MAGIC
    with closing(codec_for(registry.registry)) as codec:
        assert codec.decode(schemas.EVENT, record.value)["event_id"] == "evt_1"


async def test_each_type_goes_to_its_topic(settings: Settings) -> None:
    async with EventClient(settings) as client:
        await client.send([payment_failed(), usage_recorded(event_id="evt_2")])
    assert len(await read_topic(settings, EVENTS_BILLING)) == 1
    assert len(await read_topic(settings, EVENTS_USAGE)) == 1


@pytest.mark.parametrize(("event", "path"), [
    (payment_failed(data={"payment_id": "p", "product": "pro", "amount_minor": "49",
                          "currency": "EUR"}), "$.data.amount_minor"),
    ({**payment_failed(), "type": "approval.decided"}, "$.type"),
])
async def test_invalid_events_are_refused_before_sending(
        event: dict[str, Any], path: str, settings: Settings) -> None:
    async with EventClient(settings) as client:
        with pytest.raises(InvalidEvents) as caught:
            await client.send(event)
    assert caught.value.problems[0].path == path
    assert await nothing_written(settings)


async def test_an_event_over_the_size_budget_is_refused(settings: Settings) -> None:
    big = payment_failed(attributes={"notes": "x" * 600_000})
    async with EventClient(settings) as client:
        with pytest.raises(EventTooLarge):
            await client.send(big)
    assert await nothing_written(settings)
