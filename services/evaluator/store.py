"""Customer states: decoded in memory while a customer is active, Avro bytes at rest.

The Faust table owns the bytes (its local store, memory or RocksDB, and its changelog
topic); :class:`StateStore` sits in front of it so a busy customer is decoded once,
not once per input, and written once per batch, not once per input. The evaluator
writes the changelog itself, in batches, with the partition of the customer's inputs
(Faust's ``table[key] = value`` would take the partition of whatever event is
"current", which in a batch of several partitions is the wrong one), and puts the
bytes into the local store only after the changelog has acknowledged them, so the
local store is never ahead of the changelog that rebuilds it elsewhere.

A state the engine built is encoded without fastavro's schema-wide ``validate``
(most of an encode's cost): the property tests hold the engine to the schema's
types, and :func:`check_ints` keeps the one check fastavro's writer would skip, the
32-bit range of ``int`` fields (it writes a larger int without complaint).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple, Protocol

from signalbox.common import schemas
from signalbox.common.codec import AvroCodec, EncodeError
from signalbox.evaluator.engine import AutomationSet, CustomerState
from signalbox.evaluator.engine_records import state_from_record, state_to_record
from signalbox.evaluator.partition_timers import Summary, due_of, summary

INT_MIN, INT_MAX = -(2**31), 2**31 - 1


class LocalStore(Protocol):
    """The bytes of one table's partitions on this worker."""

    def get(self, key: bytes, partition: int) -> bytes | None: ...

    def put(self, key: bytes, partition: int, value: bytes) -> None: ...

    def persisted(self, partition: int, offset: int) -> None:
        """The changelog has everything up to ``offset`` of ``partition``."""
        ...


class MemoryLocalStore:
    """faust's memory store: one dict for all partitions, rebuilt from the changelog."""

    def __init__(self, data: dict[bytes, bytes]) -> None:
        self._data = data

    def get(self, key: bytes, partition: int) -> bytes | None:
        return self._data.get(key)

    def put(self, key: bytes, partition: int, value: bytes) -> None:
        self._data[key] = value

    def persisted(self, partition: int, offset: int) -> None:
        return None  # nothing survives the process: recovery replays the changelog


class RocksLocalStore:
    """faust's RocksDB store: one database per partition, each remembering the changelog
    offset it holds, so a restart replays only what came after it."""

    def __init__(self, store: Any, changelog_topic: str) -> None:
        self._store = store
        self._topic = changelog_topic

    def get(self, key: bytes, partition: int) -> bytes | None:
        value = self._store._db_for_partition(partition).get(key)
        return bytes(value) if value is not None else None

    def put(self, key: bytes, partition: int, value: bytes) -> None:
        self._store._db_for_partition(partition).put(key, value)

    def persisted(self, partition: int, offset: int) -> None:
        from faust.types import TP

        self._store.set_persisted_offset(TP(self._topic, partition), offset)


def local_store_of(table: Any) -> LocalStore:
    """The driver for a Faust table's store (memory or RocksDB)."""
    store = table.data
    if hasattr(store, "_db_for_partition"):
        return RocksLocalStore(store, table.changelog_topic.get_topic_name())
    return MemoryLocalStore(store.data)


def check_ints(record: Mapping[str, Any]) -> None:
    """The 32-bit ``int`` fields of ``CustomerState`` (fastavro writes larger ones)."""
    for value in record["failed_payments"].values():
        if not INT_MIN <= value <= INT_MAX:
            raise EncodeError(f"{schemas.CUSTOMER_STATE}: failed_payments {value} is out of "
                              "the int range")
    for approval in record["approvals"].values():
        if not INT_MIN <= approval["automation_version"] <= INT_MAX:
            raise EncodeError(f"{schemas.CUSTOMER_STATE}: automation_version out of range")


class Row(NamedTuple):
    """One state on its way to the changelog."""

    customer_id: str
    key: bytes  # the customer id as the Kafka and store key
    partition: int
    value: bytes
    due: int | None


class StateStore:
    """Decoded states of recently active customers (LRU, ``cache_size`` customers) over
    the table's bytes. ``stage`` keeps a new state in memory until ``written``."""

    def __init__(self, codec: AvroCodec, local: LocalStore, cache_size: int = 20_000) -> None:
        self._codec = codec
        self.local = local
        self._cache: OrderedDict[str, CustomerState | None] = OrderedDict()
        self._size = cache_size
        self._staged: dict[str, tuple[int, CustomerState]] = {}
        prefixed = [v for v in codec.versions(schemas.CUSTOMER_STATE)
                    if v.raw["fields"][0]["name"] == "next_due"]
        self._summarised = frozenset(v.fingerprint for v in prefixed)
        registry = codec.registry
        self._summarised_ids = frozenset(registry.id_for(v) for v in prefixed) \
            if registry is not None else frozenset()

    def get(self, customer_id: str, partition: int) -> CustomerState | None:
        cache = self._cache
        if customer_id in cache:
            cache.move_to_end(customer_id)
            return cache[customer_id]
        state = self._load(customer_id, partition)
        self._remember(customer_id, state)
        return state

    def read(self, customer_id: str, partition: int) -> CustomerState | None:
        """Like ``get``, without keeping what it decoded (for scans over every customer,
        which would only push the active ones out)."""
        if customer_id in self._cache:
            return self._cache[customer_id]
        return self._load(customer_id, partition)

    def _load(self, customer_id: str, partition: int) -> CustomerState | None:
        raw = self.local.get(customer_id.encode("utf-8"), partition)
        return self.decode(raw) if raw else None

    def decode(self, raw: bytes) -> CustomerState:
        return state_from_record(self._codec.decode(schemas.CUSTOMER_STATE, raw,
                                                    plain_times=True))

    def stage(self, customer_id: str, partition: int, state: CustomerState) -> None:
        """The customer's newest state, visible to ``get`` at once, stored by ``written``."""
        self._staged[customer_id] = (partition, state)
        self._remember(customer_id, state)

    def staged(self, automations: AutomationSet, digest: int) -> list[Row]:
        """Every staged state, encoded with its timer summary (next due time for
        ``automations``, whose :func:`~signalbox.evaluator.partition_timers.timers_digest` is
        ``digest``) at the front."""
        out = []
        for customer_id, (partition, state) in self._staged.items():
            due = due_of(state, automations)
            record = state_to_record(state, due, digest)
            check_ints(record)
            out.append(Row(customer_id, customer_id.encode("utf-8"), partition,
                           self._codec.encode(schemas.CUSTOMER_STATE, record, validate=False),
                           due))
        return out

    def summary(self, value: bytes) -> Summary | None:
        """The timer summary at the front of a stored state (``None``: decode it)."""
        return summary(value, self._summarised, self._summarised_ids)

    def written(self, rows: Iterable[Row], offsets: Mapping[int, int]) -> None:
        """The changelog acknowledged ``rows`` (up to ``offsets`` per partition)."""
        for row in rows:
            self.local.put(row.key, row.partition, row.value)
        for partition, offset in offsets.items():
            self.local.persisted(partition, offset)
        self._staged.clear()

    def forget(self, customer_id: str) -> None:
        """Drop one staged state (it cannot be stored): the stored one is read again."""
        self._staged.pop(customer_id, None)
        self._cache.pop(customer_id, None)

    def is_staged(self, customer_id: str) -> bool:
        return customer_id in self._staged

    def abandon(self) -> list[tuple[str, int]]:
        """A batch failed before its states were stored: forget what it staged. Returns
        ``(customer, partition)`` of each, to index again by its stored state."""
        dropped = [(customer_id, partition)
                   for customer_id, (partition, _) in self._staged.items()]
        for customer_id, _ in dropped:
            self._cache.pop(customer_id, None)
        self._staged.clear()
        return dropped

    def clear(self) -> None:
        """After a rebalance another worker may have changed any customer."""
        self._cache.clear()
        self._staged.clear()

    def _remember(self, customer_id: str, state: CustomerState | None) -> None:
        cache = self._cache
        cache[customer_id] = state
        cache.move_to_end(customer_id)
        while len(cache) > self._size:
            oldest = next(iter(cache))
            if oldest in self._staged:  # never evict what is not stored yet
                cache.move_to_end(oldest)
                break
            del cache[oldest]

    def __len__(self) -> int:
        return len(self._cache)
