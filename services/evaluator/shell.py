"""Everything around the Faust agent that is not Faust: the live automation set, the
approvals topic, the admin HTTP API and the ops endpoints (/healthz, /readyz,
/metrics from :mod:`signalbox.common.ops`).

It runs as a :class:`mode.Service` beside the Faust app in the same worker, so it
starts, stops and logs with it (SIGTERM included).
"""

from __future__ import annotations

import asyncio
from typing import Any

import structlog
from aiohttp import web
from mode import Service

from signalbox.common.brokerwatch import BrokerWatch
from signalbox.common.codec import AvroCodec
from signalbox.common.lag import LagCollector
from signalbox.common.ops import OpsServer, ReadinessCheck, add_metrics_route
from signalbox.common.settings import (
    EvaluatorSettings,
    KafkaSettings,
    require_admin_token,
)
from signalbox.common.topics import AUTOMATIONS
from signalbox.evaluator.admin import ApprovalsApi, AutomationsApi, create_admin_app
from signalbox.evaluator.approvals import ApprovalsService
from signalbox.evaluator.definitions import Definitions
from signalbox.evaluator.engine import AutomationSet
from signalbox.evaluator.source import AutomationsSource, AutomationsWriter

log = structlog.get_logger(__name__)


class EvaluatorShell(Service):
    """Holds the live state the agent reads. Nothing connects before it starts.
    ``bind_host``: where its ops server and the admin API listen (``SIGNALBOX_BIND_HOST``)."""

    def __init__(self, kafka: KafkaSettings, evaluator: EvaluatorSettings, bind_host: str,
                 codec: AvroCodec, definitions: Definitions, automations: AutomationSet,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        # before anything connects: a clear error, exit 2
        require_admin_token(evaluator, bind_host)
        self.evaluator, self.bind_host = evaluator, bind_host
        self.codec = codec
        self.broker = BrokerWatch(kafka.topic(AUTOMATIONS))
        self._checks: dict[str, ReadinessCheck] = {
            "broker": self.broker_ready, "automations": self.source_ready,
            "approvals": self.approvals_ready}
        self._watching: asyncio.Task[None] | None = None
        #: The consumer group's lag on the input partitions the Faust side owns
        #: (``lag.owned`` is set by the wiring).
        self.lag = LagCollector(kafka, kafka.evaluator_app_id, owned=lambda: ())
        self._lagging: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()
        self.source = AutomationsSource(kafka, codec, definitions, automations)
        self.writer = AutomationsWriter(kafka, codec)
        self.approvals = ApprovalsService(kafka, codec)
        self._runner: web.AppRunner | None = None
        self._ops: OpsServer | None = None

    @property
    def automations(self) -> AutomationSet:
        return self.source.current

    async def wait_until_ready_for_inputs(self) -> None:
        """Inputs wait until the automations topic has been read to its end once, so no
        event is evaluated against a set the topic has already replaced."""
        await self.source.reader.caught_up.wait()

    def add_checks(self, checks: dict[str, ReadinessCheck]) -> None:
        """Readiness checks of the Faust side (group membership, table recovery)."""
        self._checks = {**checks, **self._checks}

    async def broker_ready(self) -> str | None:
        """The Kafka clients retry a lost broker quietly: readiness asks it every second."""
        return self.broker.problem()

    async def source_ready(self) -> str | None:
        return await self.source.ready()

    async def approvals_ready(self) -> str | None:
        return await self.approvals.ready()

    async def on_start(self) -> None:
        self._ops = OpsServer(self.bind_host, self.evaluator.port, self._checks)
        await self._ops.start()
        await self.writer.start()
        self._watching = asyncio.create_task(
            self.broker.run(self.writer.client, self._stopping))
        self._lagging = asyncio.create_task(self.lag.run(self._stopping))
        await self.source.reader.start()
        await self.approvals.start()
        admin = create_admin_app(AutomationsApi(self.source, self.writer),
                                 ApprovalsApi(self.approvals), self.evaluator.admin_token)
        add_metrics_route(admin)  # the same registry as the ops port's /metrics
        self._runner = web.AppRunner(admin, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, self.bind_host, self.evaluator.admin_port).start()
        log.info("admin_api_listening", host=self.bind_host, port=self.evaluator.admin_port,
                 auth="bearer" if self.evaluator.admin_token else "none")

    async def on_stop(self) -> None:
        self._stopping.set()
        if self._watching is not None:
            await self._watching
        if self._lagging is not None:
            await self._lagging
        if self._runner is not None:
            await self._runner.cleanup()
        await self.approvals.stop()
        await self.source.reader.stop()
        await self.writer.stop()
        if self._ops is not None:
            await self._ops.stop()
