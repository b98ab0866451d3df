"""The development default: every side effect becomes a JSON file instead of a network call.

``<outbox>/<channel>/<command_id>.json`` holds the command and, for email and
SMS, the rendered message, so ``make run`` shows what would have been sent with
no relay, SMS provider, CRM or server configured. Files are written under a
temporary name and renamed, so a reader never sees half a file; writing the
same command again replaces its file with the same content.
"""

from __future__ import annotations

import asyncio
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from signalbox.common.action_command import Command, action_fields
from signalbox.dispatcher.channels.email import render_email
from signalbox.dispatcher.channels.recipients import recipients_of
from signalbox.dispatcher.channels.sms import render_sms
from signalbox.dispatcher.outcomes import Delivery, TransientError
from signalbox.dispatcher.templates import TemplateStore


def write_atomically(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that it appears whole or not at all."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class OutboxChannel:
    def __init__(self, name: str, directory: str | Path, templates: TemplateStore) -> None:
        self.name = name
        self.directory = Path(directory)
        self._templates = templates

    def recipients(self, command: Command) -> tuple[str, ...]:
        return recipients_of(command)

    def endpoint(self, command: Command) -> str:
        return f"outbox:{self.directory / self.name}"

    def path(self, command: Command) -> Path:
        return self.directory / self.name / f"{command.command_id}.json"

    def _rendered(self, command: Command) -> dict[str, Any] | None:
        if self.name == "email":  # as the drivers render them (no unsubscribe link here)
            mail = render_email(self._templates, command, "")
            return {"subject": mail.subject, "text": mail.text, "html": mail.html}
        if self.name == "sms":
            return {"text": render_sms(self._templates, command)}
        return None

    def document(self, command: Command) -> dict[str, Any]:
        """What the file holds: the command, and what a real driver would have sent."""
        return {
            "channel": self.name, "command_id": command.command_id,
            "customer_id": command.customer_id, "automation_id": command.automation_id,
            "automation_version": command.automation_version,
            "trigger_type": command.trigger.type, "issued_at": command.issued_at,
            "recipients": list(self.recipients(command)), "action": action_fields(command.action),
            "rendered": self._rendered(command),
        }

    async def send(self, command: Command) -> Delivery:
        body = json.dumps(self.document(command), indent=2, sort_keys=True, default=str)
        path = self.path(command)
        try:
            await asyncio.to_thread(write_atomically, path, body.encode() + b"\n")
        except OSError as exc:
            raise TransientError(f"outbox: cannot write {path}: {exc.strerror}") from exc
        return Delivery(provider_ref=str(path), detail=f"written to the outbox: {path}")

    async def aclose(self) -> None:
        return None
