"""Accepted JSON events → the Kafka records ingest writes. Pure (the codec aside).

One path for every producer: ``POST /v1/events``, the webhook sources
(:mod:`signalbox.ingest.sources`) and the Python client (:mod:`signalbox.client`) all
validate with :func:`signalbox.ingest.validation.validate_batch` and encode here, so
an event is the same bytes on Kafka whichever way it came in.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from signalbox.common import schemas
from signalbox.common.codec import AvroCodec
from signalbox.common.settings import KafkaSettings
from signalbox.ingest.avro_json import Problem
from signalbox.ingest.producer import Message
from signalbox.ingest.validation import ValidEvent, as_sent_by, validate_batch

#: Kafka header naming the API key's producer on every event it sent (the audit trail).
PRODUCER_HEADER = "signalbox-producer"


def event_topics(kafka: KafkaSettings) -> dict[str, str]:
    """Event type → the physical topic its events go to (prefix applied)."""
    return {name: kafka.topic(t.topic) for name, t in schemas.event_types().items()}


def _given_source(body: Any, index: int) -> bool:
    item = body[index] if isinstance(body, list) else body
    return isinstance(item, dict) and "source" in item


def prepare(value: Any, *, received_at: int, codec: AvroCodec, topics: Mapping[str, str],
            producer: str | None) -> tuple[list[ValidEvent], list[Message]]:
    """Decoded JSON (one event or an array) → the valid events and their Kafka records,
    keyed by customer id; raises :class:`~signalbox.ingest.validation.InvalidEvents`.

    ``producer`` names who sent them (an API key's or a source's name): it becomes
    ``source`` where the event names none, and the ``signalbox-producer`` header."""
    events = validate_batch(value, received_at=received_at)
    if producer is not None:
        events = [as_sent_by(e, producer, _given_source(value, i)) for i, e in enumerate(events)]
    headers = ((PRODUCER_HEADER, producer.encode()),) if producer is not None else ()
    messages = [Message(topics[e.event_type.name], e.key,
                        codec.encode(schemas.EVENT, e.record), headers) for e in events]
    return events, messages


def size(message: Message) -> int:
    """What the record costs against ``max.message.bytes``, record overhead aside."""
    return len(message.value) + len(message.key) + sum(
        len(name) + len(value) for name, value in message.headers)


def too_large(value: Any, messages: list[Message], limit: int) -> list[Problem]:
    """The events whose record exceeds ``limit`` bytes, each with its path."""
    return [Problem(f"$[{i}]" if isinstance(value, list) else "$",
                    f"the event encodes to {n} bytes; at most {limit} are accepted")
            for i, n in enumerate(size(m) for m in messages) if n > limit]
