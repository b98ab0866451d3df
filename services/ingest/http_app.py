"""The HTTP shell of ingest: read, validate, encode, produce, answer.

All decisions about an event's content are in :mod:`signalbox.ingest.validation`
(pure); Kafka is behind :class:`signalbox.ingest.producer.EventProducer`. The request
format and the status codes are documented in :mod:`signalbox.ingest`.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import structlog
from aiohttp import web

from signalbox.common import schemas
from signalbox.common.clock import now_ms
from signalbox.common.codec import AvroCodec
from signalbox.common.ops import add_ops_routes
from signalbox.common.registry import codec_for
from signalbox.common.settings import IngestSettings, KafkaSettings, Settings
from signalbox.ingest.answers import error as _error
from signalbox.ingest.answers import read_at_most as _read_at_most
from signalbox.ingest.avro_json import clip, describe_fields
from signalbox.ingest.event_records import event_topics, prepare, too_large
from signalbox.ingest.formats import rule_for
from signalbox.ingest.keys import ApiKey, Authenticator, Refusal, forbidden_types
from signalbox.ingest.metrics import ACCEPTED, LATENCY, PRODUCE_FAILURES, initialise_series
from signalbox.ingest.openapi import document
from signalbox.ingest.producer import EventProducer, Message, ProduceError
from signalbox.ingest.size_limits import SizeBudget
from signalbox.ingest.sources.catalogue import Source
from signalbox.ingest.sources.webhooks import add_routes as add_source_routes
from signalbox.ingest.validation import (
    InvalidEvents,
    InvalidJson,
    ValidEvent,
    decode_json,
    envelope_fields,
)

log = structlog.get_logger(__name__)

#: Seconds a client should wait before retrying a batch Kafka did not take.
RETRY_AFTER_S = 5
_JSON = "application/json"
_TOO_LARGE = frozenset({"MessageSizeTooLargeError", "RecordTooLargeError"})
_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="signalbox-ingest"'}


def event_type_catalogue(kafka: KafkaSettings) -> dict[str, Any]:
    """What ``GET /v1/event-types`` answers: the envelope and every event type's fields."""
    envelope = describe_fields(envelope_fields(), rule_for)
    envelope += [
        {"name": "type", "type": "string", "required": True, "doc": "One of event_types[].type."},
        {"name": "data", "type": "object", "required": False, "default": {},
         "doc": "The payload: the fields of the event type."},
    ]
    return {
        "envelope": envelope,
        "event_types": [
            {"type": t.name, "topic": kafka.topic(t.topic), "doc": t.doc,
             "fields": describe_fields(t.fields, rule_for)}
            for t in schemas.event_types().values()
        ],
    }


class _EventsApi:
    def __init__(self, kafka: KafkaSettings, ingest: IngestSettings, codec: AvroCodec,
                 producer: EventProducer, budget: SizeBudget) -> None:
        self._ingest = ingest
        self._producer = producer
        self._budget = budget
        self._codec = codec
        self._topics = event_topics(kafka)
        self._catalogue = event_type_catalogue(kafka)
        self._auth = Authenticator(ingest.keys_file) if ingest.auth == "keys" else None

    @property
    def topics(self) -> set[str]:
        return set(self._topics.values())

    async def event_types(self, _: web.Request) -> web.Response:
        return web.json_response(self._catalogue)

    async def post_events(self, request: web.Request) -> web.Response:
        started = time.perf_counter()
        try:
            return await self._post_events(request)
        finally:
            LATENCY.observe(time.perf_counter() - started)

    async def _post_events(self, request: web.Request) -> web.Response:
        s = self._ingest
        key: ApiKey | None = None
        if self._auth is not None:
            found = self._auth.authenticate(request.headers.get("Authorization"))
            if isinstance(found, Refusal):
                return _error(401, "unauthorized", found.reason, headers=_CHALLENGE)
            key = found
        if request.content_type != _JSON:
            return _error(415, "unsupported_media_type",
                          f"send Content-Type: {_JSON} (got {clip(request.content_type)})")
        body = await _read_at_most(request, s.max_body_bytes)
        if body is None:
            return _error(413, "body_too_large",
                          f"the body exceeds {s.max_body_bytes} bytes; send smaller batches")
        try:
            value = decode_json(body)
        except InvalidJson as exc:
            return _error(400, "invalid_json", exc.problem.reason, [exc.problem])
        if isinstance(value, list) and len(value) > s.max_batch:
            return _error(413, "batch_too_large", f"the batch has {len(value)} events; "
                          f"at most {s.max_batch} are accepted per request")
        return await self.write(value, key)

    async def write(self, value: Any, key: ApiKey | None,
                    context: Mapping[str, Any] | None = None) -> web.Response:
        """Decoded events (one object or an array) from ``key``'s producer: checked against
        its scopes, validated, encoded, size-checked and produced, or refused whole. The one
        path of every producer's events (``POST /v1/events`` and the webhook sources);
        ``context`` (e.g. the source event's id) goes into the answer and the log."""
        forbidden = forbidden_types(value, key)
        if forbidden:
            return _error(403, "forbidden_event_type",
                          "this request may not send these event types; no event of it "
                          "was accepted", forbidden, extra=context)
        try:
            events, messages = prepare(value, received_at=now_ms(), codec=self._codec,
                                       topics=self._topics,
                                       producer=key.name if key is not None else None)
        except InvalidEvents as exc:
            return _error(400, "invalid_event",
                          f"{exc.total} problem(s); no event of this request was accepted",
                          exc.problems, total=exc.total, extra=context)
        limit = self._budget.event_bytes
        oversized = too_large(value, messages, limit)
        if oversized:
            return _error(413, "event_too_large",
                          f"events must encode to at most {limit} bytes (half the broker's "
                          f"max.message.bytes of {self._budget.max_message_bytes}, leaving room "
                          "for what later stages add); no event of this request was accepted",
                          oversized, extra={**self._budget.as_json(), **(context or {})})
        return await self._produce(events, messages, key)

    async def _produce(self, events: list[ValidEvent], messages: list[Message],
                       key: ApiKey | None) -> web.Response:
        event_ids = [e.event_id for e in events]
        try:
            await self._producer.send_all(messages)
        except ProduceError as exc:
            if exc.kind in _TOO_LARGE:  # the broker's limit went below the one read at start
                return _error(413, "event_too_large", f"Kafka refused the batch as too large: "
                              f"{exc.why}", extra=self._budget.as_json())
            PRODUCE_FAILURES.labels(error=exc.kind).inc()
            log.warning("produce_failed", error=exc.why, event_ids=event_ids)
            return _error(503, "kafka_unavailable",
                          f"{exc.why}. Retry the whole batch later: events already "
                          "written are deduplicated downstream by event_id.",
                          headers={"Retry-After": str(RETRY_AFTER_S)})
        for e in events:
            ACCEPTED.labels(type=e.event_type.name).inc()
            log.debug("event_accepted", event_id=e.event_id, customer_id=e.customer_id,
                      type=e.event_type.name, topic=self._topics[e.event_type.name])
        log.info("events_accepted", count=len(events), event_ids=event_ids,
                 customer_ids=sorted({e.customer_id for e in events}),
                 key=key.key_id if key is not None else None)
        return web.json_response({"accepted": event_ids}, status=202)


def create_app(settings: Settings, producer: EventProducer, budget: SizeBudget,
               sources: Mapping[str, Source] | None = None) -> web.Application:
    """The ingest aiohttp application; ``producer`` must be started by the caller and
    ``budget`` read from the broker (:func:`signalbox.ingest.size_limits.read_budget`);
    ``sources``: the webhook sources (:func:`signalbox.ingest.sources.load_sources`)."""
    codec = codec_for(settings.registry)
    api = _EventsApi(settings.kafka, settings.ingest, codec, producer, budget)
    app = web.Application(client_max_size=settings.ingest.max_body_bytes)

    async def close_codec(_: web.Application) -> None:
        codec.close()  # the registry client's connections

    app.on_cleanup.append(close_codec)
    app.router.add_post("/v1/events", api.post_events)
    add_source_routes(app, sources or {}, api.write, settings.ingest.max_body_bytes)
    app.router.add_get("/v1/event-types", api.event_types)
    openapi = document(settings.ingest)

    async def openapi_json(_: web.Request) -> web.Response:
        return web.json_response(openapi)

    app.router.add_get("/openapi.json", openapi_json)
    topics = api.topics

    async def kafka_ready() -> str | None:
        return await producer.check(topics)

    add_ops_routes(app, {"kafka": kafka_ready})
    initialise_series(schemas.event_types())
    return app
