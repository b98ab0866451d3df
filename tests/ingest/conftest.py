"""Fixtures for ingest: the real app on a test server, with a real Kafka producer or,
for tests of the HTTP layer alone, an in-memory one (no broker)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import replace
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from signalbox.common import schemas
from signalbox.common.clock import now_ms
from signalbox.common.settings import Settings
from signalbox.ingest import EventProducer, KafkaEventProducer, create_app
from signalbox.ingest.keys import KeyFile
from signalbox.ingest.size_limits import SizeBudget, read_budget
from signalbox.ingest.sources.catalogue import Source
from signalbox.testing import InMemoryEventProducer
from tests.ingest.support import BROKER_DEFAULT_MAX_MESSAGE_BYTES, Client, ClientFactory


@pytest.fixture
def settings(settings: Settings, tmp_path: Path) -> Settings:
    """The shared test settings with a keys file of this test's own."""
    keys_file = str(tmp_path / "ingest-keys.json")
    return replace(settings, ingest=replace(settings.ingest, keys_file=keys_file))


@pytest.fixture
def offline_settings(offline_settings: Settings, tmp_path: Path) -> Settings:
    """No broker, and a keys file of this test's own."""
    keys_file = str(tmp_path / "ingest-keys.json")
    return replace(offline_settings, ingest=replace(offline_settings.ingest, keys_file=keys_file))


def _create_key(settings: Settings) -> str:
    """A key that may send every producer event type, in the settings' keys file."""
    _, token = KeyFile(settings.ingest.keys_file).create(
        "tests", ["*"], schemas.event_types(), now_ms())
    return token


@pytest.fixture
def api_key(settings: Settings) -> str:
    return _create_key(settings)


@pytest.fixture
def offline_api_key(offline_settings: Settings) -> str:
    return _create_key(offline_settings)


@pytest.fixture
async def producer(settings: Settings) -> AsyncIterator[KafkaEventProducer]:
    p = KafkaEventProducer(settings.kafka)
    await p.start()
    yield p
    await p.stop()


@pytest.fixture
def memory_producer() -> InMemoryEventProducer:
    return InMemoryEventProducer()


async def _clients(api_key: str, budget: Callable[[], Awaitable[SizeBudget]]
                   ) -> AsyncIterator[ClientFactory]:
    """The factory of ``make_client``; every client it made is closed afterwards."""
    clients: list[Client] = []

    async def make(settings: Settings, producer: EventProducer,
                   headers: Mapping[str, str] | None = None,
                   sources: Mapping[str, Source] | None = None) -> Client:
        sent = {"Authorization": f"Bearer {api_key}"} if headers is None else headers
        client: Client = TestClient(
            TestServer(create_app(settings, producer, await budget(), sources)), headers=sent)
        await client.start_server()
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.close()


@pytest.fixture
async def make_client(settings: Settings, api_key: str) -> AsyncIterator[ClientFactory]:
    """Start the ingest app with the given settings and producer; closed after the test.

    The client sends the test's ``api_key`` unless ``headers`` say otherwise. The size
    budget is read from the broker for the test's own topics (as ingest does at start-up),
    also when the app is given settings naming other topics."""
    topics = {settings.kafka.topic(t.topic) for t in schemas.event_types().values()}

    async def budget() -> SizeBudget:
        return await asyncio.to_thread(read_budget, settings.kafka, topics)

    async for make in _clients(api_key, budget):
        yield make


@pytest.fixture
async def make_offline_client(offline_api_key: str) -> AsyncIterator[ClientFactory]:
    """Like ``make_client`` with no broker: the size budget is the broker's default limit."""

    async def budget() -> SizeBudget:
        return SizeBudget(BROKER_DEFAULT_MAX_MESSAGE_BYTES)

    async for make in _clients(offline_api_key, budget):
        yield make


@pytest.fixture
async def client(settings: Settings, producer: KafkaEventProducer,
                 make_client: ClientFactory) -> Client:
    return await make_client(settings, producer)
