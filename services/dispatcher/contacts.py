"""Recent deliveries per customer and channel: the memory behind frequency caps.

Kept per partition of the commands topic and restored, like the ledger, from
the compacted ``actions.contacts`` topic when a partition is assigned; a
delivery's new history is written in the transaction of its outcome. Commands
being attempted hold a reservation, so concurrent commands cannot together
exceed a cap.
"""

from __future__ import annotations

from collections.abc import Iterable

import structlog

from signalbox.common.clock import epoch_ms
from signalbox.common.codec import AvroCodec, DecodeError
from signalbox.common.settings import KafkaSettings
from signalbox.dispatcher.ledger import read_partitions

log = structlog.get_logger(__name__)
CONTACT_HISTORY = "signalbox.ContactHistory"
_Key = tuple[str, str]  # (channel, customer_id)


def contact_key(channel: str, customer_id: str) -> bytes:
    return f"{channel}:{customer_id}".encode()


class Contacts:
    def __init__(self, kafka: KafkaSettings | None, topic: str, codec: AvroCodec) -> None:
        self._kafka, self._topic, self._codec = kafka, topic, codec
        self._sent: dict[int, dict[_Key, list[int]]] = {}
        self._reserved: dict[_Key, int] = {}

    def recent(self, partition: int, channel: str, customer_id: str) -> list[int]:
        """Delivery times plus one entry per reservation (counted as 'now')."""
        key = (channel, customer_id)
        sent = self._sent.get(partition, {}).get(key, [])
        return sent + [2**62] * self._reserved.get(key, 0)

    def reserve(self, channel: str, customer_id: str) -> None:
        key = (channel, customer_id)
        self._reserved[key] = self._reserved.get(key, 0) + 1

    def release(self, channel: str, customer_id: str) -> None:
        key = (channel, customer_id)
        left = self._reserved.get(key, 0) - 1
        if left > 0:
            self._reserved[key] = left
        else:
            self._reserved.pop(key, None)

    def delivered(self, partition: int, channel: str, customer_id: str, at_ms: int,
                  keep_since_ms: int) -> bytes:
        """Record a delivery (in memory); the ContactHistory value to write."""
        key = (channel, customer_id)
        per = self._sent.setdefault(partition, {})
        history = [t for t in per.get(key, []) if t > keep_since_ms] + [at_ms]
        per[key] = history
        return self._codec.encode(CONTACT_HISTORY, {
            "customer_id": customer_id, "channel": channel, "sent_at": history})

    async def load(self, partitions: Iterable[int]) -> None:
        parts = sorted(set(partitions))
        for p in parts:
            self._sent[p] = {}
        if parts and self._kafka is not None:
            count = await read_partitions(self._kafka, self._topic, parts, self._apply)
            log.info("contacts_loaded", partitions=parts, entries=count)

    def forget(self, partitions: Iterable[int]) -> None:
        for p in partitions:
            self._sent.pop(p, None)

    def _apply(self, partition: int, key: bytes | None, value: bytes | None) -> int:
        if key is None or value is None:
            return 0
        try:
            entry = self._codec.decode(CONTACT_HISTORY, value)
        except DecodeError as exc:
            log.error("contact_history_unreadable", reason=exc.why)
            return 0
        self._sent[partition][(entry["channel"], entry["customer_id"])] = [
            epoch_ms(t) for t in entry["sent_at"]]
        return 1
