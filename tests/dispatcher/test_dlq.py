"""``signalbox dlq list|replay`` against a real broker and the real worker."""

from __future__ import annotations

import asyncio
import io
from collections.abc import Iterator

import pytest

from signalbox.cli import build_parser
from signalbox.common.settings import Settings, SettingsError
from signalbox.dispatcher import dlq
from signalbox.dispatcher.config import DispatcherConfig, SmsProvider
from tests.dispatcher.records import all_results, command, results, send
from tests.dispatcher.test_delivery_policy import dispatching
from tests.support.fakes.twilio import FakeTwilio

pytestmark = pytest.mark.kafka
NOW = 1_790_000_000_000


@pytest.fixture
def twilio() -> Iterator[FakeTwilio]:
    with FakeTwilio() as fake:
        yield fake


async def cli(settings: Settings, *argv: str) -> str:
    """``signalbox dlq …`` (a blocking command: off the event loop the dispatcher runs on)."""
    out = io.StringIO()
    args = build_parser().parse_args(["dlq", *argv])
    assert await asyncio.to_thread(dlq.run, settings, args, out) == 0
    return out.getvalue()


def test_since_takes_iso_times_and_ages() -> None:
    assert dlq.parse_since("2h", NOW) == NOW - 7_200_000
    assert dlq.parse_since("7d", NOW) == NOW - 7 * 86_400_000
    assert dlq.parse_since("2026-11-22T09:00:00Z", NOW) == \
        dlq.parse_since("2026-11-22T10:00:00+01:00", NOW) == \
        dlq.parse_since("2026-11-22T09:00:00", NOW)
    with pytest.raises(SettingsError, match="--since: expected an ISO 8601 time"):
        dlq.parse_since("yesterday", NOW)


async def test_list_then_replay_once(dsettings: Settings, twilio: FakeTwilio) -> None:
    cfg = DispatcherConfig(sms=SmsProvider(
        account_sid=twilio.account_sid, auth_token=twilio.auth_token,
        from_number="+14155550100", base_url=twilio.url))
    twilio.fail_next(1, 400)
    cid, value = command(30, channel="sms", customer="cus-9")
    async with dispatching(dsettings, cfg):
        send(dsettings, (cid, value), key=b"cus-9")
        assert (await results(dsettings, 1))[cid]["status"] == "failed"

        listed = await cli(dsettings, "list", "--since", "1h")
        header, row = listed.splitlines()
        assert header.split()[:6] == ["WHEN", "DLQ", "COMMAND", "CUSTOMER", "CHANNEL", "REASON"]
        assert [cid, "cus-9", "sms"] == row.split()[3:6] and "HTTP 400" in row
        assert (await cli(dsettings, "list", "--since", "2030-01-01")).splitlines()[1:] == []

        dry = await cli(dsettings, "replay", "--dry-run")
        assert "would replay 1 command" in dry and twilio.requests == 1

        assert "replayed 1 command" in await cli(dsettings, "replay", "--since", "1h")
        got = await all_results_until(dsettings, 2)
        assert [r["status"] for r in got] == ["failed", "delivered"]
        assert len(twilio.messages) == 1

        await cli(dsettings, "replay")  # the same dead letter again: nothing new happens
        assert len(await all_results(dsettings)) == 2
    assert len(twilio.messages) == 1


async def all_results_until(settings: Settings, count: int) -> list[dict[str, object]]:
    await results(settings, count)
    return await all_results(settings)
