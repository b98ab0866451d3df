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

import time
from collections.abc import Collection
from dataclasses import dataclass

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import (  # type: ignore[attr-defined]
    AdminClient,
    ConfigResource,
    ResourceType,
)

from signalbox.common.errors import SignalboxError
from signalbox.common.kafka import librdkafka_config
from signalbox.common.settings import KafkaSettings

#: Share of ``max.message.bytes`` an event's encoded record may use: the other half is
#: headroom for a command or dead letter that carries the event's values or bytes.
EVENT_SHARE = 0.5
_CONFIG = "max.message.bytes"


class LimitUnknown(SignalboxError, RuntimeError):
    """The broker did not say its message limit; ingest does not guess one."""

    what = "broker message limit"


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
    topic's own value, else the broker's default); blocking, for start-up.

    Topics created a moment ago may not be known to the broker answering yet, so an
    unknown topic is asked again until ``timeout_s``.
    """
    # log_level 3: librdkafka's informational lines (a purged background queue on close)
    # would go raw to stderr, between the service's JSON log lines.
    admin = AdminClient({**librdkafka_config(kafka), "log_level": 3})
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return SizeBudget(min(_limit(admin, t, timeout_s) for t in sorted(topics)))
        except KafkaException as exc:
            error = exc.args[0] if exc.args else exc
            unknown = isinstance(error, KafkaError) and \
                error.code() == KafkaError.UNKNOWN_TOPIC_OR_PART
            if not unknown or time.monotonic() > deadline:
                raise LimitUnknown(f"could not read {_CONFIG} of {', '.join(sorted(topics))}: "
                                   f"{error}") from None
        time.sleep(0.2)


def _limit(admin: AdminClient, topic: str, timeout_s: float) -> int:
    resource = ConfigResource(ResourceType.TOPIC, topic)
    future = admin.describe_configs([resource], request_timeout=timeout_s)[resource]
    entry = future.result(timeout=timeout_s).get(_CONFIG)
    if entry is None or entry.value is None:
        raise LimitUnknown(f"topic {topic}: the broker did not report {_CONFIG}")
    return int(entry.value)
