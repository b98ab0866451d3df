"""HTTP answers shared by ingest's routes (events and webhook sources)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import structlog
from aiohttp import web

from signalbox.ingest.avro_json import Problem
from signalbox.ingest.metrics import REJECTED

log = structlog.get_logger("signalbox.ingest.app")

_READ_CHUNK = 64 * 1024
_LOGGED_PROBLEMS = 5


def error(status: int, code: str, detail: str, problems: Sequence[Problem] = (),
          headers: dict[str, str] | None = None, total: int | None = None,
          extra: Mapping[str, Any] | None = None) -> web.Response:
    """An error answer; ``errors`` holds the first problems, ``error_count`` all of them.
    ``extra`` goes into the answer and the log line (e.g. a webhook's source event id)."""
    REJECTED.labels(status=str(status), reason=code).inc()
    log.info("request_rejected", status=status, reason=code, detail=detail,
             problems=[p.as_json() for p in problems[:_LOGGED_PROBLEMS]], **(extra or {}))
    body: dict[str, Any] = {"error": code, "detail": detail, **(extra or {})}
    if problems:
        body["errors"] = [p.as_json() for p in problems]
        body["error_count"] = len(problems) if total is None else total
    return web.json_response(body, status=status, headers=headers)


async def read_at_most(request: web.Request, limit: int) -> bytes | None:
    """The body, or ``None`` as soon as it is known to exceed ``limit`` bytes."""
    if request.content_length is not None and request.content_length > limit:
        return None
    body = bytearray()
    async for chunk in request.content.iter_chunked(_READ_CHUNK):
        body.extend(chunk)
        if len(body) > limit:
            return None
    return bytes(body)
