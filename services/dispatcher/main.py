"""``signalbox dispatcher``: wire the channels to the delivery loop and serve /metrics."""

from __future__ import annotations

import asyncio

import structlog

from signalbox.common import runtime
from signalbox.common.ops import OpsServer
from signalbox.common.settings import Settings
from signalbox.common.telemetry import configure_logging
from signalbox.common.topics import apply, catalogue, wait_for_broker
from signalbox.dispatcher.channels import EmailChannel
from signalbox.dispatcher.templates import TemplateStore
from signalbox.dispatcher.worker import Dispatcher

log = structlog.get_logger(__name__)


def build(settings: Settings) -> Dispatcher:
    templates = TemplateStore([settings.templates_dir] if settings.templates_dir else [])
    return Dispatcher(settings, {"email": EmailChannel(settings.smtp, templates)})


def main(settings: Settings) -> None:
    configure_logging("dispatcher", settings.log_level, settings.log_format)
    wait_for_broker(settings.kafka)
    apply(settings.kafka, catalogue(settings).values())
    dispatcher = build(settings)

    async def serve(stop: asyncio.Event) -> None:
        ops = OpsServer(settings.bind_host, settings.dispatcher_port,
                        {"kafka": dispatcher.ready})
        await ops.start()
        log.info("dispatcher_started", smtp=f"{settings.smtp.host}:{settings.smtp.port}",
                 port=settings.dispatcher_port)
        try:
            await dispatcher.run(stop)
        finally:
            await ops.stop()

    runtime.run(serve)
