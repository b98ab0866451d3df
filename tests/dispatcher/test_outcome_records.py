"""The dispatcher's records, without a broker: every write decoded with the real Avro
codec, so a field that no longer fits its schema fails here."""

from __future__ import annotations

from typing import Any

import pytest
from aiokafka.structs import ConsumerRecord

from signalbox.common import schemas
from signalbox.common.action_command import Command, command_from_record
from signalbox.common.deadletter import VALUE_BYTES, VALUE_SHA256, record_bytes
from signalbox.common.metrics import RECEIVED_AT_HEADER
from signalbox.dispatcher.commit import Write
from signalbox.dispatcher.delivery import Result, Retry
from signalbox.dispatcher.outcome_records import (
    MAX_DETAIL_CHARS,
    OutcomeRecords,
    bounded_detail,
    ledger_key,
)
from signalbox.dispatcher.outcomes import Outcome
from signalbox.dispatcher.policy.retry import (
    ATTEMPTS,
    DUE,
    FIRST_ATTEMPT,
    REASON,
    REPLAY,
    DeliveryState,
)
from signalbox.testing.action_commands import codec, command

NOW = 1_790_000_100_000
RETRY_TOPICS = ("t.retry.1s", "t.retry.10s", "t.retry.1m", "t.retry.10m", "t.retry.1h")
RECORDS = OutcomeRecords(codec, "t.ledger", "t.results", "t.dlq", RETRY_TOPICS)
COMMAND_ID, COMMAND_VALUE = command(1)


def consumed(value: bytes | None = COMMAND_VALUE, key: bytes | None = b"cus-1",
             headers: tuple[tuple[str, bytes], ...] = (), topic: str = "t.commands",
             partition: int = 3, offset: int = 42) -> ConsumerRecord[bytes, bytes]:
    return ConsumerRecord(topic, partition, offset, NOW - 5000, 0, key, value, None,
                          len(key or b""), len(value or b""), headers)


def the_command() -> Command:
    return command_from_record(codec.decode(schemas.ACTION_COMMAND, COMMAND_VALUE))


def decoded(name: str, write: Write) -> dict[str, Any]:
    return codec.decode(name, write.value, plain_times=True)


@pytest.mark.parametrize(("result", "dead_lettered"), [
    (Result(Outcome.DELIVERED, "250 OK queued", 1, "msg-1"), False),
    (Result(Outcome.SUPPRESSED, "opted out of email", 0), False),
    (Result(Outcome.FAILED, "550 no such user", 2), True),
    (Result(Outcome.IN_DOUBT, "connection lost during data", 1), True),
], ids=lambda v: v.outcome.value if isinstance(v, Result) else None)
def test_an_outcome_is_a_ledger_entry_a_result_and_for_failures_a_dead_letter(
        result: Result, dead_lettered: bool) -> None:
    contact = Write("t.contacts", b"email:cus-1", b"contacts", 3)
    key = ledger_key(COMMAND_ID, "")
    out = RECORDS.outcome(consumed(), key, the_command(), result, [contact], NOW)

    assert not out.truncated
    ledger, res, extra, *letters = out.writes
    assert (ledger.topic, ledger.key, ledger.partition, ledger.headers) == (
        "t.ledger", COMMAND_ID.encode(), 3, ())
    assert decoded(schemas.LEDGER_ENTRY, ledger) == {
        "command_id": COMMAND_ID, "state": result.outcome.value, "attempt": result.attempts,
        "at": NOW, "detail": result.detail}
    assert (res.topic, res.key, res.partition) == ("t.results", b"cus-1", 3)
    assert decoded(schemas.ACTION_RESULT, res) == {
        "command_id": COMMAND_ID, "customer_id": "cus-1",
        "automation_id": "payment-failed-pro", "channel": "email",
        "status": result.outcome.value, "detail": result.detail,
        "attempts": result.attempts, "completed_at": NOW,
        "provider_ref": result.provider_ref}
    assert extra is contact
    if not dead_lettered:
        assert letters == []
        return
    [letter] = letters
    assert (letter.topic, letter.key, letter.partition, letter.headers) == (
        "t.dlq", b"cus-1", 3, ())
    assert decoded(schemas.DEAD_LETTER, letter) == {
        "service": "dispatcher", "source_topic": "t.commands", "partition": 3, "offset": 42,
        "key": b"cus-1", "value": COMMAND_VALUE, "error_type": result.outcome.value,
        "reason": f"{result.outcome.value}: {result.detail}", "failed_at": NOW}


def test_a_replayed_command_has_its_own_ledger_entry() -> None:
    key = ledger_key(COMMAND_ID, "r-7")
    assert key == f"{COMMAND_ID}#replay:r-7"
    assert ledger_key(COMMAND_ID, "") == COMMAND_ID
    out = RECORDS.outcome(consumed(), key, the_command(),
                          Result(Outcome.DELIVERED, "ok", 1), [], NOW)
    ledger, res = out.writes
    assert ledger.key == key.encode()
    assert decoded(schemas.LEDGER_ENTRY, ledger)["command_id"] == key
    assert decoded(schemas.ACTION_RESULT, res)["command_id"] == COMMAND_ID


def test_an_attempt_is_a_ledger_entry_without_detail() -> None:
    value = RECORDS.ledger_value(COMMAND_ID, "attempting", 2, "", NOW)
    assert codec.decode(schemas.LEDGER_ENTRY, value, plain_times=True) == {
        "command_id": COMMAND_ID, "state": "attempting", "attempt": 2, "at": NOW,
        "detail": ""}


@pytest.mark.parametrize(("key", "value"), [
    (b"cus-1", b"\x00not avro"),
    (None, None),
    (b"k" * 2000, b""),
], ids=["garbage", "null key and value", "long key"])
def test_an_unreadable_record_is_dead_lettered_with_its_bytes(
        key: bytes | None, value: bytes | None) -> None:
    out = RECORDS.dead_letter(consumed(value, key, topic="t.retry.10s"), "DecodeError",
                              "not a record", NOW)
    assert not out.truncated
    [letter] = out.writes
    assert (letter.topic, letter.key, letter.partition, letter.headers) == (
        "t.dlq", key, 3, ())
    assert decoded(schemas.DEAD_LETTER, letter) == {
        "service": "dispatcher", "source_topic": "t.retry.10s", "partition": 3,
        "offset": 42, "key": key, "value": value, "error_type": "DecodeError",
        "reason": "not a record", "failed_at": NOW}


@pytest.mark.parametrize("limit", [4_000, 100_000])
def test_a_dead_letter_over_the_topics_limit_is_cut_to_fit(limit: int) -> None:
    records = OutcomeRecords(codec, "t.ledger", "t.results", "t.dlq", RETRY_TOPICS,
                             dlq_max_bytes=limit)
    big = COMMAND_VALUE + b"x" * limit
    fits = records.dead_letter(consumed(COMMAND_VALUE), "DecodeError", "bad", NOW)
    assert not fits.truncated
    out = records.outcome(consumed(big), COMMAND_ID, the_command(),
                          Result(Outcome.FAILED, "550 no such user", 1), [], NOW)
    assert out.truncated
    letter = out.writes[-1]
    assert record_bytes(letter.key, letter.value, tuple(letter.headers)) <= limit
    headers = dict(letter.headers)
    assert headers[VALUE_BYTES] == str(len(big)).encode()
    assert VALUE_SHA256 in headers
    body = decoded(schemas.DEAD_LETTER, letter)
    assert big.startswith(body["value"]) and len(body["value"]) < len(big)
    assert body["reason"].startswith("failed: 550 no such user [value truncated to its first")
    assert body["key"] == b"cus-1"


RECEIVED = (RECEIVED_AT_HEADER, b"1789999990000")


@pytest.mark.parametrize(("wait_s", "topic"), [
    (-1.0, "t.retry.1s"), (0.0, "t.retry.1s"), (0.05, "t.retry.1s"), (9.99, "t.retry.1s"),
    (10.0, "t.retry.10s"), (59.0, "t.retry.10s"), (60.0, "t.retry.1m"),
    (600.0, "t.retry.10m"), (3600.0, "t.retry.1h"), (86_400.0, "t.retry.1h"),
])
@pytest.mark.parametrize("received", [(), (RECEIVED,)], ids=["no received-at", "received-at"])
def test_a_retry_is_the_unchanged_command_in_the_tier_that_fits_its_wait(
        wait_s: float, topic: str, received: tuple[tuple[str, bytes], ...]) -> None:
    state = DeliveryState(attempts=2, first_attempt_ms=NOW - 3000, due_ms=1, reason="busy")
    # What the command came with is replaced: only the received-at header is kept.
    came_with = ((DUE, b"5"), (ATTEMPTS, b"1"), ("other", b"x"), *received)
    write = RECORDS.retry(consumed(headers=came_with), Retry(state, wait_s), NOW)
    due = NOW + int(max(0.0, wait_s) * 1000)
    assert (write.topic, write.key, write.value, write.partition, write.timestamp_ms) == (
        topic, b"cus-1", COMMAND_VALUE, 3, NOW)
    assert list(write.headers) == [
        (DUE, str(due).encode()), (ATTEMPTS, b"2"), (FIRST_ATTEMPT, str(NOW - 3000).encode()),
        (REASON, b"busy"), *received]


def test_a_replayed_commands_retry_keeps_its_replay_id() -> None:
    state = DeliveryState(attempts=1, first_attempt_ms=NOW, reason="quiet hours",
                          replay="r-7")
    write = RECORDS.retry(consumed(headers=(RECEIVED,)), Retry(state, 30.0), NOW)
    assert list(write.headers) == [
        (DUE, str(NOW + 30_000).encode()), (ATTEMPTS, b"1"), (FIRST_ATTEMPT, str(NOW).encode()),
        (REASON, b"quiet hours"), (REPLAY, b"r-7"), RECEIVED]


@pytest.mark.parametrize(("detail", "kept"), [
    ("", ""),
    ("x" * MAX_DETAIL_CHARS, "x" * MAX_DETAIL_CHARS),
    ("x" * (MAX_DETAIL_CHARS + 1),
     "x" * MAX_DETAIL_CHARS + f"… ({MAX_DETAIL_CHARS + 1} characters)"),
])
def test_an_outcomes_detail_is_bounded(detail: str, kept: str) -> None:
    assert bounded_detail(detail) == kept
    # The bounded detail always fits the ledger and the result.
    out = RECORDS.outcome(consumed(), COMMAND_ID, the_command(),
                          Result(Outcome.SUPPRESSED, kept, 0), [], NOW)
    assert decoded(schemas.ACTION_RESULT, out.writes[1])["detail"] == kept
