"""Process lifecycle shared by the services: start-up, clean shutdown on SIGTERM/SIGINT."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Awaitable, Callable

import structlog

from signalbox.common.metrics import publish_build_info
from signalbox.common.ops import OpsServer, ReadinessCheck
from signalbox.common.settings import Settings
from signalbox.common.telemetry import configure_logging
from signalbox.common.topics import apply, catalogue, wait_for_broker

log = structlog.get_logger(__name__)


def prepare(service: str, settings: Settings) -> None:
    """What every service does first: JSON logging, build info, a reachable broker, the topic
    catalogue."""
    configure_logging(service, settings.logging.level, settings.logging.format)
    publish_build_info(service)
    wait_for_broker(settings.kafka)
    apply(settings.kafka, catalogue(settings.kafka).values())


def run_with_ops(
    host: str,
    port: int,
    checks: dict[str, ReadinessCheck],
    work: Callable[[asyncio.Event], Awaitable[None]],
) -> None:
    """:func:`run` ``work`` beside the /healthz, /readyz and /metrics server on ``host``
    (``SIGNALBOX_BIND_HOST``) and ``port``."""

    async def serve(stop: asyncio.Event) -> None:
        ops = OpsServer(host, port, checks)
        await ops.start()
        try:
            await work(stop)
        finally:
            await ops.stop()

    run(serve)


def run(main: Callable[[asyncio.Event], Awaitable[None]]) -> None:
    """Run ``main(stop)`` until it returns; SIGTERM or SIGINT sets ``stop``.

    ``main`` is expected to finish its in-flight work and close its clients once
    ``stop`` is set, so Kubernetes' termination grace period ends in a clean exit.
    """

    async def _runner() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, _on_signal, stop, sig)
        await main(stop)

    asyncio.run(_runner())


def _on_signal(stop: asyncio.Event, sig: signal.Signals) -> None:
    if not stop.is_set():
        log.info("shutdown_requested", signal=sig.name)
    stop.set()
