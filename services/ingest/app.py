"""The HTTP shell of ingest: read, validate, encode, produce, answer.

All decisions about an event's content are in :mod:`signalbox.ingest.validation`
(pure); Kafka is behind :class:`signalbox.ingest.producer.EventProducer`. The request
format and the status codes are documented in :mod:`signalbox.ingest`.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

import structlog
from aiohttp import web

from signalbox.common import schemas
from signalbox.common.clock import now_ms
from signalbox.common.ops import add_ops_routes
from signalbox.common.registry import codec_for
from signalbox.common.settings import Settings
from signalbox.ingest.avro_json import Problem, clip, describe_fields
from signalbox.ingest.formats import rule_for
from signalbox.ingest.keys import ApiKey, Authenticator, Refusal, forbidden_types
from signalbox.ingest.limits import SizeBudget
from signalbox.ingest.metrics import ACCEPTED, LATENCY, PRODUCE_FAILURES, REJECTED
from signalbox.ingest.openapi import document
from signalbox.ingest.producer import EventProducer, Message, ProduceError
from signalbox.ingest.validation import (
    InvalidEvents,
    InvalidJson,
    ValidEvent,
    as_sent_by,
    decode_json,
    envelope_fields,
    validate_batch,
)

log = structlog.get_logger(__name__)

#: Seconds a client should wait before retrying a batch Kafka did not take.
RETRY_AFTER_S = 5
_JSON = "application/json"
_READ_CHUNK = 64 * 1024
_LOGGED_PROBLEMS = 5
_TOO_LARGE = frozenset({"MessageSizeTooLargeError", "RecordTooLargeError"})
_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="signalbox-ingest"'}


def _error(status: int, code: str, detail: str, problems: Sequence[Problem] = (),
           headers: dict[str, str] | None = None, total: int | None = None,
           extra: Mapping[str, Any] | None = None) -> web.Response:
    """An error answer; ``errors`` holds the first problems, ``error_count`` all of them."""
    REJECTED.labels(status=str(status), reason=code).inc()
    log.info("request_rejected", status=status, reason=code, detail=detail,
             problems=[p.as_json() for p in problems[:_LOGGED_PROBLEMS]])
    body: dict[str, Any] = {"error": code, "detail": detail, **(extra or {})}
    if problems:
        body["errors"] = [p.as_json() for p in problems]
        body["error_count"] = len(problems) if total is None else total
    return web.json_response(body, status=status, headers=headers)


async def _read_at_most(request: web.Request, limit: int) -> bytes | None:
    """The body, or ``None`` as soon as it is known to exceed ``limit`` bytes."""
    if request.content_length is not None and request.content_length > limit:
        return None
    body = bytearray()
    async for chunk in request.content.iter_chunked(_READ_CHUNK):
        body.extend(chunk)
        if len(body) > limit:
            return None
    return bytes(body)


def event_type_catalogue(settings: Settings) -> dict[str, Any]:
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
            {"type": t.name, "topic": settings.kafka.topic(t.topic), "doc": t.doc,
             "fields": describe_fields(t.fields, rule_for)}
            for t in schemas.event_types().values()
        ],
    }


#: Kafka header naming the API key's producer on every event it sent (the audit trail).
PRODUCER_HEADER = "signalbox-producer"


def _given_source(body: Any, index: int) -> bool:
    item = body[index] if isinstance(body, list) else body
    return isinstance(item, dict) and "source" in item


class _EventsApi:
    def __init__(self, settings: Settings, producer: EventProducer, budget: SizeBudget) -> None:
        self._settings = settings
        self._producer = producer
        self._budget = budget
        self._codec = codec_for(settings)
        self._topics = {name: settings.kafka.topic(t.topic)
                        for name, t in schemas.event_types().items()}
        self._catalogue = event_type_catalogue(settings)
        self._auth = (Authenticator(settings.ingest_keys_file)
                      if settings.ingest_auth == "keys" else None)

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
        s = self._settings
        key: ApiKey | None = None
        if self._auth is not None:
            found = self._auth.authenticate(request.headers.get("Authorization"))
            if isinstance(found, Refusal):
                return _error(401, "unauthorized", found.reason, headers=_CHALLENGE)
            key = found
        if request.content_type != _JSON:
            return _error(415, "unsupported_media_type",
                          f"send Content-Type: {_JSON} (got {clip(request.content_type)})")
        body = await _read_at_most(request, s.ingest_max_body_bytes)
        if body is None:
            return _error(413, "body_too_large",
                          f"the body exceeds {s.ingest_max_body_bytes} bytes; send smaller batches")
        try:
            value = decode_json(body)
        except InvalidJson as exc:
            return _error(400, "invalid_json", exc.problem.reason, [exc.problem])
        if isinstance(value, list) and len(value) > s.ingest_max_batch:
            return _error(413, "batch_too_large", f"the batch has {len(value)} events; "
                          f"at most {s.ingest_max_batch} are accepted per request")
        forbidden = forbidden_types(value, key)
        if forbidden:
            return _error(403, "forbidden_event_type",
                          "this request may not send these event types; no event of it "
                          "was accepted", forbidden)
        try:
            events = validate_batch(value, received_at=now_ms())
        except InvalidEvents as exc:
            return _error(400, "invalid_event",
                          f"{exc.total} problem(s); no event of this request was accepted",
                          exc.problems, total=exc.total)
        if key is not None:
            events = [as_sent_by(e, key.name, _given_source(value, i))
                      for i, e in enumerate(events)]
        headers = ((PRODUCER_HEADER, key.name.encode()),) if key is not None else ()
        messages = [
            Message(self._topics[e.event_type.name], e.key,
                    self._codec.encode(schemas.EVENT, e.record), headers)
            for e in events
        ]
        limit = self._budget.event_bytes
        too_large = [
            Problem(f"$[{i}]" if isinstance(value, list) else "$",
                    f"the event encodes to {size} bytes; at most {limit} are accepted")
            for i, size in enumerate(_size(m) for m in messages) if size > limit]
        if too_large:
            return _error(413, "event_too_large",
                          f"events must encode to at most {limit} bytes (half the broker's "
                          f"max.message.bytes of {self._budget.max_message_bytes}, leaving room "
                          "for what later stages add); no event of this request was accepted",
                          too_large, extra=self._budget.as_json())
        return await self._produce(events, messages, key)

    async def _produce(self, events: list[ValidEvent], messages: list[Message],
                       key: ApiKey | None) -> web.Response:
        event_ids = [e.event_id for e in events]
        try:
            await self._producer.send_all(messages)
        except ProduceError as exc:
            if exc.kind in _TOO_LARGE:  # the broker's limit went below the one read at start
                return _error(413, "event_too_large", f"Kafka refused the batch as too large: "
                              f"{exc.reason}", extra=self._budget.as_json())
            PRODUCE_FAILURES.labels(error=exc.kind).inc()
            log.warning("produce_failed", error=exc.reason, event_ids=event_ids)
            return _error(503, "kafka_unavailable",
                          f"{exc.reason}. Retry the whole batch later: events already "
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


def _size(message: Message) -> int:
    """What the record costs against ``max.message.bytes``, record overhead aside."""
    return len(message.value) + len(message.key) + sum(
        len(name) + len(value) for name, value in message.headers)


def create_app(settings: Settings, producer: EventProducer,
               budget: SizeBudget) -> web.Application:
    """The ingest aiohttp application; ``producer`` must be started by the caller and
    ``budget`` read from the broker (:func:`signalbox.ingest.limits.read_budget`)."""
    api = _EventsApi(settings, producer, budget)
    app = web.Application(client_max_size=settings.ingest_max_body_bytes)
    app.router.add_post("/v1/events", api.post_events)
    app.router.add_get("/v1/event-types", api.event_types)
    openapi = document(settings)

    async def openapi_json(_: web.Request) -> web.Response:
        return web.json_response(openapi)

    app.router.add_get("/openapi.json", openapi_json)
    topics = api.topics

    async def kafka_ready() -> str | None:
        return await producer.check(topics)

    add_ops_routes(app, {"kafka": kafka_ready})
    return app
