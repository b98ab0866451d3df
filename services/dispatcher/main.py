"""``signalbox dispatcher``: wire channels and policy to the delivery loop; serve ops and admin."""

from __future__ import annotations

import asyncio

import structlog
from aiohttp import web

from signalbox.common import runtime
from signalbox.common.clock import Clock, SystemClock
from signalbox.common.ops import add_ops_routes
from signalbox.common.registry import codec_for
from signalbox.common.settings import DispatcherSettings, Settings, SettingsError, is_loopback
from signalbox.common.topics import ACTIONS_SUPPRESSIONS
from signalbox.dispatcher.channels import build_channels
from signalbox.dispatcher.optout_api import OptOutApi
from signalbox.dispatcher.policy.rules import policy_from_mapping
from signalbox.dispatcher.privacy import Privacy
from signalbox.dispatcher.providers import ConfigError, DispatcherConfig
from signalbox.dispatcher.providers import load as load_config
from signalbox.dispatcher.suppressions import KafkaSuppressions
from signalbox.dispatcher.worker import Dispatcher

log = structlog.get_logger(__name__)


def build(settings: Settings, config: DispatcherConfig | None = None,
          clock: Clock | None = None, recheck_s: float = 5.0) -> Dispatcher:
    config = config if config is not None else load_config(settings.dispatcher.config_file)
    if config.full_recipients and not is_loopback(settings.bind_host):
        raise ConfigError(f"{config.source}: privacy.recipients: full puts customers' "
                          f"addresses in logs and results; development only, refused while "
                          f"SIGNALBOX_BIND_HOST is {settings.bind_host!r} (not loopback)")
    codec = codec_for(settings.registry)
    clock = clock or SystemClock()  # one clock: the policy's time is the mail's Date
    return Dispatcher(
        settings.kafka, settings.instance_id,
        build_channels(settings.dispatcher, settings.templates_dir, config, clock),
        codec=codec,
        policy=policy_from_mapping(config.policy, settings.dispatcher, config.source),
        suppressions=KafkaSuppressions(settings.kafka,
                                       settings.kafka.topic(ACTIONS_SUPPRESSIONS), codec, clock),
        clock=clock, recheck_s=recheck_s, privacy=Privacy(full=config.full_recipients))


def optout_api(settings: DispatcherSettings, config: DispatcherConfig,
               dispatcher: Dispatcher) -> OptOutApi:
    """The opt-out endpoints, writing to the dispatcher's suppression list."""
    return OptOutApi(dispatcher.suppressions, settings.unsubscribe_secret,
                     config.sms.auth_token if config.sms else "", settings.public_url)


async def serve(bind_host: str, port: int, dispatcher: Dispatcher, optout_api: OptOutApi,
                stop: asyncio.Event) -> None:
    """The delivery loop beside the ops routes (/healthz, /readyz, /metrics) and the
    opt-out endpoints, on ``DISPATCHER_PORT``."""
    app = web.Application()
    add_ops_routes(app, {"kafka": dispatcher.ready})
    optout_api.routes(app)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, bind_host, port).start()
    try:
        await dispatcher.run(stop)
    finally:
        await runner.cleanup()


def main(settings: Settings) -> None:
    runtime.prepare("dispatcher", settings)
    try:  # a bad file stops start-up like a bad variable: exit 2 with the reason
        config = load_config(settings.dispatcher.config_file)
        dispatcher = build(settings, config)
    except ConfigError as exc:
        raise SettingsError(str(exc)) from None
    endpoints = optout_api(settings.dispatcher, config, dispatcher)
    smtp = settings.dispatcher.smtp
    log.info("dispatcher_started", smtp=f"{smtp.host}:{smtp.port}",
             port=settings.dispatcher.port, channels=sorted(dispatcher.channels))
    runtime.run(lambda stop: serve(settings.bind_host, settings.dispatcher.port, dispatcher,
                                   endpoints, stop))
