"""``signalbox.client``: produce events straight to Kafka, exactly as ingest would write them.

For producers that publish to Kafka themselves (docs/producers.md) and for backfills.
An event is given in the JSON shape of ``POST /v1/events`` (docs/events.md) and goes
through ingest's own code: the same validation (:func:`signalbox.ingest.validation.
validate_batch`), the same encoding and framing (single-object encoding, or the
Confluent wire format when ``SCHEMA_REGISTRY_URL`` is set), the same topic per type,
key (``customer_id``) and size limit (read from the broker), the same idempotent
``acks=all`` producer. Internal types (``approval.decided``) are refused::

    from signalbox.client import EventClient

    async with EventClient(Settings.from_env(), producer="billing-sync") as client:
        await client.send([{"event_id": "inv_1-paid", "type": "invoice.paid", ...}])

A batch is validated whole before anything is sent; an invalid one raises
:class:`~signalbox.ingest.validation.InvalidEvents` (every problem with its JSONPath).
Sending the same ``event_id`` again is harmless: it is deduplicated downstream.
"""

from __future__ import annotations

import asyncio
from types import TracebackType
from typing import Any

from signalbox.common.clock import now_ms
from signalbox.common.codec import AvroCodec
from signalbox.common.errors import SignalboxError
from signalbox.common.registry import codec_for
from signalbox.common.settings import Settings
from signalbox.ingest.event_records import event_topics, prepare, too_large
from signalbox.ingest.keys import forbidden_types
from signalbox.ingest.producer import KafkaEventProducer
from signalbox.ingest.size_limits import SizeBudget, read_budget
from signalbox.ingest.validation import InvalidEvents

__all__ = ["EventClient", "EventTooLarge", "InvalidEvents"]


class EventTooLarge(SignalboxError, ValueError):
    """An event whose record exceeds half the topics' ``max.message.bytes`` (as ingest's 413)."""

    what = "event"


class EventClient:
    """Validates, encodes and produces signalbox events; start it (or use ``async with``)."""

    def __init__(self, settings: Settings, producer: str | None = None,
                 client_id: str = "signalbox-client") -> None:
        self._settings = settings
        self._producer_name = producer
        self._codec: AvroCodec | None = None
        self._topics = event_topics(settings.kafka)
        self._producer: KafkaEventProducer | None = None
        self._budget: SizeBudget | None = None
        self._client_id = client_id

    async def start(self) -> None:
        """Register the schemas (registry mode), read the broker's message size limit and
        connect the producer."""
        self._codec = await asyncio.to_thread(codec_for, self._settings.registry)
        try:
            topics = set(self._topics.values())
            self._budget = await asyncio.to_thread(read_budget, self._settings.kafka, topics)
            self._producer = KafkaEventProducer(self._settings.kafka, client_id=self._client_id,
                                                max_request_size=self._budget.max_message_bytes)
            await self._producer.start()
        except BaseException:
            await self.stop()  # no started client is left to the garbage collector
            raise

    async def stop(self) -> None:
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None
        if self._codec is not None:
            self._codec.close()
            self._codec = None

    async def __aenter__(self) -> EventClient:
        await self.start()
        return self

    async def __aexit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.stop()

    async def send(self, events: Any) -> list[str]:
        """Produce one event or a list of them (all or none); their event ids once Kafka
        acknowledged every one. Raises :class:`InvalidEvents`, :class:`EventTooLarge`, or
        :class:`~signalbox.ingest.producer.ProduceError` (retry the batch)."""
        if self._producer is None or self._budget is None or self._codec is None:
            raise RuntimeError("EventClient is not started: use `async with` or start()")
        forbidden = forbidden_types(events, None)
        if forbidden:
            raise InvalidEvents(forbidden)
        valid, messages = prepare(events, received_at=now_ms(), codec=self._codec,
                                  topics=self._topics, producer=self._producer_name)
        oversized = too_large(events, messages, self._budget.event_bytes)
        if oversized:
            raise EventTooLarge("; ".join(f"{p.path}: {p.reason}" for p in oversized))
        await self._producer.send_all(messages)
        return [e.event_id for e in valid]
