"""A local server speaking enough of HubSpot's CRM v3 API to check requests and hold state.

Objects ``contacts``, ``deals``, ``tasks``, ``notes``: create (``POST
/crm/v3/objects/{type}``, with ``associations``), update (``PATCH
/crm/v3/objects/{type}/{id}``) and search (``POST /crm/v3/objects/{type}/search``
with ``EQ`` and ``CONTAINS_TOKEN`` filters, ``associations.contact``). Bearer
token auth. Errors in HubSpot's shape (``status``, ``message``, ``category``):
401 for a bad token, 400 for a malformed body or association, 404 for an unknown
id, 409 for a second contact with one email.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from signalbox.testing.fakes.server import FakeServer

OBJECTS = ("contacts", "deals", "tasks", "notes")
REQUIRED = {"contacts": ("email",), "deals": ("dealname", "pipeline", "dealstage"),
            "tasks": ("hs_timestamp", "hs_task_subject"), "notes": ("hs_timestamp",)}
TO_CONTACT = {"deals": 3, "notes": 202, "tasks": 204}
Parsed = tuple[str, dict[str, Any], dict[str, str]]  # object type, body, properties


@dataclass
class Obj:
    id: str
    properties: dict[str, str]
    contacts: set[str] = field(default_factory=set)

    def json(self) -> dict[str, Any]:
        return {"id": self.id, "properties": {**self.properties, "hs_object_id": self.id},
                "createdAt": "2026-11-22T00:00:00Z", "updatedAt": "2026-11-22T00:00:00Z",
                "archived": False}


def _error(status: int, category: str, message: str) -> web.Response:
    return web.json_response({"status": "error", "message": message, "category": category,
                              "correlationId": "00000000-0000-0000-0000-000000000000"},
                             status=status)


class FakeHubSpot(FakeServer):
    def __init__(self, token: str = "hs-token", port: int | None = None) -> None:
        super().__init__(port)
        self.token = token
        self.store: dict[str, dict[str, Obj]] = {k: {} for k in OBJECTS}
        self.calls: list[tuple[str, str, Any]] = []
        self.conflicts = 0  # 409s answered
        self._next = 1000

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/crm/v3/objects/{type}/search", self._search)
        app.router.add_post("/crm/v3/objects/{type}", self._create)
        app.router.add_patch("/crm/v3/objects/{type}/{id}", self._update)

    def objects(self, kind: str) -> list[Obj]:
        with self.lock:
            return list(self.store[kind].values())

    async def _body(self, request: web.Request) -> tuple[str, dict[str, Any]] | web.Response:
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            return _error(401, "INVALID_AUTHENTICATION",
                          "Authentication credentials not found.")
        kind = request.match_info["type"]
        if kind not in OBJECTS:
            return _error(404, "OBJECT_NOT_FOUND", f"Unable to infer object type from: {kind}")
        try:
            body = await request.json()
        except ValueError:
            return _error(400, "VALIDATION_ERROR", "Invalid input JSON")
        if not isinstance(body, dict):
            return _error(400, "VALIDATION_ERROR", "expected an object")
        with self.lock:
            self.calls.append((request.method, request.path, body))
        return kind, body

    async def _search(self, request: web.Request) -> web.Response:
        got = await self._body(request)
        if isinstance(got, web.Response):
            return got
        kind, body = got
        groups = body.get("filterGroups") or [{"filters": []}]
        with self.lock:
            hits = [o for o in self.store[kind].values()
                    if any(all(self._match(o, f) for f in g["filters"]) for g in groups)]
            hits.sort(key=lambda o: int(o.id), reverse=True)
            limit = int(body.get("limit", 10))
            return web.json_response({"total": len(hits),
                                      "results": [o.json() for o in hits[:limit]]})

    @staticmethod
    def _match(obj: Obj, f: dict[str, str]) -> bool:
        name, op, value = f["propertyName"], f["operator"], f.get("value", "")
        if name == "associations.contact":
            actual: set[str] = obj.contacts
            return op == "EQ" and value in actual
        prop = obj.properties.get(name, "")
        if op == "EQ":
            return prop.lower() == value.lower() if name == "email" else prop == value
        if op == "CONTAINS_TOKEN":
            return value in re.split(r"[^0-9A-Za-z_-]+", prop)
        raise ValueError(f"operator {op} not supported by the fake")

    async def _with_properties(self, request: web.Request) -> Parsed | web.Response:
        got = await self._body(request)
        if isinstance(got, web.Response):
            return got
        kind, body = got
        props = body.get("properties")
        if not isinstance(props, dict) or not all(isinstance(v, str) for v in props.values()):
            return _error(400, "VALIDATION_ERROR", "properties must map names to strings")
        return kind, body, props

    async def _create(self, request: web.Request) -> web.Response:
        got = await self._with_properties(request)
        if isinstance(got, web.Response):
            return got
        kind, body, props = got
        missing = [p for p in REQUIRED[kind] if not props.get(p)]
        if missing:
            return _error(400, "VALIDATION_ERROR", f"missing required properties {missing}")
        with self.lock:
            contacts: set[str] = set()
            for assoc in body.get("associations") or []:
                to = str(assoc.get("to", {}).get("id"))
                types = assoc.get("types") or []
                if to not in self.store["contacts"] or types != [
                        {"associationCategory": "HUBSPOT_DEFINED",
                         "associationTypeId": TO_CONTACT.get(kind)}]:
                    return _error(400, "VALIDATION_ERROR", f"invalid association {assoc}")
                contacts.add(to)
            if kind == "contacts" and any(o.properties["email"].lower() == props["email"].lower()
                                          for o in self.store["contacts"].values()):
                self.conflicts += 1
                return _error(409, "CONFLICT", "Contact already exists.")
            self._next += 1
            obj = Obj(str(self._next), dict(props), contacts)
            self.store[kind][obj.id] = obj
            return web.json_response(obj.json(), status=201)

    async def _update(self, request: web.Request) -> web.Response:
        got = await self._with_properties(request)
        if isinstance(got, web.Response):
            return got
        kind, _, props = got
        with self.lock:
            obj = self.store[kind].get(request.match_info["id"])
            if obj is None:
                return _error(404, "OBJECT_NOT_FOUND", "resource not found")
            obj.properties.update(props)
            return web.json_response(obj.json())
