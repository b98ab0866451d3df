"""Throughput of the pure engine, and what one tick costs. Prints figures; not a test.

    python -m bench.engine [--events 100000] [--customers 10000] [--due 1000]

* events/s of ``evaluate`` alone, then with the Avro state round trip the agent
  does per input (decode the stored state, evaluate, encode the new state);
* one tick with 1k due timers among 1k customers versus among 100k customers:
  ``TimerIndex.pop_due`` + ``evaluate`` of each due customer + ``next_due`` to
  reschedule it — the work the shell does per tick. Design principle 6 says the
  two should cost about the same.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from collections.abc import Callable

from fastavro.validation import validate

from signalbox.common import schemas
from signalbox.common.codec import AvroCodec
from signalbox.evaluator.engine import (
    AutomationSet,
    CustomerState,
    Event,
    Profile,
    Tick,
    TimerIndex,
    evaluate,
    next_due,
    parse_automations,
)
from signalbox.evaluator.engine.model import DAY_MS, MINUTE_MS
from signalbox.evaluator.engine_records import state_from_record, state_to_record
from signalbox.evaluator.main import default_automations_path

T0 = 1_790_000_000_000
#: The default automations plus derived and event triggers with conditions.
EXTRA = """
  - id: usage-levels
    trigger: {type: usage.threshold_met, metric: api_calls}
    actions: [{type: email, template: usage_level}]
  - id: power-user
    trigger: {type: feature.used_minutes, feature: reports, minutes: 60}
    actions:
      - {type: crm, operation: add_tag, params: {tag: power-user}}
      - {type: adjust_score, delta: 100}
  - id: milestones
    trigger: {type: score.milestone}
    actions: [{type: webhook, endpoint: crm-hook, event: customer.milestone}]
  - id: big-invoice
    trigger: {type: invoice.issued}
    conditions: {where: [{field: amount_minor, op: ">=", value: 50000}], active_subscription: true}
    actions: [{type: alert, team: finance, template: big_invoice}]
  - id: miss-you
    trigger: {type: no_login, days: 7}
    actions: [{type: email, template: we_miss_you}]
"""


def bench_automations() -> AutomationSet:
    with open(default_automations_path(), encoding="utf-8") as f:
        text = f.read()
    return parse_automations(text + EXTRA, schemas.event_types(), {"finance": "f@example.com"})


def make_events(n: int, customers: int, seed: int = 7) -> list[Event]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        c = f"cus-{rng.randrange(customers)}"
        at = T0 + i * 1000
        kind = rng.random()
        money = {"amount_minor": rng.choice([4900, 9900, 60000]), "currency": "EUR"}
        if kind < 0.15:
            t, data = "payment.failed", {"payment_id": f"p{i}", "invoice_id": None,
                                         "product": rng.choice(["pro", "basic"]),
                                         "reason": None, **money}
        elif kind < 0.3:
            t, data = "payment.succeeded", {"payment_id": f"p{i}", "invoice_id": None,
                                            "product": "pro", "kind": "automatic", **money}
        elif kind < 0.4:
            t, data = "invoice.issued", {"invoice_id": f"in{i}", "due_at": at + 14 * DAY_MS,
                                         "product": "pro", **money}
        elif kind < 0.45:
            t, data = "subscription.started", {"subscription_id": f"s-{c}", "product": "pro",
                                               "kind": "subscription", "ends_at": None,
                                               "trial_ends_at": None}
        elif kind < 0.6:
            t, data = "usage.recorded", {"metric": "api_calls", "quantity": 10.0}
        elif kind < 0.7:
            t, data = "feature.used", {"feature": "reports", "duration_seconds": 300,
                                       "session_id": None}
        else:
            t, data = "user.logged_in", {"user_id": None}
        out.append(Event(f"e{i}", c, t, at, data, Profile(email=f"{c}@example.com")))
    return out


def best_of(runs: int, fn: Callable[[], float]) -> float:
    return min(fn() for _ in range(runs))


def throughput(events: list[Event], automations: AutomationSet) -> tuple[float, float, int]:
    states: dict[str, CustomerState | None] = {}
    commands = 0
    start = time.perf_counter()
    for e in events:
        d = evaluate(states.get(e.customer_id), e, automations)
        states[e.customer_id] = d.state
        commands += len(d.commands)
    pure = len(events) / (time.perf_counter() - start)

    codec = AvroCodec()
    stored: dict[str, bytes] = {}
    start = time.perf_counter()
    for e in events:
        raw = stored.get(e.customer_id)
        state = state_from_record(codec.decode(schemas.CUSTOMER_STATE, raw)) if raw else None
        d = evaluate(state, e, automations)
        if d.state is not None:
            stored[e.customer_id] = codec.encode(schemas.CUSTOMER_STATE, state_to_record(d.state))
    with_codec = len(events) / (time.perf_counter() - start)
    return pure, with_codec, commands


def state_codec_cost(events: list[Event], automations: AutomationSet) -> tuple[float, ...]:
    """Microseconds per state: codec encode, of it fastavro validation, codec decode."""
    states: dict[str, CustomerState] = {}
    for e in events[:20_000]:
        d = evaluate(states.get(e.customer_id), e, automations)
        if d.state is not None:
            states[e.customer_id] = d.state
    records = [state_to_record(s) for s in states.values()]
    codec = AvroCodec()
    parsed = codec.schema(schemas.CUSTOMER_STATE).io
    start = time.perf_counter()
    raws = [codec.encode(schemas.CUSTOMER_STATE, r) for r in records]
    encode = time.perf_counter() - start
    start = time.perf_counter()
    for r in records:
        validate(r, parsed, raise_errors=True)
    checks = time.perf_counter() - start
    start = time.perf_counter()
    for raw in raws:
        codec.decode(schemas.CUSTOMER_STATE, raw)
    decode = time.perf_counter() - start
    n = len(records) / 1e6
    return encode / n, checks / n, decode / n, statistics.mean(len(r) for r in raws)


def tick_cost(customers: int, due: int, automations: AutomationSet) -> tuple[float, int]:
    """Milliseconds for one tick that finds ``due`` of ``customers`` due (best of 5)."""
    states: dict[str, CustomerState] = {}
    index = TimerIndex()
    for i in range(customers):  # logins a minute apart: no_login due 7 days later
        cid = f"cus-{i}"
        e = Event(f"login-{i}", cid, "user.logged_in", T0 + i * MINUTE_MS, {"user_id": None},
                  Profile(email=f"{cid}@example.com"))
        state = evaluate(None, e, automations).state
        assert state is not None
        states[cid] = state
        index.set(cid, next_due(state, automations))
    at = T0 + 7 * DAY_MS + (due - 1) * MINUTE_MS
    tick = Tick(0, at, MINUTE_MS)

    def once() -> float:
        work = TimerIndex()  # the same index, rebuilt outside the timing
        for cid, s in states.items():
            work.set(cid, next_due(s, automations))
        start = time.perf_counter()
        fired = 0
        for cid in work.pop_due(at):
            d = evaluate(states[cid], tick, automations)
            fired += len(d.commands)
            assert d.state is not None
            work.set(cid, next_due(d.state, automations))
        elapsed = time.perf_counter() - start
        assert fired == due, fired
        return elapsed * 1000

    times = [once() for _ in range(5)]
    return min(times), int(statistics.median(times) * 1000)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--due", type=int, default=1_000)
    args = parser.parse_args()
    automations = bench_automations()
    events = make_events(args.events, args.customers)
    pure, with_codec, commands = throughput(events, automations)
    print(f"automations: {len(automations.automations)} "
          f"({len(automations.timed)} time-triggered)")
    print(f"engine, pure function:          {pure:>10,.0f} events/s "
          f"({args.events:,} events, {args.customers:,} customers, {commands:,} commands)")
    print(f"engine + Avro state round trip: {with_codec:>10,.0f} events/s")
    encode, checks, decode, size = state_codec_cost(events, automations)
    print(f"  state codec: encode {encode:.0f} us (of which fastavro validate {checks:.0f} us), "
          f"decode {decode:.0f} us, {size:.0f} bytes on average")
    for customers in (args.due, 100 * args.due):
        best, median_us = tick_cost(customers, args.due, automations)
        print(f"one tick, {args.due:,} due of {customers:>7,} customers: {best:>7.1f} ms "
              f"(best of 5; median {median_us / 1000:.1f} ms) — pop_due + evaluate + next_due")


if __name__ == "__main__":
    main()
