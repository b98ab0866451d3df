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

A rebuild decodes every customer's state (about 0.2-0.4 ms each here, so tens of
seconds for 100k customers), so it yields to the event loop every
``REBUILD_BATCH`` customers: Kafka heartbeats and the agent keep running.
Customers the agent touches meanwhile are re-read at the end, so the new index
never holds a due time older than their state.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable

from signalbox.evaluator import metrics
from signalbox.evaluator.engine import AutomationSet, CustomerState, TimerIndex, next_due

#: ``(customer, partition) -> state``, read where the customer lives.
StateOf = Callable[[str, int], CustomerState | None]
REBUILD_BATCH = 500


class PartitionTimers:
    def __init__(self) -> None:
        self._indexes: dict[int, TimerIndex] = {}
        self._home: dict[str, int] = {}
        self._touched: set[str] | None = None  # during a rebuild: customers changed meanwhile
        self._lock = asyncio.Lock()

    def lives_on(self, customer_id: str, partition: int) -> None:
        """Record where a customer's state is (changelog replay, processed inputs)."""
        self._home[customer_id] = partition

    def note(self, customer_id: str, partition: int, state: CustomerState | None,
             automations: AutomationSet) -> None:
        """Re-index one customer after its state changed."""
        self._home[customer_id] = partition
        if self._touched is not None:
            self._touched.add(customer_id)
        index = self._indexes.setdefault(partition, TimerIndex())
        due = next_due(state, automations) if state is not None else None
        index.set(customer_id, due)
        metrics.TIMERS.labels(str(partition)).set(len(index))

    def pop_due(self, partition: int, at: int) -> list[str]:
        index = self._indexes.get(partition)
        if index is None:
            return []
        due = index.pop_due(at)
        if self._touched is not None:
            self._touched.update(due)
        metrics.TIMERS.labels(str(partition)).set(len(index))
        metrics.TIMERS_FIRED.inc(len(due))
        return due

    async def rebuild(self, partitions: Iterable[int], state_of: StateOf,
                      automations: AutomationSet) -> int:
        """Index every known customer of ``partitions`` afresh; other partitions' indexes
        are dropped. Where customers live is kept for all partitions: a standby replica
        replays its changelog partitions once, and when one becomes active here the
        rebalance replays only the records since, so the earlier ones' homes are needed.

        Returns the number of customers with a timer. Rebuilds run one at a time.
        """
        keep = set(partitions)
        async with self._lock:
            self._touched = set()
            try:
                fresh = {p: TimerIndex() for p in keep}
                homes = [(c, p) for c, p in self._home.items() if p in keep]
                for n, (customer_id, partition) in enumerate(homes, 1):
                    self._index_into(fresh[partition], customer_id, partition, state_of,
                                     automations)
                    if n % REBUILD_BATCH == 0:
                        await asyncio.sleep(0)
                for customer_id in self._touched:  # changed while we read: read again
                    partition = self._home.get(customer_id, -1)
                    if partition in fresh:
                        self._index_into(fresh[partition], customer_id, partition, state_of,
                                         automations)
            finally:
                self._touched = None
            for gone in set(self._indexes) - keep:
                metrics.TIMERS.labels(str(gone)).set(0)
            self._indexes = fresh
            for p, index in fresh.items():
                metrics.TIMERS.labels(str(p)).set(len(index))
            return sum(len(i) for i in fresh.values())

    @staticmethod
    def _index_into(index: TimerIndex, customer_id: str, partition: int, state_of: StateOf,
                    automations: AutomationSet) -> None:
        state = state_of(customer_id, partition)
        index.set(customer_id, next_due(state, automations) if state is not None else None)

    def partitions(self) -> set[int]:
        return set(self._indexes)

    def __len__(self) -> int:
        return sum(len(i) for i in self._indexes.values())
