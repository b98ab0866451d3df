"""``POST /v1/sources/{source}``: a billing system's signed webhook in, catalogue events out.

Order of work, so nothing unverified is read and nothing invalid is written: the
source must be known and configured (404), the body within ``INGEST_MAX_BODY_BYTES``
(413), the proof valid (400 ``bad_signature`` / ``stale_timestamp`` /
``missing_signature``, counted in ``signalbox_ingest_source_auth_failures_total``), the
body JSON (400). Then the mapping turns the payload into events that take the same
path as ``POST /v1/events`` (scopes, validation, encoding, size, produce): 202 with
the accepted ids, or the same 4xx/503 answers, with ``source`` and
``source_event_id`` added. A verified event of a type the mapping does not use is
answered 200 and counted (``outcome="unmapped"``), so the source does not retry it.

The source event id is the signalbox ``event_id`` (with a rule's ``id_suffix``), so a
webhook the source delivers twice, or a backfill of the same events, is recognised
and ignored downstream like a retried ``POST /v1/events``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import structlog
from aiohttp import web

from signalbox.ingest.answers import error, read_at_most
from signalbox.ingest.avro_json import Problem
from signalbox.ingest.keys import ApiKey
from signalbox.ingest.sources.auth import verify
from signalbox.ingest.sources.catalogue import Source
from signalbox.ingest.sources.mapping import PayloadError, translate
from signalbox.ingest.sources.metrics import SOURCE_AUTH_FAILURES, SOURCE_EVENTS
from signalbox.ingest.validation import InvalidJson, decode_json

log = structlog.get_logger(__name__)

#: Writes decoded events as a producer would post them (``_EventsApi.write``).
Writer = Callable[[Any, ApiKey | None, Mapping[str, Any] | None], Awaitable[web.Response]]


class SourcesApi:
    def __init__(self, sources: Mapping[str, Source], write: Writer, max_body_bytes: int) -> None:
        self._sources = sources
        self._write = write
        self._max_body_bytes = max_body_bytes

    async def post(self, request: web.Request) -> web.Response:
        name = request.match_info["source"]
        source = self._sources.get(name)
        if source is None:
            return error(404, "unknown_source", f"no source named {name[:64]!r}; known: "
                         f"{', '.join(sorted(self._sources)) or 'none'}")
        if not source.secrets:
            return error(404, "source_not_configured",
                         f"the {name} source is off: set {source.mapping.auth.secrets_env} to "
                         "its webhook secret(s) (see docs/sources.md)")
        body = await read_at_most(request, self._max_body_bytes)
        if body is None:
            return error(413, "body_too_large",
                         f"the body exceeds {self._max_body_bytes} bytes")
        denied = verify(source.mapping.auth, source.secrets, request.headers, body)
        if denied is not None:
            SOURCE_AUTH_FAILURES.labels(source=name, reason=denied.code).inc()
            return error(400, denied.code, denied.reason, extra={"source": name})
        try:
            payload = decode_json(body)
            translation = translate(source.mapping, payload, request.headers)
        except InvalidJson as exc:
            return error(400, "invalid_json", exc.problem.reason, [exc.problem],
                         extra={"source": name})
        except PayloadError as exc:
            return error(400, "unreadable_source_event",
                         f"the {name} mapping cannot read this event; nothing was written",
                         [Problem(exc.where, exc.why)], extra={"source": name})
        context = {"source": name, "source_event_id": translation.source_id,
                   "source_event_type": translation.source_type}
        if not translation.events:
            outcome = "skipped" if translation.mapped else "unmapped"
            SOURCE_EVENTS.labels(source=name, type=translation.source_type,
                                 outcome=outcome).inc()
            log.info("source_event_ignored", outcome=outcome, **context)
            return web.json_response({"accepted": [], "ignored": outcome, **context})
        response = await self._write(list(translation.events), source.key, context)
        outcome = ("accepted" if response.status == 202
                   else "unavailable" if response.status >= 500 else "rejected")
        SOURCE_EVENTS.labels(source=name, type=translation.source_type, outcome=outcome).inc()
        return response


def add_routes(app: web.Application, sources: Mapping[str, Source], write: Writer,
               max_body_bytes: int) -> None:
    """Register ``POST /v1/sources/{source}``."""
    api = SourcesApi(sources, write, max_body_bytes)
    app.router.add_post("/v1/sources/{source}", api.post)
