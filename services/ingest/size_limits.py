"""How large an accepted event may be, from the broker's own limit.

Kafka refuses a record larger than the topic's ``max.message.bytes``, and an event
grows on its way: the evaluator copies its fields into commands and customer state,
and a dead letter wraps the original bytes with a reason and headers. So ingest reads
the limit of the event topics from the broker at start-up (it differs per cluster
and per topic) and accepts an event only if its encoded record fits in
:data:`EVENT_SHARE` of it, leaving the rest for what later stages add. An event
beyond that is answered 413 with both figures, before anything is written.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from signalbox.common.deadletter import topic_max_message_bytes
from signalbox.common.settings import KafkaSettings

#: Share of ``max.message.bytes`` an event's encoded record may use: the other half is
#: headroom for a command or dead letter that carries the event's values or bytes.
EVENT_SHARE = 0.5


@dataclass(frozen=True)
class SizeBudget:
    """The broker's limit for the event topics, and the part an event may use."""

    max_message_bytes: int

    @property
    def event_bytes(self) -> int:
        return int(self.max_message_bytes * EVENT_SHARE)

    def as_json(self) -> dict[str, int]:
        return {"limit_bytes": self.event_bytes, "max_message_bytes": self.max_message_bytes}


def read_budget(kafka: KafkaSettings, topics: Collection[str],
                timeout_s: float = 30.0) -> SizeBudget:
    """The smallest ``max.message.bytes`` of ``topics`` as the broker applies it (the
    topic's own value, else the broker's default); blocking, for start-up. A topic created
    a moment ago is asked again until ``timeout_s`` (:func:`topic_max_message_bytes`).
    """
    return SizeBudget(min(topic_max_message_bytes(kafka, t, timeout_s) for t in sorted(topics)))
