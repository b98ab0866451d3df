"""The timer index on disk, beside the RocksDB state store: RAM does not grow with
customers, and a restart finds the index where it left it.

One RocksDB database per partition (``<data dir>/timers/p<n>``) whose keys are
``0x00 + due time (8 bytes, big-endian, offset so negatives sort first) + customer
id``: RocksDB keeps them in due order, so a tick reads from the front only the keys
that are due (design principle 6) and deletes them.

Keys are never updated in place: a customer's new due time is a new key and its old
one stays until it surfaces. A surfaced key whose customer is not really due costs
one evaluation that fires nothing (the engine fires only what is due by the
customer's own marks) and the customer is indexed again. So every write is a single
put, and a key too early is harmless; the index must only never be too *late*,
which is why a state whose due time is unknown (an older record, or one computed
for other time automations) is indexed at 0, "look at it at the next tick".

A database is *complete* for the time automations whose digest its marker key holds.
It becomes so by a rebuild from the local state store (each state's summary, decoding
only states written under other time automations); a rebuild writes a fresh database
and swaps it in, so keys of the old one do not linger. Rebuilt: when a partition is
assigned without a complete index (a new volume, a standby that turned active, an
interrupted rebuild), and for every assigned partition when the time automations
change. In between, every state written or replayed from the changelog adds its key.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Callable, Iterable
from pathlib import Path

import rocksdict

from signalbox.evaluator import metrics
from signalbox.evaluator.engine import AutomationSet, CustomerState
from signalbox.evaluator.partition_timers import StateOf, Summary, due_of, timers_digest

#: ``(partition, key, value)`` of one stored state (:func:`storescan.scan`).
Entry = tuple[int, bytes, bytes]
KEY_PREFIX = b"\x00"
COMPLETE = b"\x01complete"  # value: the digest the index is complete for
_OFFSET = 1 << 63
YIELD_EVERY = 20_000


def _open(path: Path) -> rocksdict.Rdict:
    """Small keys, read from the front: a small write buffer and block cache (bounded
    RAM, whatever the number of customers)."""
    options = rocksdict.Options()
    options.create_if_missing(True)
    options.set_write_buffer_size(4 * 1024 * 1024)
    table = rocksdict.BlockBasedOptions()
    table.set_block_cache(rocksdict.Cache(8 * 1024 * 1024))
    options.set_block_based_table_factory(table)
    return rocksdict.Rdict(str(path), options=options)


def _key(due: int, customer_id: str) -> bytes:
    return KEY_PREFIX + (due + _OFFSET).to_bytes(8, "big") + customer_id.encode("utf-8")


class DiskTimers:
    def __init__(self, directory: Path, scan: Callable[[set[int]], Iterable[Entry]],
                 summary: Callable[[bytes], Summary | None],
                 decode: Callable[[bytes], CustomerState]) -> None:
        self._dir = directory
        self._scan, self._summary, self._decode = scan, summary, decode
        self._dbs: dict[int, rocksdict.Rdict] = {}
        self._building: dict[int, rocksdict.Rdict] = {}  # rebuilds in progress
        self._assigned: set[int] = set()
        self.digest = 0  # of the time automations last indexed for
        self._lock = asyncio.Lock()
        self._current = asyncio.Event()
        self._current.set()

    def _db(self, partition: int) -> rocksdict.Rdict:
        db = self._dbs.get(partition)
        if db is None:
            self._dir.mkdir(parents=True, exist_ok=True)
            db = self._dbs[partition] = _open(self._dir / f"p{partition}")
        return db

    def _put(self, partition: int, due: int, customer_id: str) -> None:
        key = _key(due, customer_id)
        self._db(partition)[key] = b""
        building = self._building.get(partition)
        if building is not None:
            building[key] = b""

    def lives_on(self, customer_id: str, partition: int, known: Summary | None) -> None:
        """A stored state replayed from the changelog: index it by its summary when that
        was computed for the time automations indexed for, else at 0 (look at once)."""
        if known is not None and known[1] == self.digest:
            if known[0] is not None:
                self._put(partition, known[0], customer_id)
        else:
            self._put(partition, 0, customer_id)

    def note(self, customer_id: str, partition: int, due: int | None, digest: int) -> None:
        if due is not None:
            self._put(partition, due, customer_id)

    def pop_due(self, partition: int, at: int) -> list[str]:
        """Customers with a key due by ``at``, in due order, each once; their keys go."""
        if partition not in self._assigned:
            return []
        db = self._db(partition)
        limit = KEY_PREFIX + (at + _OFFSET).to_bytes(8, "big")
        out: dict[str, None] = {}
        batch = rocksdict.WriteBatch()
        it = db.iter()
        it.seek(KEY_PREFIX)
        while it.valid():
            key = it.key()
            if key[:1] != KEY_PREFIX or key[:9] > limit:
                break
            out[key[9:].decode("utf-8", "replace")] = None
            batch.delete(key)
            it.next()
        del it
        if out:
            db.write(batch)
        metrics.TIMERS_FIRED.inc(len(out))
        return list(out)

    async def assigned(self, partitions: set[int], state_of: StateOf,
                       automations: AutomationSet) -> tuple[int, int]:
        """Partitions now ours: rebuild those without an index complete for
        ``automations``. Returns (states scanned, states decoded)."""
        self._assigned = set(partitions)
        self.digest = timers_digest(automations)
        mark = self.digest.to_bytes(8, "big")
        scanned = decoded = 0
        for partition in sorted(partitions):
            if self._db(partition).get(COMPLETE) != mark:
                s, d = await self._rebuild(partition, automations)
                scanned, decoded = scanned + s, decoded + d
        self._gauges()
        return scanned, decoded

    async def reindex(self, automations: AutomationSet, state_of: StateOf
                      ) -> tuple[int, int]:
        """The time automations changed: rebuild every assigned partition."""
        self.digest = timers_digest(automations)
        scanned = decoded = 0
        try:
            for partition in sorted(self._assigned):
                s, d = await self._rebuild(partition, automations)
                scanned, decoded = scanned + s, decoded + d
        finally:
            self._current.set()
        self._gauges()
        return scanned, decoded

    def stale(self) -> None:
        self._current.clear()

    async def current(self) -> None:
        await self._current.wait()

    async def _rebuild(self, partition: int, automations: AutomationSet) -> tuple[int, int]:
        async with self._lock:
            digest = timers_digest(automations)
            fresh_path = self._dir / f"p{partition}.rebuilding"
            shutil.rmtree(fresh_path, ignore_errors=True)
            self._dir.mkdir(parents=True, exist_ok=True)
            fresh = self._building[partition] = _open(fresh_path)
            scanned = decoded = 0
            try:
                for _, key, value in self._scan({partition}):
                    customer_id = key.decode("utf-8", "replace")
                    known = self._summary(value)
                    if known is not None and known[1] == digest:
                        due = known[0]
                    else:
                        due = due_of(self._decode(value), automations)
                        decoded += 1
                    if due is not None:
                        fresh[_key(due, customer_id)] = b""
                    scanned += 1
                    if scanned % YIELD_EVERY == 0:
                        await asyncio.sleep(0)  # heartbeats, readiness and the agent go on
                fresh[COMPLETE] = digest.to_bytes(8, "big")
            finally:
                del self._building[partition]
            old = self._dbs.pop(partition, None)
            if old is not None:
                old.close()
            fresh.close()
            shutil.rmtree(self._dir / f"p{partition}", ignore_errors=True)
            fresh_path.rename(self._dir / f"p{partition}")
            return scanned, decoded

    def _estimate(self, partition: int) -> int:
        """Keys of a partition's index, as RocksDB estimates them (stale keys included)."""
        return int(self._db(partition).property_int_value("rocksdb.estimate-num-keys") or 0)

    def _gauges(self) -> None:
        for partition in self._assigned:
            metrics.TIMERS.labels(str(partition)).set(self._estimate(partition))

    def count(self) -> int:
        return sum(self._estimate(p) for p in self._assigned)

    def partitions(self) -> set[int]:
        return set(self._assigned)

    def close(self) -> None:
        for db in self._dbs.values():
            db.close()
        self._dbs.clear()
