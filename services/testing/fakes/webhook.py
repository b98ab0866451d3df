"""A webhook receiver on loopback that verifies signatures as the docs tell receivers to."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from signalbox.dispatcher.channels.webhook import SIGNATURE_HEADER, BadSignature, verify_signature
from signalbox.testing.fakes.server import FakeServer


@dataclass(frozen=True)
class Hook:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]


class FakeReceiver(FakeServer):
    def __init__(self, secret: str = "receiver-secret-0123456789", port: int | None = None,
                 tolerance_s: float = 300.0, tls: bool = False) -> None:
        super().__init__(port, tls)
        self.secret, self.tolerance_s = secret, tolerance_s
        self.hooks: list[Hook] = []
        self.rejected: list[str] = []

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/{path:.*}", self._receive)

    async def _receive(self, request: web.Request) -> web.Response:
        raw = await request.read()
        try:
            verify_signature(self.secret, request.headers.get(SIGNATURE_HEADER, ""), raw,
                             self.tolerance_s)
        except BadSignature as exc:
            with self.lock:
                self.rejected.append(str(exc))
            return web.json_response({"error": str(exc)}, status=401)
        with self.lock:
            self.hooks.append(Hook(request.path, dict(request.headers), json.loads(raw)))
        return web.json_response({"ok": True}, headers={"X-Request-Id": f"r{len(self.hooks)}"})
