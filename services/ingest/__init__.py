"""ingest: JSON events over HTTP in, ``signalbox.Event`` Avro records on Kafka out.

``POST /v1/events`` (``Content-Type: application/json``, ``Authorization: Bearer <key>``,
see :mod:`signalbox.ingest.keys`) takes one event object or a JSON array of them (a
batch). Field names follow the Avro schema ``signalbox.Event`` (``schemas/avro/event.avsc``)::

    {
      "event_id": "evt_1",                  # required, non-empty; same id = same occurrence
      "type": "payment.failed",             # required; see GET /v1/event-types
      "customer_id": "cus_1",               # required, non-empty; the Kafka key
      "occurred_at": "2026-11-22T10:00:00Z",  # RFC 3339, or epoch ms
      "source": "billing",                  # optional, default "api"
      "customer": {"email": "a@b.c", "phone": "+4915...", "name": "Ada",
                   "timezone": "Europe/Berlin", "locale": "de-DE"},  # optional, all optional
      "attributes": {"plan_tier": "gold"},  # optional, string values
      "data": {"payment_id": "pay_1", "product": "pro", "amount_minor": 4900,
               "currency": "EUR"}           # the event type's payload fields
    }

``data`` is checked against the payload record of the event type: string,
int/long (integers; ``true`` is not one), float/double (integers or decimals),
boolean, timestamps (as ``occurred_at``), nullable fields (``null`` allowed,
may be left out), maps and arrays, enums. A field without a default in the
schema is required; a field the schema does not know is an error anywhere, so
typos do not pass silently. ``received_at`` is stamped by ingest.

Answers:

* **202** ``{"accepted": ["evt_1", ...]}`` once Kafka acknowledged every event
  (``acks=all``, idempotent producer), each on its type's topic
  (``events.billing`` / ``events.usage``), keyed by ``customer_id``.
* **401** ``{"error": "unauthorized", "detail": ...}``: no key, or not a valid one.
* **403** ``{"error": "forbidden_event_type", "errors": [...]}``: an event type the key
  may not send, or an internal one (``approval.decided``) that no producer may send.
* **400** ``{"error": "invalid_json" | "invalid_event", "detail": ..., "errors":
  [{"path": "$[1].data.amount_minor", "reason": "expected an integer, got string"}],
  "error_count": 1}``: the first problems found and how many there are in all. If any
  event of a batch is invalid, none is written.
* **413** body larger than ``INGEST_MAX_BODY_BYTES`` or more than
  ``INGEST_MAX_BATCH`` events, or ``event_too_large`` (with ``limit_bytes`` and
  ``max_message_bytes``) for an event whose record exceeds the budget of
  :mod:`signalbox.ingest.size_limits`; **415** Content-Type is not ``application/json``.
* **503** ``{"error": "kafka_unavailable", ...}`` with ``Retry-After``: Kafka did
  not acknowledge the batch in time. Retry the whole batch; events that were
  written before the failure are deduplicated downstream by ``event_id``.

``GET /v1/event-types`` lists the envelope and every event type with its topic
and fields, derived from the schema; ``GET /openapi.json`` is the OpenAPI 3.1
description (:mod:`signalbox.ingest.openapi`), from the same schema and format rules.
``/healthz``, ``/readyz`` (producer running, broker answering metadata, topics present)
and ``/metrics`` are the ops routes.
"""

from signalbox.ingest.avro_json import Problem
from signalbox.ingest.http_app import create_app, event_type_catalogue
from signalbox.ingest.producer import EventProducer, KafkaEventProducer, Message, ProduceError
from signalbox.ingest.validation import (
    InvalidEvents,
    InvalidJson,
    ValidEvent,
    convert,
    decode_json,
    validate_batch,
)

__all__ = [
    "EventProducer",
    "InvalidEvents",
    "InvalidJson",
    "KafkaEventProducer",
    "Message",
    "Problem",
    "ProduceError",
    "ValidEvent",
    "convert",
    "create_app",
    "decode_json",
    "event_type_catalogue",
    "validate_batch",
]
