"""The automations topic: every worker follows it in full and swaps in each valid set.

:class:`AutomationsSource` feeds :mod:`signalbox.evaluator.definitions` from the
topic and holds the current :class:`AutomationSet`, replaced whole (one attribute
assignment on the event loop, so the agent sees either the old or the new set,
never a mix). :class:`AutomationsWriter` is the one way records get onto the topic,
used by the admin API and ``signalbox automations apply``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import structlog
from aiokafka import AIOKafkaProducer
from aiokafka.client import AIOKafkaClient

from signalbox.common import schemas
from signalbox.common.clock import epoch_ms
from signalbox.common.codec import AvroCodec, DecodeError
from signalbox.common.settings import KafkaSettings
from signalbox.common.topics import AUTOMATIONS
from signalbox.evaluator import metrics
from signalbox.evaluator.compacted import CompactedReader, Entry, Producer
from signalbox.evaluator.definitions import (
    Change,
    Definitions,
    Rejected,
    Stored,
    apply_changes,
    record_from_stored,
    stored_from_record,
)
from signalbox.evaluator.engine import AutomationSet

log = structlog.get_logger(__name__)

Listener = Callable[[AutomationSet], None]


class AutomationsSource:
    """The live automation set: the file's definitions, overridden by the topic's."""

    def __init__(self, kafka: KafkaSettings, codec: AvroCodec, definitions: Definitions,
                 automations: AutomationSet) -> None:
        self.definitions = definitions
        self.current = automations
        self.rejected: dict[str, Rejected] = {}  # the latest rejection per key, for operators
        self._codec = codec
        self._listeners: list[Listener] = []
        self.reader = CompactedReader(kafka, AUTOMATIONS, self._on_batch)
        metrics.AUTOMATIONS.set(_enabled(automations))

    def subscribe(self, listener: Listener) -> None:
        """``listener(new_set)`` after every swap (e.g. to re-index timers)."""
        self._listeners.append(listener)

    async def ready(self) -> str | None:
        return self.reader.not_ready("automations")

    def _on_batch(self, entries: Sequence[Entry]) -> None:
        changes: list[Change] = []
        for entry in entries:
            change = self._decode(entry)
            if change is not None:
                changes.append(change)
        definitions, built, rejected = apply_changes(self.definitions, changes)
        for r in rejected:
            self.rejected[r.key] = r
            metrics.AUTOMATION_CHANGES.labels("rejected").inc()
            log.error("automation_rejected", automation_id=r.key, errors=list(r.errors))
        applied = len(changes) - len(rejected)
        metrics.AUTOMATION_CHANGES.labels("applied").inc(applied)
        if built is None:
            return
        refused = {r.key for r in rejected}
        for change in changes:
            if change.key not in refused:
                self.rejected.pop(change.key, None)
        self.definitions, self.current = definitions, built
        metrics.AUTOMATIONS.set(_enabled(built))
        log.info("automations_swapped", applied=applied,
                 automations=[f"{a.id}@{a.version}" for a in built.automations])
        for listener in self._listeners:
            listener(built)

    def _decode(self, entry: Entry) -> Change | None:
        key = (entry.key or b"").decode("utf-8", "replace")
        if not key:
            self._reject(Rejected("", ("record without a key",)), entry)
            return None
        if entry.value is None:
            return Change(key, None)
        try:
            record = self._codec.decode(schemas.AUTOMATION_RECORD, entry.value)
            stored = stored_from_record(record, epoch_ms(record["updated_at"]))
        except DecodeError as exc:
            self._reject(Rejected(key, (exc.why,)), entry)
            return None
        except ValueError as exc:
            self._reject(Rejected(key, (str(exc),)), entry)
            return None
        if stored.id != key:
            self._reject(Rejected(key, (f"id {stored.id!r} is not the Kafka key",)), entry)
            return None
        return Change(key, stored)

    def _reject(self, rejected: Rejected, entry: Entry) -> None:
        self.rejected[rejected.key] = rejected
        metrics.AUTOMATION_CHANGES.labels("rejected").inc()
        log.error("automation_record_unreadable", automation_id=rejected.key,
                  offset=entry.offset, errors=list(rejected.errors))


def _enabled(automations: AutomationSet) -> int:
    return sum(1 for a in automations.automations if a.enabled)


class AutomationsWriter:
    """Writes automation records (acknowledged by every in-sync replica)."""

    def __init__(self, kafka: KafkaSettings, codec: AvroCodec) -> None:
        self.topic = kafka.topic(AUTOMATIONS)
        self._codec = codec
        self._producer_ = Producer(kafka, "AutomationsWriter")

    @property
    def _producer(self) -> AIOKafkaProducer:
        return self._producer_.client

    @property
    def client(self) -> AIOKafkaClient:
        """The producer's cluster client (for the broker watch)."""
        return self._producer_.client.client

    async def start(self) -> None:
        await self._producer_.start()

    async def stop(self) -> None:
        await self._producer_.stop()

    async def put(self, stored: Stored) -> tuple[int, int]:
        """Write ``stored``; its (partition, offset) once Kafka has it."""
        value = self._codec.encode(schemas.AUTOMATION_RECORD, record_from_stored(stored))
        meta = await self._producer.send_and_wait(self.topic, key=stored.id.encode(),
                                                  value=value)
        return meta.partition, meta.offset

    async def delete(self, key: str) -> tuple[int, int]:
        """A tombstone for ``key``."""
        meta = await self._producer.send_and_wait(self.topic, key=key.encode(), value=None)
        return meta.partition, meta.offset

