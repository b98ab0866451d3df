"""Per-partition timers of the shell, with the real engine (no Kafka)."""

from __future__ import annotations

import asyncio

import pytest

from signalbox.common import schemas
from signalbox.common.codec import AvroCodec
from signalbox.evaluator import partition_timers as timers_module
from signalbox.evaluator.engine import (
    AutomationSet,
    CustomerState,
    Event,
    evaluate,
    parse_automations,
)
from signalbox.evaluator.engine_records import state_to_record
from signalbox.evaluator.partition_timers import PartitionTimers, due_of, timers_digest
from signalbox.evaluator.store import MemoryLocalStore, StateStore
from tests.common.spec import single_object

DAY = 86_400_000
T0 = 1_790_000_000_000
NO_LOGIN = parse_automations("""
format: signalbox/automations@2
automations:
  - id: inactive
    trigger: {type: no_login, days: 7}
    actions: [{type: email, to: customer, template: t}]
""", schemas.event_types())


def logged_in(customer: str, at: int, state: CustomerState | None = None) -> CustomerState:
    event = Event(event_id=f"{customer}-{at}", customer_id=customer, type="user.logged_in",
                  occurred_at=at, received_at=at, data={"user_id": None})
    decided = evaluate(state, event, NO_LOGIN).state
    assert decided is not None
    return decided


DIGEST = timers_digest(NO_LOGIN)


def note(timers: PartitionTimers, customer: str, partition: int, state: CustomerState) -> None:
    timers.note(customer, partition, due_of(state, NO_LOGIN), DIGEST)


class CountingReader:
    """A :data:`timers_module.StateOf` over ``states`` that counts how often it is read."""

    def __init__(self, states: dict[str, CustomerState]) -> None:
        self.states = states
        self.calls = 0

    def __call__(self, customer: str, partition: int) -> CustomerState | None:
        self.calls += 1
        return self.states.get(customer)


def test_a_tick_pops_only_its_partitions_due_customers() -> None:
    timers = PartitionTimers()
    note(timers, "a", 0, logged_in("a", T0))
    note(timers, "b", 1, logged_in("b", T0))
    note(timers, "c", 0, logged_in("c", T0 + 3 * DAY))
    assert timers.pop_due(0, T0 + 7 * DAY - 1) == []
    assert timers.pop_due(0, T0 + 7 * DAY) == ["a"]
    assert timers.pop_due(1, T0 + 8 * DAY) == ["b"]
    assert timers.pop_due(2, T0 + 99 * DAY) == []  # not ours
    assert len(timers) == 1


async def test_rebuild_indexes_known_customers_of_the_partitions_kept() -> None:
    states = {"a": logged_in("a", T0), "b": logged_in("b", T0), "gone": logged_in("gone", T0)}
    timers = PartitionTimers()
    for customer, partition in (("a", 0), ("b", 1), ("gone", 2)):
        timers.lives_on(customer, partition, None)  # an older record: no summary
    read = CountingReader(states)
    assert await timers.rebuild({0, 1}, read, NO_LOGIN) == (2, 2)
    assert timers.partitions() == {0, 1}
    assert timers.pop_due(2, T0 + 8 * DAY) == []
    # Partition 2 becomes ours later (a standby turned active): its customers count again,
    # and only its customer is decoded (the others' due times are known now).
    assert await timers.rebuild({0, 1, 2}, read, NO_LOGIN) == (3, 1)
    # A new automation set: nothing is timed any more, every state is read again.
    assert await timers.rebuild({0, 1}, read, AutomationSet()) == (0, 2)


async def test_due_times_read_from_stored_states_need_no_decoding() -> None:
    """The summary at the front of a stored state is the due time the rebuild uses."""
    codec = AvroCodec()
    store = StateStore(codec, MemoryLocalStore({}))
    states = {"a": logged_in("a", T0), "b": logged_in("b", T0 + DAY)}
    timers = PartitionTimers()
    for customer, state in states.items():
        raw = codec.encode(schemas.CUSTOMER_STATE,
                           state_to_record(state, due_of(state, NO_LOGIN), DIGEST))
        assert store.summary(raw) == (due_of(state, NO_LOGIN), DIGEST)
        timers.lives_on(customer, 0, store.summary(raw))
    read = CountingReader(states)
    assert await timers.rebuild({0}, read, NO_LOGIN) == (2, 0)
    assert read.calls == 0
    assert timers.pop_due(0, T0 + 8 * DAY) == ["a", "b"]
    # The same records under other time automations are decoded and indexed afresh.
    assert await timers.rebuild({0}, read, AutomationSet()) == (0, 2)


def test_a_summary_is_read_only_from_schemas_that_carry_it() -> None:
    codec = AvroCodec()
    store = StateStore(codec, MemoryLocalStore({}))
    v2 = next(v for v in codec.versions(schemas.CUSTOMER_STATE) if v.source.endswith("/2.avsc"))
    record = state_to_record(logged_in("a", T0))
    del record["next_due"], record["timers_digest"]
    old = single_object(v2, record)
    assert codec.decode(schemas.CUSTOMER_STATE, old)["next_due"] is None  # readable...
    assert store.summary(old) is None  # ...but says nothing: decode it
    assert store.summary(b"garbage") is None
    assert store.summary(b"\xc3\x01") is None


async def test_a_customer_changed_during_a_rebuild_is_indexed_by_its_new_state(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(timers_module, "REBUILD_BATCH", 1)  # yield after every customer
    states = {f"c{i}": logged_in(f"c{i}", T0) for i in range(5)}
    timers = PartitionTimers()
    for customer in states:
        timers.lives_on(customer, 0, None)
    rebuild = asyncio.ensure_future(timers.rebuild({0}, CountingReader(states), NO_LOGIN))
    await asyncio.sleep(0)
    await asyncio.sleep(0)  # the rebuild has read c0 and c1 by now
    states["c0"] = logged_in("c0", T0 + 5 * DAY, states["c0"])
    note(timers, "c0", 0, states["c0"])
    await rebuild
    assert timers.pop_due(0, T0 + 7 * DAY) == ["c1", "c2", "c3", "c4"]
    assert timers.pop_due(0, T0 + 12 * DAY) == ["c0"]
