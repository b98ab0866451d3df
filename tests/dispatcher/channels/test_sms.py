"""The SMS channel against a local server speaking Twilio's Messages API."""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator

import pytest

from signalbox.dispatcher.channels.sms import SmsChannel, e164_problem
from signalbox.dispatcher.outcomes import InDoubtError, PermanentError, TransientError
from signalbox.dispatcher.providers import SmsProvider
from signalbox.dispatcher.templates import TemplateStore
from signalbox.testing.fakes.twilio import FakeTwilio
from tests.dispatcher.channels.support import sms_command, without_variables


def provider(twilio: FakeTwilio, auth_token: str | None = None) -> SmsProvider:
    """The fake's account (with another ``auth_token`` if given)."""
    return SmsProvider(account_sid=twilio.account_sid,
                       auth_token=twilio.auth_token if auth_token is None else auth_token,
                       from_number="+14155550100", base_url=twilio.url, timeout_s=1.0)


@pytest.fixture
async def channel(twilio: FakeTwilio) -> AsyncIterator[SmsChannel]:
    sms = SmsChannel(provider(twilio), TemplateStore())
    yield sms
    await sms.aclose()


async def test_delivers_in_twilios_format(twilio: FakeTwilio, channel: SmsChannel) -> None:
    command = sms_command()
    delivery = await channel.send(command)
    [sms] = twilio.messages
    assert delivery.provider_ref == sms.sid and sms.sid.startswith("SM")
    assert (sms.to, sms.from_) == ("+14155552671", "+14155550100")
    assert sms.body == ("Ada, we could not collect your pro payment of €49.00. "
                        "Please update your payment details.")
    assert sms.idempotency_key == command.command_id
    assert channel.endpoint(command) == twilio.url.removeprefix("http://")


async def test_several_numbers_one_message_each(twilio: FakeTwilio,
                                                channel: SmsChannel) -> None:
    command = sms_command(to=("+14155552671", "+442071838750"))
    delivery = await channel.send(command)
    assert [m.to for m in twilio.messages] == ["+14155552671", "+442071838750"]
    assert [m.idempotency_key for m in twilio.messages] == [
        f"{command.command_id}-0", f"{command.command_id}-1"]
    assert delivery.provider_ref == ",".join(m.sid for m in twilio.messages)


@pytest.mark.parametrize(("number", "reason"), [
    ("4155552671", "is not an E.164 number"),
    ("+1 415 555 2671", "is not in E.164 form"),
    ("+1415555267", "is not a valid phone number"),
])
async def test_invalid_number_is_permanent_with_its_position(
        twilio: FakeTwilio, channel: SmsChannel, number: str, reason: str) -> None:
    with pytest.raises(PermanentError, match=rf"sms to\[1\]: '{re.escape(number)}' {reason}"):
        await channel.send(sms_command(to=("+14155552671", number)))
    assert twilio.messages == []  # nothing sent when any number is bad


def test_e164_accepts_real_numbers() -> None:
    assert e164_problem("+4915112345678") is None


async def test_server_errors_and_429_are_transient(twilio: FakeTwilio,
                                                   channel: SmsChannel) -> None:
    for status in (500, 503, 429):
        twilio.fail_next(1, status)
        with pytest.raises(TransientError, match=f"HTTP {status}"):
            await channel.send(sms_command())
    await channel.send(sms_command())
    assert len(twilio.messages) == 1


async def test_client_errors_are_permanent(twilio: FakeTwilio) -> None:
    bad = SmsChannel(provider(twilio, auth_token="wrong"), TemplateStore())
    try:
        with pytest.raises(PermanentError, match=r"HTTP 401: .*20003"):
            await bad.send(sms_command())
    finally:
        await bad.aclose()
    assert twilio.messages == []


async def test_server_down_is_transient_then_delivers_once(twilio: FakeTwilio,
                                                           channel: SmsChannel) -> None:
    twilio.down()
    with pytest.raises(TransientError, match="cannot connect"):
        await channel.send(sms_command())
    twilio.up()
    await channel.send(sms_command())
    assert len(twilio.messages) == 1


async def test_no_answer_after_sending_is_in_doubt(twilio: FakeTwilio,
                                                   channel: SmsChannel) -> None:
    twilio.hang_next(1)
    started = time.monotonic()
    with pytest.raises(InDoubtError, match="no answer in time"):
        await channel.send(sms_command())
    assert time.monotonic() - started < 3  # the 1 s timeout, not forever
    twilio.release()


async def test_failure_after_a_partial_send_is_in_doubt(twilio: FakeTwilio,
                                                        channel: SmsChannel) -> None:
    twilio.fail_next(1, 503, skip=1)
    with pytest.raises(InDoubtError, match=r"sent to \+14155552671 but not to \+442071838750"):
        await channel.send(sms_command(to=("+14155552671", "+442071838750")))
    assert [m.to for m in twilio.messages] == ["+14155552671"]


async def test_template_errors_are_permanent(twilio: FakeTwilio, channel: SmsChannel) -> None:
    with pytest.raises(PermanentError, match=r"template sms/nope\.txt: not found"):
        await channel.send(sms_command(template="nope"))
    command = without_variables(sms_command(), {"product"})
    with pytest.raises(PermanentError, match=r"sms/payment_failed\.txt: undefined variable: "
                                             r"'product' is undefined"):
        await channel.send(command)
    assert twilio.requests == 0
