"""Delivered commands per second per channel driver, against the local servers the tests use.

    python -m bench.channels [--count 400] [--concurrency 8] [--only sms,webhook]

Each driver is called directly (no Kafka, no policy): first one command at a
time, then ``--concurrency`` at once. Email and SMS also run the bare client on the
same server in the same run (aiosmtplib sending one pre-built message over kept-open
connections; httpx posting the Twilio form), and the ratio driver/bare says what the
driver itself costs, a figure that survives a noisy machine. The servers (aiosmtpd,
the Twilio-format, HubSpot-format and REST fakes, pyftpdlib, asyncssh) run in threads of this same
process, so on a small machine the figures include the servers' own cost and
are a floor for the drivers, not a measurement of any real provider.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from email.message import EmailMessage
from pathlib import Path

import aiosmtplib
import httpx

from signalbox.common.action_command import (
    ChannelCommand,
    Command,
    CrmCommand,
    EmailCommand,
    ExportCommand,
    SmsCommand,
    TriggerInfo,
    WebhookCommand,
)
from signalbox.common.settings import SmtpSettings
from signalbox.dispatcher.channels import (
    Channel,
    CrmChannel,
    EmailChannel,
    ExportChannel,
    OutboxChannel,
    SmsChannel,
    WebhookChannel,
)
from signalbox.dispatcher.providers import (
    CrmConnection,
    ExportTarget,
    RestOperation,
    SmsProvider,
    WebhookEndpoint,
)
from signalbox.dispatcher.templates import TemplateStore
from signalbox.testing.fakes.ftp import FtpServer
from signalbox.testing.fakes.hubspot import FakeHubSpot
from signalbox.testing.fakes.rest import FakeRest
from signalbox.testing.fakes.sftp import SftpServer
from signalbox.testing.fakes.twilio import FakeTwilio
from signalbox.testing.fakes.webhook import FakeReceiver
from signalbox.testing.smtp import SmtpSink

VARIABLES = {"customer_name": "Ada", "product": "pro", "amount_minor": "4900",
             "currency": "EUR", "reason": "card declined", "payment_id": "p-1"}


def command(action: ChannelCommand, i: int) -> Command:
    return Command(command_id=uuid.uuid4().hex[:32], automation_id="bench",
                   automation_version=1, action_index=0, customer_id=f"cus-{i}",
                   issued_at=1_790_000_000_000, trigger=TriggerInfo("payment.failed", f"e-{i}"),
                   action=action)


class BareSmtp:
    """The bare client of the email row: one fixed message, no rendering or checks."""

    def __init__(self, port: int) -> None:
        self._port = port
        self._idle: list[aiosmtplib.SMTP] = []
        message = EmailMessage()
        message["From"], message["To"] = "noreply@signalbox.local", "c@example.com"
        message["Subject"] = "Your payment failed"
        message.set_content("Your card was declined; please update it.")
        self._message = message.as_bytes()

    async def send(self, command: Command) -> None:
        if self._idle:
            client = self._idle.pop()
        else:
            client = aiosmtplib.SMTP(hostname="127.0.0.1", port=self._port, timeout=10)
            await client.connect()
        await client.sendmail("noreply@signalbox.local", ["c@example.com"], self._message)
        self._idle.append(client)

    async def aclose(self) -> None:
        for client in self._idle:
            await client.quit()


class BareTwilio:
    """The bare client of the SMS row: the Messages API form, posted as is."""

    def __init__(self, twilio: FakeTwilio) -> None:
        self._url = f"{twilio.url}/2010-04-01/Accounts/{twilio.account_sid}/Messages.json"
        self._client = httpx.AsyncClient(auth=(twilio.account_sid, twilio.auth_token))

    async def send(self, command: Command) -> None:
        response = await self._client.post(self._url, data={
            "To": "+14155552671", "From": "+14155550100", "Body": "Your payment failed."})
        response.raise_for_status()

    async def aclose(self) -> None:
        await self._client.aclose()


Make = Callable[[int], Command]
Case = tuple[str, Channel | BareSmtp | BareTwilio, Make]


@contextlib.contextmanager
def cases(root: Path) -> Iterator[list[Case]]:
    templates = TemplateStore()
    with contextlib.ExitStack() as stack:
        smtp = stack.enter_context(SmtpSink())
        twilio = stack.enter_context(FakeTwilio())
        receiver = stack.enter_context(FakeReceiver())
        hubspot = stack.enter_context(FakeHubSpot())
        rest = stack.enter_context(FakeRest())
        ftp = stack.enter_context(FtpServer(root / "ftp"))
        sftp = stack.enter_context(SftpServer(root / "sftp"))
        record = {"customer_id": "cus-1", "amount": "49.00", "plan": "pro"}

        def export(target: str) -> Make:
            return lambda i: command(
                ExportCommand(target, "csv", "{{ command_id }}.csv", record), i)

        yield [
            ("email (SMTP)", EmailChannel(SmtpSettings(port=smtp.port, timeout_s=10), templates),
             lambda i: command(EmailCommand((f"c{i}@example.com",), "customer",
                                            "payment_failed", None, VARIABLES), i)),
            ("email bare aiosmtplib", BareSmtp(smtp.port), lambda i: command(
                EmailCommand(("c@example.com",), "customer", "payment_failed", None, {}), i)),
            ("sms bare httpx", BareTwilio(twilio), lambda i: command(
                SmsCommand(("+14155552671",), "customer", "payment_failed", None, {}), i)),
            ("sms (Twilio format)", SmsChannel(SmsProvider(
                twilio.account_sid, twilio.auth_token, "+14155550100", twilio.url), templates),
             lambda i: command(SmsCommand(("+14155552671",), "customer", "payment_failed",
                                          None, VARIABLES), i)),
            ("webhook (signed)", WebhookChannel({"hook": WebhookEndpoint(
                "hook", f"{receiver.url}/in", receiver.secret, allow_private=True)}),
             lambda i: command(WebhookCommand("hook", "customer.past_due", {"days": "14"}), i)),
            ("crm (HubSpot add_tag)", CrmChannel({"default": CrmConnection(
                "default", "hubspot", hubspot.url, token=hubspot.token)}, templates),
             lambda i: command(CrmCommand("add_tag", {"tag": "past-due"},
                                          {"customer_email": f"c{i}@example.com"}), i)),
            ("crm (generic REST)", CrmChannel({"default": CrmConnection(
                "default", "rest", rest.url, operations={"add_tag": RestOperation(
                    "POST", "/contacts/{{ customer_id }}/tags", {"tag": "{{ tag }}"})})},
                templates),
             lambda i: command(CrmCommand("add_tag", {"tag": "x"}, {}), i)),
            ("export (FTP)", ExportChannel({"ftp": ExportTarget(
                "ftp", "ftp", "127.0.0.1", ftp.port, ftp.user, ftp.password)}, templates),
             export("ftp")),
            ("export (SFTP)", ExportChannel({"sftp": ExportTarget(
                "sftp", "sftp", "127.0.0.1", sftp.port, sftp.user, sftp.password,
                known_hosts=sftp.known_hosts)}, templates),
             export("sftp")),
            ("outbox (files)", OutboxChannel("email", root / "outbox", templates),
             lambda i: command(EmailCommand((f"c{i}@example.com",), "customer",
                                            "payment_failed", None, VARIABLES), i)),
        ]


async def rate(channel: Channel | BareSmtp | BareTwilio, make: Make, count: int,
               concurrency: int) -> float:
    commands = [make(i) for i in range(count)]
    gate = asyncio.Semaphore(concurrency)

    async def one(c: Command) -> None:
        async with gate:
            await channel.send(c)

    started = time.perf_counter()
    await asyncio.gather(*(one(c) for c in commands))
    return count / (time.perf_counter() - started)


async def run(count: int, concurrency: int, only: set[str]) -> None:
    with tempfile.TemporaryDirectory() as tmp, cases(Path(tmp)) as all_cases:
        print(f"{'channel':24} {'sequential/s':>13} {f'x{concurrency} /s':>10}   ({count} each)")
        figures: dict[str, tuple[float, float]] = {}
        for name, channel, make in all_cases:
            if only and not any(o in name for o in only):
                continue
            n = max(20, count // 4) if "export" in name else count
            await rate(channel, make, 5, 1)  # warm up: connections, templates
            sequential = await rate(channel, make, n, 1)
            parallel = await rate(channel, make, n, concurrency)
            await channel.aclose()
            figures[name] = (sequential, parallel)
            print(f"{name:24} {sequential:13.0f} {parallel:10.0f}", flush=True)
        for driver, bare in (("email (SMTP)", "email bare aiosmtplib"),
                             ("sms (Twilio format)", "sms bare httpx")):
            if driver in figures and bare in figures:
                (ds, dp), (bs, bp) = figures[driver], figures[bare]
                print(f"{driver:24} / bare: {ds / bs:.2f} sequential, {dp / bp:.2f} x"
                      f"{concurrency}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=400)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--only", default="", help="comma-separated channel name parts")
    args = parser.parse_args()
    asyncio.run(run(args.count, args.concurrency, set(filter(None, args.only.split(",")))))


if __name__ == "__main__":
    main()
