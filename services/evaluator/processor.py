"""One batch of inputs through the engine: decode → order → evaluate → send → persist.

No Faust here: the wiring (:mod:`signalbox.evaluator.faust_app`) hands over raw records and
an :class:`Output` to write to, so this is the whole of the evaluator's work per
record, and what its benchmarks and tests measure.

Per batch, on each partition:

1. **Decode** every record; one that cannot be read, or breaks the contract (key ≠
   customer_id), is dead-lettered with its bytes and the reason.
2. **Order**: a customer's billing events, usage events and ticks arrive on three
   topics of one partition number; they are evaluated by time — an event's
   ``received_at`` (ingest's clock, as the engine uses), a tick's ``at`` — ties
   broken tick first (a timer due at *t* fires before an event at *t*, as in
   ``simulate``), then ``occurred_at``, then topic and offset (so the events of one
   request keep the request's order). The batch is the bound of the merge: records
   the consumer has fetched together (up to ``take(max, within)`` of the wiring)
   are ordered; a record fetched later is evaluated later.
3. **Evaluate** in that order with decoded states kept in memory
   (:class:`~signalbox.evaluator.store.StateStore`).
4. **Send** every command, approval request, approval settlement and dead letter of
   the batch, and await their acknowledgements once.
5. **Persist**: each changed customer's newest state to the changelog once, awaited,
   then to the local store; then its next timer.

A crash anywhere before the wiring acknowledges the batch redelivers it: states not
yet stored issue the same commands with the same ids again (the dispatcher drops
them), states already stored make the engine see duplicates and issue nothing.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import structlog

from signalbox.common import schemas
from signalbox.common.action_command import command_to_record
from signalbox.common.codec import AvroCodec, DecodeError, EncodeError
from signalbox.common.deadletter import (
    DEFAULT_MAX_MESSAGE_BYTES,
    Letter,
    dead_letter,
    fit,
    record_bytes,
)
from signalbox.common.errors import SignalboxError
from signalbox.common.metrics import received_at_header
from signalbox.evaluator import metrics
from signalbox.evaluator.approvals import DECIDED_TYPE
from signalbox.evaluator.engine import (
    ApprovalOutcome,
    ApprovalRequest,
    AutomationSet,
    Command,
    Decision,
    Event,
    Tick,
    evaluate,
)
from signalbox.evaluator.engine_records import event_from_record, tick_from_record
from signalbox.evaluator.partition_timers import Timers, due_of, timers_digest
from signalbox.evaluator.store import INT_MAX, StateStore

log = structlog.get_logger(__name__)
SERVICE = "evaluator"
#: Ticks a customer may fail on before it is dead-lettered and its timer dropped (until
#: its next event re-arms it).
MAX_TICK_FAILURES = 3
#: ``source_topic`` of a dead letter holding a state that could not be stored.
STATE_RECORDS = "customer-state"


class InputRejected(SignalboxError, ValueError):
    """A decodable record that breaks a rule of the contract (e.g. key ≠ customer_id)."""

    what = "input record"


@dataclass(frozen=True)
class Limits:
    """``max.message.bytes`` of the topics the evaluator writes, as the broker applies
    them: a record over its topic's limit is dead-lettered, never sent (the broker
    would refuse it and the batch, retried after every restart, with it)."""

    commands: int = DEFAULT_MAX_MESSAGE_BYTES
    changelog: int = DEFAULT_MAX_MESSAGE_BYTES
    dead_letters: int = DEFAULT_MAX_MESSAGE_BYTES


#: Kafka's defaults, for tools that build the app without a broker to ask.
DEFAULT_LIMITS = Limits()


@dataclass(frozen=True, slots=True)
class Record:
    """One consumed record, as the wiring hands it over."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


#: ``(approval_id, decision) -> None`` when the approvals topic holds that decision,
#: else why not (:meth:`ApprovalsService.verify`).
Verify = Callable[[str, str], Awaitable[str | None]]


class Output(Protocol):
    """Where a batch's records go. Each call queues one record and returns its
    acknowledgement to await later (the changelog's resolves to the record's metadata,
    with ``.offset``), so a whole batch is in flight at once."""

    async def command(self, key: bytes, value: bytes, partition: int,
                      headers: Sequence[tuple[str, bytes]] = ()) -> Awaitable[Any]: ...

    async def changelog(self, key: bytes, value: bytes, partition: int) -> Awaitable[Any]: ...

    async def dead_letter(self, letter: Letter, partition: int) -> Awaitable[Any]: ...

    async def approval(self, request: ApprovalRequest,
                       partition: int) -> Awaitable[Any] | None: ...

    async def settled(self, outcome: ApprovalOutcome,
                      partition: int) -> Awaitable[Any] | None: ...


class Evaluator:
    """The evaluator's per-batch work; one instance per worker."""

    def __init__(self, codec: AvroCodec, states: StateStore, timers: Timers,
                 automations: Callable[[], AutomationSet], ticks_topic: str,
                 topic_rank: dict[str, int], limits: Limits = DEFAULT_LIMITS,
                 verify_decision: Verify | None = None) -> None:
        self.codec = codec
        self.states = states
        self.timers = timers
        self._automations = automations
        self._ticks_topic = ticks_topic
        self._rank = topic_rank
        self._tick_failures: dict[str, int] = {}
        self.limits = limits
        self._verify = verify_decision
        self._digested: tuple[AutomationSet | None, int] = (None, 0)

    # -- 1. decode ----------------------------------------------------------------------

    def decode(self, record: Record) -> Event | Tick:
        if record.topic == self._ticks_topic:
            return tick_from_record(self.codec.decode(schemas.TICK, record.value,
                                                        plain_times=True))
        event = event_from_record(self.codec.decode(schemas.EVENT, record.value,
                                                          plain_times=True))
        key = record.key.decode("utf-8", "replace") if record.key is not None else None
        if key != event.customer_id:
            raise InputRejected(
                f"Kafka key {key!r} is not the customer_id {event.customer_id!r}: "
                "the record would land on another customer's partition")
        return event

    async def _letter(self, record: Record, error_type: str, reason: str, out: Output,
                      key: bytes | None = None, value: bytes | None = None
                      ) -> Awaitable[Any]:
        """Dead-letter ``record`` (or ``value`` in its place: a command or state it led
        to), cut to the dead-letter topic's limit if need be (never refused)."""
        metrics.DEAD_LETTERS.labels(record.topic, error_type).inc()
        log.warning("input_dead_lettered", topic=record.topic, partition=record.partition,
                    offset=record.offset, error=error_type, reason=reason[:500])
        letter = dead_letter(service=SERVICE, topic=record.topic, partition=record.partition,
                             offset=record.offset, key=key if key is not None else record.key,
                             value=value if value is not None else record.value,
                             error_type=error_type, reason=reason)
        return await out.dead_letter(fit(letter, self._encode_letter, self.limits.dead_letters),
                                     record.partition)

    def _encode_letter(self, letter: Mapping[str, Any]) -> bytes:
        return self.codec.encode(schemas.DEAD_LETTER, letter)

    # -- 2. order -----------------------------------------------------------------------

    async def _ordered(self, batch: Sequence[Record], out: Output,
                       acks: list[Awaitable[Any]]) -> list[tuple[Record, Event | Tick]]:
        items: list[tuple[tuple[int, int, int, int, int, int], Record, Event | Tick]] = []
        rank = self._rank
        for record in batch:
            try:
                item = self.decode(record)
            except (DecodeError, InputRejected) as exc:
                acks.append(await self._letter(record, type(exc).__name__, exc.why, out))
                continue
            if isinstance(item, Tick):
                order = (record.partition, item.at, 0, 0, rank.get(record.topic, 9), record.offset)
            else:
                order = (record.partition, item.received_at, 1, item.occurred_at,
                         rank.get(record.topic, 9), record.offset)
            items.append((order, record, item))
        items.sort(key=lambda i: i[0])
        return [(record, item) for _, record, item in items]

    # -- 3-5. evaluate, send, persist ---------------------------------------------------

    async def process(self, batch: Sequence[Record], out: Output) -> None:
        started = time.perf_counter()
        acks: list[Awaitable[Any]] = []
        automations = self._automations()  # one set for the whole batch
        if automations is not self._digested[0]:
            self._digested = (automations, timers_digest(automations))
        kinds: Counter[tuple[str, str]] = Counter()
        commands: Counter[str] = Counter()
        try:
            for record, item in await self._ordered(batch, out, acks):
                if isinstance(item, Tick):
                    kinds["tick", "tick"] += 1
                    await self._tick(item, record, automations, out, acks, commands)
                    continue
                kinds["event", item.type] += 1
                if item.type == DECIDED_TYPE and self._verify is not None:
                    problem = await self._verify(str(item.data.get("approval_id")),
                                                 str(item.data.get("decision")))
                    if problem is not None:
                        acks.append(await self._letter(record, "UnverifiedDecision", problem,
                                                       out))
                        continue
                try:
                    decision = self._evaluate(item.customer_id, item, record.partition,
                                              automations)
                except Exception as exc:  # an engine bug must not stall the partition
                    log.exception("input_failed", topic=record.topic, offset=record.offset)
                    acks.append(await self._letter(record, type(exc).__name__, str(exc), out))
                    continue
                await self._emit(item.customer_id, record, decision, out, acks, commands,
                                 item.received_at)
            for ack in acks:  # commands, approvals and dead letters before any state
                await ack
            await self._persist(out, automations)
        except BaseException:
            for customer_id, partition in self.states.abandon():  # due again: tried again
                self._renote(customer_id, partition, automations)
            raise
        for (kind, type_), n in kinds.items():
            metrics.INPUTS.labels(kind, type_).inc(n)
        for automation_id, n in commands.items():
            metrics.COMMANDS.labels(automation_id).inc(n)
        metrics.BATCH.observe(len(batch))
        metrics.LATENCY.observe(time.perf_counter() - started)

    def _evaluate(self, customer_id: str, item: Event | Tick, partition: int,
                  automations: AutomationSet) -> Decision:
        state = self.states.get(customer_id, partition)
        decision = evaluate(state, item, automations)
        if decision.duplicate:
            metrics.DUPLICATES.inc()
        for collection, n in decision.dropped.items():
            metrics.STATE_ENTRIES_DROPPED.labels(collection).inc(n)
        return decision

    async def _emit(self, customer_id: str, record: Record, decision: Decision, out: Output,
                    acks: list[Awaitable[Any]], commands: Counter[str],
                    received_at: int | None = None) -> None:
        """``received_at``: of the event that caused the commands (``None`` for a tick),
        carried in a header for the dispatcher's event-to-outcome latency."""
        if decision.duplicate or decision.state is None:
            return
        key, partition = customer_id.encode("utf-8"), record.partition
        headers = [received_at_header(received_at)] if received_at is not None else []
        for command in decision.commands:
            value = self._command_value(command)
            size = record_bytes(key, value)
            if size > self.limits.commands:
                reason = (f"command {command.command_id} of automation "
                          f"{command.automation_id!r} is {size} bytes, over the commands "
                          f"topic's max.message.bytes {self.limits.commands}: not sent")
                acks.append(await self._letter(record, "CommandTooLarge", reason, out,
                                               key=key, value=value))
                continue
            acks.append(await out.command(key, value, partition, headers))
            commands[command.automation_id] += 1
        for request in decision.approvals:
            ack = await out.approval(request, partition)
            if ack is not None:
                acks.append(ack)
        for outcome in decision.settled:
            metrics.APPROVALS_SETTLED.labels(outcome.status).inc()
            ack = await out.settled(outcome, partition)
            if ack is not None:
                acks.append(ack)
        self.states.stage(customer_id, partition, decision.state)

    def _command_value(self, command: Command) -> bytes:
        """The engine built it: fastavro's validate is skipped (it costs more than the
        write, and far more for a union), the writer's gaps are checked here."""
        record = command_to_record(command)
        if not (0 <= record["automation_version"] <= INT_MAX and
                0 <= record["action_index"] <= INT_MAX):
            raise EncodeError(f"{schemas.ACTION_COMMAND}: automation_version or action_index "
                              "out of the int range")
        return self.codec.encode(schemas.ACTION_COMMAND, record, validate=False)

    async def _tick(self, tick: Tick, record: Record, automations: AutomationSet, out: Output,
                    acks: list[Awaitable[Any]], commands: Counter[str]) -> None:
        partition = record.partition
        metrics.TICK_AT.labels(str(partition)).set(tick.at / 1000)
        if tick.partition != partition:
            log.warning("tick_on_other_partition", tick_partition=tick.partition,
                        partition=partition)
        await self.timers.current()  # not from an index about to be rebuilt
        for customer_id in self.timers.pop_due(partition, tick.at):
            try:
                decision = self._evaluate(customer_id, tick, partition, automations)
            except Exception as exc:  # one customer's failure must not cost the others
                await self._tick_failed(customer_id, record, exc, out, acks, automations)
                continue
            self._tick_failures.pop(customer_id, None)
            await self._emit(customer_id, record, decision, out, acks, commands)
            if not self.states.is_staged(customer_id):  # nothing to store: timer again
                self._renote(customer_id, partition, automations)

    async def _tick_failed(self, customer_id: str, record: Record, exc: Exception, out: Output,
                     acks: list[Awaitable[Any]], automations: AutomationSet) -> None:
        tries = self._tick_failures.get(customer_id, 0) + 1
        log.error("timer_failed", customer_id=customer_id, tries=tries,
                  error=f"{type(exc).__name__}: {exc}"[:500])
        if tries < MAX_TICK_FAILURES:
            self._tick_failures[customer_id] = tries
            self._renote(customer_id, record.partition, automations)  # due again
            return
        self._tick_failures.pop(customer_id, None)
        self.timers.note(customer_id, record.partition, None, self._digested[1])
        reason = (f"customer {customer_id!r} failed on {tries} ticks in a row; its timer is "
                  f"dropped until its next event: {type(exc).__name__}: {exc}")
        acks.append(await self._letter(record, type(exc).__name__, reason, out,
                                       key=customer_id.encode("utf-8")))

    async def _persist(self, out: Output, automations: AutomationSet) -> None:
        digest = self._digested[1]
        rows = []
        for row in self.states.staged(automations, digest):
            size = record_bytes(row.key, row.value)
            if size <= self.limits.changelog:
                rows.append(row)
                continue
            self.states.forget(row.customer_id)
            metrics.STATES_TOO_LARGE.inc()
            reason = (f"the state of customer {row.customer_id!r} is {size} bytes, over the "
                      f"changelog's max.message.bytes {self.limits.changelog}: not stored, "
                      "the customer keeps its last stored state")
            where = Record(STATE_RECORDS, row.partition, -1, row.key, row.value)
            await (await self._letter(where, "StateTooLarge", reason, out))
            self._renote(row.customer_id, row.partition, automations)
        sent = [await out.changelog(row.key, row.value, row.partition) for row in rows]
        offsets: dict[int, int] = {}
        for row, ack in zip(rows, sent, strict=True):
            meta = await ack
            offsets[row.partition] = max(offsets.get(row.partition, -1), meta.offset)
        for row in rows:  # before the local store: a timer ahead of its state is harmless,
            # a state stored (and its changelog offset recorded) without its timer is not
            self.timers.note(row.customer_id, row.partition, row.due, digest)
        self.states.written(rows, offsets)

    def _renote(self, customer_id: str, partition: int, automations: AutomationSet) -> None:
        """Index the customer by its stored state again."""
        state = self.states.get(customer_id, partition)
        self.timers.note(customer_id, partition, due_of(state, automations),
                         self._digested[1])
