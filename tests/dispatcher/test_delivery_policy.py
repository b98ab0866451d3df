"""Delivery policy through the real worker: real broker, aiosmtpd, a Twilio-format server."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

import pytest

from signalbox.common import schemas
from signalbox.common.clock import Clock
from signalbox.common.settings import Settings
from signalbox.common.topics import ACTIONS_DLQ
from signalbox.dispatcher import metrics
from signalbox.dispatcher.main import build
from signalbox.dispatcher.providers import DispatcherConfig, SmsProvider
from signalbox.dispatcher.worker import Dispatcher
from signalbox.testing import ManualClock, eventually
from signalbox.testing.action_commands import codec, command
from signalbox.testing.fakes.twilio import FakeTwilio
from signalbox.testing.smtp import SmtpSink
from tests.dispatcher.records import all_results, results, send
from tests.support.kafka import consume

pytestmark = pytest.mark.kafka


def config(twilio: FakeTwilio, policy: dict[str, Any] | None = None,
           sms_timeout_s: float = 10.0) -> DispatcherConfig:
    return DispatcherConfig(
        sms=SmsProvider(account_sid=twilio.account_sid, auth_token=twilio.auth_token,
                        from_number="+14155550100", base_url=twilio.url,
                        timeout_s=sms_timeout_s),
        policy=policy or {})


@asynccontextmanager
async def dispatching(settings: Settings, cfg: DispatcherConfig,
                      clock: Clock | None = None) -> AsyncIterator[Dispatcher]:
    stop = asyncio.Event()
    dispatcher = build(settings, cfg, clock=clock, recheck_s=0.2)
    task = asyncio.create_task(dispatcher.run(stop))
    await asyncio.wait_for(dispatcher.assigned.wait(), 30)
    try:
        yield dispatcher
    finally:
        stop.set()
        await asyncio.wait_for(task, 60)


async def test_a_hanging_channel_does_not_hold_up_email_on_the_same_partition(
    dsettings: Settings, smtp: SmtpSink, twilio: FakeTwilio
) -> None:
    twilio.hang_next(1)
    sms, email = command(1, channel="sms"), command(1)
    async with dispatching(dsettings, config(twilio)):
        send(dsettings, sms, email)  # the SMS is first in the partition
        started = time.monotonic()
        await asyncio.to_thread(smtp.wait_for, 1, 20)
        email_after = time.monotonic() - started
        assert twilio.messages == []  # the SMS is still hanging
        twilio.release()  # answered 503: a transient failure, retried through a tier
        got = await results(dsettings, 2)
    assert email_after < 5, f"email waited {email_after:.1f}s behind the hanging SMS"
    assert got[email[0]]["status"] == "delivered"
    assert (got[sms[0]]["status"], got[sms[0]]["attempts"]) == ("delivered", 2)
    assert len(twilio.messages) == 1 and len(await all_results(dsettings)) == 2


async def test_a_provider_down_for_a_while_then_back_delivers_once(
    dsettings: Settings, twilio: FakeTwilio
) -> None:
    policy = {"channels": {"sms": {"max_attempts": 50, "backoff_cap_seconds": 0.5,
                                   "breaker": {"failures": 3, "cooldown_seconds": 0.5}}}}
    opened = metrics.BREAKER_OPENED.labels("sms")._value.get()
    twilio.down()
    cid, value = command(2, channel="sms")
    async with dispatching(dsettings, config(twilio, policy)):
        send(dsettings, (cid, value))

        async def breaker_opened() -> float:  # connection refused, again and again
            return float(metrics.BREAKER_OPENED.labels("sms")._value.get())

        assert await eventually(breaker_opened, lambda now: now > opened) > opened
        twilio.up()
        got = await results(dsettings, 1)
    assert got[cid]["status"] == "delivered" and got[cid]["attempts"] >= 3
    assert len(twilio.messages) == 1
    assert metrics.BREAKER_OPENED.labels("sms")._value.get() > opened
    assert len(await all_results(dsettings)) == 1


async def test_a_permanent_4xx_goes_to_the_dlq_without_retries(
    dsettings: Settings, twilio: FakeTwilio
) -> None:
    twilio.fail_next(1, 400)
    cid, value = command(3, channel="sms")
    async with dispatching(dsettings, config(twilio)):
        send(dsettings, (cid, value))
        got = await results(dsettings, 1)
        k = dsettings.kafka
        [letter] = await asyncio.to_thread(consume, k.bootstrap_servers,
                                           k.topic(ACTIONS_DLQ), 1)
    assert (got[cid]["status"], got[cid]["attempts"]) == ("failed", 1)
    assert "HTTP 400" in got[cid]["detail"]
    dead = codec.decode(schemas.DEAD_LETTER, letter.value)
    assert dead["value"] == value and dead["reason"].startswith("failed: ")
    assert twilio.requests == 1


async def test_transient_failures_end_in_the_dlq_after_the_last_attempt(
    dsettings: Settings, twilio: FakeTwilio
) -> None:
    twilio.fail_next(10, 503)
    cid, value = command(4, channel="sms")
    async with dispatching(dsettings, config(twilio, {"channels": {"sms": {
            "max_attempts": 3, "breaker": {"failures": 0}}}})):
        send(dsettings, (cid, value))
        got = await results(dsettings, 1)
    assert (got[cid]["status"], got[cid]["attempts"]) == ("failed", 3)
    assert "gave up after 3 attempts" in got[cid]["detail"]
    assert twilio.requests == 3 and twilio.messages == []


def berlin(text: str) -> int:
    return int(datetime.fromisoformat(text + "+01:00").timestamp() * 1000)


async def test_quiet_hours_defer_customer_messages_and_critical_ones_go_at_once(
    dsettings: Settings, smtp: SmtpSink, twilio: FakeTwilio
) -> None:
    # In the past: record times come from this clock, and brokers refuse times far ahead.
    clock = ManualClock(berlin("2026-11-20T22:30:00"))
    policy = {"quiet_hours": {"start": "21:00", "end": "08:00",
                              "default_timezone": "Europe/Berlin"}}
    quiet_sms = command(5, channel="sms")
    critical_sms = command(6, channel="sms", critical=True)
    alert = command(7, audience="internal", to=["finance@example.com"])
    tokyo = command(8, timezone="Asia/Tokyo")  # 06:30 in Tokyo: quiet too, until 08:00 there
    async with dispatching(dsettings, config(twilio, policy), clock=clock):
        send(dsettings, quiet_sms, critical_sms, alert, tokyo)
        early = await results(dsettings, 2)
        assert set(early) == {critical_sms[0], alert[0]}
        # Waiting for nothing to happen: a quiet-hours SMS sent early would be in by now.
        await asyncio.sleep(1.5)
        assert [m.to for m in twilio.messages] == ["+14155552671"]  # the critical one only
        clock.set(berlin("2026-11-21T00:00:01"))  # 08:00:01 in Tokyo
        assert (await results(dsettings, 3))[tokyo[0]]["status"] == "delivered"
        clock.set(berlin("2026-11-21T08:00:01"))
        got = await results(dsettings, 4)
    assert {r["status"] for r in got.values()} == {"delivered"}
    assert len(twilio.messages) == 2 and len(smtp.messages) == 2
    assert len(await all_results(dsettings)) == 4


async def test_frequency_cap_suppresses_and_survives_a_restart(
    dsettings: Settings, smtp: SmtpSink, twilio: FakeTwilio
) -> None:
    cfg = config(twilio, {"frequency_caps": {"email": {"max": 2, "per_seconds": 86400}}})
    first = [command(n, customer="cus-7") for n in (10, 11, 12)]
    critical = command(13, customer="cus-7", critical=True)
    async with dispatching(dsettings, cfg):
        send(dsettings, *first, key=b"cus-7")
        got = await results(dsettings, 3)
    statuses = sorted(got[cid]["status"] for cid, _ in first)
    assert statuses == ["delivered", "delivered", "suppressed"]
    [capped] = [r for r in got.values() if r["status"] == "suppressed"]
    assert "frequency cap" in capped["detail"]
    later = command(14, customer="cus-7")
    async with dispatching(dsettings, cfg):  # a new process: history restored from Kafka
        send(dsettings, later, critical, key=b"cus-7")
        got = await results(dsettings, 5)
    assert got[later[0]]["status"] == "suppressed"
    assert got[critical[0]]["status"] == "delivered"  # critical ignores the cap
    assert len(smtp.messages) == 3


async def test_an_endless_outage_ends_in_failed_at_the_deadline(
    dsettings: Settings, twilio: FakeTwilio
) -> None:
    """With the breaker open no attempt is made, yet the deadline still ends the command."""
    twilio.down()
    cid, value = command(15, channel="sms")
    policy = {"channels": {"sms": {"max_attempts": 100, "deadline_seconds": 2,
                                   "breaker": {"failures": 1, "cooldown_seconds": 0.3}}}}
    async with dispatching(dsettings, config(twilio, policy)):
        send(dsettings, (cid, value))
        got = await results(dsettings, 1)
    assert got[cid]["status"] == "failed" and "deadline of 2s" in got[cid]["detail"]
    assert twilio.messages == []


async def test_rate_limit_spaces_out_calls(dsettings: Settings, twilio: FakeTwilio) -> None:
    policy = {"channels": {"sms": {"rate_per_second": 5, "burst": 1, "concurrency": 2}}}
    commands = [command(n, channel="sms", customer=f"cus-r{n}") for n in range(16, 22)]
    async with dispatching(dsettings, config(twilio, policy)):
        started = time.monotonic()
        send(dsettings, *commands)
        got = await results(dsettings, 6)
        took = time.monotonic() - started
    assert {r["status"] for r in got.values()} == {"delivered"}
    assert took >= 1.0, f"6 calls at 5/s with a burst of 1 took only {took:.2f}s"
    assert len(twilio.messages) == 6
