"""A plain HTTP server on loopback that records every request (for generic REST drivers)."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from signalbox.testing.fakes.server import FakeServer


@dataclass(frozen=True)
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


class FakeRest(FakeServer):
    def __init__(self, port: int | None = None) -> None:
        super().__init__(port)
        self.recorded: list[Recorded] = []

    def routes(self, app: web.Application) -> None:
        app.router.add_route("*", "/{path:.*}", self._record)

    async def _record(self, request: web.Request) -> web.Response:
        body = await request.read()
        with self.lock:
            self.recorded.append(Recorded(request.method, request.path_qs,
                                          dict(request.headers), body))
            n = len(self.recorded)
        return web.json_response({"ok": True}, status=201,
                                 headers={"Location": f"{self.url}/items/{n}"})
