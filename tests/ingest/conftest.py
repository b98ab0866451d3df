"""Fixtures for ingest: the real app on a test server with a real Kafka producer."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp.test_utils import TestClient, TestServer

from signalbox.common.settings import Settings
from signalbox.ingest import KafkaEventProducer, create_app
from tests.ingest.support import Client, ClientFactory


@pytest.fixture
async def producer(settings: Settings) -> AsyncIterator[KafkaEventProducer]:
    p = KafkaEventProducer(settings.kafka)
    await p.start()
    yield p
    await p.stop()


@pytest.fixture
async def make_client() -> AsyncIterator[ClientFactory]:
    """Start the ingest app with the given settings and producer; closed after the test."""
    clients: list[Client] = []

    async def make(settings: Settings, producer: KafkaEventProducer) -> Client:
        client: Client = TestClient(TestServer(create_app(settings, producer)))
        await client.start_server()
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.close()


@pytest.fixture
async def client(settings: Settings, producer: KafkaEventProducer,
                 make_client: ClientFactory) -> Client:
    return await make_client(settings, producer)
