"""A real SMTP server (aiosmtpd) on loopback that keeps what it receives.

Optionally with TLS (``starttls``, required before anything else, or ``implicit``)
using a certificate for 127.0.0.1 from a throwaway CA (``ca_file`` is its PEM), and
with AUTH required (``auth=(user, password)``).
"""

from __future__ import annotations

import asyncio
import ssl
import tempfile
import threading
from dataclasses import dataclass
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default
from pathlib import Path
from typing import Any, cast

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword

from signalbox.testing import eventually, free_port


@dataclass(frozen=True)
class Received:
    mail_from: str
    rcpt_tos: tuple[str, ...]
    message: EmailMessage

    @property
    def subject(self) -> str:
        return str(self.message["Subject"])

    def text(self) -> str:
        part = self.message.get_body(preferencelist=("plain",))
        return "" if part is None else str(cast(EmailMessage, part).get_content())

    def html(self) -> str:
        part = self.message.get_body(preferencelist=("html",))
        return "" if part is None else str(cast(EmailMessage, part).get_content())


class _Controller(Controller):
    """aiosmtpd's controller, closing the connections still open when it stops, as a
    relay going down does: aiosmtpd leaves them to the garbage collector (an unclosed
    socket each, whenever a client kept its connection)."""

    def __init__(self, handler: Any, **options: Any) -> None:
        super().__init__(handler, **options)
        self._connections: list[SMTP] = []

    def factory(self) -> SMTP:
        connection = SMTP(self.handler, **self.SMTP_kwargs)  # what Controller.factory makes
        self._connections = [c for c in self._connections if c.transport is not None]
        self._connections.append(connection)
        return connection

    def stop(self, no_assert: bool = False) -> None:
        async def close_connections() -> None:
            open_ = [c.transport for c in self._connections
                     if isinstance(c.transport, asyncio.Transport)]
            sockets = [t.get_extra_info("socket") for t in open_]
            for transport in open_:
                transport.abort()  # at once, TLS or not: no goodbye to a client

            async def any_open() -> bool:  # they close on the loop's next turns
                return any(s is not None and s.fileno() != -1 for s in sockets)

            assert not await eventually(any_open, lambda left: not left, every_s=0.01)
            self._connections.clear()

        asyncio.run_coroutine_threadsafe(close_connections(), self.loop).result(10)
        super().stop(no_assert)


class _Handler:
    def __init__(self, sink: SmtpSink) -> None:
        self.sink = sink

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self.sink._lock:
            self.sink.peers.add(tuple(session.peer))
        return self.sink._accept(envelope)


class SmtpSink:
    """Start with ``with SmtpSink() as smtp:``; ``smtp.port`` is where it listens."""

    def __init__(self, port: int | None = None, tls: str = "none",
                 auth: tuple[str, str] | None = None) -> None:
        # Notified on every message taken or refused: the waits below wake on it.
        self._lock = threading.Condition()
        self.messages: list[Received] = []
        self.reply = "250 OK"
        self._rejections: list[str] = []
        self.rejected = 0
        self.peers: set[tuple[Any, ...]] = set()  # client addresses seen: one per connection
        self.port = port or free_port()
        self.ca_file = ""
        options: dict[str, Any] = {}
        if tls != "none":
            import trustme

            ca = trustme.CA()
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            ca.issue_cert("127.0.0.1").configure_cert(context)
            self._dir = tempfile.TemporaryDirectory()
            self.ca_file = str(Path(self._dir.name) / "ca.pem")
            ca.cert_pem.write_to_path(self.ca_file)
            if tls == "implicit":
                options["ssl_context"] = context
            else:
                options.update(tls_context=context, require_starttls=True)
        if auth is not None:
            # aiosmtpd cannot see implicit TLS, so it may only insist on STARTTLS
            options.update(authenticator=self._authenticator(*auth), auth_required=True,
                           auth_require_tls=tls == "starttls")
        self._controller = _Controller(_Handler(self), hostname="127.0.0.1", port=self.port,
                                       **options)

    def _authenticator(self, user: str, password: str) -> Any:
        def authenticate(server: Any, session: Any, envelope: Any, mechanism: str,
                         data: Any) -> AuthResult:
            ok = isinstance(data, LoginPassword) and \
                (data.login, data.password) == (user.encode(), password.encode())
            return AuthResult(success=ok, handled=False)
        return authenticate

    def reject_next(self, count: int, reply: str) -> None:
        """Answer the next ``count`` messages with ``reply``, then accept again."""
        with self._lock:
            self._rejections.extend([reply] * count)

    def _accept(self, envelope: Any) -> str:
        with self._lock:
            if self._rejections:
                self.rejected += 1
                self._lock.notify_all()
                return self._rejections.pop(0)
        if not self.reply.startswith("250"):
            with self._lock:
                self.rejected += 1
                self._lock.notify_all()
            return self.reply
        msg = message_from_bytes(envelope.original_content or envelope.content, policy=default)
        with self._lock:
            self.messages.append(Received(envelope.mail_from, tuple(envelope.rcpt_tos), msg))
            self._lock.notify_all()
        return self.reply

    def __enter__(self) -> SmtpSink:
        self._controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._controller.stop()
        if self.ca_file:
            self._dir.cleanup()

    def wait_for_rejections(self, count: int, timeout: float = 60.0) -> None:
        """Until ``count`` messages were refused (``reject_next`` or a non-250 ``reply``)."""
        with self._lock:
            if not self._lock.wait_for(lambda: self.rejected >= count, timeout):
                raise AssertionError(f"expected {count} refused messages in {timeout}s, "
                                     f"got {self.rejected}")

    def wait_for(self, count: int, timeout: float = 60.0) -> list[Received]:
        """Until ``count`` messages arrived: all of them so far."""
        with self._lock:
            if not self._lock.wait_for(lambda: len(self.messages) >= count, timeout):
                raise AssertionError(f"expected {count} messages in {timeout}s, got "
                                     f"{len(self.messages)}: "
                                     f"{[m.subject for m in self.messages]}")
            return list(self.messages)
