"""Throughput of the pure engine, alone and with the Avro state round trip the agent does.

    python -m bench.engine [--events 200000] [--customers 10000]
"""

from __future__ import annotations

import argparse
import random
import time

from signalbox.common import schemas
from signalbox.common.codec import AvroCodec
from signalbox.common.settings import Settings
from signalbox.evaluator.engine import CustomerState, Event, Profile, evaluate
from signalbox.evaluator.main import automations_for
from signalbox.evaluator.records import state_from_record, state_to_record


def make_events(n: int, customers: int, seed: int = 7) -> list[Event]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        c = f"cus-{rng.randrange(customers)}"
        kind = rng.random()
        if kind < 0.25:
            t, data = "payment.failed", {"payment_id": f"p{i}", "product": rng.choice(
                ["pro", "basic"]), "amount_minor": 4900, "currency": "EUR", "reason": None}
        elif kind < 0.5:
            t, data = "payment.succeeded", {"payment_id": f"p{i}", "product": "pro",
                                            "amount_minor": 4900, "currency": "EUR"}
        else:
            t, data = "user.logged_in", {"user_id": None}
        out.append(Event(f"e{i}", c, t, 1_790_000_000_000 + i, data,
                         Profile(email=f"{c}@example.com")))
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--customers", type=int, default=10_000)
    args = parser.parse_args()
    automations = automations_for(Settings.from_env({}))
    events = make_events(args.events, args.customers)

    states: dict[str, CustomerState | None] = {}
    commands = 0
    start = time.perf_counter()
    for e in events:
        d = evaluate(states.get(e.customer_id), e, automations)
        states[e.customer_id] = d.state
        commands += len(d.commands)
    pure = time.perf_counter() - start

    codec = AvroCodec()
    stored: dict[str, bytes] = {}
    start = time.perf_counter()
    for e in events:
        raw = stored.get(e.customer_id)
        state = state_from_record(codec.decode(schemas.CUSTOMER_STATE, raw)) if raw else None
        d = evaluate(state, e, automations)
        if d.state is not None:
            stored[e.customer_id] = codec.encode(schemas.CUSTOMER_STATE, state_to_record(d.state))
    with_codec = time.perf_counter() - start

    print(f"engine, pure function:          {args.events / pure:>10,.0f} events/s "
          f"({args.events:,} events, {args.customers:,} customers, {commands:,} commands)")
    print(f"engine + Avro state round trip: {args.events / with_codec:>10,.0f} events/s")


if __name__ == "__main__":
    main()
