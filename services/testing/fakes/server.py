"""A real aiohttp server on loopback, in its own thread, that can be told to misbehave.

Provider fakes build on it: each adds its routes and state. Tests (sync or
async, in any event loop) tell it to answer the next requests with a status,
to hang (accept the request and never answer), or to go down and come back on
the same port.
"""

from __future__ import annotations

import asyncio
import ssl
import tempfile
import threading
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any, Self

import trustme
from aiohttp import web

from signalbox.testing import free_port

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class FakeServer:
    """Start with ``with Fake() as server:``; ``server.url`` is its base URL."""

    def __init__(self, port: int | None = None, tls: bool = False) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.ca_file = ""
        self._ssl: ssl.SSLContext | None = None
        if tls:  # https://localhost:<port>, certificate from a throwaway CA in ``ca_file``
            ca = trustme.CA()
            self._ssl = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            ca.issue_cert("localhost", "127.0.0.1").configure_cert(self._ssl)
            self._certs = tempfile.TemporaryDirectory()
            self.ca_file = str(Path(self._certs.name) / "ca.pem")
            ca.cert_pem.write_to_path(self.ca_file)
            self.url = f"https://localhost:{self.port}"
        self.lock = threading.Lock()
        self.requests = 0
        self._failures: list[int | None] = []
        self._hangs = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._runner: web.AppRunner | None = None
        self._release = asyncio.Event()

    # -- what a fake adds -------------------------------------------------
    def routes(self, app: web.Application) -> None:
        raise NotImplementedError

    # -- misbehaviour -----------------------------------------------------
    def fail_next(self, count: int, status: int = 503, skip: int = 0) -> None:
        """Answer ``count`` requests with ``status`` (a provider-style error body), after
        letting ``skip`` through."""
        with self.lock:
            self._failures.extend([None] * skip + [status] * count)

    def hang_next(self, count: int) -> None:
        """Read the next ``count`` requests and never answer them (until :meth:`release`)."""
        with self.lock:
            self._hangs += count

    def release(self) -> None:
        """Let hanging requests go (they are answered 503)."""
        def release() -> None:
            self._release.set()
            self._release = asyncio.Event()

        self._loop.call_soon_threadsafe(release)

    def down(self) -> None:
        """Stop listening: connections are refused until :meth:`up`."""
        self._run(self._stop())

    def up(self) -> None:
        self._run(self._start())

    # -- plumbing ---------------------------------------------------------
    @web.middleware
    async def _misbehave(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        with self.lock:
            self.requests += 1
            status = self._failures.pop(0) if self._failures else None
            hang = self._hangs > 0
            if hang:
                self._hangs -= 1
        await request.read()
        if hang:
            await self._release.wait()
            return web.json_response({"message": "released"}, status=503)
        if status is not None:
            return web.json_response({"code": status, "message": f"injected failure {status}",
                                      "status": status}, status=status)
        return await handler(request)

    async def _start(self) -> None:
        app = web.Application(middlewares=[self._misbehave])
        self.routes(app)
        self._runner = web.AppRunner(app, shutdown_timeout=0.5)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port, reuse_address=True,
                          ssl_context=self._ssl).start()

    async def _stop(self) -> None:
        if self._runner is not None:
            self._release.set()
            await self._runner.cleanup()
            self._runner = None
            self._release = asyncio.Event()

    def _run(self, coro: Coroutine[Any, Any, None]) -> None:
        asyncio.run_coroutine_threadsafe(coro, self._loop).result(30)

    def __enter__(self) -> Self:
        self._thread.start()
        self.up()
        return self

    def __exit__(self, *exc: object) -> None:
        self.down()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()
        if self.ca_file:
            self._certs.cleanup()
