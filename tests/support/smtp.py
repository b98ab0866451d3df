"""A real SMTP server (aiosmtpd) on loopback that keeps what it receives."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default
from typing import Any, cast

from aiosmtpd.controller import Controller

from tests.support.processes import free_port


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


class _Handler:
    def __init__(self, sink: SmtpSink) -> None:
        self.sink = sink

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        return self.sink._accept(envelope)


class SmtpSink:
    """Start with ``with SmtpSink() as smtp:``; ``smtp.port`` is where it listens."""

    def __init__(self, port: int | None = None) -> None:
        self._lock = threading.Lock()
        self.messages: list[Received] = []
        self.reply = "250 OK"
        self._rejections: list[str] = []
        self.rejected = 0
        self.port = port or free_port()
        self._controller = Controller(_Handler(self), hostname="127.0.0.1", port=self.port)

    def reject_next(self, count: int, reply: str) -> None:
        """Answer the next ``count`` messages with ``reply``, then accept again."""
        with self._lock:
            self._rejections.extend([reply] * count)

    def _accept(self, envelope: Any) -> str:
        with self._lock:
            if self._rejections:
                self.rejected += 1
                return self._rejections.pop(0)
        if not self.reply.startswith("250"):
            return self.reply
        msg = cast(EmailMessage, message_from_bytes(envelope.original_content or envelope.content,
                                                    policy=default))
        with self._lock:
            self.messages.append(Received(envelope.mail_from, tuple(envelope.rcpt_tos), msg))
        return self.reply

    def __enter__(self) -> SmtpSink:
        self._controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._controller.stop()

    def wait_for(self, count: int, timeout: float = 60.0) -> list[Received]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if len(self.messages) >= count:
                    return list(self.messages)
            time.sleep(0.1)
        with self._lock:
            raise AssertionError(f"expected {count} messages in {timeout}s, got "
                                 f"{len(self.messages)}: {[m.subject for m in self.messages]}")
