"""Which customers of which partition have a timer due: a tick costs what is due.

One engine ``TimerIndex`` per assigned partition, holding ``next_due(state,
automations)`` of every customer of that partition. A tick for partition *p*
at time *T* pops only *p*'s customers due by *T* (design principle 6), so the
agent evaluates them under the tick's own event and their state is written to
changelog partition *p*, the partition they live on.

Where a customer lives is learnt from the records themselves (the changelog
events replayed at recovery, and each processed input), never from a
partitioner, so it is right whichever client produced the events. Indexes are
rebuilt when partitions are assigned (after table recovery) and when the
automation set changes: O(customers) then, once; O(due) per tick.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from signalbox.evaluator import metrics
from signalbox.evaluator.engine import AutomationSet, CustomerState, TimerIndex, next_due

StateOf = Callable[[str], CustomerState | None]


class PartitionTimers:
    def __init__(self) -> None:
        self._indexes: dict[int, TimerIndex] = {}
        self._home: dict[str, int] = {}

    def lives_on(self, customer_id: str, partition: int) -> None:
        """Record where a customer's state is (changelog replay, processed inputs)."""
        self._home[customer_id] = partition

    def note(self, customer_id: str, partition: int, state: CustomerState | None,
             automations: AutomationSet) -> None:
        """Re-index one customer after its state changed."""
        self._home[customer_id] = partition
        index = self._indexes.setdefault(partition, TimerIndex())
        due = next_due(state, automations) if state is not None else None
        index.set(customer_id, due)
        metrics.TIMERS.labels(str(partition)).set(len(index))

    def pop_due(self, partition: int, at: int) -> list[str]:
        index = self._indexes.get(partition)
        if index is None:
            return []
        due = index.pop_due(at)
        metrics.TIMERS.labels(str(partition)).set(len(index))
        metrics.TIMERS_FIRED.inc(len(due))
        return due

    def rebuild(self, partitions: Iterable[int], state_of: StateOf,
                automations: AutomationSet) -> int:
        """Index every known customer of ``partitions`` afresh; others are forgotten."""
        keep = set(partitions)
        for gone in set(self._indexes) - keep:
            self._indexes.pop(gone)
            metrics.TIMERS.labels(str(gone)).set(0)
        self._home = {c: p for c, p in self._home.items() if p in keep}
        fresh = {p: TimerIndex() for p in keep}
        for customer_id, partition in self._home.items():
            state = state_of(customer_id)
            due = next_due(state, automations) if state is not None else None
            if due is not None:
                fresh[partition].set(customer_id, due)
        self._indexes = fresh
        for p, index in fresh.items():
            metrics.TIMERS.labels(str(p)).set(len(index))
        return sum(len(i) for i in fresh.values())

    def partitions(self) -> set[int]:
        return set(self._indexes)

    def __len__(self) -> int:
        return sum(len(i) for i in self._indexes.values())
