"""The evaluator's admin HTTP API (``EVALUATOR_ADMIN_PORT``): automations and approvals.

Writes go to the compacted topics, never to memory: the answer is sent once Kafka
has the record *and* this worker's reader has applied it, so a GET right after a
PUT sees the change, and every other worker picks it up from the same topic.
With ``SIGNALBOX_ADMIN_TOKEN`` set, every request but ``/openapi.json`` needs
``Authorization: Bearer <token>``; beyond loopback the token is required. Who acts (an
automation's ``updated_by``, an approval's ``decided_by``) comes from the
``X-Signalbox-Actor`` header, never from a request body.
"""

from __future__ import annotations

import hmac
import json
import re
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import structlog
import yaml
from aiohttp import web

from signalbox.common.clock import now_ms
from signalbox.evaluator.admin_openapi import (
    ACTOR,
    ACTOR_HEADER,
    MAX_BODY_BYTES,
    REASON,
    STATUSES,
    document,
)
from signalbox.evaluator.approvals import ApprovalConflict, ApprovalsService
from signalbox.evaluator.definitions import (
    AUTOMATION,
    Change,
    Stored,
    describe,
)
from signalbox.evaluator.engine import AutomationError
from signalbox.evaluator.source import AutomationsSource, AutomationsWriter

log = structlog.get_logger(__name__)
#: Fields a decision body may not carry, and why.
_NOT_IN_BODY = {"decided_by": f"not accepted: a decision is recorded under the "
                              f"authenticated actor, the {ACTOR_HEADER} header"}
#: Served without the token: the description holds no data, and clients need it to learn
#: how to authenticate.
PUBLIC_PATHS = frozenset({"/openapi.json"})
_ACTOR = web.RequestKey("actor", str)
_WHERE = re.compile(r"^automations\[\d+\](?: \(id=[^)]*\))?[:.]?\s*")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def error_items(errors: list[str] | tuple[str, ...]) -> list[dict[str, str]]:
    """Validator messages as ``{"path", "reason"}``, relative to the one automation."""
    out = []
    for error in errors:
        rest = _WHERE.sub("", error, count=1)
        path, sep, reason = rest.partition(": ")
        out.append({"path": path, "reason": reason} if sep and " " not in path
                   else {"path": "", "reason": rest})
    return out


def _problem(status: int, reason: str, **extra: Any) -> web.Response:
    return web.json_response({"error": reason, **extra}, status=status)


def _invalid(errors: list[dict[str, str]]) -> web.Response:
    """400 for a request that cannot be applied: every problem as ``{"path", "reason"}``."""
    return web.json_response({"errors": errors}, status=400)


def _invalid_at(path: str, reason: str) -> web.Response:
    """400 for one problem of a request (``path`` ``""``: the body as a whole)."""
    return _invalid([{"path": path, "reason": reason}])


class AutomationsApi:
    def __init__(self, source: AutomationsSource, writer: AutomationsWriter) -> None:
        self.source, self.writer = source, writer

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/v1/automations", self.list),
            web.get("/v1/automations/{id}", self.get),
            web.put("/v1/automations/{id}", self.put),
            web.delete("/v1/automations/{id}", self.delete),
            web.post("/v1/automations/{id}/enable", self.enable),
            web.post("/v1/automations/{id}/disable", self.disable),
        ]

    def _describe(self, aid: str) -> dict[str, Any] | None:
        defs = self.source.definitions
        found = defs.effective().get(aid)
        if found is None:
            return None
        origin, definition = found
        return describe(aid, origin, definition, defs.topic.get(aid))

    async def list(self, request: web.Request) -> web.Response:
        defs = self.source.definitions
        items = [describe(aid, origin, d, defs.topic.get(aid))
                 for aid, (origin, d) in defs.effective().items()]
        rejected = [{"id": r.key, "errors": list(r.errors)}
                    for r in self.source.rejected.values()]
        return web.json_response({"automations": items, "teams": defs.teams(),
                                  "rejected": rejected})

    async def get(self, request: web.Request) -> web.Response:
        aid = request.match_info["id"]
        found = self._describe(aid)
        if found is None:
            return _problem(404, f"no automation {aid!r}")
        return web.json_response(found)

    async def put(self, request: web.Request) -> web.Response:
        aid = request.match_info["id"]
        try:
            body = await _body(request)
        except ValueError as exc:
            return _invalid_at("", str(exc))
        if not isinstance(body, dict):
            return _invalid_at("", "expected one automation as an object")
        body.setdefault("id", aid)
        if body["id"] != aid:
            return _invalid_at("id", f"{body['id']!r} differs from the id in the URL, {aid!r}")
        created = aid not in self.source.definitions.effective()
        return await self._store(request, body, 201 if created else 200)

    async def _store(self, request: web.Request, definition: Mapping[str, Any],
                     status: int) -> web.Response:
        aid = str(definition["id"])
        stored = Stored(aid, AUTOMATION, dict(definition), now_ms(), _actor(request))
        try:
            self.source.definitions.with_change(Change(aid, stored)).build()
        except AutomationError as exc:
            return _invalid(error_items(exc.errors))
        partition, offset = await self.writer.put(stored)
        await self.source.reader.wait_for(partition, offset)
        log.info("automation_written", automation_id=aid, by=stored.updated_by)
        if aid in self.source.rejected:  # another definition won the race
            return _problem(409, "the topic rejected this write",
                            errors=list(self.source.rejected[aid].errors))
        return web.json_response(self._describe(aid), status=status)

    async def delete(self, request: web.Request) -> web.Response:
        aid = request.match_info["id"]
        defs = self.source.definitions
        if aid not in defs.topic:
            if aid in defs.file_automations:
                return _problem(409, f"{aid!r} is defined in the file {defs.file_source}; "
                                     "remove it there, or disable it here")
            return _problem(404, f"no automation {aid!r}")
        try:
            defs.with_change(Change(aid, None)).build()
        except AutomationError as exc:
            return _invalid(error_items(exc.errors))
        partition, offset = await self.writer.delete(aid)
        await self.source.reader.wait_for(partition, offset)
        log.info("automation_deleted", automation_id=aid, by=_actor(request))
        return web.json_response({"deleted": aid, "now": self._describe(aid)})

    async def enable(self, request: web.Request) -> web.Response:
        return await self._switch(request, True)

    async def disable(self, request: web.Request) -> web.Response:
        return await self._switch(request, False)

    async def _switch(self, request: web.Request, enabled: bool) -> web.Response:
        aid = request.match_info["id"]
        found = self.source.definitions.effective().get(aid)
        if found is None:
            return _problem(404, f"no automation {aid!r}")
        return await self._store(request, {**found[1], "enabled": enabled}, 200)


class ApprovalsApi:
    def __init__(self, approvals: ApprovalsService) -> None:
        self.approvals = approvals

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/v1/approvals", self.list),
            web.get("/v1/approvals/{id}", self.get),
            web.post("/v1/approvals/{id}/approve", self.approve),
            web.post("/v1/approvals/{id}/reject", self.reject),
        ]

    async def list(self, request: web.Request) -> web.Response:
        status = request.query.get("status")
        if status is not None and status not in STATUSES:
            return _invalid_at("status",
                               f"expected one of {', '.join(STATUSES)}, got {status[:100]!r}")
        items = [a for a in self.approvals.all() if status is None or a["status"] == status]
        return web.json_response({"approvals": items})

    async def get(self, request: web.Request) -> web.Response:
        found = self.approvals.get(request.match_info["id"])
        if found is None:
            return _problem(404, f"no approval {request.match_info['id']!r}")
        return web.json_response(found)

    async def approve(self, request: web.Request) -> web.Response:
        return await self._decide(request, "approved")

    async def reject(self, request: web.Request) -> web.Response:
        return await self._decide(request, "rejected")

    async def _decide(self, request: web.Request, decision: str) -> web.Response:
        approval_id = request.match_info["id"]
        try:
            body = await _body(request) if request.can_read_body else {}
        except ValueError as exc:
            return _invalid_at("", str(exc))
        if not isinstance(body, dict):
            return _invalid_at("", "expected an object")
        errors = [{"path": key, "reason": _NOT_IN_BODY.get(key, "unknown field")}
                  for key in sorted({str(k) for k in body} - {"reason"})]
        reason = body.get("reason")
        problem = REASON.check(reason) if isinstance(reason, str) else (
            None if reason is None else "expected a string")
        if problem is not None:
            errors.append({"path": "reason", "reason": problem})
        decided_by = request.get(_ACTOR, "")
        if not decided_by:
            errors.append({"path": ACTOR_HEADER, "reason": "required: who decides"})
        if errors:
            return _invalid(errors)
        try:
            decided = await self.approvals.decide(approval_id, decision, decided_by, reason)
        except KeyError:
            return _problem(404, f"no approval {approval_id!r}")
        except ApprovalConflict as exc:
            return _problem(409, str(exc), approval=exc.approval)
        return web.json_response(decided)


def _actor(request: web.Request) -> str:
    """Who acts: the actor header (checked by :func:`actor_header`), never a request body."""
    return request.get(_ACTOR) or "admin-api"


@web.middleware
async def actor_header(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Reads :data:`ACTOR_HEADER`, which the token's holder, or the authenticating proxy in
    front (docs/admin.md), sets; 400 for a value no record should carry."""
    name = request.headers.get(ACTOR_HEADER, "").strip()
    problem = ACTOR.check(name)
    if problem is not None:
        return _invalid_at(ACTOR_HEADER, problem)
    request[_ACTOR] = name
    return await handler(request)


async def _body(request: web.Request) -> Any:
    """JSON, or YAML with a YAML content type. ValueError with the reason."""
    text = await request.text()
    if "yaml" in request.content_type:
        try:
            return yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ValueError(f"not valid YAML: {exc}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not valid JSON: {exc}") from None


@web.middleware
async def body_limit(request: web.Request, handler: Handler) -> web.StreamResponse:
    """A body over :data:`MAX_BODY_BYTES` answered as JSON, like every other refusal."""
    try:
        return await handler(request)
    except web.HTTPRequestEntityTooLarge:
        return _problem(413, f"body larger than {MAX_BODY_BYTES} bytes")


def bearer_auth(token: str) -> Callable[..., Awaitable[web.StreamResponse]]:
    """A middleware refusing requests without ``Authorization: Bearer <token>``, except for
    :data:`PUBLIC_PATHS`. Constant-time comparison: the answer's timing tells nothing about
    how much of a guess was right."""
    expected = f"Bearer {token}".encode()

    @web.middleware
    async def check(request: web.Request, handler: Handler) -> web.StreamResponse:
        given = request.headers.get("Authorization", "").encode()
        if request.path not in PUBLIC_PATHS and not hmac.compare_digest(given, expected):
            return web.json_response({"error": "missing or wrong bearer token"}, status=401,
                                     headers={"WWW-Authenticate": "Bearer"})
        return await handler(request)

    return check


def create_admin_app(automations: AutomationsApi, approvals: ApprovalsApi | None,
                     token: str = "") -> web.Application:
    app = web.Application(middlewares=[*([bearer_auth(token)] if token else []),
                                       actor_header, body_limit],
                          client_max_size=MAX_BODY_BYTES)
    app.add_routes(automations.routes())
    if approvals is not None:
        app.add_routes(approvals.routes())
    description = document(bool(token))

    async def openapi_json(_: web.Request) -> web.Response:
        return web.json_response(description)

    app.router.add_get("/openapi.json", openapi_json)
    return app
