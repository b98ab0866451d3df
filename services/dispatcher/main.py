"""``signalbox dispatcher``: wire channels and policy to the delivery loop; serve ops and admin."""

from __future__ import annotations

import asyncio

import structlog
from aiohttp import web

from signalbox.common import runtime
from signalbox.common.ops import add_ops_routes
from signalbox.common.registry import codec_for
from signalbox.common.settings import Settings
from signalbox.common.topics import ACTIONS_SUPPRESSIONS
from signalbox.dispatcher.channels import build_channels
from signalbox.dispatcher.config import DispatcherConfig
from signalbox.dispatcher.config import load as load_config
from signalbox.dispatcher.policy.clock import Clock
from signalbox.dispatcher.policy.config import policy_from_mapping
from signalbox.dispatcher.suppressions import KafkaSuppressions
from signalbox.dispatcher.worker import Dispatcher

log = structlog.get_logger(__name__)


def build(settings: Settings, config: DispatcherConfig | None = None,
          clock: Clock | None = None, recheck_s: float = 5.0) -> Dispatcher:
    config = config if config is not None else load_config()
    codec = codec_for(settings)
    return Dispatcher(
        settings, build_channels(settings, config), codec=codec,
        policy=policy_from_mapping(config.policy, settings),
        suppressions=KafkaSuppressions(settings.kafka,
                                       settings.kafka.topic(ACTIONS_SUPPRESSIONS), codec),
        clock=clock, recheck_s=recheck_s)


async def serve(settings: Settings, dispatcher: Dispatcher, stop: asyncio.Event) -> None:
    """The delivery loop beside /healthz, /readyz, /metrics on ``DISPATCHER_PORT``."""
    app = web.Application()
    add_ops_routes(app, {"kafka": dispatcher.ready})
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, settings.bind_host, settings.dispatcher_port).start()
    try:
        await dispatcher.run(stop)
    finally:
        await runner.cleanup()


def main(settings: Settings) -> None:
    runtime.prepare("dispatcher", settings)
    dispatcher = build(settings)
    log.info("dispatcher_started", smtp=f"{settings.smtp.host}:{settings.smtp.port}",
             port=settings.dispatcher_port, channels=sorted(dispatcher.channels))
    runtime.run(lambda stop: serve(settings, dispatcher, stop))
