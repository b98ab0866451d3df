"""The evaluator's own work per event, without Kafka or Faust. Prints figures; not a test.

    python -m bench.processor [--events 40000] [--customers 4000] [--batch 500]

Feeds the event mix of ``bench.pipeline`` (a quarter failed payments, two commands
each; the rest payments and logins) as raw Avro records through
:class:`~signalbox.evaluator.processor.Evaluator` with an in-memory output whose
acknowledgements are already resolved, so the figure is signalbox's work per event on
top of the framework: decode, order, evaluate, encode commands and states, timers.
Then the same stages one by one over the same input, for the cost breakdown.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import time
from collections.abc import Callable
from typing import Any

from signalbox.common import schemas
from signalbox.common.action_command import command_to_record
from signalbox.common.codec import AvroCodec
from signalbox.common.settings import Settings
from signalbox.evaluator.engine import (
    AutomationSet,
    CustomerState,
    Event,
    next_due,
)
from signalbox.evaluator.engine import evaluate as engine_evaluate
from signalbox.evaluator.engine_records import (
    event_from_record,
    state_to_record,
)
from signalbox.evaluator.main import file_definitions
from signalbox.evaluator.partition_timers import PartitionTimers
from signalbox.evaluator.processor import Evaluator, Record
from signalbox.evaluator.store import MemoryLocalStore, StateStore
from signalbox.testing.evaluator_output import AcknowledgedOutput

T0 = 1_790_000_000_000
TOPIC = "events.billing"


def records(codec: AvroCodec, n: int, customers: int) -> list[Record]:
    out = []
    for i in range(n):
        customer = f"cus-{i % customers}"
        money = {"payment_id": f"p{i}", "product": "pro", "amount_minor": 4900,
                 "currency": "EUR"}
        payload = [("signalbox.events.PaymentFailed", money),
                   ("signalbox.events.PaymentSucceeded", money),
                   ("signalbox.events.UserLoggedIn", {}),
                   ("signalbox.events.UserLoggedIn", {})][i % 4]
        value = codec.encode(schemas.EVENT, {
            "event_id": f"bench-{i}", "customer_id": customer, "occurred_at": T0 + i,
            "received_at": T0 + i, "source": "bench",
            "customer": {"email": f"{customer}@example.com"}, "payload": payload})
        out.append(Record(TOPIC, i % 4, i // 4, customer.encode(), value))
    return out


async def whole(codec: AvroCodec, automations: AutomationSet, batch: list[Record],
                size: int) -> tuple[float, int]:
    states = StateStore(codec, MemoryLocalStore({}), cache_size=len(batch))
    evaluator = Evaluator(codec, states, PartitionTimers(), lambda: automations,
                          "ticks", {TOPIC: 0})
    out = AcknowledgedOutput()
    started = time.perf_counter()
    for i in range(0, len(batch), size):
        await evaluator.process(batch[i:i + size], out)
    return time.perf_counter() - started, out.records


def stage(name: str, n: int, fn: Callable[[], object]) -> float:
    # Each stage starts from a collected heap: otherwise a full collection owed by an
    # earlier stage lands in whichever stage comes next (decode showed 27 µs instead of 14).
    gc.collect()
    started = time.perf_counter()
    fn()
    seconds = time.perf_counter() - started
    print(f"  {name:<34} {seconds / n * 1e6:7.1f} µs/event")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=40_000)
    parser.add_argument("--customers", type=int, default=4_000)
    parser.add_argument("--batch", type=int, default=500)
    args = parser.parse_args()
    codec = AvroCodec()
    automations = file_definitions(Settings.from_env({})).build()
    batch = records(codec, args.events, args.customers)
    n = len(batch)

    seconds, out = asyncio.run(whole(codec, automations, batch, args.batch))
    print(f"bench.processor: {n:,} events, {args.customers:,} customers, batches of "
          f"{args.batch}")
    print(f"  Evaluator.process (all stages)     {seconds / n * 1e6:7.1f} µs/event = "
          f"{n / seconds:,.0f} events/s; {out:,} records out")
    print("stages, one at a time over the same input:")
    decoded: list[Event] = []
    stage("decode event (fastavro + Event)", n, lambda: decoded.extend(
        event_from_record(codec.decode(schemas.EVENT, r.value, plain_times=True))
        for r in batch))
    states: dict[str, CustomerState] = {}
    commands: list[Any] = []

    def run_engine() -> None:
        for event in decoded:
            decision = engine_evaluate(states.get(event.customer_id), event, automations)
            if decision.state is not None:
                states[event.customer_id] = decision.state
            commands.extend(decision.commands)

    stage("engine evaluate", n, run_engine)
    stage("encode commands (per event)", n, lambda: [
        codec.encode(schemas.ACTION_COMMAND, command_to_record(c), validate=False)
        for c in commands])
    final = list(states.values()) * (n // max(len(states), 1))
    stage("encode state, one per event", n, lambda: [
        codec.encode(schemas.CUSTOMER_STATE, state_to_record(s), validate=False)
        for s in final])
    stage("  the same with fastavro validate", n, lambda: [
        codec.encode(schemas.CUSTOMER_STATE, state_to_record(s)) for s in final])
    stage("next_due, one per event", n, lambda: [next_due(s, automations) for s in final])


if __name__ == "__main__":
    main()
