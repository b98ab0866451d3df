"""The operational HTTP surface every service exposes: /healthz, /readyz, /metrics.

/healthz answers while the event loop runs (liveness: restart me if not).
/readyz runs the service's readiness checks (send me work only if all pass).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest

#: A readiness check returns ``None`` when ready, or a short reason when not.
ReadinessCheck = Callable[[], Awaitable[str | None]]


def add_ops_routes(
    app: web.Application,
    checks: dict[str, ReadinessCheck],
    registry: CollectorRegistry = REGISTRY,
) -> None:
    async def healthz(_: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def readyz(_: web.Request) -> web.Response:
        failing = {}
        for name, check in checks.items():
            try:
                reason = await check()
            except Exception as exc:
                reason = f"{type(exc).__name__}: {exc}"
            if reason is not None:
                failing[name] = reason
        status = 503 if failing else 200
        body = {"status": "not ready" if failing else "ready", "failing": failing}
        return web.json_response(body, status=status)

    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    add_metrics_route(app, registry)


def add_metrics_route(app: web.Application, registry: CollectorRegistry = REGISTRY) -> None:
    """``GET /metrics``: the Prometheus text exposition of ``registry``."""

    async def metrics(_: web.Request) -> web.Response:
        return web.Response(
            body=generate_latest(registry), headers={"Content-Type": CONTENT_TYPE_LATEST}
        )

    app.router.add_get("/metrics", metrics)


class OpsServer:
    """A small aiohttp server for the ops routes of services that have no HTTP API."""

    def __init__(self, host: str, port: int, checks: dict[str, ReadinessCheck]) -> None:
        self._app = web.Application()
        add_ops_routes(self._app, checks)
        self._host, self._port = host, port
        self._runner: web.AppRunner | None = None

    @property
    def port(self) -> int:
        """The bound port (useful when configured as 0)."""
        assert self._runner is not None
        site = next(iter(self._runner.sites))
        server = site._server
        assert server is not None
        return int(server.sockets[0].getsockname()[1])  # type: ignore[attr-defined]

    async def start(self) -> None:
        self._runner = web.AppRunner(self._app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, self._host, self._port).start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
