"""The Faust shell: feed the pure engine, persist what it returns.

Consumes raw bytes from the event and tick topics and decodes inside the agent,
so a record that cannot be read goes to ``events.dlq`` with its original bytes
instead of crash-looping the agent. Commands are acknowledged by Kafka before
the new state is written: after a crash the input is redelivered and either the
state was not yet written (same commands, same ids, deduplicated by the
dispatcher) or it was (the engine sees a duplicate and issues nothing).
"""

from __future__ import annotations

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
from signalbox.evaluator.engine import AutomationSet, Decision, Event, Tick, evaluate
from signalbox.evaluator.records import (
    command_to_record,
    event_from_record,
    state_from_record,
    state_to_record,
    tick_from_record,
)

log = structlog.get_logger(__name__)
SERVICE = "evaluator"


class InputRejected(ValueError):
    """A decodable record that breaks a rule of the contract (e.g. key ≠ customer_id)."""

    @property
    def reason(self) -> str:
        return str(self)


def create_app(settings: Settings, automations: AutomationSet) -> faust.App:
    """Build the evaluator's Faust app; nothing connects until a worker starts it."""
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
    codec = codec_for(settings)
    metrics.AUTOMATIONS.set(sum(1 for a in automations.automations if a.enabled))
    names = {n: k.topic(n) for n in (EVENTS_BILLING, EVENTS_USAGE, TICKS)}
    source = app.topic(*names.values(), key_type=bytes, value_type=bytes,
                       partitions=k.partitions)
    commands = app.topic(k.topic(ACTIONS_COMMANDS), key_type=bytes, value_type=bytes,
                         partitions=k.partitions)
    dlq = app.topic(k.topic(EVENTS_DLQ), key_type=bytes, value_type=bytes,
                    partitions=k.partitions)
    state_table = app.Table(CUSTOMER_STATE_TABLE, partitions=k.partitions,
                            key_type=bytes, value_type=bytes)
    ticks_topic = names[TICKS]

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

    async def process(item: Event | Tick, message: Any) -> None:
        if isinstance(item, Tick):
            metrics.INPUTS.labels("tick", "tick").inc()
            metrics.TICK_AT.labels(str(item.partition)).set(item.at / 1000)
            return
        key = message.key
        raw_state = state_table.get(key)
        state = state_from_record(codec.decode(schemas.CUSTOMER_STATE, raw_state)) \
            if raw_state else None
        decision: Decision = evaluate(state, item, automations)
        metrics.INPUTS.labels("event", item.type).inc()
        if decision.duplicate:
            metrics.DUPLICATES.inc()
            log.info("duplicate_event", event_id=item.event_id, customer_id=item.customer_id)
            return
        pending = []
        for command in decision.commands:
            value = codec.encode(schemas.ACTION_COMMAND, command_to_record(command))
            pending.append(await commands.send(key=key, value=value, partition=message.partition))
            metrics.COMMANDS.labels(command.automation_id).inc()
            log.info("command_issued", command_id=command.command_id,
                     automation_id=command.automation_id, customer_id=command.customer_id,
                     event_id=item.event_id, template=command.action.template)
        for fut in pending:  # acknowledged before the state moves on
            await fut
        if decision.state is not None:
            state_table[key] = codec.encode(schemas.CUSTOMER_STATE,
                                            state_to_record(decision.state))

    @app.agent(source, concurrency=1)
    async def evaluate_inputs(stream: faust.StreamT[bytes]) -> None:
        async for event in stream.events():
            message = event.message
            started = time.perf_counter()
            try:
                item = decode(message)
            except (DecodeError, InputRejected) as exc:
                await to_dlq(message, exc)
                continue
            try:
                with structlog.contextvars.bound_contextvars(
                    event_id=getattr(item, "event_id", None),
                    customer_id=getattr(item, "customer_id", None),
                ):
                    await process(item, message)
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
        if getattr(app, "in_recovery", False):
            failing["state"] = "restoring tables from the changelog"
        status = 503 if failing else 200
        return web.json({"status": "not ready" if failing else "ready", "failing": failing},
                        status=status)

    @app.page("/metrics")
    async def prometheus(web: Any, request: Any) -> Any:
        # aiohttp refuses a content_type with parameters; the header carries the version.
        return web.bytes(generate_latest(), headers={"Content-Type": CONTENT_TYPE_LATEST})

    return app
