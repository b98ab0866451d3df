"""``signalbox dlq list|replay`` against a real broker and the real worker."""

from __future__ import annotations

import asyncio
import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from signalbox.cli import build_parser
from signalbox.common import schemas
from signalbox.common.deadletter import dead_letter
from signalbox.common.settings import Settings, SettingsError
from signalbox.common.topics import ACTIONS_COMMANDS, ACTIONS_DLQ, EVENTS_DLQ
from signalbox.dispatcher import dlq
from signalbox.dispatcher.providers import DispatcherConfig, SmsProvider
from signalbox.testing import free_port
from signalbox.testing.action_commands import codec, command
from signalbox.testing.fakes.twilio import FakeTwilio
from tests.dispatcher.records import all_results, results, send
from tests.dispatcher.test_delivery_policy import dispatching
from tests.support.kafka import consume, drain, produce

NOW = 1_790_000_000_000


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
        assert header.split() == ["WHEN", "DLQ", "COMMAND", "CUSTOMER", "CHANNEL", "REPLAYED",
                                  "REASON"]
        assert [cid, "cus-9", "sms", "-"] == row.split()[3:7] and "HTTP 400" in row
        assert (await cli(dsettings, "list", "--since", "2030-01-01")).splitlines()[1:] == []

        dry = await cli(dsettings, "replay", "--dry-run")
        assert "dry run: would replay 1 command(s); 0 already replayed" in dry
        assert twilio.requests == 1

        first = await cli(dsettings, "replay", "--since", "1h", "--by", "ops-anna")
        assert first.splitlines()[-1] == \
            "replayed 1 command(s); 0 already replayed (no-op); 0 not replayable"
        got = await all_results_until(dsettings, 2)
        assert [r["status"] for r in got] == ["failed", "delivered"]
        assert len(twilio.messages) == 1

        # The same dead letter again: nothing is sent, and the report says why.
        again = await cli(dsettings, "replay")
        assert again.splitlines()[-1] == \
            "replayed 0 command(s); 1 already replayed (no-op); 0 not replayable"
        assert f"already replayed 0:0 command {cid} at " in again and "by ops-anna" in again
        assert len(await all_results(dsettings)) == 2
        [letter] = json.loads(await cli(dsettings, "list", "--json"))
        assert letter["command_id"] == cid and letter["replayed"]["by"] == "ops-anna"
        assert letter["replayed"]["to"] == dsettings.kafka.topic(ACTIONS_COMMANDS)
    assert len(twilio.messages) == 1


def write_letters(settings: Settings, topic: str, letters: list[dict[str, Any]]) -> None:
    """Dead letters as the services write them, each on its source partition."""
    k = settings.kafka
    for letter in letters:
        produce(k.bootstrap_servers, k.topic(topic),
                [(letter["key"], codec.encode(schemas.DEAD_LETTER, letter))],
                partition=letter["partition"])


def test_list_shows_whole_reasons_as_a_table_and_as_json(settings: Settings) -> None:
    reason = "provider said: " + "x" * 300 + " (the end)"
    _, value = command(31, channel="sms", customer="cus-7")
    write_letters(settings, ACTIONS_DLQ, [dead_letter(
        service="dispatcher", topic=settings.kafka.topic(ACTIONS_COMMANDS), partition=1,
        offset=5, key=b"cus-7", value=value, error_type="failed", reason=reason)])
    table = sync_cli(settings, "list")
    assert table.splitlines()[1].endswith(reason)
    [letter] = json.loads(sync_cli(settings, "list", "--json"))
    assert letter["reason"] == reason and letter["channel"] == "sms"
    assert letter["customer_id"] == "cus-7" and letter["replayable"] is True
    assert (letter["partition"], letter["offset"], letter["replayed"]) == (1, 0, None)


def test_events_dlq_replays_readable_events_once_and_names_the_rest(settings: Settings) -> None:
    """An event the evaluator failed on (an engine bug since fixed) goes back to its topic
    and partition, once; a tick's failure and unreadable bytes are not replayable."""
    k = settings.kafka
    billing = k.topic("events.billing")
    value = codec.encode(schemas.EVENT, {
        "event_id": "evt-1", "customer_id": "cus-3", "occurred_at": NOW, "received_at": NOW,
        "source": "test", "payload": (schemas.event_types()["payment.failed"].record, {
            "payment_id": "py_1", "product": "pro", "amount_minor": 100,
            "currency": "EUR"})})
    letters = [
        dead_letter(service="evaluator", topic=billing, partition=1, offset=7, key=b"cus-3",
                    value=value, error_type="KeyError", reason="engine bug: 'plan'"),
        dead_letter(service="evaluator", topic=k.topic("ticks"), partition=0, offset=3,
                    key=b"cus-4", value=b"tick", error_type="ValueError",
                    reason="customer 'cus-4' failed on 3 ticks in a row"),
        dead_letter(service="evaluator", topic=k.topic("events.usage"), partition=0,
                    offset=9, key=b"cus-5", value=b"not avro", error_type="DecodeError",
                    reason="not Avro single-object encoding"),
    ]
    write_letters(settings, EVENTS_DLQ, letters)

    listed = {x["source_topic"]: x for x in json.loads(
        sync_cli(settings, "list", "--topic", "events.dlq", "--json"))}
    assert listed[billing]["event_id"] == "evt-1" and listed[billing]["replayable"]
    assert listed[billing]["event_type"] == "payment.failed"
    assert "not an events topic" in listed[k.topic("ticks")]["not_replayable_because"]
    assert "still not a readable event" in \
        listed[k.topic("events.usage")]["not_replayable_because"]

    first = sync_cli(settings, "replay", "--topic", "events.dlq", "--by", "ops-ben")
    assert first.splitlines()[-1] == \
        "replayed 1 event(s); 0 already replayed (no-op); 2 not replayable"
    assert f"replayed 1:0 event evt-1 (payment.failed, cus-3) to {billing}" in first
    [written] = consume(k.bootstrap_servers, billing, 1)
    assert (written.partition, written.key, written.value) == (1, b"cus-3", value)

    again = sync_cli(settings, "replay", "--topic", "events.dlq")
    assert again.splitlines()[-1] == \
        "replayed 0 event(s); 1 already replayed (no-op); 2 not replayable"
    assert len(drain(k.bootstrap_servers, billing, 2.0)) == 1
    table = sync_cli(settings, "list", "--topic", "events.dlq")
    assert table.splitlines()[0].split()[:6] == ["WHEN", "DLQ", "EVENT", "CUSTOMER", "TYPE",
                                                 "REPLAYED"]
    assert "by ops-ben" in next(line for line in table.splitlines() if "evt-1" in line)


def test_a_failing_command_is_logged_as_an_error_in_text(tmp_path: Path) -> None:
    """No broker: one readable error line on stderr, exit 1 (not a JSON traceback)."""
    env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{free_port()}",
           "LOG_FORMAT": "json", "LOG_LEVEL": "info"}
    command = [sys.executable, "-m", "signalbox", "dlq", "list", "--wait", "1"]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60,
                          check=False)
    assert done.returncode == 1 and done.stdout == ""
    [line] = [x for x in done.stderr.splitlines() if "command_failed" in x]
    assert "[error" in line and "command='dlq list'" in line and not line.startswith("{")
    assert f"Kafka at {env['KAFKA_BOOTSTRAP_SERVERS']} (PLAINTEXT) did not answer in 1.0s" in line
    assert done.stderr.splitlines() == [line]


def sync_cli(settings: Settings, *argv: str) -> str:
    out = io.StringIO()
    assert dlq.run(settings, build_parser().parse_args(["dlq", *argv]), out) == 0
    return out.getvalue()


async def all_results_until(settings: Settings, count: int) -> list[dict[str, object]]:
    await results(settings, count)
    return await all_results(settings)
