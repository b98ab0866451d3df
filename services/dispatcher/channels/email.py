"""Email over SMTP (aiosmtplib), with the phase of a failure deciding retry vs. in doubt.

A failure before the message data is handed over (connect, auth, MAIL, RCPT)
or an explicit 4xx reply is safe to retry; a 5xx reply is permanent; a lost
connection while the data is in flight is *in doubt*, because the relay may have
queued the message, and a duplicate dunning email is worse than an operator
decision.
"""

from __future__ import annotations

from email.message import EmailMessage
from email.utils import formataddr, formatdate, parseaddr

import aiosmtplib

from signalbox.common.settings import SmtpSettings
from signalbox.dispatcher.model import (
    Command,
    Delivery,
    InDoubtError,
    PermanentError,
    TransientError,
)
from signalbox.dispatcher.templates import TemplateStore


class EmailChannel:
    name = "email"

    def __init__(self, smtp: SmtpSettings, templates: TemplateStore) -> None:
        self._smtp = smtp
        self._templates = templates

    def recipients(self, command: Command) -> tuple[str, ...]:
        return tuple(a for a in command.action.get("to", ()) if a)

    def endpoint(self, command: Command) -> str:
        return f"{self._smtp.host}:{self._smtp.port}"

    async def aclose(self) -> None:
        return None

    def build(self, command: Command) -> EmailMessage:
        a = command.action
        rendered = self._templates.email(a["template"], a.get("locale"), a["variables"])
        msg = EmailMessage()
        name, address = parseaddr(self._smtp.sender)
        msg["From"] = formataddr((name, address))
        msg["To"] = ", ".join(self.recipients(command))
        msg["Subject"] = rendered.subject
        msg["Date"] = formatdate(command.issued_at / 1000, usegmt=True)
        # Deterministic Message-ID: relays and mail clients that deduplicate see one message.
        msg["Message-ID"] = f"<{command.command_id}@signalbox>"
        msg["X-Signalbox-Command-Id"] = command.command_id
        msg["X-Signalbox-Automation"] = command.automation_id
        if a.get("audience") == "internal":
            msg["Auto-Submitted"] = "auto-generated"
        msg.set_content(rendered.text)
        if rendered.html is not None:
            msg.add_alternative(rendered.html, subtype="html")
        return msg

    async def send(self, command: Command) -> Delivery:
        message = self.build(command)
        recipients = list(self.recipients(command))
        s = self._smtp
        client = aiosmtplib.SMTP(
            hostname=s.host, port=s.port, timeout=s.timeout_s,
            use_tls=s.tls == "implicit", start_tls=s.tls == "starttls",
        )
        phase = "connect"
        try:
            await client.connect()
            if s.username:
                phase = "auth"
                await client.login(s.username, s.password)
            phase = "envelope"
            await client.mail(parseaddr(s.sender)[1])
            for rcpt in recipients:
                await client.rcpt(rcpt)
            phase = "data"
            response = await client.data(message.as_bytes())
        except aiosmtplib.SMTPResponseException as exc:
            if 400 <= exc.code < 500:
                raise TransientError(f"SMTP {exc.code} during {phase}: {exc.message}") from exc
            raise PermanentError(f"SMTP {exc.code} during {phase}: {exc.message}") from exc
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            if phase == "data":
                raise InDoubtError(
                    f"connection lost while sending data: {type(exc).__name__}: {exc}"
                ) from exc
            raise TransientError(f"{phase}: {type(exc).__name__}: {exc}") from exc
        finally:
            if client.is_connected:
                try:
                    await client.quit()
                except (aiosmtplib.SMTPException, OSError, TimeoutError):
                    client.close()
        return Delivery(provider_ref=response.message.strip() or None,
                        detail=f"SMTP {response.code} to {', '.join(recipients)}")
