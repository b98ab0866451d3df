"""The evaluator's admin HTTP API (``EVALUATOR_ADMIN_PORT``): automations and approvals.

Writes go to the compacted topics, never to memory: the answer is sent once Kafka
has the record *and* this worker's reader has applied it, so a GET right after a
PUT sees the change, and every other worker picks it up from the same topic.
With ``SIGNALBOX_ADMIN_TOKEN`` set, every ``/v1`` request needs
``Authorization: Bearer <token>``.
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
ACTOR_HEADER = "X-Signalbox-Actor"
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
            return web.json_response({"errors": [{"path": "", "reason": str(exc)}]}, status=400)
        if not isinstance(body, dict):
            return web.json_response(
                {"errors": [{"path": "", "reason": "expected one automation as an object"}]},
                status=400)
        body.setdefault("id", aid)
        if body["id"] != aid:
            return web.json_response({"errors": [{"path": "id", "reason": (
                f"{body['id']!r} differs from the id in the URL, {aid!r}")}]}, status=400)
        created = aid not in self.source.definitions.effective()
        return await self._store(request, body, 201 if created else 200)

    async def _store(self, request: web.Request, definition: Mapping[str, Any],
                     status: int) -> web.Response:
        aid = str(definition["id"])
        stored = Stored(aid, AUTOMATION, dict(definition), now_ms(), _actor(request))
        try:
            self.source.definitions.with_change(Change(aid, stored)).build()
        except AutomationError as exc:
            return web.json_response({"errors": error_items(exc.errors)}, status=400)
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
            return web.json_response({"errors": error_items(exc.errors)}, status=400)
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
            return web.json_response({"errors": [{"path": "", "reason": str(exc)}]}, status=400)
        if not isinstance(body, dict):
            return web.json_response({"errors": [{"path": "", "reason": "expected an object"}]},
                                     status=400)
        decided_by = body.get("decided_by") or request.headers.get(ACTOR_HEADER)
        reason = body.get("reason")
        errors = []
        if not isinstance(decided_by, str) or not decided_by.strip():
            errors.append({"path": "decided_by", "reason": "required: who decides"})
        if reason is not None and not isinstance(reason, str):
            errors.append({"path": "reason", "reason": "expected a string"})
        if errors:
            return web.json_response({"errors": errors}, status=400)
        try:
            decided = await self.approvals.decide(approval_id, decision, str(decided_by), reason)
        except KeyError:
            return _problem(404, f"no approval {approval_id!r}")
        except ApprovalConflict as exc:
            return _problem(409, str(exc), approval=exc.approval)
        return web.json_response(decided)


def _actor(request: web.Request) -> str:
    return request.headers.get(ACTOR_HEADER, "").strip() or "admin-api"


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


def bearer_auth(token: str) -> Callable[..., Awaitable[web.StreamResponse]]:
    """A middleware refusing ``/v1`` requests without ``Authorization: Bearer <token>``."""
    expected = f"Bearer {token}".encode()

    @web.middleware
    async def check(request: web.Request, handler: Handler) -> web.StreamResponse:
        given = request.headers.get("Authorization", "").encode()
        if request.path.startswith("/v1") and not hmac.compare_digest(given, expected):
            return web.json_response({"error": "missing or wrong bearer token"}, status=401,
                                     headers={"WWW-Authenticate": "Bearer"})
        return await handler(request)

    return check


def create_admin_app(automations: AutomationsApi, approvals: ApprovalsApi | None,
                     token: str = "") -> web.Application:
    app = web.Application(middlewares=[bearer_auth(token)] if token else [])
    app.add_routes(automations.routes())
    if approvals is not None:
        app.add_routes(approvals.routes())
    return app
