"""The email channel against aiosmtpd: TLS, auth, parts, unsubscribe headers, reuse, failures."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from signalbox.common.settings import SmtpSettings
from signalbox.dispatcher.channels.email import EmailChannel
from signalbox.dispatcher.outcomes import PermanentError, TransientError
from signalbox.dispatcher.templates import TemplateStore
from signalbox.dispatcher.unsubscribe import read_token
from signalbox.testing import free_port
from signalbox.testing.smtp import SmtpSink
from tests.dispatcher.channels.support import email_command, without_variables

SECRET = "unsubscribe-secret"


@pytest.fixture
async def channel(smtp: SmtpSink) -> AsyncIterator[EmailChannel]:
    ch = EmailChannel(SmtpSettings(port=smtp.port, timeout_s=2), TemplateStore(),
                      "https://sb.example.com/", SECRET)
    yield ch
    await ch.aclose()


async def test_customer_mail_has_parts_and_one_click_unsubscribe(
        smtp: SmtpSink, channel: EmailChannel) -> None:
    command = email_command()
    await channel.send(command)
    [mail] = smtp.messages
    assert "Ada" in mail.text() and "Ada" in mail.html()
    link = mail.message["List-Unsubscribe"].strip("<>")
    assert link.startswith("https://sb.example.com/v1/unsubscribe/")
    assert read_token(SECRET.encode(), link.rsplit("/", 1)[1].replace("%3D", "=")) == \
        ("cus-1", "email")
    assert mail.message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert mail.message["Message-ID"] == f"<{command.command_id}@signalbox>"


@pytest.mark.parametrize("address", [
    "ada@example.com, attacker@evil.example",  # two addresses in one (issue 9, finding 6)
    "ada@example.com\r\nBcc: attacker@evil.example",  # header injection
    "Ada <ada@example.com>", "ada", "ada@", "ada@localhost",
])
async def test_anything_but_one_valid_address_is_refused_before_the_relay(
        smtp: SmtpSink, channel: EmailChannel, address: str) -> None:
    bad = email_command(to=("grace@example.com", address))
    with pytest.raises(PermanentError, match=r"email to\[1\]: not a single valid email address"):
        await channel.send(bad)
    assert smtp.messages == [] and smtp.peers == set()  # nothing reached the relay


async def test_internal_mail_has_no_unsubscribe(smtp: SmtpSink, channel: EmailChannel) -> None:
    await channel.send(email_command(audience="internal"))
    [mail] = smtp.messages
    assert mail.message["List-Unsubscribe"] is None
    assert mail.message["Auto-Submitted"] == "auto-generated"


async def test_unsubscribe_url_is_a_template_variable(tmp_path: Path, smtp: SmtpSink) -> None:
    (tmp_path / "email").mkdir()
    (tmp_path / "email" / "t.subject.j2").write_text("Hi")
    (tmp_path / "email" / "t.txt.j2").write_text("Stop: {{ unsubscribe_url or 'none' }}")
    for public_url, expect in (("https://sb.example.com", "Stop: https://sb.example.com/v1/"),
                               ("", "Stop: none")):
        ch = EmailChannel(SmtpSettings(port=smtp.port), TemplateStore([tmp_path]), public_url,
                          SECRET)
        await ch.send(email_command(template="t"))
        await ch.aclose()
        assert smtp.messages[-1].text().startswith(expect)


async def test_connection_is_reused(smtp: SmtpSink, channel: EmailChannel) -> None:
    for _ in range(5):
        await channel.send(email_command())
    assert len(smtp.messages) == 5
    assert len(smtp.peers) == 1


async def test_a_kept_connection_closed_by_the_relay_is_replaced(tmp_path: Path) -> None:
    port = free_port()
    with SmtpSink(port) as first:
        ch = EmailChannel(SmtpSettings(port=port, timeout_s=2), TemplateStore())
        await ch.send(email_command())
    assert len(first.messages) == 1
    with SmtpSink(port) as second:  # the relay restarted: the kept connection is dead
        await ch.send(email_command())
        await ch.aclose()
    assert len(second.messages) == 1


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")  # implicit TLS
@pytest.mark.parametrize("tls", ["starttls", "implicit"])
async def test_tls_and_auth(tls: str) -> None:
    with SmtpSink(tls=tls, auth=("mailer", "pw")) as sink:
        good = SmtpSettings(port=sink.port, tls=tls, ca_file=sink.ca_file, username="mailer",
                            password="pw", timeout_s=2)
        ch = EmailChannel(good, TemplateStore())
        await ch.send(email_command())
        await ch.aclose()
        assert len(sink.messages) == 1
        wrong = EmailChannel(SmtpSettings(**{**good.__dict__, "password": "nope"}),
                             TemplateStore())
        with pytest.raises(PermanentError, match="SMTP 535 during connect"):
            await wrong.send(email_command())
        untrusted = EmailChannel(SmtpSettings(**{**good.__dict__, "ca_file": ""}),
                                 TemplateStore())
        with pytest.raises(PermanentError, match="TLS certificate of the relay not trusted"):
            await untrusted.send(email_command())
        assert len(sink.messages) == 1


async def test_starttls_required_refuses_plain() -> None:
    with SmtpSink(tls="starttls") as sink:
        ch = EmailChannel(SmtpSettings(port=sink.port, timeout_s=2), TemplateStore())
        with pytest.raises(PermanentError, match="SMTP 530 during envelope"):
            await ch.send(email_command())
        await ch.aclose()


async def test_reply_classes(smtp: SmtpSink, channel: EmailChannel) -> None:
    smtp.reject_next(1, "451 try later")
    with pytest.raises(TransientError, match="SMTP 451 during data"):
        await channel.send(email_command())
    smtp.reject_next(1, "554 no")
    with pytest.raises(PermanentError, match="SMTP 554 during data"):
        await channel.send(email_command())
    down = EmailChannel(SmtpSettings(port=free_port(), timeout_s=1), TemplateStore())
    with pytest.raises(TransientError, match="connect"):
        await down.send(email_command())


async def test_template_errors_name_the_template(channel: EmailChannel) -> None:
    with pytest.raises(PermanentError, match=r"template email/nope\.subject: not found"):
        await channel.send(email_command(template="nope"))
    command = without_variables(email_command(), {"currency"})
    with pytest.raises(PermanentError, match=r"email/payment_failed\.txt: undefined variable: "
                                             r"'currency' is undefined"):
        await channel.send(command)
