"""Email over SMTP (aiosmtplib), with the phase of a failure deciding retry vs. in doubt.

A failure before the message data is handed over (connect, TLS, auth, MAIL,
RCPT) or an explicit 4xx reply is safe to retry; a 5xx reply is permanent; a lost
connection while the data is in flight is *in doubt*, because the relay may have
queued the message, and a duplicate dunning email is worse than an operator
decision.

TLS is ``SMTP_TLS`` (``starttls`` or ``implicit``), verified against the system
store or ``SMTP_TLS_CA_FILE``; ``SMTP_USERNAME``/``SMTP_PASSWORD`` log in.
Connections are kept open and reused (up to ``pool_size`` idle ones): a kept
connection the relay has closed meanwhile fails before any data, and is replaced
by a fresh one once, transparently.

Customer mail (``audience: customer``) gets an unsubscribe link when
``SIGNALBOX_PUBLIC_URL`` and ``SIGNALBOX_UNSUBSCRIBE_SECRET`` are set: as the
template variable ``unsubscribe_url`` (empty otherwise), as RFC 8058 one-click
``List-Unsubscribe`` and ``List-Unsubscribe-Post`` headers, and in the body: a template
that does not show the link itself (an operator's own) gets a footer with it, in the
text and in the HTML, so no customer has to find a header to stop the mail.

Customer mail is formatted for the customer (their locale and time zone), team mail
for :data:`~signalbox.dispatcher.formatting.DEFAULT_LOCALE` in UTC. ``Date`` is when the
message is handed to the relay (the injected clock), not when its event happened.
"""

from __future__ import annotations

from email.message import EmailMessage
from email.utils import formataddr, formatdate, parseaddr
from html import escape
from typing import Any

import aiosmtplib
import email_validator

from signalbox.common.action_command import Command, EmailCommand
from signalbox.common.clock import Clock, SystemClock
from signalbox.common.errors import SignalboxError
from signalbox.common.settings import SmtpSettings
from signalbox.dispatcher.channels.base import action_of
from signalbox.dispatcher.channels.recipients import recipients_of
from signalbox.dispatcher.channels.tls import untrusted
from signalbox.dispatcher.formatting import reader_of
from signalbox.dispatcher.outcomes import (
    Delivery,
    InDoubtError,
    PermanentError,
    TransientError,
)
from signalbox.dispatcher.templates import RenderedEmail, TemplateStore
from signalbox.dispatcher.unsubscribe import unsubscribe_url


class _Failed(SignalboxError):
    """An SMTP session failed at ``phase``; ``fresh`` says whether its connection was new."""

    what = "SMTP session"

    def __init__(self, phase: str, fresh: bool, cause: BaseException) -> None:
        super().__init__(phase)
        self.phase, self.fresh, self.cause = phase, fresh, cause


class EmailChannel:
    name = "email"

    def __init__(self, smtp: SmtpSettings, templates: TemplateStore, public_url: str = "",
                 unsubscribe_secret: str = "", pool_size: int = 8,
                 clock: Clock | None = None) -> None:
        self._smtp = smtp
        self._clock: Clock = clock or SystemClock()
        self._templates = templates
        self._public_url = public_url
        self._secret = unsubscribe_secret.encode()
        self._pool_size = pool_size
        self._idle: list[aiosmtplib.SMTP] = []

    def recipients(self, command: Command) -> tuple[str, ...]:
        return recipients_of(command)

    def endpoint(self, command: Command) -> str:
        return f"{self._smtp.host}:{self._smtp.port}"

    def unsubscribe_link(self, command: Command) -> str:
        """The customer's one-click unsubscribe URL, or "" (internal mail, or not configured)."""
        if action_of(command, EmailCommand).audience != "customer" or not (
                self._public_url and self._secret):
            return ""
        return unsubscribe_url(self._public_url, self._secret, command.customer_id, self.name)

    def build(self, command: Command) -> EmailMessage:
        """The message as it goes to the relay now (``Date`` from the clock)."""
        link = self.unsubscribe_link(command)
        return compose(command, render_email(self._templates, command, link),
                       self._smtp.sender, link, self._clock.now_ms())

    async def _connect(self) -> aiosmtplib.SMTP:
        s = self._smtp
        client = aiosmtplib.SMTP(
            hostname=s.host, port=s.port, timeout=s.timeout_s,
            use_tls=s.tls == "implicit", start_tls=s.tls == "starttls",
            cert_bundle=s.ca_file or None)
        await client.connect()
        if s.username:
            await client.login(s.username, s.password)
        return client

    async def _session(self, client: aiosmtplib.SMTP | None, message: bytes,
                       recipients: list[str]) -> tuple[aiosmtplib.SMTP, Any]:
        """One transaction; on a failure the connection is dropped and :class:`_Failed` raised."""
        fresh = client is None
        phase = "connect"
        try:
            if client is None:
                client = await self._connect()
            phase = "envelope"
            await client.mail(parseaddr(self._smtp.sender)[1])
            for rcpt in recipients:
                await client.rcpt(rcpt)
            phase = "data"
            return client, await client.data(message)
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            if client is not None:
                await _drop(client, polite=isinstance(exc, aiosmtplib.SMTPResponseException))
            raise _Failed(phase, fresh, exc) from exc

    async def send(self, command: Command) -> Delivery:
        recipients = list(self.recipients(command))
        for i, address in enumerate(recipients):
            problem = address_problem(address)
            if problem:
                raise PermanentError(f"email to[{i}]: {problem}")
        message = self.build(command).as_bytes()
        kept = self._idle.pop() if self._idle else None
        try:
            try:
                client, response = await self._session(kept, message, recipients)
            except _Failed as failed:
                if failed.fresh or failed.phase != "envelope" or not _closed(failed.cause):
                    raise
                # A kept connection the relay had closed: nothing was sent, start afresh.
                client, response = await self._session(None, message, recipients)
        except _Failed as failed:
            raise _classify(failed) from failed.cause
        if len(self._idle) < self._pool_size and client.is_connected:
            self._idle.append(client)
        else:
            await _drop(client, polite=True)
        return Delivery(provider_ref=response.message.strip() or None,
                        detail=f"SMTP {response.code} to {', '.join(recipients)}")

    async def aclose(self) -> None:
        idle, self._idle = self._idle, []
        for client in idle:
            await _drop(client, polite=True)


def render_email(templates: TemplateStore, command: Command, link: str) -> RenderedEmail:
    """Subject, text and HTML of an email command, the unsubscribe ``link`` in both bodies
    when there is one (a footer is added where the template does not show it)."""
    a = action_of(command, EmailCommand)
    variables: dict[str, Any] = {**a.variables, "unsubscribe_url": link}
    rendered = templates.email(a.template, a.locale, variables, command.trigger.type,
                               reader_of(command))
    if not link:
        return rendered
    text, html = rendered.text, rendered.html
    if link not in text:
        text = f"{text.rstrip()}\n\n--\nTo stop receiving these emails: {link}\n"
    if html is not None and escape(link) not in html:
        footer = (f'<p style="color:#666;font-size:12px">To stop receiving these emails, '
                  f'<a href="{escape(link)}">unsubscribe</a>.</p>')
        at = html.lower().rfind("</body>")
        html = (f"{html[:at]}{footer}\n{html[at:]}" if at >= 0
                else f"{html.rstrip()}\n{footer}\n")
    return RenderedEmail(rendered.subject, text, html)


def compose(command: Command, rendered: RenderedEmail, sender: str, link: str,
            now_ms: int) -> EmailMessage:
    """The MIME message: headers (``Date`` = ``now_ms``, one-click unsubscribe) and parts."""
    a = action_of(command, EmailCommand)
    msg = EmailMessage()
    name, address = parseaddr(sender)
    msg["From"] = formataddr((name, address))
    msg["To"] = ", ".join(recipients_of(command))
    msg["Subject"] = rendered.subject
    msg["Date"] = formatdate(now_ms / 1000, usegmt=True)
    # Deterministic Message-ID: relays and mail clients that deduplicate see one message.
    msg["Message-ID"] = f"<{command.command_id}@signalbox>"
    msg["X-Signalbox-Command-Id"] = command.command_id
    msg["X-Signalbox-Automation"] = command.automation_id
    if a.audience == "internal":
        msg["Auto-Submitted"] = "auto-generated"
    if link:
        msg["List-Unsubscribe"] = f"<{link}>"
        msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    msg.set_content(rendered.text)
    if rendered.html is not None:
        msg.add_alternative(rendered.html, subtype="html")
    return msg


def address_problem(address: str) -> str | None:
    """Why ``address`` is not one deliverable address (two joined by a comma, a CR/LF, a
    display name, no domain ...), or None; the relay is not asked (no DNS either)."""
    try:
        email_validator.validate_email(address, check_deliverability=False,
                                       allow_smtputf8=False)
    except email_validator.EmailNotValidError as exc:
        return f"not a single valid email address: {exc}"
    return None


def _closed(exc: BaseException) -> bool:
    """The relay closed the connection (dropped, or 421 "closing transmission channel")."""
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        return exc.code == 421
    return True


def _classify(failed: _Failed) -> Exception:
    exc, phase = failed.cause, failed.phase
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        if 400 <= exc.code < 500:
            return TransientError(f"SMTP {exc.code} during {phase}: {exc.message}")
        return PermanentError(f"SMTP {exc.code} during {phase}: {exc.message}")
    if untrusted(exc):
        return PermanentError(f"TLS certificate of the relay not trusted (set SMTP_TLS_CA_FILE "
                              f"for a private CA): {exc}")
    if phase == "data":
        return InDoubtError(f"connection lost while sending data: {type(exc).__name__}: {exc}")
    return TransientError(f"{phase}: {type(exc).__name__}: {exc}")


async def _drop(client: aiosmtplib.SMTP, polite: bool) -> None:
    """Close a connection: QUIT when the relay is still talking to us, else just close."""
    if polite and client.is_connected:
        try:
            await client.quit()
            return
        except (aiosmtplib.SMTPException, OSError, TimeoutError):
            pass
    client.close()
