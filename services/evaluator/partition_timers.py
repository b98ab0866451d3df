"""Which customers of which partition have a timer due: a tick costs what is due.

One engine ``TimerIndex`` per assigned partition, holding ``next_due(state,
automations)`` of every customer of that partition. A tick for partition *p*
at time *T* pops only *p*'s customers due by *T* (design principle 6), so the
agent evaluates them under the tick's own event and their state is written to
changelog partition *p*, the partition they live on.

Where a customer lives, and when it is next due, is learnt from the records
themselves, never from a partitioner: every stored state starts with its
``next_due`` and the digest of the time automations it was computed for
(:func:`summary` reads those few bytes without decoding the state). They come from
the changelog records replayed at recovery (memory store), from the local store
scanned after a restart (RocksDB), and from every state the evaluator writes. So an
index is rebuilt from small summaries; only a state written under other time
automations (or by an older version) is decoded to compute its due time afresh.
Rebuilds run when partitions are assigned (after table recovery) and when the time
automations change: O(customers) then, once; O(due) per tick.

A rebuild yields to the event loop every ``REBUILD_BATCH`` customers so Kafka
heartbeats and the agent keep running; customers the agent touches meanwhile are
re-read at the end, so the new index never holds a due time older than their state.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable, Iterable
from typing import Protocol

from signalbox.common.codec import CONFLUENT_HEADER_LEN, CONFLUENT_MAGIC, HEADER_LEN, MAGIC
from signalbox.evaluator import metrics
from signalbox.evaluator.engine import (
    NEXT_DUE_RULES,
    AutomationSet,
    CustomerState,
    TimerIndex,
    next_due,
)

#: ``(customer, partition) -> state``, read where the customer lives.
StateOf = Callable[[str, int], CustomerState | None]
#: ``(next_due, timers_digest)`` stored at the front of a state record.
Summary = tuple[int | None, int]
REBUILD_BATCH = 2000


def timers_digest(automations: AutomationSet) -> int:
    """A stable, non-zero 63-bit digest of what ``next_due`` depends on: the time
    automations' ids (a customer's marks are kept by id) and triggers, and the
    version of its rules."""
    text = repr((NEXT_DUE_RULES, [(a.id, a.trigger) for a in automations.timed])).encode()
    value = int.from_bytes(hashlib.blake2b(text, digest_size=8).digest(), "big") >> 1
    return value or 1


def due_of(state: CustomerState | None, automations: AutomationSet) -> int | None:
    return next_due(state, automations) if state is not None else None


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    """An Avro zig-zag varint at ``pos``: (value, position after it)."""
    result = shift = 0
    while True:
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return (result >> 1) ^ -(result & 1), pos
        shift += 7


def summary(value: bytes, writers: frozenset[bytes], registry_ids: frozenset[int]
            ) -> Summary | None:
    """``(next_due, timers_digest)`` from the first bytes of a stored state, or ``None``
    when its writer schema does not start with them (an older version: decode it).

    ``writers``: fingerprints of the schemas that do; ``registry_ids``: their ids in
    the schema registry, for records in the Confluent wire format.
    """
    try:
        if value[:2] == MAGIC:
            if value[2:HEADER_LEN] not in writers:
                return None
            pos = HEADER_LEN
        elif value[:1] == CONFLUENT_MAGIC:
            if int.from_bytes(value[1:CONFLUENT_HEADER_LEN], "big") not in registry_ids:
                return None
            pos = CONFLUENT_HEADER_LEN
        else:
            return None
        branch, pos = _varint(value, pos)
        due = None
        if branch == 1:
            due, pos = _varint(value, pos)
        digest, _ = _varint(value, pos)
        return due, digest
    except IndexError:  # truncated: let the decoder say what is wrong
        return None


class Timers(Protocol):
    """The timer index the evaluator keeps: in memory (:class:`PartitionTimers`) or on
    disk beside a RocksDB store (:class:`~signalbox.evaluator.disktimers.DiskTimers`)."""

    digest: int

    def lives_on(self, customer_id: str, partition: int, known: Summary | None) -> None: ...

    def note(self, customer_id: str, partition: int, due: int | None, digest: int) -> None: ...

    def pop_due(self, partition: int, at: int) -> list[str]: ...

    async def assigned(self, partitions: set[int], state_of: StateOf,
                       automations: AutomationSet) -> tuple[int, int]: ...

    async def reindex(self, automations: AutomationSet, state_of: StateOf
                      ) -> tuple[int, int]: ...

    def partitions(self) -> set[int]: ...

    def stale(self) -> None:
        """A rebuild is coming (the time automations changed): ticks wait for it."""
        ...

    async def current(self) -> None:
        """Return once no rebuild is pending (a tick must not pop from a stale index)."""
        ...

    def count(self) -> int:
        """Customers with a timer in the assigned partitions (may be an estimate)."""
        ...


class PartitionTimers:
    def __init__(self) -> None:
        self._indexes: dict[int, TimerIndex] = {}
        #: customer → (partition, next due, digest it was computed for)
        self._home: dict[str, tuple[int, int | None, int]] = {}
        self._touched: set[str] | None = None  # during a rebuild: customers changed meanwhile
        self._lock = asyncio.Lock()
        self.digest = 0  # of the time automations last indexed for
        self._current = asyncio.Event()
        self._current.set()

    def lives_on(self, customer_id: str, partition: int, known: Summary | None) -> None:
        """A stored state seen (changelog replay, local store scan): where the customer
        lives, and its due time if the record carried one (``None``: decode to know)."""
        due, digest = known if known is not None else (None, 0)
        self._home[customer_id] = (partition, due, digest)

    def note(self, customer_id: str, partition: int, due: int | None, digest: int) -> None:
        """The customer's state changed (or was looked at): its next due time is ``due``,
        computed for the time automations with ``digest``."""
        self._home[customer_id] = (partition, due, digest)
        if self._touched is not None:
            self._touched.add(customer_id)
        index = self._indexes.setdefault(partition, TimerIndex())
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
                      automations: AutomationSet) -> tuple[int, int]:
        """Index every known customer of ``partitions`` afresh; other partitions' indexes
        are dropped. Where customers live is kept for all partitions: a standby replica
        replays its changelog partitions once, and when one becomes active here the
        rebalance replays only the records since, so the earlier ones' homes are needed.

        Returns (customers with a timer, states that had to be decoded). One at a time.
        """
        keep = set(partitions)
        digest = timers_digest(automations)
        decoded = 0
        async with self._lock:
            self._touched = set()
            try:
                fresh = {p: TimerIndex() for p in keep}
                homes = [(c, h) for c, h in self._home.items() if h[0] in keep]
                for n, (customer_id, (partition, due, known_for)) in enumerate(homes, 1):
                    if known_for != digest:
                        due = due_of(state_of(customer_id, partition), automations)
                        self._home[customer_id] = (partition, due, digest)
                        decoded += 1
                    fresh[partition].set(customer_id, due)
                    if n % REBUILD_BATCH == 0:
                        await asyncio.sleep(0)
                for customer_id in self._touched:  # changed while we read: read again
                    partition = self._home[customer_id][0]
                    if partition in fresh:
                        due = due_of(state_of(customer_id, partition), automations)
                        self._home[customer_id] = (partition, due, digest)
                        fresh[partition].set(customer_id, due)
            finally:
                self._touched = None
            metrics.forget(set(self._indexes) - keep)  # no longer ours: not exported
            self._indexes = fresh
            for p, index in fresh.items():
                metrics.TIMERS.labels(str(p)).set(len(index))
            return sum(len(i) for i in fresh.values()), decoded

    async def assigned(self, partitions: set[int], state_of: StateOf,
                       automations: AutomationSet) -> tuple[int, int]:
        """Partitions now ours (after recovery): (customers indexed, states decoded)."""
        self.digest = timers_digest(automations)
        return await self.rebuild(partitions, state_of, automations)

    async def reindex(self, automations: AutomationSet, state_of: StateOf
                      ) -> tuple[int, int]:
        """The time automations changed."""
        self.digest = timers_digest(automations)
        try:
            return await self.rebuild(self.partitions(), state_of, automations)
        finally:
            self._current.set()

    def stale(self) -> None:
        self._current.clear()

    async def current(self) -> None:
        await self._current.wait()

    def partitions(self) -> set[int]:
        return set(self._indexes)

    def count(self) -> int:
        return sum(len(i) for i in self._indexes.values())

    def __len__(self) -> int:
        return self.count()
