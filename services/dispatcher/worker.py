"""The delivery loop: every command ends in exactly one recorded outcome.

For each command, in partition order:

1. its ledger state decides: already terminal → skip (a redelivery); left in
   ``attempting`` by a process that died → ``in_doubt`` (never resent
   automatically; an operator decides from the dead-letter topic);
2. otherwise ``attempting`` is written and acknowledged (acks=all, idempotent
   producer) *before* the channel is touched — durable like a transaction, at a
   tenth of the latency; a transient failure retracts it (tombstone) before
   backing off, so a stop during back-off leaves the command cleanly unattempted;
3. a second transaction writes the terminal ledger entry, the result on
   ``actions.results``, the dead letter for failures, and the consumer offset,
   so the outcome and "done" become visible together or not at all.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.abc import ConsumerRebalanceListener

from signalbox.common import schemas
from signalbox.common.clock import now_ms
from signalbox.common.codec import AvroCodec, DecodeError
from signalbox.common.deadletter import dead_letter
from signalbox.common.kafka import aiokafka_options
from signalbox.common.registry import codec_for
from signalbox.common.settings import Settings
from signalbox.common.topics import ACTIONS_COMMANDS, ACTIONS_DLQ, ACTIONS_LEDGER, ACTIONS_RESULTS
from signalbox.dispatcher import metrics
from signalbox.dispatcher.channels.base import Channel
from signalbox.dispatcher.ledger import KafkaLedger, Ledger
from signalbox.dispatcher.model import (
    ATTEMPTING,
    Command,
    InDoubtError,
    Outcome,
    PermanentError,
    TransientError,
    command_from_record,
)

log = structlog.get_logger(__name__)
SERVICE = "dispatcher"
_TERMINAL = {o.value for o in Outcome}


@dataclass(frozen=True)
class Result:
    outcome: Outcome
    detail: str
    attempts: int
    provider_ref: str | None = None


class _Stopping(Exception):
    """Stop requested while backing off: leave the command for the next owner."""


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, dispatcher: Dispatcher) -> None:
        self._d = dispatcher

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        async with self._d.lock:  # the batch in hand finishes first
            self._d.loaded.difference_update(tp.partition for tp in revoked)
            self._d.ledger.forget(tp.partition for tp in revoked)
        metrics.ASSIGNED.set(0)

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        # aiokafka may already fetch for these partitions while this runs: the loop
        # holds their records back until the ledger is restored (see Dispatcher.loaded).
        await self._d.ledger.load(tp.partition for tp in assigned)
        self._d.loaded.update(tp.partition for tp in assigned)
        metrics.ASSIGNED.set(len(assigned))
        self._d.assigned.set()
        log.info("partitions_assigned", partitions=sorted(tp.partition for tp in assigned))


class Dispatcher:
    def __init__(
        self,
        settings: Settings,
        channels: Mapping[str, Channel],
        ledger: Ledger | None = None,
        codec: AvroCodec | None = None,
    ) -> None:
        k = settings.kafka
        self.settings = settings
        self.codec = codec or codec_for(settings)
        self.channels = dict(channels)
        self.topics = {n: k.topic(n) for n in
                       (ACTIONS_COMMANDS, ACTIONS_RESULTS, ACTIONS_LEDGER, ACTIONS_DLQ)}
        self.ledger: Ledger = ledger or KafkaLedger(
            k, self.topics[ACTIONS_LEDGER], self.codec)
        self.lock = asyncio.Lock()
        self.assigned = asyncio.Event()
        #: Partitions whose ledger is restored; only their commands may be handled.
        self.loaded: set[int] = set()
        self._stop = asyncio.Event()
        self._producer: AIOKafkaProducer | None = None  # transactional: outcomes
        self._marker: AIOKafkaProducer | None = None  # plain: 'attempting' records
        self._consumer: AIOKafkaConsumer | None = None

    # -- lifecycle -------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        self._stop = stop
        k = self.settings.kafka
        self._producer = AIOKafkaProducer(
            **aiokafka_options(k),
            transactional_id=f"{self.settings.dispatcher_group_id}-{self.settings.instance_id}",
            enable_idempotence=True,
            acks="all",
        )
        self._consumer = AIOKafkaConsumer(
            **aiokafka_options(k),
            group_id=self.settings.dispatcher_group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            isolation_level="read_committed",
            max_poll_records=50,
        )
        self._marker = AIOKafkaProducer(
            **aiokafka_options(k), enable_idempotence=True, acks="all")
        await self._producer.start()
        await self._marker.start()
        try:
            self._consumer.subscribe([self.topics[ACTIONS_COMMANDS]], listener=_Rebalance(self))
            await self._consumer.start()
            try:
                await self._loop()
            finally:
                await self._consumer.stop()
        finally:
            await self._marker.stop()
            await self._producer.stop()
            log.info("dispatcher_stopped")

    async def ready(self) -> str | None:
        if self._consumer is None or not self.assigned.is_set():
            return "not yet assigned partitions"
        return None

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
                        if tp.partition not in self.loaded:
                            # Fetched before its ledger was restored: read it again later.
                            if tp in self._consumer.assignment():
                                self._consumer.seek(tp, records[0].offset)
                            continue
                        for record in records:
                            if tp not in self._consumer.assignment():
                                break
                            await self._handle(tp, record)
        except _Stopping:
            log.info("stopped_during_backoff")
        finally:
            stop_wait.cancel()

    # -- one command -----------------------------------------------------------

    async def _handle(self, tp: TopicPartition, record: ConsumerRecord[bytes, bytes]) -> None:
        try:
            command = command_from_record(self.codec.decode(schemas.ACTION_COMMAND, record.value))
        except DecodeError as exc:
            metrics.UNREADABLE.inc()
            log.warning("command_unreadable", partition=tp.partition, offset=record.offset,
                        reason=exc.reason)
            await self._finish(tp, record, None, None, exc.reason)
            return
        with structlog.contextvars.bound_contextvars(
            command_id=command.command_id, customer_id=command.customer_id,
            automation_id=command.automation_id,
        ):
            state = self.ledger.get(tp.partition, command.command_id)
            if state in _TERMINAL:
                metrics.DUPLICATES.inc()
                log.info("command_already_done", state=state)
                await self._finish(tp, record, None, None, None)
                return
            if state == ATTEMPTING:
                result = Result(Outcome.IN_DOUBT, "an earlier attempt was interrupted between "
                                "the attempt and its outcome; not resent automatically", 1)
            else:
                result = await self._deliver(tp.partition, command)
            await self._finish(tp, record, command, result, None)
            metrics.OUTCOMES.labels(command.channel, result.outcome.value).inc()
            log.info("command_" + result.outcome.value, channel=command.channel,
                     detail=result.detail, attempts=result.attempts)

    async def _deliver(self, partition: int, command: Command) -> Result:
        channel = self.channels.get(command.channel)
        if channel is None:
            return Result(Outcome.FAILED, f"no driver for channel {command.channel!r}", 0)
        if not channel.recipients(command):
            return Result(Outcome.SUPPRESSED, "no recipient address is known", 0)
        s = self.settings
        attempt = 0
        while True:
            attempt += 1
            await self._write_ledger(partition, command.command_id, ATTEMPTING, attempt)
            started = time.perf_counter()
            try:
                delivery = await channel.send(command)
            except TransientError as exc:
                metrics.ATTEMPTS.labels(channel.name, "transient").inc()
                if attempt >= s.dispatcher_max_attempts:
                    return Result(Outcome.FAILED, f"gave up after {attempt} attempts: {exc}",
                                  attempt)
                await self._write_ledger(partition, command.command_id, None, attempt)
                delay = random.uniform(0, min(s.dispatcher_backoff_cap_s,
                                              s.dispatcher_backoff_s * 2 ** (attempt - 1)))
                log.warning("attempt_failed", error=str(exc), attempt=attempt,
                            retry_in_s=round(delay, 3))
                await self._backoff(delay)
                continue
            except PermanentError as exc:
                metrics.ATTEMPTS.labels(channel.name, "permanent").inc()
                return Result(Outcome.FAILED, str(exc), attempt)
            except InDoubtError as exc:
                metrics.ATTEMPTS.labels(channel.name, "in_doubt").inc()
                return Result(Outcome.IN_DOUBT, str(exc), attempt)
            finally:
                metrics.SEND_SECONDS.labels(channel.name).observe(time.perf_counter() - started)
            metrics.ATTEMPTS.labels(channel.name, "delivered").inc()
            return Result(Outcome.DELIVERED, delivery.detail, attempt, delivery.provider_ref)

    async def _backoff(self, delay: float) -> None:
        try:
            await asyncio.wait_for(self._stop.wait(), timeout=delay)
        except TimeoutError:
            return
        raise _Stopping()

    # -- Kafka writes ----------------------------------------------------------

    def _ledger_value(self, command_id: str, state: str, attempt: int, detail: str) -> bytes:
        return self.codec.encode(schemas.LEDGER_ENTRY, {
            "command_id": command_id, "state": state, "attempt": attempt,
            "at": now_ms(), "detail": detail})

    async def _write_ledger(self, partition: int, command_id: str, state: str | None,
                            attempt: int) -> None:
        """Record (or, with ``state=None``, retract) an attempt, durable before returning."""
        assert self._marker is not None
        value = None if state is None else self._ledger_value(command_id, state, attempt, "")
        sent = await self._marker.send(self.topics[ACTIONS_LEDGER], key=command_id.encode(),
                                       value=value, partition=partition)
        await sent
        if state is None:
            self.ledger.discard(partition, command_id)
        else:
            self.ledger.put(partition, command_id, state)

    async def _finish(self, tp: TopicPartition, record: ConsumerRecord[bytes, bytes],
                      command: Command | None, result: Result | None,
                      unreadable: str | None) -> None:
        assert self._producer is not None
        p = tp.partition
        async with self._producer.transaction():
            if command is not None and result is not None:
                cid = command.command_id
                await self._producer.send(
                    self.topics[ACTIONS_LEDGER], key=cid.encode(), partition=p,
                    value=self._ledger_value(cid, result.outcome.value, result.attempts,
                                             result.detail))
                await self._producer.send(
                    self.topics[ACTIONS_RESULTS], key=record.key, partition=p,
                    value=self.codec.encode(schemas.ACTION_RESULT, {
                        "command_id": cid, "customer_id": command.customer_id,
                        "automation_id": command.automation_id, "channel": command.channel,
                        "status": result.outcome.value, "detail": result.detail,
                        "attempts": result.attempts, "completed_at": now_ms(),
                        "provider_ref": result.provider_ref}))
            reason = unreadable
            if result is not None and result.outcome in (Outcome.FAILED, Outcome.IN_DOUBT):
                reason = f"{result.outcome.value}: {result.detail}"
            if reason is not None:
                letter: dict[str, Any] = dead_letter(
                    service=SERVICE, topic=record.topic, partition=p, offset=record.offset,
                    key=record.key, value=record.value,
                    error_type=result.outcome.value if result else "DecodeError", reason=reason)
                await self._producer.send(self.topics[ACTIONS_DLQ], key=record.key, partition=p,
                                          value=self.codec.encode(schemas.DEAD_LETTER, letter))
            await self._producer.send_offsets_to_transaction(
                {tp: record.offset + 1}, self.settings.dispatcher_group_id)
        if command is not None and result is not None:
            self.ledger.put(p, command.command_id, result.outcome.value)
