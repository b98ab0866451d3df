"""The load a fault test runs under: payment.failed events, and the commands they must cause.

The expected commands come from the pure engine (the one the evaluator runs) over the
same events and the default automations, so every command id is known before the
pipeline sees an event: nothing the pipeline writes is taken on trust.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

from confluent_kafka import Producer

from signalbox.common import schemas
from signalbox.common.codec import AvroCodec
from signalbox.common.settings import Settings
from signalbox.evaluator.engine import CustomerState, evaluate
from signalbox.evaluator.engine_records import event_from_record
from signalbox.evaluator.main import file_definitions
from signalbox.testing import eventually_sync

codec = AvroCodec()
#: The first event's time (2026-09-21); each further event is a minute later.
START_MS = 1_790_000_000_000


@dataclass(frozen=True)
class Load:
    """``events``: ``(customer id, encoded Event)`` in the order they are produced."""

    events: tuple[tuple[str, bytes], ...]

    def expected_commands(self, settings: Settings) -> set[str]:
        """Every command id the events must cause, from the engine itself (no ticks run:
        the fault tests start no scheduler)."""
        automations = file_definitions(settings).build()
        states: dict[str, CustomerState] = {}
        ids: set[str] = set()
        for customer, value in self.events:
            decision = evaluate(states.get(customer),
                                event_from_record(codec.decode(schemas.EVENT, value)),
                                automations)
            if decision.state is not None:
                states[customer] = decision.state
            ids.update(c.command_id for c in decision.commands)
        return ids


def payment_failures(customers: int, per_customer: int) -> Load:
    """``per_customer`` failed payments for *pro* of each customer, customers interleaved:
    each event causes a customer email and a finance alert."""
    events = []
    for n in range(per_customer):
        for c in range(customers):
            customer, event_id = f"cus-{c}", f"evt-{c}-{n}"
            at = START_MS + (n * customers + c) * 60_000
            events.append((customer, codec.encode(schemas.EVENT, {
                "event_id": event_id, "customer_id": customer, "occurred_at": at,
                "received_at": at + 100, "source": "faults",
                "customer": {"email": f"{customer}@example.com", "name": f"Customer {c}"},
                "payload": ("signalbox.events.PaymentFailed", {
                    "payment_id": f"pay-{event_id}", "product": "pro", "amount_minor": 4900,
                    "currency": "EUR"}),
            })))
    return Load(tuple(events))


#: The load of each fault test: 200 events (100 customers, 2 failed payments each), so
#: 400 commands, produced over 4 s. Small: a dispatcher's takeover after SIGKILL
#: alone takes ~20 s, a broker's restart 10-20 s on this 2-core machine.
RATE = 50.0


@dataclass
class PacedProducer:
    """Writes a load to a topic at ``rate`` events a second from a thread of its own,
    so a fault can land while events are still arriving."""

    bootstrap: str
    topic: str
    load: Load
    rate: float
    produced: int = 0
    error: BaseException | None = None
    _thread: threading.Thread | None = field(default=None, repr=False)

    def start(self) -> PacedProducer:
        self._thread = threading.Thread(target=self._run, name="paced-producer", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        try:
            # murmur2: the partition a Java or aiokafka producer picks for the customer id
            p = Producer({"bootstrap.servers": self.bootstrap, "enable.idempotence": True,
                          "partitioner": "murmur2_random", "linger.ms": 5,
                          "log_level": 0})  # a broker down on purpose is no news
            started = time.monotonic()
            for n, (customer, value) in enumerate(self.load.events):
                time.sleep(max(0.0, started + n / self.rate - time.monotonic()))  # the pace
                p.produce(self.topic, key=customer.encode(), value=value)
                p.poll(0)
                self.produced = n + 1
            if p.flush(120) != 0:
                raise AssertionError(f"{p.flush(0)} events were not delivered to {self.topic}")
        except BaseException as exc:  # reported by join()
            self.error = exc

    def wait_for(self, count: int, timeout: float = 60.0) -> None:
        """Until ``count`` events were handed to the producer."""
        produced = eventually_sync(lambda: self.produced,
                                   lambda now: now >= count or self.error is not None,
                                   within_s=timeout, every_s=0.02)
        if produced < count:
            raise AssertionError(f"{produced} of {count} events produced") from self.error

    def join(self, timeout: float = 150.0) -> None:
        """Until every event is acknowledged by the broker (or fail)."""
        assert self._thread is not None
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise AssertionError(f"events still not delivered after {timeout}s")
        if self.error is not None:
            raise self.error


LOAD = payment_failures(customers=100, per_customer=2)
