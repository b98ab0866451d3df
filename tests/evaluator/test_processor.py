"""The evaluator's batch work without Kafka: the same commands as ``simulate``.

The output here is the in-memory transport seam of :class:`Output` (it records what
would be written and acknowledges at once); everything else is the real code.
"""

from __future__ import annotations

import io
import json
from collections.abc import Awaitable, Sequence
from typing import Any

import pytest

from signalbox.common import schemas
from signalbox.common.codec import AvroCodec
from signalbox.common.deadletter import Letter
from signalbox.common.metrics import received_at_of
from signalbox.evaluator import processor
from signalbox.evaluator.engine import (
    AutomationSet,
    Event,
    Tick,
    evaluate,
    parse_automations,
)
from signalbox.evaluator.partition_timers import PartitionTimers
from signalbox.evaluator.processor import Evaluator, Record
from signalbox.evaluator.simulate import run
from signalbox.evaluator.store import MemoryLocalStore, StateStore
from signalbox.testing.evaluator_output import AcknowledgedOutput
from tests.evaluator.test_partition_timers import DAY, NO_LOGIN, T0

BILLING, USAGE, TICKS = "events.billing", "events.usage", "ticks"
codec = AvroCodec()
AUTOMATIONS = parse_automations("""
format: signalbox/automations@2
automations:
  - id: login-while-struggling
    trigger: {type: user.logged_in}
    conditions: {where: [{field: state.health, op: "==", value: struggling}]}
    actions: [{type: email, to: customer, template: t}]
  - id: failed
    trigger: {type: payment.failed}
    actions: [{type: email, to: customer, template: t}]
""", schemas.event_types())


class MemoryOutput(AcknowledgedOutput):
    """Keeps what the evaluator wrote: commands (decoded, with their headers), dead
    letters (decoded) and the latest state per key."""

    def __init__(self) -> None:
        super().__init__()
        self.commands: list[dict[str, Any]] = []
        self.letters: list[dict[str, Any]] = []
        self.command_headers: list[list[tuple[str, bytes]]] = []
        self.states: dict[bytes, bytes] = {}

    async def command(self, key: bytes, value: bytes, partition: int,
                      headers: Sequence[tuple[str, bytes]] = ()) -> Awaitable[Any]:
        self.commands.append(codec.decode(schemas.ACTION_COMMAND, value))
        self.command_headers.append(list(headers))
        return self.ack()

    async def changelog(self, key: bytes, value: bytes, partition: int) -> Awaitable[Any]:
        self.states[key] = value
        return self.ack(len(self.states))

    async def dead_letter(self, letter: Letter, partition: int) -> Awaitable[Any]:
        self.letters.append(codec.decode(schemas.DEAD_LETTER, letter.value))
        return self.ack()


def evaluator(automations: AutomationSet = AUTOMATIONS) -> Evaluator:
    return Evaluator(codec, StateStore(codec, MemoryLocalStore({})), PartitionTimers(),
                     lambda: automations, TICKS, {BILLING: 0, USAGE: 1, TICKS: 2})


def event(event_id: str, type_: str, at: int, data: dict[str, Any]) -> Event:
    return Event(event_id=event_id, customer_id="cus-1", type=type_, occurred_at=at,
                 received_at=at, data=data)


def record(topic: str, offset: int, e: Event) -> Record:
    payload = (schemas.event_types()[e.type].record, dict(e.data))
    value = codec.encode(schemas.EVENT, {
        "event_id": e.event_id, "customer_id": e.customer_id, "occurred_at": e.occurred_at,
        "received_at": e.received_at, "source": "test", "payload": payload})
    return Record(topic, 0, offset, e.customer_id.encode(), value)


async def test_a_batch_of_two_topics_is_evaluated_in_time_order_as_simulate_does() -> None:
    """A login before and one after a failed payment, fetched topic by topic (billing
    first): evaluated by time, only the later login finds the customer struggling."""
    early = event("login-1", "user.logged_in", T0 + 1_000, {"user_id": None})
    failed = event("pay-1", "payment.failed", T0 + 2_000, {
        "payment_id": "p1", "product": "pro", "amount_minor": 100, "currency": "EUR"})
    late = event("login-2", "user.logged_in", T0 + 3_000, {"user_id": None})
    batch = [record(BILLING, 0, failed), record(USAGE, 0, early), record(USAGE, 1, late)]
    out = MemoryOutput()
    await evaluator().process(batch, out)

    simulated = io.StringIO()
    run(AUTOMATIONS, [early, failed, late], simulated, tick_ms=3_600_000)
    expected = [json.loads(line)["command_id"] for line in simulated.getvalue().splitlines()]
    assert [c["command_id"] for c in out.commands] == expected
    assert [c["automation_id"] for c in out.commands] == ["failed", "login-while-struggling"]


async def test_events_of_one_request_keep_the_request_order() -> None:
    """Same received_at and occurred_at: the topic's offsets decide."""
    first = event("a", "payment.failed", T0, {
        "payment_id": "p1", "product": "pro", "amount_minor": 100, "currency": "EUR"})
    second = event("b", "payment.failed", T0, {
        "payment_id": "p2", "product": "pro", "amount_minor": 100, "currency": "EUR"})
    out = MemoryOutput()
    await evaluator().process([record(BILLING, 7, second), record(BILLING, 3, first)], out)
    assert [(c["trigger"]["occurrence"], c["trigger"]["facts"]["failed_count"])
            for c in out.commands] == [("a", "1"), ("b", "2")]


async def test_a_record_that_cannot_be_read_is_dead_lettered_and_the_batch_goes_on() -> None:
    good = event("ok", "payment.failed", T0, {
        "payment_id": "p1", "product": "pro", "amount_minor": 100, "currency": "EUR"})
    out = MemoryOutput()
    await evaluator().process([Record(BILLING, 0, 0, b"cus-1", b"not avro"),
                               record(BILLING, 1, good)], out)
    assert [letter["error_type"] for letter in out.letters] == ["DecodeError"]
    assert out.letters[0]["value"] == b"not avro"
    assert len(out.commands) == 1 and list(out.states) == [b"cus-1"]


async def test_a_customer_failing_on_every_tick_is_dead_lettered_after_three(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """An engine failure for one customer on ticks (injected here) is retried on the
    next tick, then dead-lettered with the reason, and its timer is dropped."""
    ev = evaluator(NO_LOGIN)
    out = MemoryOutput()
    await ev.process([record(USAGE, 0, event("l", "user.logged_in", T0, {"user_id": None}))],
                     out)
    def failing(state: Any, item: Any, automations: Any) -> Any:
        if isinstance(item, Tick):
            raise ZeroDivisionError("injected")
        return evaluate(state, item, automations)

    monkeypatch.setattr(processor, "evaluate", failing)
    for n in range(1, 5):
        await ev.process([tick_record(n, T0 + (7 + n) * DAY)], out)
        assert len(out.letters) == (1 if n >= 3 else 0)
    [letter] = out.letters
    assert letter["key"] == b"cus-1" and letter["error_type"] == "ZeroDivisionError"
    assert "failed on 3 ticks in a row" in letter["reason"]
    assert ev.timers.pop_due(0, T0 + 99 * DAY) == []  # dropped until its next event
    assert out.commands == []


def tick_record(offset: int, at: int) -> Record:
    value = codec.encode(schemas.TICK, {"tick_id": f"0:{at}", "partition": 0, "at": at,
                                        "interval_ms": 3_600_000})
    return Record(TICKS, 0, offset, b"0", value)


async def test_commands_of_an_event_carry_its_received_at_and_a_ticks_do_not() -> None:
    """The dispatcher's event-to-outcome latency starts at ingest's ``received_at``,
    carried in a header; a timer's command has no event to measure from."""
    failed = event("pay-1", "payment.failed", T0 + 5, {
        "payment_id": "p1", "product": "pro", "amount_minor": 100, "currency": "EUR"})
    out = MemoryOutput()
    await evaluator().process([record(BILLING, 0, failed)], out)
    assert out.command_headers == [[("signalbox-received-at", str(T0 + 5).encode())]]
    assert received_at_of(out.command_headers[0]) == T0 + 5

    ev, out = evaluator(NO_LOGIN), MemoryOutput()
    await ev.process([record(USAGE, 0, event("l", "user.logged_in", T0, {"user_id": None}))],
                     out)
    await ev.process([tick_record(1, T0 + 8 * DAY)], out)
    assert len(out.commands) == 1 and out.command_headers == [[]]
