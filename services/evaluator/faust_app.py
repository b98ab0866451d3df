"""The Faust wiring: group membership, the state table and its recovery, batches in,
records out. Everything the evaluator decides is in
:class:`~signalbox.evaluator.processor.Evaluator`.

Faust gives the frame (rebalancing, the changelog-backed table and its recovery, the
worker lifecycle, the conductor that delivers records to the agent's channel); the
agent takes each batch of raw records from the channel (:func:`batches`: up to
``BATCH_MAX``, or whatever arrived within ``BATCH_WITHIN``) and hands it over whole.
Records are decoded inside the evaluator, so one that cannot be read is dead-lettered
instead of crash-looping the agent. The agent acks a batch's events (which lets Faust
commit their offsets) only after ``process`` returned, i.e. after its commands and
states were acknowledged by Kafka.

Commands, dead letters and changelog records go straight to the app's producer
(aiokafka, batching by itself), each with an explicit partition: one await per batch,
not per record.
"""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import AsyncIterator, Awaitable, Sequence
from pathlib import Path
from typing import Any

import faust
import structlog
from faust.types import TP, EventT
from mode import BaseSignalT

from signalbox.common.deadletter import Letter
from signalbox.common.kafka import faust_broker, faust_credentials
from signalbox.common.settings import EvaluatorSettings, KafkaSettings
from signalbox.common.topics import (
    ACTIONS_COMMANDS,
    CUSTOMER_STATE_TABLE,
    EVENTS_BILLING,
    EVENTS_DLQ,
    EVENTS_USAGE,
    TICKS,
)
from signalbox.evaluator import metrics
from signalbox.evaluator.disktimers import DiskTimers
from signalbox.evaluator.engine import ApprovalOutcome, ApprovalRequest, AutomationSet
from signalbox.evaluator.partition_timers import PartitionTimers, Timers, timers_digest
from signalbox.evaluator.processor import (
    DEFAULT_LIMITS,
    STATE_RECORDS,
    Evaluator,
    Limits,
    Record,
)
from signalbox.evaluator.shell import EvaluatorShell
from signalbox.evaluator.store import RocksLocalStore, StateStore, local_store_of
from signalbox.evaluator.storescan import scan

log = structlog.get_logger(__name__)
#: Records per batch at most, and how long a batch waits to fill (the bound of the
#: time-order merge of a partition's three input topics, see the processor).
BATCH_MAX = 500
BATCH_WITHIN = 0.05


#: RocksDB store per partition: Faust's defaults (a 2 GiB block cache and 3 x 64 MiB
#: write buffers per partition database) let RSS grow with the customers read; these
#: bound it to ~64 MiB per partition (reads of cold customers come from the page cache).
ROCKSDB_OPTIONS = {"block_cache_size": 32 * 1024 * 1024, "write_buffer_size": 16 * 1024 * 1024,
                   "max_write_buffer_number": 2}


class KafkaOutput:
    """:class:`~signalbox.evaluator.processor.Output` on the Faust app's producer."""

    def __init__(self, app: faust.App, shell: EvaluatorShell, commands: str, dlq: str,
                 changelog: str) -> None:
        self._app, self._shell = app, shell
        self._commands, self._dlq, self._changelog = commands, dlq, changelog

    async def _send(self, topic: str, key: bytes | None, value: bytes, partition: int,
                    headers: list[tuple[str, bytes]] | None = None) -> Awaitable[Any]:
        return await self._app.producer.send(topic, key, value, partition, None, headers)

    async def command(self, key: bytes, value: bytes, partition: int,
                      headers: Sequence[tuple[str, bytes]] = ()) -> Awaitable[Any]:
        return await self._send(self._commands, key, value, partition, list(headers) or None)

    async def changelog(self, key: bytes, value: bytes, partition: int) -> Awaitable[Any]:
        return await self._send(self._changelog, key, value, partition)

    async def dead_letter(self, letter: Letter, partition: int) -> Awaitable[Any]:
        return await self._send(self._dlq, letter.key, letter.value, partition,
                                list(letter.headers) or None)

    async def approval(self, request: ApprovalRequest,
                       partition: int) -> Awaitable[Any] | None:
        return await self._shell.approvals.request(request, partition)  # type: ignore[no-any-return]

    async def settled(self, outcome: ApprovalOutcome,
                      partition: int) -> Awaitable[Any] | None:
        return await self._shell.approvals.settle(outcome, partition)  # type: ignore[no-any-return]


def create_app(kafka: KafkaSettings, evaluator: EvaluatorSettings, shell: EvaluatorShell,
               limits: Limits = DEFAULT_LIMITS) -> faust.App:
    """Build the evaluator's Faust app; nothing connects until a worker starts it.
    ``evaluator``: its table store, data directory and state cache;
    ``limits``: the topics' ``max.message.bytes`` (:func:`main.topic_limits`)."""
    k = kafka
    app = faust.App(
        k.evaluator_app_id,
        broker=faust_broker(k),
        broker_credentials=faust_credentials(k),
        store=evaluator.store,
        datadir=evaluator.data_dir,
        processing_guarantee="at_least_once",
        topic_partitions=k.partitions,
        topic_replication_factor=k.replication_factor,
        topic_allow_declare=False,  # the catalogue creates every topic
        key_serializer="raw",
        value_serializer="raw",
        web_enabled=False,  # /healthz, /readyz, /metrics: the shell's ops server
        table_cleanup_interval=60.0,
        # A worker killed without leaving the group holds its partitions until the
        # broker expires its session: 15 s, not Faust's 60 (heartbeats run in the
        # consumer's own thread, so a busy event loop does not miss them).
        broker_session_timeout=15.0,
        broker_heartbeat_interval=3.0,
        producer_acks=-1,
        producer_linger_ms=5,
        producer_max_batch_size=256 * 1024,
        # the producer must not refuse what a topic accepts; larger is dead-lettered
        producer_max_request_size=max(limits.commands, limits.changelog, limits.dead_letters)
        + 64 * 1024,
        stream_buffer_maxsize=4 * BATCH_MAX,
    )
    names = {n: k.topic(n) for n in (EVENTS_BILLING, EVENTS_USAGE, TICKS)}
    source = app.topic(*names.values(), key_type=bytes, value_type=bytes,
                       partitions=k.partitions)
    wiring: _Wiring

    async def learn_residence(event: Any) -> None:
        """Changelog replay: the changelog partition is the customer's partition, and the
        record starts with its next due time."""
        message = event.message
        if message.key is not None:
            known = wiring.states.summary(message.value) if message.value else None
            wiring.timers.lives_on(message.key.decode("utf-8", "replace"), message.partition,
                                   known)

    table = app.Table(CUSTOMER_STATE_TABLE, partitions=k.partitions, key_type=bytes,
                      value_type=bytes, on_changelog_event=learn_residence,
                      options=ROCKSDB_OPTIONS)
    wiring = _Wiring(app, shell, table, names, limits, k, evaluator)

    @table.on_recover
    async def after_rebalance() -> None:
        await wiring.after_rebalance()

    @app.agent(source, concurrency=1)
    async def evaluate_inputs(stream: faust.StreamT[bytes]) -> None:
        await shell.wait_until_ready_for_inputs()
        evaluator, output = wiring.evaluator(), wiring.output()
        async for events in batches(stream, BATCH_MAX, BATCH_WITHIN):
            await evaluator.process([Record(m.topic, m.partition, m.offset, m.key, m.value)
                                     for m in (e.message for e in events)], output)
            for event in events:  # only now may their offsets be committed
                event.ack()

    @app.on_partitions_revoked.connect
    def forget_revoked(_: Any, /, *args: Any, signal: BaseSignalT[Any], **__: Any) -> None:
        wiring.revoked(args[0])  # (app, revoked)

    shell.add_checks({"kafka": wiring.kafka_ready, "state": wiring.state_ready})
    shell.lag.owned = wiring.owned
    metrics.initialise_series(names.values(), STATE_RECORDS)
    metrics.initialise_automations(a.id for a in shell.automations.automations)
    shell.source.subscribe(wiring.on_new_automations)
    return app


async def batches(stream: faust.StreamT[bytes], most: int,
                  within: float) -> AsyncIterator[list[EventT[bytes]]]:
    """The events the conductor delivered to the agent's channel, in batches of up to
    ``most``, waiting at most ``within`` seconds for a batch to fill.

    This reads the channel's queue directly instead of iterating the Faust stream:
    the stream's per-record machinery (processors, sensors, the current-event context
    variable, ``take_events``' buffer hand-off) costs more than the evaluator's whole
    work for a record, and none of it is used here. What the stream would do and
    matters is kept: the channel is registered with the conductor the same way
    (``aiter``), and the caller acks each event after its batch is processed, which is
    what lets the consumer commit its offset (at-least-once, as before).
    """
    channel = aiter(stream.channel)  # registers the channel's topics with the conductor
    queue = channel.queue  # type: ignore[attr-defined]
    loop = asyncio.get_running_loop()
    while True:
        try:
            batch: list[EventT[bytes]] = [await queue.get()]
        except StopAsyncIteration:  # Faust ends the channel at shutdown
            return
        deadline = loop.time() + within
        while len(batch) < most:
            try:
                batch.append(queue.get_nowait())
            except asyncio.QueueEmpty:
                if loop.time() >= deadline:
                    break
                await asyncio.sleep(within / 10)
            except StopAsyncIteration:
                break
        yield batch


class _Wiring:
    """What the Faust callbacks share: the evaluator (built once the table's store
    exists), the timer index and the readiness facts."""

    def __init__(self, app: faust.App, shell: EvaluatorShell, table: Any,
                 names: dict[str, str], limits: Limits, kafka: KafkaSettings,
                 evaluator: EvaluatorSettings) -> None:
        self.app, self.shell, self.table = app, shell, table
        self.kafka, self.evaluator_settings = kafka, evaluator
        self.ticks_topic = names[TICKS]
        self.rank = {names[EVENTS_BILLING]: 0, names[EVENTS_USAGE]: 1, names[TICKS]: 2}
        self.limits = limits
        self.assigned = asyncio.Event()  # set after the first assignment and recovery
        self._evaluator: Evaluator | None = None
        self._states: StateStore | None = None
        self._timers: Timers | None = None
        self._indexed_for = shell.automations.timed  # the time automations indexed
        self._reindexing: set[asyncio.Task[None]] = set()

    @property
    def states(self) -> StateStore:
        """Built on first use: the table's store exists only once the app runs."""
        if self._states is None:
            self._states = StateStore(self.shell.codec, local_store_of(self.table),
                                      self.evaluator_settings.state_cache)
        return self._states

    @property
    def timers(self) -> Timers:
        """On disk beside a RocksDB store (RAM does not grow with customers, a restart
        finds it complete); in memory beside the memory store (rebuilt from the replay)."""
        if self._timers is None:
            states = self.states
            if isinstance(states.local, RocksLocalStore):
                directory = Path(self.evaluator_settings.data_dir) / "timers"
                self._timers = DiskTimers(directory, lambda ps: scan(self.table, ps),
                                          states.summary, states.decode)
            else:
                self._timers = PartitionTimers()
            self._timers.digest = timers_digest(self.shell.automations)
        return self._timers

    def evaluator(self) -> Evaluator:
        if self._evaluator is None:
            self._evaluator = Evaluator(self.shell.codec, self.states, self.timers,
                                        lambda: self.shell.automations, self.ticks_topic,
                                        self.rank, self.limits,
                                        verify_decision=self.shell.approvals.verify)
        return self._evaluator

    def output(self) -> KafkaOutput:
        k = self.kafka
        return KafkaOutput(self.app, self.shell, k.topic(ACTIONS_COMMANDS), k.topic(EVENTS_DLQ),
                           self.table.changelog_topic.get_topic_name())

    async def after_rebalance(self) -> None:
        """Index the customers of the partitions now ours; forget decoded states (another
        worker may have changed them meanwhile)."""
        started = time.perf_counter()
        states = self.states
        states.clear()
        partitions = {tp.partition for tp in self.app.assignor.assigned_actives()
                      if tp.topic == self.ticks_topic}
        scanned, decoded = await self.timers.assigned(partitions, states.read,
                                                      self.shell.automations)
        # Millions of long-lived objects (memory store, timer index) would be walked by
        # every full collection of the cyclic GC, a pause of a second at 1M customers
        # in the middle of a tick; they are moved out of its sight (refcounting still
        # frees them).
        gc.freeze()
        log.info("timers_indexed", partitions=sorted(partitions), timers=self.timers.count(),
                 scanned=scanned, decoded=decoded,
                 seconds=round(time.perf_counter() - started, 3))
        self.assigned.set()

    def on_new_automations(self, automations: AutomationSet) -> None:
        metrics.initialise_automations(a.id for a in automations.automations)
        if automations.timed == self._indexed_for:
            return  # only event automations changed: every due time is still right
        self._indexed_for = automations.timed
        self.timers.stale()  # ticks wait for the new index (set again when it is built)
        task = asyncio.get_running_loop().create_task(self._reindex(automations))
        self._reindexing.add(task)  # keep a reference until it is done
        task.add_done_callback(self._reindexing.discard)

    async def _reindex(self, automations: AutomationSet) -> None:
        started = time.perf_counter()
        try:
            scanned, decoded = await self.timers.reindex(automations, self.states.read)
        except Exception:  # the old index stays; the next rebalance rebuilds it
            log.exception("timers_reindex_failed")
            return
        log.info("timers_reindexed", scanned=scanned, decoded=decoded,
                 seconds=round(time.perf_counter() - started, 3))

    def owned(self) -> list[TP]:
        """Input partitions this worker owns now (whose lag it exports)."""
        return [tp for tp in self.app.assignor.assigned_actives() if tp.topic in self.rank]

    def revoked(self, revoked: set[TP]) -> None:
        """Per-partition series of input partitions no longer ours go at once."""
        gone = {tp.partition for tp in revoked if tp.topic == self.ticks_topic}
        metrics.forget(gone)
        self.shell.lag.keep_only(self.owned())

    async def kafka_ready(self) -> str | None:
        if self.app.rebalancing:
            return "rebalancing"
        if not self.assigned.is_set():
            return "joining the consumer group"
        return None

    async def state_ready(self) -> str | None:
        if getattr(self.app, "in_recovery", False):
            return "restoring tables from the changelog"
        return None


