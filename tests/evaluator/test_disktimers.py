"""The timer index on disk, with real RocksDB databases and the real engine and codec."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from signalbox.common import schemas
from signalbox.common.codec import AvroCodec
from signalbox.evaluator import disktimers
from signalbox.evaluator.disktimers import DiskTimers, Entry
from signalbox.evaluator.engine import AutomationSet, CustomerState
from signalbox.evaluator.engine_records import state_to_record
from signalbox.evaluator.partition_timers import due_of, timers_digest
from signalbox.evaluator.store import MemoryLocalStore, StateStore
from tests.evaluator.test_partition_timers import DAY, NO_LOGIN, T0, logged_in

codec = AvroCodec()
store = StateStore(codec, MemoryLocalStore({}))
DIGEST = timers_digest(NO_LOGIN)


def stored(state: CustomerState, automations: AutomationSet = NO_LOGIN) -> bytes:
    return codec.encode(schemas.CUSTOMER_STATE, state_to_record(
        state, due_of(state, automations), timers_digest(automations)))


class Volume:
    """The states a RocksDB store would hold, per partition, as :func:`scan` yields them."""

    def __init__(self) -> None:
        self.states: dict[int, dict[str, bytes]] = {}

    def put(self, partition: int, state: CustomerState,
            automations: AutomationSet = NO_LOGIN) -> None:
        self.states.setdefault(partition, {})[state.customer_id] = stored(state, automations)

    def scan(self, partitions: set[int]) -> Iterator[Entry]:
        for p in sorted(partitions):
            for customer, value in self.states.get(p, {}).items():
                yield p, customer.encode(), value


def timers(tmp_path: Path, volume: Volume) -> DiskTimers:
    return DiskTimers(tmp_path / "timers", volume.scan, store.summary, store.decode)


def never(customer: str, partition: int) -> CustomerState | None:
    raise AssertionError("the disk index reads states from the store scan")


async def test_a_tick_pops_its_partitions_due_customers_once_in_due_order(
        tmp_path: Path) -> None:
    index = timers(tmp_path, Volume())
    await index.assigned({0, 1}, never, NO_LOGIN)
    index.note("b", 0, T0 + 2 * DAY, DIGEST)
    index.note("a", 0, T0 + DAY, DIGEST)
    index.note("a", 0, T0 + 3 * DAY, DIGEST)  # moved later: the old key surfaces too
    index.note("c", 1, T0 + DAY, DIGEST)
    index.note("d", 0, None, DIGEST)
    assert index.pop_due(0, T0) == []
    assert index.pop_due(0, T0 + 2 * DAY) == ["a", "b"]
    assert index.pop_due(0, T0 + 2 * DAY) == []  # popped keys are gone
    assert index.pop_due(0, T0 + 9 * DAY) == ["a"]
    assert index.pop_due(2, T0 + 9 * DAY) == []  # not ours
    assert index.pop_due(1, T0 + 9 * DAY) == ["c"]


async def test_an_index_is_built_from_the_store_once_and_found_complete_after_a_restart(
        tmp_path: Path) -> None:
    volume = Volume()
    volume.put(0, logged_in("a", T0))
    volume.put(0, logged_in("b", T0 + DAY), AutomationSet())  # written under other timers
    volume.put(1, logged_in("c", T0))
    first = timers(tmp_path, volume)
    assert await first.assigned({0, 1}, never, NO_LOGIN) == (3, 1)  # b was decoded
    first.close()

    again = timers(tmp_path, volume)  # a restart on the same volume
    assert await again.assigned({0, 1}, never, NO_LOGIN) == (0, 0)
    assert again.pop_due(0, T0 + 8 * DAY) == ["a", "b"]
    assert again.pop_due(1, T0 + 8 * DAY) == ["c"]
    # Other time automations: every state is read again; those not written under them
    # (a and c) are decoded.
    assert await again.reindex(AutomationSet(), never) == (3, 2)
    assert again.pop_due(0, T0 + 99 * DAY) == []


async def test_a_replayed_state_of_unknown_due_time_is_looked_at_the_next_tick(
        tmp_path: Path) -> None:
    index = timers(tmp_path, Volume())
    index.digest = DIGEST
    index.lives_on("known", 0, store.summary(stored(logged_in("known", T0))))
    index.lives_on("old-record", 0, None)
    index.lives_on("other-timers", 0, (T0 + 50 * DAY, DIGEST + 1))
    index._assigned = {0}  # (as after an assignment whose index was complete)
    assert index.pop_due(0, T0 + 1) == ["old-record", "other-timers"]
    assert index.pop_due(0, T0 + 8 * DAY) == ["known"]


async def test_a_customer_noted_during_a_rebuild_keeps_its_new_key(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(disktimers, "YIELD_EVERY", 1)
    volume = Volume()
    for i in range(5):
        volume.put(0, logged_in(f"c{i}", T0))
    index = timers(tmp_path, volume)
    rebuild = asyncio.ensure_future(index.assigned({0}, never, NO_LOGIN))
    await asyncio.sleep(0)  # two turns of the loop: the rebuild reads two customers
    await asyncio.sleep(0)  # (scheduling, not a wait: no time has to pass)
    index.note("late", 0, T0 + DAY, DIGEST)  # the agent wrote a state meanwhile
    await rebuild
    assert index.pop_due(0, T0 + DAY) == ["late"]
    assert index.pop_due(0, T0 + 8 * DAY) == [f"c{i}" for i in range(5)]
