"""A development SMTP server (aiosmtpd) that keeps every message as a .eml file.

``make run`` points the dispatcher at it, so the whole pipeline works on a
fresh machine with no mail relay; each message is also logged as one JSON line.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
from email import message_from_bytes
from email.policy import default
from pathlib import Path
from typing import Any

from signalbox.common.clock import now_ms


class MaildirHandler:
    def __init__(self, maildir: str | Path) -> None:
        self.maildir = Path(maildir)
        self.maildir.mkdir(parents=True, exist_ok=True)
        self._count = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self._count += 1
        content: bytes = envelope.original_content or envelope.content
        path = self.maildir / f"{now_ms()}-{self._count:06d}.eml"
        path.write_bytes(content)
        msg = message_from_bytes(content, policy=default)
        print(json.dumps({"event": "mail_received", "file": str(path),
                          "from": envelope.mail_from, "to": list(envelope.rcpt_tos),
                          "subject": str(msg.get("Subject", "")),
                          "command_id": str(msg.get("X-Signalbox-Command-Id", ""))}),
              flush=True)
        return "250 Message accepted for delivery"


def run_capture_server(host: str, port: int, maildir: str) -> None:
    from aiosmtpd.smtp import SMTP

    async def serve() -> None:
        handler = MaildirHandler(maildir)
        loop = asyncio.get_running_loop()
        server = await loop.create_server(lambda: SMTP(handler), host, port)
        print(json.dumps({"event": "smtp_capture_listening", "host": host, "port": port,
                          "maildir": str(handler.maildir)}), file=sys.stderr, flush=True)
        async with server:
            await server.serve_forever()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve())
