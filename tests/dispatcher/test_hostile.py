"""Hostile records on the dispatcher's inputs (issue 9): none of them stops delivery.

Each poisoned record goes to ``actions.dlq`` with the reason and the original
bytes, and a good command written after them is still delivered, by the real
worker against the real broker and an aiosmtpd relay.
"""

from __future__ import annotations

import asyncio
import hashlib

import pytest
from confluent_kafka import Producer

from signalbox.common import schemas
from signalbox.common.settings import Settings
from signalbox.common.topics import ACTIONS_COMMANDS, ACTIONS_DLQ, ACTIONS_RETRY
from signalbox.dispatcher.policy.retry import (
    ATTEMPTS,
    DUE,
    FIRST_ATTEMPT,
    REPLAY,
    DeliveryState,
    HeaderError,
    state_from_headers,
)
from signalbox.dispatcher.providers import DispatcherConfig
from signalbox.testing import ManualClock
from signalbox.testing.action_commands import codec, command
from signalbox.testing.smtp import SmtpSink
from tests.dispatcher.records import results, send
from tests.dispatcher.test_delivery_policy import dispatching
from tests.dispatcher.test_dlq import cli
from tests.support.kafka import consume

GOOD = DeliveryState(attempts=1, first_attempt_ms=1, due_ms=1).headers()


def headers(**changed: bytes | None) -> list[tuple[str, bytes | None]]:
    """Good retry headers with some replaced (``None``: dropped)."""
    names = {"due": DUE, "attempts": ATTEMPTS, "first": FIRST_ATTEMPT, "replay": REPLAY}
    out = dict(GOOD)
    for short, value in changed.items():
        out.pop(names[short], None)
        if value is not None:
            out[names[short]] = value
    return list(out.items())


#: What reached the broker in the issue and what a careless producer could write.
POISON: dict[str, list[tuple[str, bytes | None]]] = {
    "huge due": headers(due=b"1" + b"0" * 400),
    "16-digit due": headers(due=b"9999999999999999"),
    "negative due": headers(due=b"-5"),
    "non-numeric due": headers(due=b"soon"),
    "missing due": headers(due=None),
    "huge attempts": headers(attempts=b"9" * 5000),
    "negative first attempt": headers(first=b"-1"),
    "binary replay": headers(replay=b"\xff\x00"),
}


def test_headers_the_dispatcher_never_writes_are_refused_with_the_reason() -> None:
    assert state_from_headers(GOOD, retry=True) == DeliveryState(1, 1, 1)
    assert state_from_headers([(REPLAY, b"0:17")]).replay == "0:17"
    reasons = {}
    for name, hs in POISON.items():
        with pytest.raises(HeaderError) as caught:
            state_from_headers(hs, retry=True)
        reasons[name] = caught.value.reason
    assert "expected 1 to 16 ASCII digits, got b'1000000000" in reasons["huge due"]
    assert "(401 bytes)" in reasons["huge due"]  # bounded: not 400 digits in a log line
    assert "above the largest accepted, 253402300799999" in reasons["16-digit due"]
    assert "got b'-5'" in reasons["negative due"]
    assert "without the header(s) signalbox-due" in reasons["missing due"]
    assert reasons["binary replay"].startswith("header signalbox-replay")
    with pytest.raises(HeaderError, match="null"):
        state_from_headers([(DUE, None)])
    # On actions.commands the headers are optional: a fresh command has none.
    assert state_from_headers([], retry=False) == DeliveryState()


def produce_with_headers(settings: Settings, topic: str,
                         records: list[tuple[bytes, list[tuple[str, bytes | None]]]]) -> None:
    k = settings.kafka
    p = Producer({"bootstrap.servers": k.bootstrap_servers, "enable.idempotence": True,
                  "message.max.bytes": 2_000_000})  # the topic's limit is what counts
    for value, hs in records:
        p.produce(k.topic(topic), key=b"cus-1", value=value, partition=0, headers=list(hs))
    assert p.flush(30) == 0, "records not delivered"


async def test_poisoned_retry_records_are_dead_lettered_and_delivery_goes_on(
    dsettings: Settings, smtp: SmtpSink
) -> None:
    poisoned = {name: command(100 + i) for i, name in enumerate(POISON)}
    far_ahead = command(150)  # well formed, but due in 9999: no wait this dispatcher sets
    garbage = b"\xc3\x01" + b"\x00" * 8 + b"not a command"
    records = [(value, POISON[name]) for name, (_, value) in poisoned.items()]
    records += [(far_ahead[1], headers(due=b"253402300799999")), (garbage, headers())]  # GOOD's
    good = command(151)
    async with dispatching(dsettings, DispatcherConfig()) as dispatcher:
        produce_with_headers(dsettings, ACTIONS_RETRY[0], records)
        send(dsettings, good)
        [mail] = await asyncio.to_thread(smtp.wait_for, 1, 30)
        got = await results(dsettings, len(poisoned) + 2)
        k = dsettings.kafka
        letters = [codec.decode(schemas.DEAD_LETTER, r.value) for r in await asyncio.to_thread(
            consume, k.bootstrap_servers, k.topic(ACTIONS_DLQ), len(records))]
        assert await dispatcher.ready() is None  # still running, still assigned
    assert mail.message["X-Signalbox-Command-Id"] == good[0]
    assert got[good[0]]["status"] == "delivered"
    for name, (cid, _) in [*poisoned.items(), ("far ahead", far_ahead)]:
        assert got[cid]["status"] == "failed", name
        assert got[cid]["detail"].startswith("unusable delivery headers on "), name
    assert "more than" in got[far_ahead[0]]["detail"]
    by_value = {letter["value"]: letter for letter in letters}
    assert set(by_value) == {value for value, _ in records}  # the original bytes, each once
    assert by_value[garbage]["error_type"] == "DecodeError"
    assert by_value[poisoned["huge due"][1]]["reason"].startswith(
        "failed: unusable delivery headers on ")


async def test_a_failed_command_at_the_size_limit_keeps_a_truncated_dead_letter(
    dsettings: Settings, smtp: SmtpSink
) -> None:
    """Its dead letter would exceed the limit: it keeps the reason, the first bytes, the
    size and the digest, and the worker goes on (it used to fail its transaction)."""
    size = len(command(160, template="no_such_template")[1])
    cid, big = command(160, template="no_such_template", padding=1_048_300 - size)
    good = command(161)
    async with dispatching(dsettings, DispatcherConfig()) as dispatcher:
        produce_with_headers(dsettings, ACTIONS_COMMANDS, [(big, [])])
        send(dsettings, good)
        got = await results(dsettings, 2)
        k = dsettings.kafka
        [letter] = await asyncio.to_thread(consume, k.bootstrap_servers,
                                           k.topic(ACTIONS_DLQ), 1)
        assert await dispatcher.ready() is None
        # The producer's limit, below the topic's 1,048,588 (read from the broker).
        assert dispatcher.dlq_max_bytes == 1_048_576
    assert got[cid]["status"] == "failed"
    assert got[good[0]]["status"] == "delivered" and len(smtp.messages) == 1
    dead = codec.decode(schemas.DEAD_LETTER, letter.value)
    digest = hashlib.sha256(big).hexdigest()
    assert len(big) > 1_048_300 and big.startswith(dead["value"])
    assert len(dead["value"]) > 1_048_000
    assert dead["reason"].startswith("failed: ")
    assert f"of {len(big)} bytes, sha256 {digest}" in dead["reason"]


async def test_a_time_zone_name_the_system_cannot_even_look_up_falls_back_to_the_default(
    dsettings: Settings, smtp: SmtpSink
) -> None:
    """A 5,000-character zone name made ZoneInfo raise OSError (file name too long), which
    stopped the worker on every restart; now the quiet-hours default zone applies."""
    noon_in_berlin = 1_795_690_800_000  # 2026-11-26T12:00:00+01:00, outside 21:00-08:00
    policy = {"quiet_hours": {"start": "21:00", "end": "08:00",
                              "default_timezone": "Europe/Berlin"}}
    odd = [command(170 + i, timezone=tz) for i, tz in
           enumerate(["a" * 5000, "Europe/" + "x" * 300, "../../etc/passwd", "Mars/Base"])]
    async with dispatching(dsettings, DispatcherConfig(policy=policy),
                           clock=ManualClock(noon_in_berlin)) as dispatcher:
        send(dsettings, *odd)
        got = await results(dsettings, len(odd))
        assert await dispatcher.ready() is None
    assert [got[cid]["status"] for cid, _ in odd] == ["delivered"] * len(odd)
    assert len(smtp.messages) == len(odd)


async def test_ids_and_keys_too_long_to_keep_are_dead_lettered(
    dsettings: Settings, smtp: SmtpSink
) -> None:
    """Ids go into ledger keys, results and logs: a 900,000-character customer id would make
    the ledger write too large and stop the worker on every restart."""
    long_customer = command(180, customer="c" * 900_000)
    long_key = command(181)
    good = command(182)
    async with dispatching(dsettings, DispatcherConfig()) as dispatcher:
        produce_with_headers(dsettings, ACTIONS_COMMANDS, [(long_customer[1], [])])
        send(dsettings, long_key, key=b"k" * 2000)
        send(dsettings, good)
        got = await results(dsettings, 1)
        k = dsettings.kafka
        letters = [codec.decode(schemas.DEAD_LETTER, r.value) for r in await asyncio.to_thread(
            consume, k.bootstrap_servers, k.topic(ACTIONS_DLQ), 2)]
        assert await dispatcher.ready() is None
        listed = await cli(dsettings, "list")  # the operator's view copes with them too
    assert got[good[0]]["status"] == "delivered" and len(smtp.messages) == 1
    assert "customer_id of 900000 characters" in listed and "a Kafka key of 2000" in listed
    reasons = sorted(letter["reason"] for letter in letters)
    assert reasons == [
        "a Kafka key of 2000 bytes; at most 1024 are accepted (it is a customer id)",
        "customer_id of 900000 characters; at most 256 are accepted"]
    assert {letter["error_type"] for letter in letters} == {"CommandError"}
