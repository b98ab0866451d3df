"""``signalbox ingest``: the process around the HTTP app.

Start-up waits for the broker and applies the topic catalogue (ingest never
relies on topic auto-creation). On SIGTERM it stops accepting connections,
lets in-flight requests finish (each waits for its Kafka acks), flushes the
producer and exits 0.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

import structlog
from aiohttp import web

from signalbox.common import schemas
from signalbox.common.brokerwatch import BrokerWatch
from signalbox.common.runtime import prepare, run
from signalbox.common.settings import Settings, SettingsError
from signalbox.ingest.http_app import create_app
from signalbox.ingest.producer import KafkaEventProducer
from signalbox.ingest.size_limits import read_budget
from signalbox.ingest.sources.catalogue import Source, load_sources
from signalbox.ingest.sources.mapping import MappingError

log = structlog.get_logger(__name__)

#: Seconds in-flight requests get to finish after SIGTERM (under Kubernetes' default 30 s).
SHUTDOWN_GRACE_S = 20.0


async def serve(settings: Settings, stop: asyncio.Event,
                sources: Mapping[str, Source] | None = None) -> None:
    """Serve the ingest API until ``stop`` is set, then shut down cleanly."""
    topics = {settings.kafka.topic(t.topic) for t in schemas.event_types().values()}
    budget = await asyncio.to_thread(read_budget, settings.kafka, topics)
    log.info("ingest_size_budget", **budget.as_json())
    producer = KafkaEventProducer(settings.kafka,
                                  client_id=f"signalbox-ingest-{settings.instance_id}",
                                  max_request_size=budget.max_message_bytes)
    await producer.start()
    broker = BrokerWatch(min(topics))  # signalbox_broker_up, as in the other services
    watching = asyncio.create_task(broker.run(producer.client, stop))
    try:
        runner = web.AppRunner(create_app(settings, producer, budget, sources), access_log=None,
                               shutdown_timeout=SHUTDOWN_GRACE_S)
        await runner.setup()
        try:
            await web.TCPSite(runner, settings.bind_host, settings.ingest.port).start()
            host, port = runner.addresses[0][:2]
            log.info("ingest_listening", host=host, port=port)
            await stop.wait()
            log.info("ingest_stopping")
        finally:
            await runner.cleanup()  # stop accepting, finish in-flight requests
    finally:
        watching.cancel()
        await asyncio.gather(watching, return_exceptions=True)
        await producer.stop()  # flush and close
    log.info("ingest_stopped")


def main(settings: Settings) -> None:
    try:  # a broken mapping is a configuration error: refused before waiting for Kafka
        sources = load_sources()
    except MappingError as exc:
        raise SettingsError("; ".join(exc.errors)) from None
    prepare("ingest", settings)
    log.info("ingest_sources", on=sorted(n for n, s in sources.items() if s.secrets),
             off=sorted(n for n, s in sources.items() if not s.secrets))
    run(lambda stop: serve(settings, stop, sources))
