"""Opt-outs end to end: unsubscribe link and SMS STOP on the dispatcher's HTTP server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace

import httpx
import pytest

from signalbox.common.clock import epoch_ms
from signalbox.common.settings import Settings
from signalbox.common.topics import ACTIONS_SUPPRESSIONS
from signalbox.dispatcher.main import build, optout_api, serve
from signalbox.dispatcher.optout_api import twilio_signature
from signalbox.dispatcher.providers import DispatcherConfig, SmsProvider
from signalbox.dispatcher.suppressions import SUPPRESSION, KafkaSuppressions
from signalbox.dispatcher.unsubscribe import make_token
from signalbox.testing import ManualClock, free_port
from signalbox.testing.action_commands import codec, command
from signalbox.testing.fakes.twilio import FakeTwilio
from signalbox.testing.smtp import SmtpSink
from tests.dispatcher.records import results, send
from tests.support.kafka import consume

pytestmark = pytest.mark.kafka
SECRET = "unsubscribe-secret"


@dataclass
class Running:
    settings: Settings
    url: str
    twilio: FakeTwilio


@pytest.fixture
async def running(dsettings: Settings, twilio: FakeTwilio) -> AsyncIterator[Running]:
    port = free_port()
    s = replace(dsettings, dispatcher=replace(dsettings.dispatcher, port=port,
                                              unsubscribe_secret=SECRET,
                                              public_url=f"http://127.0.0.1:{port}"))
    cfg = DispatcherConfig(sms=SmsProvider(
        account_sid=twilio.account_sid, auth_token=twilio.auth_token,
        from_number="+14155550100", base_url=twilio.url))
    dispatcher = build(s, cfg)
    stop = asyncio.Event()
    task = asyncio.create_task(serve(s.bind_host, s.dispatcher.port, dispatcher,
                                     optout_api(s.dispatcher, cfg, dispatcher), stop))
    await asyncio.wait_for(dispatcher.assigned.wait(), 30)
    yield Running(s, s.dispatcher.public_url, twilio)
    stop.set()
    await asyncio.wait_for(task, 30)


async def sms_inbound(r: Running, body: str, number: str = "+14155552671",
                      token: str | None = None) -> httpx.Response:
    form = {"From": number, "To": "+14155550100", "Body": body, "MessageSid": "SM1"}
    url = f"{r.url}/v1/sms/inbound"
    signature = twilio_signature(token or r.twilio.auth_token, url, form)
    async with httpx.AsyncClient() as client:
        return await client.post(url, data=form, headers={"X-Twilio-Signature": signature})


async def test_unsubscribe_link_suppresses_customer_mail_but_not_alerts(
    running: Running, smtp: SmtpSink
) -> None:
    link = f"{running.url}/v1/unsubscribe/{make_token(SECRET.encode(), 'cus-1', 'email')}"
    async with httpx.AsyncClient() as client:
        page = await client.get(link)
        assert page.status_code == 200 and "<form method='post'" in page.text
        forged = await client.post(link[:-3] + "AAA", data={"List-Unsubscribe": "One-Click"})
        assert forged.status_code == 400 and "not valid" in forged.text
        done = await client.post(link, data={"List-Unsubscribe": "One-Click"})  # RFC 8058
        assert done.status_code == 200 and "unsubscribed" in done.text
    mail, alert = command(20), command(21, audience="internal", to=["finance@example.com"])
    send(running.settings, mail, alert)
    got = await results(running.settings, 2)
    assert (got[mail[0]]["status"], got[mail[0]]["detail"]) == \
        ("suppressed", "opted out: unsubscribe link")
    assert got[alert[0]]["status"] == "delivered"
    assert [m.rcpt_tos for m in smtp.messages] == [("finance@example.com",)]
    # Durable: a fresh reader of the topic (another replica, a restart) knows it.
    k = running.settings.kafka
    fresh = KafkaSuppressions(k, k.topic(ACTIONS_SUPPRESSIONS), codec)
    stop = asyncio.Event()
    reader = asyncio.create_task(fresh.follow(stop))
    await asyncio.wait_for(fresh.loaded.wait(), 30)
    stop.set()
    await reader
    assert fresh.reason("email", "cus-1", ()) == "unsubscribe link"


async def test_sms_stop_and_start(running: Running) -> None:
    forged = await sms_inbound(running, "STOP", token="wrong")
    assert forged.status_code == 403
    stopped = await sms_inbound(running, " stop ")
    assert stopped.status_code == 200 and "<Response>" in stopped.text
    first = command(22, channel="sms")
    send(running.settings, first)
    got = await results(running.settings, 1)
    assert (got[first[0]]["status"], got[first[0]]["detail"]) == \
        ("suppressed", "opted out: SMS STOP")
    assert (await sms_inbound(running, "START")).status_code == 200
    second = command(23, channel="sms")
    send(running.settings, second)
    got = await results(running.settings, 2)
    assert got[second[0]]["status"] == "delivered"
    assert len(running.twilio.messages) == 1


async def test_an_opt_out_is_stamped_with_the_dispatchers_clock(settings: Settings) -> None:
    """The record's ``at`` is the injected clock's time (the one the policy and the mail's
    Date use), not the wall clock read on the side."""
    k = settings.kafka
    clock = ManualClock(1_795_000_000_000)
    suppressions = KafkaSuppressions(k, k.topic(ACTIONS_SUPPRESSIONS), codec, clock)
    stop = asyncio.Event()
    follower = asyncio.create_task(suppressions.follow(stop))
    await asyncio.wait_for(suppressions.loaded.wait(), 30)
    await suppressions.record("email", "customer", "cus-9", True, "unsubscribe link")
    stop.set()
    await follower
    [record] = consume(k.bootstrap_servers, k.topic(ACTIONS_SUPPRESSIONS), 1)
    assert epoch_ms(codec.decode(SUPPRESSION, record.value)["at"]) == 1_795_000_000_000
