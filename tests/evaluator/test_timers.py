"""Per-partition timers of the shell, with the real engine (no Kafka)."""

from __future__ import annotations

import asyncio

import pytest

from signalbox.common import schemas
from signalbox.evaluator import timers as timers_module
from signalbox.evaluator.engine import (
    AutomationSet,
    CustomerState,
    Event,
    evaluate,
    parse_automations,
)
from signalbox.evaluator.timers import PartitionTimers

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


def test_a_tick_pops_only_its_partitions_due_customers() -> None:
    timers = PartitionTimers()
    timers.note("a", 0, logged_in("a", T0), NO_LOGIN)
    timers.note("b", 1, logged_in("b", T0), NO_LOGIN)
    timers.note("c", 0, logged_in("c", T0 + 3 * DAY), NO_LOGIN)
    assert timers.pop_due(0, T0 + 7 * DAY - 1) == []
    assert timers.pop_due(0, T0 + 7 * DAY) == ["a"]
    assert timers.pop_due(1, T0 + 8 * DAY) == ["b"]
    assert timers.pop_due(2, T0 + 99 * DAY) == []  # not ours
    assert len(timers) == 1


async def test_rebuild_indexes_known_customers_of_the_partitions_kept() -> None:
    states = {"a": logged_in("a", T0), "b": logged_in("b", T0), "gone": logged_in("gone", T0)}
    timers = PartitionTimers()
    for customer, partition in (("a", 0), ("b", 1), ("gone", 2)):
        timers.lives_on(customer, partition)
    assert await timers.rebuild({0, 1}, states.get, NO_LOGIN) == 2
    assert timers.partitions() == {0, 1}
    assert timers.pop_due(2, T0 + 8 * DAY) == []
    # Partition 2 becomes ours later (a standby turned active): its customers count again.
    assert await timers.rebuild({0, 1, 2}, states.get, NO_LOGIN) == 3
    # A new automation set: nothing is timed any more.
    assert await timers.rebuild({0, 1}, states.get, AutomationSet()) == 0


async def test_a_customer_changed_during_a_rebuild_is_indexed_by_its_new_state(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(timers_module, "REBUILD_BATCH", 1)  # yield after every customer
    states = {f"c{i}": logged_in(f"c{i}", T0) for i in range(5)}
    timers = PartitionTimers()
    for customer in states:
        timers.lives_on(customer, 0)
    rebuild = asyncio.ensure_future(timers.rebuild({0}, states.get, NO_LOGIN))
    await asyncio.sleep(0)
    await asyncio.sleep(0)  # the rebuild has read c0 and c1 by now
    states["c0"] = logged_in("c0", T0 + 5 * DAY, states["c0"])
    timers.note("c0", 0, states["c0"], NO_LOGIN)
    await rebuild
    assert timers.pop_due(0, T0 + 7 * DAY) == ["c1", "c2", "c3", "c4"]
    assert timers.pop_due(0, T0 + 12 * DAY) == ["c0"]
