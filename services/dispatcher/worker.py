"""The delivery loop: every command ends in exactly one recorded outcome.

One consumer (one group, range assignment) reads ``actions.commands`` and the
retry tiers ``actions.retry.*``: all of them have the same partition count and a
command keeps its partition number everywhere, so the process that owns
partition *p* owns the ledger of *p*, its commands and their retries.

Commands are handled concurrently (bounded per channel); for each one:

1. its ledger state decides: already terminal → skip (a copy being handled right
   now is waited for first: its retry copy may be read before its transaction is
   acknowledged here); left ``attempting`` by a process that died → ``in_doubt``
   (never resent automatically; an operator decides from the dead-letter topic);
2. the policy, decided without I/O by :mod:`signalbox.dispatcher.delivery` and
   carried out here, may end it without a call
   (opt-out, frequency cap → ``suppressed``; deadline → ``failed``) or move it
   to a retry tier without a call (quiet hours, open circuit breaker, busy
   channel);
3. otherwise ``attempting`` is written and acknowledged (acks=all, idempotent
   producer) *before* the channel is touched, and the call is bounded by the
   channel's timeout; a transient failure (nothing sent) retracts it at once;
4. one transaction (:mod:`signalbox.dispatcher.commit`) writes the terminal
   ledger entry, the result, the dead letter for failures — or, for a retry,
   the command's copy in a retry tier — together with consumer offsets that
   never pass a command still in flight (the records are built, without I/O, by
   :mod:`signalbox.dispatcher.outcome_records`).

A retry tier's record is handled once it is due; until then its partition is
paused (decided, without I/O, by :mod:`signalbox.dispatcher.flow_control`; see
:mod:`signalbox.dispatcher.policy.retry`), so waiting costs nothing and never
holds up ``actions.commands``.
"""

from __future__ import annotations

import asyncio
import random
import time
import traceback
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.abc import ConsumerRebalanceListener
from aiokafka.coordinator.assignors.range import RangePartitionAssignor

from signalbox.common import schemas
from signalbox.common.action_command import Command, CommandError, command_from_record
from signalbox.common.brokerwatch import BrokerWatch
from signalbox.common.clock import Clock, SystemClock
from signalbox.common.codec import AvroCodec
from signalbox.common.deadletter import DEFAULT_MAX_MESSAGE_BYTES, topic_max_message_bytes
from signalbox.common.errors import SignalboxError
from signalbox.common.kafka import aiokafka_options
from signalbox.common.lag import LagCollector
from signalbox.common.metrics import received_at_of
from signalbox.common.settings import KafkaSettings
from signalbox.common.topics import (
    ACTIONS_COMMANDS,
    ACTIONS_CONTACTS,
    ACTIONS_DLQ,
    ACTIONS_LEDGER,
    ACTIONS_RESULTS,
    ACTIONS_RETRY,
)
from signalbox.dispatcher import metrics
from signalbox.dispatcher.channels.base import Channel
from signalbox.dispatcher.channels.recipients import recipients_of
from signalbox.dispatcher.commit import Committer, OffsetTracker, Write
from signalbox.dispatcher.contacts import Contacts, contact_key
from signalbox.dispatcher.delivery import (
    Attempt,
    Defer,
    Result,
    Retry,
    attempt_outcome,
    decide,
    deferred,
    resumed,
    settled,
    unexpected_outcome,
)
from signalbox.dispatcher.flow_control import FlowControl, Hold
from signalbox.dispatcher.ledger import KafkaLedger, Ledger
from signalbox.dispatcher.outcome_records import (
    DEAD_LETTERED,
    OutcomeRecords,
    Records,
    bounded_detail,
    ledger_key,
)
from signalbox.dispatcher.outcomes import ATTEMPTING, Delivery, Outcome
from signalbox.dispatcher.policy.breaker import Breakers
from signalbox.dispatcher.policy.rate_limits import ChannelLimiter
from signalbox.dispatcher.policy.retry import DeliveryState
from signalbox.dispatcher.policy.rules import ChannelPolicy, PolicyConfig
from signalbox.dispatcher.privacy import Privacy
from signalbox.dispatcher.suppressions import Suppressions

log = structlog.get_logger(__name__)
_TERMINAL = {o.value for o in Outcome}
TRANSACTION_TIMEOUT_MS = 10_000
#: Commands are keyed by customer id; a longer key is not one.
MAX_KEY_BYTES = 1024
#: The outcome producer's largest record (aiokafka's default, stated: dead letters fit it).
MAX_REQUEST_BYTES = DEFAULT_MAX_MESSAGE_BYTES


class LedgerWriteFailed(SignalboxError):
    """An ``actions.ledger`` write failed: the process stops (the next owner resumes)."""

    what = "ledger write"


@dataclass
class _Work:
    tp: TopicPartition
    record: ConsumerRecord[bytes, bytes]
    state: DeliveryState
    hop: bool = False  # waiting longer than its tier holds: re-queue without looking
    poison: str = ""  # why its delivery headers cannot be trusted: fail it, do not deliver
    attempted: bool = False  # 'attempting' is recorded: the channel may have acted
    command: Command | None = None
    ledger_key: str = ""
    extra: list[Write] = field(default_factory=list)


class _View:
    """The dispatcher's state as :func:`~signalbox.dispatcher.delivery.decide` reads it."""

    def __init__(self, dispatcher: Dispatcher, partition: int) -> None:
        self._d, self._partition = dispatcher, partition

    def has_driver(self, channel: str) -> bool:
        return channel in self._d.channels

    def recipients(self, command: Command) -> tuple[str, ...]:
        return self._d.channels[command.channel].recipients(command)

    def opted_out(self, command: Command, recipients: tuple[str, ...]) -> str | None:
        return self._d.suppressions.reason(command.channel, command.customer_id, recipients)

    def recent_contacts(self, command: Command) -> Sequence[int]:
        return self._d.contacts.recent(self._partition, command.channel, command.customer_id)

    def channel_busy(self, channel: str) -> bool:
        return self._d.limiters[channel].full

    def endpoint(self, command: Command) -> str:
        return self._d.channels[command.channel].endpoint(command)

    def breaker_wait_s(self, endpoint: str, policy: ChannelPolicy) -> float:
        return self._d.breakers.peek_seconds(endpoint, policy.breaker_failures,
                                             policy.breaker_cooldown_seconds)


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, dispatcher: Dispatcher) -> None:
        self._d = dispatcher

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        async with self._d.lock:  # no new work is started meanwhile
            parts = {tp.partition for tp in revoked}
            await self._d.drain(parts)  # in-flight commands finish and commit first
            self._d.loaded.difference_update(parts)
            self._d.ledger.forget(parts)
            self._d.contacts.forget(parts)
            self._d.offsets.forget(revoked)
        metrics.ASSIGNED.set(0)
        self._d.lag.keep_only(())

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        # aiokafka may already fetch for these partitions while this runs: the loop
        # holds their records back until the ledger is restored (see Dispatcher.loaded).
        parts = {tp.partition for tp in assigned}
        await self._d.ledger.load(parts)
        await self._d.contacts.load(parts)
        self._d.loaded.update(parts)
        metrics.ASSIGNED.set(len(parts))
        self._d.assigned.set()
        log.info("partitions_assigned", partitions=sorted(parts))


class Dispatcher:
    """``kafka``: the cluster and topic names; ``instance_id`` names this process's
    transactional producer (``SIGNALBOX_INSTANCE_ID``); ``policy``: built on the
    dispatcher's section and its providers file (:func:`signalbox.dispatcher.main.build`)."""

    def __init__(
        self,
        kafka: KafkaSettings,
        instance_id: str,
        channels: Mapping[str, Channel],
        codec: AvroCodec,
        policy: PolicyConfig,
        ledger: Ledger | None = None,
        suppressions: Suppressions | None = None,
        clock: Clock | None = None,
        recheck_s: float = 5.0,
        max_in_flight: int = 1000,
        privacy: Privacy | None = None,
    ) -> None:
        k = kafka
        self.kafka, self.instance_id = kafka, instance_id
        self.codec = codec
        self.channels = dict(channels)
        self.policy = policy
        self.clock: Clock = clock or SystemClock()
        self.suppressions = suppressions or Suppressions()
        self.privacy = privacy or Privacy()
        self.topics = {n: k.topic(n) for n in
                       (ACTIONS_COMMANDS, ACTIONS_RESULTS, ACTIONS_LEDGER, ACTIONS_DLQ,
                        ACTIONS_CONTACTS)}
        self.retry_topics = [k.topic(n) for n in ACTIONS_RETRY]
        self.ledger: Ledger = ledger or KafkaLedger(
            k, self.topics[ACTIONS_LEDGER], self.codec)
        self.contacts = Contacts(k, self.topics[ACTIONS_CONTACTS], self.codec)
        self.breakers = Breakers(self.clock)
        self.limiters = {name: ChannelLimiter(self.policy.channel(name), self.clock)
                         for name in self.channels}
        self.offsets = OffsetTracker()
        self.lock = asyncio.Lock()
        self.assigned = asyncio.Event()
        #: Partitions whose ledger is restored; only their commands may be handled.
        self.loaded: set[int] = set()
        self.flow = FlowControl(self.clock, self.retry_topics, self.policy, recheck_s,
                                max_in_flight)
        self._rng = random.Random()
        self._tasks: dict[asyncio.Task[None], int] = {}  # task → partition
        #: Ledger keys being handled now, each done once its handling is committed.
        self._busy: dict[str, asyncio.Future[None]] = {}
        self._resume_at: dict[TopicPartition, asyncio.TimerHandle] = {}
        self._fatal: BaseException | None = None
        self._stop = asyncio.Event()
        self._producer: AIOKafkaProducer | None = None  # transactional: outcomes
        self._marker: AIOKafkaProducer | None = None  # plain: 'attempting' records
        self._consumer: AIOKafkaConsumer | None = None
        self._committer: Committer | None = None
        #: Whether the broker answers (readiness); probed while the dispatcher runs.
        self.broker = BrokerWatch(self.topics[ACTIONS_COMMANDS])
        self.lag = LagCollector(k, k.dispatcher_group_id, self._owned)
        metrics.initialise_series(self.channels)
        self.records = OutcomeRecords(self.codec, self.topics[ACTIONS_LEDGER],
                                      self.topics[ACTIONS_RESULTS], self.topics[ACTIONS_DLQ],
                                      tuple(self.retry_topics))

    @property
    def dlq_max_bytes(self) -> int:
        """The largest dead letter the producer and ``actions.dlq`` take (read at start)."""
        return self.records.dlq_max_bytes

    # -- lifecycle -------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        self._stop = stop
        k = self.kafka
        self.records = replace(self.records, dlq_max_bytes=min(
            MAX_REQUEST_BYTES, await asyncio.to_thread(
                topic_max_message_bytes, k, self.topics[ACTIONS_DLQ])))
        self._producer = AIOKafkaProducer(
            **aiokafka_options(k),
            transactional_id=f"{k.dispatcher_group_id}-{self.instance_id}",
            enable_idempotence=True,
            acks="all",
            # A transaction left open by a dead process blocks the next owner's ledger
            # load (see ledger.read_partitions) until the broker aborts it.
            transaction_timeout_ms=TRANSACTION_TIMEOUT_MS,
            max_request_size=MAX_REQUEST_BYTES,
        )
        self._consumer = consumer = AIOKafkaConsumer(
            **aiokafka_options(k),
            group_id=k.dispatcher_group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            isolation_level="read_committed",
            max_poll_records=200,
            # Same partition numbers of every topic to one member: commands, their
            # retries and their ledger stay together.
            partition_assignment_strategy=(RangePartitionAssignor,),
        )
        self._marker = marker = AIOKafkaProducer(
            **aiokafka_options(k), enable_idempotence=True, acks="all")
        try:  # every client is closed however start-up ends (stop() is safe on any)
            await self._producer.start()
            await marker.start()
            await self._serve(stop, consumer, marker)
        finally:
            await consumer.stop()
            await marker.stop()
            await self._producer.stop()
            log.info("dispatcher_stopped")

    async def _serve(self, stop: asyncio.Event, consumer: AIOKafkaConsumer,
                     marker: AIOKafkaProducer) -> None:
        """With the producers started: the committer, the followers and the loop."""
        k = self.kafka
        self._committer = Committer(self._producer, k.dispatcher_group_id,
                                    self.offsets)
        committing = asyncio.create_task(self._committer.run())
        committing.add_done_callback(self._on_committer_done)
        following = asyncio.create_task(self.suppressions.follow(stop))
        watching = asyncio.create_task(self.broker.run(marker.client, stop))
        lagging = asyncio.create_task(self.lag.run(stop))
        try:
            await self._until_loaded(following)
            consumer.subscribe([self.topics[ACTIONS_COMMANDS], *self.retry_topics],
                               listener=_Rebalance(self))
            await consumer.start()
            try:
                await self._loop()
                await self.drain(None)
            finally:
                for handle in self._resume_at.values():
                    handle.cancel()
                await consumer.stop()
        finally:
            committing.cancel()
            watching.cancel()
            lagging.cancel()
            await asyncio.gather(committing, watching, lagging, return_exceptions=True)
            await asyncio.gather(following, return_exceptions=True)
            for channel in self.channels.values():
                await channel.aclose()
        if self._fatal is not None:
            raise self._fatal

    def _on_committer_done(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            self._fail(task.exception())

    def _fail(self, exc: BaseException | None) -> None:
        log.error("dispatcher_failed", error=repr(exc))
        if self._fatal is None:
            self._fatal = exc
        self._stop.set()

    async def _until_loaded(self, following: asyncio.Task[None]) -> None:
        """No command is handled before every opt-out is known."""
        loaded = asyncio.ensure_future(self.suppressions.loaded.wait())
        await asyncio.wait({loaded, following}, return_when=asyncio.FIRST_COMPLETED)
        if not loaded.done():
            loaded.cancel()
            following.result()  # raises what stopped it
            raise RuntimeError("the suppression list stopped before it was read")

    def _owned(self) -> set[TopicPartition]:
        """Partitions whose lag this process exports: assigned, ledger restored."""
        if self._consumer is None:
            return set()
        return {tp for tp in self._consumer.assignment() if tp.partition in self.loaded}

    async def ready(self) -> str | None:
        if self._marker is None:
            return "not started"
        lost = self.broker.problem()
        if lost is not None:
            return lost
        if not self.suppressions.loaded.is_set():
            return "suppression list not yet read"
        if self._consumer is None or not self.assigned.is_set():
            return "not yet assigned partitions"
        return None

    async def drain(self, partitions: set[int] | None) -> None:
        """Wait for the commands in flight (of ``partitions``, or all) to finish and commit."""
        tasks = [t for t, p in self._tasks.items() if partitions is None or p in partitions]
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _loop(self) -> None:
        assert self._consumer is not None
        stop_wait = asyncio.ensure_future(self._stop.wait())
        try:
            while not self._stop.is_set():
                fetch = asyncio.ensure_future(self._consumer.getmany(timeout_ms=1000))
                await asyncio.wait({fetch, stop_wait}, return_when=asyncio.FIRST_COMPLETED)
                if not fetch.done():
                    fetch.cancel()
                    break
                batch = fetch.result()
                async with self.lock:
                    for tp, records in batch.items():
                        self._take(tp, records)
                    while self.flow.full(len(self._tasks)) and not self._stop.is_set():
                        await asyncio.wait(list(self._tasks),
                                           return_when=asyncio.FIRST_COMPLETED)
        finally:
            stop_wait.cancel()

    def _take(self, tp: TopicPartition, records: list[ConsumerRecord[bytes, bytes]]) -> None:
        """Start work for fetched records, up to the first retry record not yet due."""
        assert self._consumer is not None
        if tp.partition not in self.loaded:
            # Fetched before its ledger was restored: read it again later.
            if tp in self._consumer.assignment():
                self._consumer.seek(tp, records[0].offset)
            return
        for record in records:
            if tp not in self._consumer.assignment():
                return
            look = self.flow.look(tp.topic, record.timestamp, record.headers)
            if isinstance(look, Hold):
                self._pause(tp, record.offset, look.resume_in_s)
                return
            self.offsets.start(tp, record.offset)
            work = _Work(tp, record, look.state, hop=look.hop, poison=look.poison)
            task = asyncio.create_task(self._run(work))
            self._tasks[task] = tp.partition
            task.add_done_callback(self._task_done)
            metrics.IN_FLIGHT.set(len(self._tasks))

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.pop(task, None)
        metrics.IN_FLIGHT.set(len(self._tasks))

    def _pause(self, tp: TopicPartition, offset: int, delay_s: float) -> None:
        """Hold ``tp`` at ``offset`` (not yet ripe): fetched again after ``delay_s``."""
        assert self._consumer is not None
        self._consumer.seek(tp, offset)
        self._consumer.pause(tp)
        old = self._resume_at.pop(tp, None)
        if old is not None:
            old.cancel()
        self._resume_at[tp] = asyncio.get_running_loop().call_later(delay_s, self._resume, tp)

    def _resume(self, tp: TopicPartition) -> None:
        assert self._consumer is not None
        self._resume_at.pop(tp, None)
        if tp in self._consumer.assignment():
            self._consumer.resume(tp)

    # -- one command -----------------------------------------------------------

    async def _run(self, work: _Work) -> None:
        try:
            writes = await self._handle(work)
            assert self._committer is not None
            await self._committer.commit(work.tp, work.record.offset, writes)
        except Exception as exc:  # a bug or a broken producer: stop, the next owner resumes
            log.exception("command_handling_failed", offset=work.record.offset)
            self._fail(exc)
            return
        finally:
            done = self._busy.pop(work.ledger_key, None) if work.ledger_key else None
            if done is not None and not done.done():
                done.set_result(None)

    async def _handle(self, work: _Work) -> list[Write]:
        tp, record = work.tp, work.record
        try:
            if len(record.key or b"") > MAX_KEY_BYTES:
                raise CommandError(f"a Kafka key of {len(record.key or b'')} bytes; at most "
                                   f"{MAX_KEY_BYTES} are accepted (it is a customer id)")
            command = command_from_record(self.codec.decode(schemas.ACTION_COMMAND, record.value))
        except Exception as exc:  # DecodeError, or a decoded record the model cannot hold
            reason = exc.why if isinstance(exc, SignalboxError) else str(exc)  # + error_type
            if work.poison:
                reason = f"{work.poison}; {reason}"
            metrics.UNREADABLE.inc()
            log.warning("command_unreadable", topic=tp.topic, partition=tp.partition,
                        offset=record.offset, reason=reason)
            return self._written(work, self.records.dead_letter(
                record, type(exc).__name__, reason, self.clock.now_ms()))
        key = ledger_key(command.command_id, work.state.replay)
        work.command = command
        with structlog.contextvars.bound_contextvars(
            command_id=command.command_id, customer_id=command.customer_id,
            automation_id=command.automation_id,
        ):
            # Another copy in flight (its retry copy can be read before its own transaction
            # is acknowledged here): wait for its outcome, then decide on the ledger.
            while key in self._busy:
                await asyncio.shield(self._busy[key])
            state = self.ledger.get(tp.partition, key)
            if state in _TERMINAL:
                metrics.DUPLICATES.inc()
                log.info("command_already_handled", state=state)
                return []
            self._busy[key] = asyncio.get_running_loop().create_future()
            work.ledger_key = key
            step = resumed(state, work.state, work.poison, tp.topic, work.hop,
                           self.clock.now_ms())
            if step is None:
                try:
                    step = await self._deliver(tp.partition, command, work)
                except LedgerWriteFailed:
                    raise  # the broker's problem, not this command's: stop, the next owner resumes
                except Exception as exc:  # a bug this command runs into: never crash-loop on it
                    step = self._unexpected(command, work, exc)
            # Drivers and providers may quote the recipient: what is kept shows it masked.
            if isinstance(step, Retry):
                step = Retry(replace(step.state, reason=self._private(command,
                                                                      step.state.reason)),
                             step.wait_s)
                metrics.RETRIES.labels(command.channel).inc()
                return [self.records.retry(record, step, self.clock.now_ms())]
            step = replace(step, detail=bounded_detail(self._private(command, step.detail)))
            writes = self._written(work, self.records.outcome(
                record, key, command, step, work.extra, self.clock.now_ms()))
            self.ledger.put(tp.partition, key, step.outcome.value)
            metrics.OUTCOMES.labels(command.channel, step.outcome.value).inc()
            received = received_at_of(work.record.headers)
            if received is not None:
                metrics.EVENT_TO_OUTCOME.labels(command.channel, step.outcome.value).observe(
                    max(0.0, time.time() - received / 1000))
            # A failure is what an operator acts on (it is dead-lettered): not info.
            (log.warning if step.outcome in DEAD_LETTERED else log.info)(
                "command_" + step.outcome.value, channel=command.channel,
                detail=step.detail, attempts=step.attempts)
            return writes

    async def _deliver(self, partition: int, command: Command, work: _Work) -> Result | Retry:
        """Carry out what :func:`~signalbox.dispatcher.delivery.decide` returns."""
        state = work.state
        decision = decide(command, state, self.clock.now_ms(), self.policy,
                          _View(self, partition), self._rng)
        if isinstance(decision, Defer):
            return self._wait(command, state, decision)
        if not isinstance(decision, Attempt):
            return settled(decision, state)
        pol = self.policy.channel(command.channel)
        # Decided on a peek: the breaker's half-open trial is this command's.
        self.breakers.claim(decision.endpoint, pol.breaker_failures)
        channel = self.channels[command.channel]
        capped = decision.reserve_contact
        if capped:
            self.contacts.reserve(command.channel, command.customer_id)
        try:
            async with self.limiters[command.channel].slot():
                if self._stop.is_set():  # shutting down: hand waiting commands on, unattempted
                    return self._wait(command, state,
                                      Defer(0, "stopping", "dispatcher stopping"))
                result = await self._attempt(channel, command, work, decision.endpoint)
        finally:
            if capped:
                self.contacts.release(command.channel, command.customer_id)
        if capped and isinstance(result, Result) and result.outcome is Outcome.DELIVERED:
            cap = self.policy.frequency_caps[command.channel]
            at = self.clock.now_ms()
            value = self.contacts.delivered(partition, command.channel, command.customer_id,
                                            at, at - cap.per_ms)
            work.extra.append(Write(self.topics[ACTIONS_CONTACTS],
                                    contact_key(command.channel, command.customer_id), value,
                                    partition))
        return result

    async def _attempt(self, channel: Channel, command: Command, work: _Work,
                       endpoint: str) -> Result | Retry:
        pol = self.policy.channel(command.channel)
        state = work.state
        first = state.first_attempt_ms or self.clock.now_ms()
        await self._mark_attempting(work.tp.partition, work.ledger_key, state.attempts + 1)
        work.attempted = True
        started = time.perf_counter()
        sent: Delivery | Exception
        try:
            async with asyncio.timeout(pol.timeout_seconds):
                sent = await channel.send(command)
        except Exception as exc:  # mapped to an outcome below; a driver bug never crash-loops
            sent = exc
        finally:
            metrics.SEND_SECONDS.labels(channel.name).observe(time.perf_counter() - started)
        out = attempt_outcome(sent, state, self.clock.now_ms(), first, pol, endpoint,
                              channel.name, self._rng)
        metrics.ATTEMPTS.labels(channel.name, out.kind).inc()
        failures, cooldown = pol.breaker_failures, pol.breaker_cooldown_seconds
        if out.breaker == "succeeded":
            self.breakers.succeeded(endpoint)
        elif self.breakers.failed(endpoint, failures, cooldown) and out.kind == "transient":
            metrics.BREAKER_OPENED.labels(channel.name).inc()
            log.warning("circuit_opened", endpoint=endpoint, cooldown_s=cooldown)
        if out.kind == "error":
            assert isinstance(sent, Exception)
            # No traceback: its message may quote the recipient. Where it was raised instead.
            origin = traceback.extract_tb(sent.__traceback__)[-1]
            log.error("channel_error", endpoint=endpoint, error_type=type(sent).__name__,
                      error=self._private(command, str(sent)),
                      raised_at=f"{origin.filename}:{origin.lineno}")
        if isinstance(out.step, Retry):
            log.warning("attempt_failed", error=self._private(command, str(sent)),
                        attempt=out.step.state.attempts, retry_in_s=round(out.step.wait_s, 3))
            # Nothing was sent: retract the attempt at once, so a crash before the retry
            # is committed leaves the command cleanly unattempted, not in doubt.
            await self._retract(work.tp.partition, work.ledger_key)
            work.attempted = False
        return out.step

    def _unexpected(self, command: Command, work: _Work, exc: Exception) -> Result:
        """The outcome of a command whose handling raised: in doubt once attempted."""
        origin = traceback.extract_tb(exc.__traceback__)[-1]
        error = self._private(command, f"{type(exc).__name__}: {exc}")[:300]
        log.error("command_handling_error", error=error,
                  raised_at=f"{origin.filename}:{origin.lineno}")
        return unexpected_outcome(error, work.attempted, work.state)

    def _private(self, command: Command, text: str) -> str:
        """``text`` with the command's recipients masked (unless configured otherwise)."""
        return self.privacy.redact(text, command.channel, recipients_of(command))

    def _wait(self, command: Command, state: DeliveryState, defer: Defer) -> Retry:
        """A retry without an attempt (quiet hours, open breaker, busy channel, stopping)."""
        metrics.DEFERRED.labels(command.channel, defer.kind).inc()
        log.info("command_deferred", reason=defer.reason, wait_s=round(defer.wait_s, 3))
        return deferred(defer, state, self.clock.now_ms())

    # -- Kafka writes ----------------------------------------------------------

    async def _retract(self, partition: int, key: str) -> None:
        """Withdraw an attempt that did nothing (tombstone), durable before returning."""
        assert self._marker is not None
        try:
            sent = await self._marker.send(self.topics[ACTIONS_LEDGER], key=key.encode(),
                                           partition=partition, value=None)
            await sent
        except Exception as exc:
            raise LedgerWriteFailed(f"withdrawing the attempt of {key}: {exc!r}") from exc
        self.ledger.discard(partition, key)

    async def _mark_attempting(self, partition: int, key: str, attempt: int) -> None:
        """Record an attempt, durable before the channel is touched."""
        assert self._marker is not None
        try:
            sent = await self._marker.send(
                self.topics[ACTIONS_LEDGER], key=key.encode(), partition=partition,
                value=self.records.ledger_value(key, ATTEMPTING, attempt, "",
                                                self.clock.now_ms()))
            await sent
        except Exception as exc:
            raise LedgerWriteFailed(f"recording the attempt of {key}: {exc!r}") from exc
        self.ledger.put(partition, key, ATTEMPTING)

    def _written(self, work: _Work, records: Records) -> list[Write]:
        """``records``' writes, counting and logging a dead letter cut to fit."""
        if records.truncated:
            r = work.record
            metrics.TRUNCATED_DEAD_LETTERS.inc()
            log.warning("dead_letter_truncated", offset=r.offset,
                        original_bytes=len(r.value or b""), limit=self.dlq_max_bytes)
        return records.writes
