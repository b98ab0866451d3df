"""The Faust shell: feed the pure engine, persist what it returns.

Consumes raw bytes from the event and tick topics and decodes inside the agent,
so a record that cannot be read goes to ``events.dlq`` with its original bytes
instead of crash-looping the agent. Commands are acknowledged by Kafka before
the new state is written: after a crash the input is redelivered and either the
state was not yet written (same commands, same ids, deduplicated by the
dispatcher) or it was (the engine sees a duplicate and issues nothing).
Approval requests are written to the approvals topic under the same rule.

Ticks wake only the customers whose timer is due (:mod:`signalbox.evaluator.timers`);
each is evaluated under the tick's event, so its state goes to the tick's partition,
the partition the customer lives on. The automation set is the shell's live one,
re-read for every input (:mod:`signalbox.evaluator.shell`).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import faust
import structlog
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from signalbox.common import schemas
from signalbox.common.codec import DecodeError
from signalbox.common.deadletter import dead_letter
from signalbox.common.kafka import faust_broker, faust_credentials
from signalbox.common.registry import codec_for
from signalbox.common.settings import Settings
from signalbox.common.topics import (
    ACTIONS_COMMANDS,
    CUSTOMER_STATE_TABLE,
    EVENTS_BILLING,
    EVENTS_DLQ,
    EVENTS_USAGE,
    TICKS,
)
from signalbox.evaluator import metrics
from signalbox.evaluator.definitions import Definitions
from signalbox.evaluator.engine import (
    AutomationSet,
    CustomerState,
    Decision,
    Event,
    Tick,
    evaluate,
)
from signalbox.evaluator.records import (
    command_to_record,
    event_from_record,
    state_from_record,
    state_to_record,
    tick_from_record,
)
from signalbox.evaluator.shell import EvaluatorShell
from signalbox.evaluator.timers import PartitionTimers

log = structlog.get_logger(__name__)
SERVICE = "evaluator"


class InputRejected(ValueError):
    """A decodable record that breaks a rule of the contract (e.g. key ≠ customer_id)."""

    @property
    def reason(self) -> str:
        return str(self)


def create_app(settings: Settings, shell: EvaluatorShell | AutomationSet) -> faust.App:
    """Build the evaluator's Faust app; nothing connects until a worker starts it.

    ``shell`` is the running shell (automations topic, approvals, admin API), or a
    fixed automation set for tools that only need the app's shape.
    """
    if isinstance(shell, AutomationSet):
        shell = EvaluatorShell(settings, codec_for(settings), Definitions(schemas.event_types()),
                               shell, live=False)
    live: EvaluatorShell = shell
    codec = live.codec  # the shell's: a registry is not asked for every schema twice
    k = settings.kafka
    app = faust.App(
        settings.evaluator_app_id,
        broker=faust_broker(k),
        broker_credentials=faust_credentials(k),
        store=settings.evaluator_store,
        datadir=settings.evaluator_data_dir,
        processing_guarantee="at_least_once",
        topic_partitions=k.partitions,
        topic_replication_factor=k.replication_factor,
        topic_allow_declare=False,  # the catalogue creates every topic
        key_serializer="raw",
        value_serializer="raw",
        web_enabled=True,
        # The address other workers would use for this one (table routes are off).
        web_host=settings.instance_id if settings.bind_host == "0.0.0.0" else settings.bind_host,
        web_bind=settings.bind_host,
        web_port=settings.evaluator_port,
        web_tables_enabled=False,
        web_graph_enabled=False,
        web_metrics_enabled=False,
        web_router_enabled=False,
        web_stats_enabled=False,
        table_cleanup_interval=60.0,
        producer_acks=-1,
        producer_linger_ms=0,
    )
    names = {n: k.topic(n) for n in (EVENTS_BILLING, EVENTS_USAGE, TICKS)}
    source = app.topic(*names.values(), key_type=bytes, value_type=bytes,
                       partitions=k.partitions)
    commands = app.topic(k.topic(ACTIONS_COMMANDS), key_type=bytes, value_type=bytes,
                         partitions=k.partitions)
    dlq = app.topic(k.topic(EVENTS_DLQ), key_type=bytes, value_type=bytes,
                    partitions=k.partitions)
    ticks_topic = names[TICKS]
    timers = PartitionTimers()

    async def learn_residence(event: Any) -> None:
        """Changelog replay: the changelog partition is the customer's partition."""
        if event.message.key is not None:
            timers.lives_on(event.message.key.decode("utf-8", "replace"),
                            event.message.partition)

    state_table = app.Table(CUSTOMER_STATE_TABLE, partitions=k.partitions,
                            key_type=bytes, value_type=bytes,
                            on_changelog_event=learn_residence)

    def state_of(customer_id: str) -> CustomerState | None:
        raw = state_table.get(customer_id.encode("utf-8"))
        return state_from_record(codec.decode(schemas.CUSTOMER_STATE, raw)) if raw else None

    assigned = asyncio.Event()  # set after the first assignment and table recovery

    @state_table.on_recover
    async def index_timers() -> None:
        """After every rebalance: index the customers of the partitions now ours."""
        started = time.perf_counter()
        partitions = {tp.partition for tp in app.assignor.assigned_actives()
                      if tp.topic == ticks_topic}
        due = await timers.rebuild(partitions, state_of, live.automations)
        log.info("timers_indexed", partitions=sorted(partitions), timers=due,
                 seconds=round(time.perf_counter() - started, 3))
        assigned.set()

    reindexing: set[asyncio.Task[None]] = set()

    async def reindex(automations: AutomationSet) -> None:
        started = time.perf_counter()
        try:
            due = await timers.rebuild(timers.partitions(), state_of, automations)
        except Exception:  # the old index stays; the next rebalance rebuilds it
            log.exception("timers_reindex_failed")
            return
        log.info("timers_reindexed", timers=due, seconds=round(time.perf_counter() - started, 3))

    indexed_for = [live.automations.timed]  # the time automations the index was built for

    def on_new_automations(automations: AutomationSet) -> None:
        if automations.timed == indexed_for[0]:
            return  # only event automations changed: every due time is still right
        indexed_for[0] = automations.timed
        task = asyncio.get_running_loop().create_task(reindex(automations))
        reindexing.add(task)  # keep a reference until it is done
        task.add_done_callback(reindexing.discard)

    live.source.subscribe(on_new_automations)

    def decode(message: Any) -> Event | Tick:
        if message.topic == ticks_topic:
            return tick_from_record(codec.decode(schemas.TICK, message.value))
        event = event_from_record(codec.decode(schemas.EVENT, message.value))
        key = message.key.decode("utf-8", "replace") if message.key is not None else None
        if key != event.customer_id:
            raise InputRejected(
                f"Kafka key {key!r} is not the customer_id {event.customer_id!r}: "
                "the record would land on another customer's partition"
            )
        return event

    async def to_dlq(message: Any, error: BaseException) -> None:
        error_type = type(error).__name__
        reason = getattr(error, "reason", None) or str(error)
        metrics.DEAD_LETTERS.labels(message.topic, error_type).inc()
        log.warning("input_dead_lettered", topic=message.topic, partition=message.partition,
                    offset=message.offset, error=error_type, reason=reason)
        record = dead_letter(service=SERVICE, topic=message.topic, partition=message.partition,
                             offset=message.offset, key=message.key, value=message.value,
                             error_type=error_type, reason=reason)
        fut = await dlq.send(key=message.key, value=codec.encode(schemas.DEAD_LETTER, record),
                             partition=message.partition)
        await fut

    async def send(customer_id: str, item: Event | Tick, partition: int,
                   automations: AutomationSet) -> tuple[CustomerState | None, Decision, list[Any]]:
        """Evaluate and send the commands and approval requests; their acks are returned
        to await, so a tick can have all its customers' records in flight at once."""
        key = customer_id.encode("utf-8")
        state = state_of(customer_id)
        decision: Decision = evaluate(state, item, automations)
        if decision.duplicate:
            metrics.DUPLICATES.inc()
            log.info("duplicate_input", customer_id=customer_id)
            return state, decision, []
        pending = []
        for command in decision.commands:
            value = codec.encode(schemas.ACTION_COMMAND, command_to_record(command))
            pending.append(await commands.send(key=key, value=value, partition=partition))
            metrics.COMMANDS.labels(command.automation_id).inc()
            log.info("command_issued", command_id=command.command_id,
                     automation_id=command.automation_id, customer_id=command.customer_id,
                     channel=getattr(command.action, "channel", None))
        for request in decision.approvals:
            if live.live:
                pending.append(await live.approvals.request(request, partition))
        return state, decision, [f for f in pending if f is not None]

    def store(customer_id: str, partition: int, state: CustomerState | None,
              decision: Decision, automations: AutomationSet) -> None:
        """After the acks: the new state (to the current input's changelog partition),
        then the customer's next timer."""
        if decision.state is not None and not decision.duplicate:
            state_table[customer_id.encode("utf-8")] = codec.encode(
                schemas.CUSTOMER_STATE, state_to_record(decision.state))
            state = decision.state
        timers.note(customer_id, partition, state, automations)

    async def decide(customer_id: str, event: Event, partition: int,
                     automations: AutomationSet) -> None:
        state, decision, pending = await send(customer_id, event, partition, automations)
        for fut in pending:  # acknowledged before the state moves on
            await fut
        store(customer_id, partition, state, decision, automations)

    async def on_tick(tick: Tick, partition: int, automations: AutomationSet) -> None:
        metrics.INPUTS.labels("tick", "tick").inc()
        metrics.TICK_AT.labels(str(partition)).set(tick.at / 1000)
        if tick.partition != partition:
            log.warning("tick_on_other_partition", tick_partition=tick.partition,
                        partition=partition)
        due = timers.pop_due(partition, tick.at)
        sent: list[tuple[str, CustomerState | None, Decision]] = []
        pending: list[Any] = []
        try:
            for customer_id in due:
                try:
                    with structlog.contextvars.bound_contextvars(customer_id=customer_id):
                        state, decision, acks = await send(customer_id, tick, partition,
                                                           automations)
                except Exception:  # one customer's engine failure must not cost the others
                    log.exception("timer_failed", customer_id=customer_id, at=tick.at)
                    continue
                sent.append((customer_id, state, decision))
                pending.extend(acks)
            for fut in pending:  # every command of the tick acknowledged, then the states
                await fut
        except BaseException:  # not stored: keep them due, the next tick tries again
            for customer_id in due:
                timers.note(customer_id, partition, state_of(customer_id), automations)
            raise
        for customer_id, state, decision in sent:
            store(customer_id, partition, state, decision, automations)
        for customer_id in set(due) - {c for c, _, _ in sent}:
            timers.note(customer_id, partition, state_of(customer_id), automations)

    @app.agent(source, concurrency=1)
    async def evaluate_inputs(stream: faust.StreamT[bytes]) -> None:
        await live.wait_until_ready_for_inputs()
        async for event in stream.events():
            message = event.message
            started = time.perf_counter()
            try:
                item = decode(message)
            except (DecodeError, InputRejected) as exc:
                await to_dlq(message, exc)
                continue
            automations = live.automations  # one set for the whole input
            try:
                if isinstance(item, Tick):
                    await on_tick(item, message.partition, automations)
                else:
                    metrics.INPUTS.labels("event", item.type).inc()
                    with structlog.contextvars.bound_contextvars(
                            event_id=item.event_id, customer_id=item.customer_id):
                        await decide(item.customer_id, item, message.partition, automations)
            except Exception as exc:  # an engine bug must not stall the partition
                log.exception("input_failed", topic=message.topic, offset=message.offset)
                await to_dlq(message, exc)
            metrics.LATENCY.observe(time.perf_counter() - started)

    @app.page("/healthz")
    async def healthz(web: Any, request: Any) -> Any:
        return web.json({"status": "ok"})

    @app.page("/readyz")
    async def readyz(web: Any, request: Any) -> Any:
        failing = {}
        if app.rebalancing:
            failing["kafka"] = "rebalancing"
        elif not assigned.is_set():
            failing["kafka"] = "joining the consumer group"
        if getattr(app, "in_recovery", False):
            failing["state"] = "restoring tables from the changelog"
        if live.live:
            for name, check in live.checks().items():
                reason = await check()
                if reason is not None:
                    failing[name] = reason
        status = 503 if failing else 200
        return web.json({"status": "not ready" if failing else "ready", "failing": failing},
                        status=status)

    @app.page("/metrics")
    async def prometheus(web: Any, request: Any) -> Any:
        # aiohttp refuses a content_type with parameters; the header carries the version.
        return web.bytes(generate_latest(), headers={"Content-Type": CONTENT_TYPE_LATEST})

    return app
