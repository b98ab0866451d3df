"""The OpenAPI 3.1 description of the evaluator's admin API (``GET /openapi.json``). Pure.

An approval is described from the Avro schema the approvals topic holds
(``schemas/avro/approval.avsc``), converted with ingest's Avro-to-JSON-Schema helpers,
so the description follows the record. An automation's body is checked by the engine's
validator, whose rules (triggers, conditions, actions, templates) JSON Schema cannot
state: the description gives its outer shape, and the API answers 400 with every
problem the validator finds.
"""

from __future__ import annotations

from typing import Any

from signalbox.common import schemas
from signalbox.ingest.avro_json import resolve
from signalbox.ingest.formats import _bounded_text
from signalbox.ingest.openapi import _object

ACTOR_HEADER = "X-Signalbox-Actor"
#: The actor's name: the check the API applies, and its JSON Schema.
ACTOR = _bounded_text(200, ACTOR_HEADER)
#: A decision's reason: kept on the approval and its event, so bounded.
REASON = _bounded_text(2000, "reason")
#: Request bodies: an automation is a few KB; its record must fit a Kafka message.
MAX_BODY_BYTES = 256 * 1024
#: An approval's statuses, from the schema's enum (pending, approved, rejected, expired,
#: dropped).
STATUSES = tuple(next(f["type"]["symbols"] for f in schemas.current()[schemas.APPROVAL].raw[
    "fields"] if f["name"] == "status"))
_REF = "#/components/schemas/"
_JSON = "application/json"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": _REF + name}


def _answer(why: str, schema: str) -> dict[str, Any]:
    return {"description": why, "content": {_JSON: {"schema": _ref(schema)}}}


def _approval_schemas() -> dict[str, Any]:
    """``Approval`` and the records inside it, from the Avro schema."""
    raw = schemas.current()[schemas.APPROVAL].raw
    out = {"Approval": {**_object(raw["fields"]), "description": raw["doc"]}}
    for field in raw["fields"]:
        inner = resolve(field["type"])
        if isinstance(inner, dict) and inner.get("type") == "record":
            out[inner["name"]] = _object(inner["fields"])
    return out


def _components() -> dict[str, Any]:
    problem = {"type": "object", "required": ["path", "reason"], "properties": {
        "path": {"type": "string", "description": "where: a field of the body, or a header"},
        "reason": {"type": "string"}}}
    text_or_null = {"type": ["string", "null"]}
    return {
        **_approval_schemas(),
        "Errors": {"type": "object", "required": ["errors"], "properties": {
            "errors": {"type": "array", "items": problem}}},
        "Problem": {"type": "object", "required": ["error"], "properties": {
            "error": {"type": "string"},
            "errors": {"type": "array", "items": {"type": "string"}},
            "approval": _ref("Approval")}},
        "AutomationDefinition": {
            "type": "object", "required": ["trigger", "actions"],
            "description": "One automation as in the automations file (docs/automations.md); "
                           "`id` may be left out (the URL names it).",
            "properties": {
                "id": {"type": "string"}, "name": {"type": "string"},
                "version": {"type": "integer"}, "enabled": {"type": "boolean"},
                "trigger": {"type": "object", "required": ["type"],
                            "properties": {"type": {"type": "string"}}},
                "actions": {"type": "array", "items": {"type": "object"}}}},
        "Automation": {"type": "object", "required": [
            "id", "origin", "version", "enabled", "trigger", "updated_at", "updated_by",
            "definition"], "properties": {
                "id": {"type": "string"}, "origin": {"enum": ["file", "topic"]},
                "version": {"type": "integer"}, "enabled": {"type": "boolean"},
                "trigger": text_or_null,
                "updated_at": {"type": ["integer", "null"], "description": "epoch ms"},
                "updated_by": text_or_null, "definition": {"type": "object"}}},
        "Decision": {
            "type": "object", "additionalProperties": False,
            "properties": {"reason": {**text_or_null, **REASON.schema}},
            "description": f"Who decides is not part of the body: it is the {ACTOR_HEADER} "
                           f"header."},
    }


def document(token_required: bool) -> dict[str, Any]:
    """The OpenAPI 3.1 document of the admin API; with a token, every operation needs it."""
    ident = {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}

    def actor(required: bool, why: str) -> dict[str, Any]:
        return {"name": ACTOR_HEADER, "in": "header", "required": required,
                "description": why,
                "schema": {"type": "string", "minLength": 1, **ACTOR.schema}}

    def op(op_id: str, summary: str, answers: dict[str, Any], **more: Any) -> dict[str, Any]:
        responses = {**answers}
        if token_required:
            responses["401"] = _answer("No bearer token, or the wrong one.", "Problem")
        return {"operationId": op_id, "summary": summary, "responses": responses, **more}

    bad = _answer("The request is invalid: every problem with its path.", "Errors")
    missing = _answer("No such automation or approval.", "Problem")
    too_large = _answer(f"The body is larger than {MAX_BODY_BYTES} bytes.", "Problem")
    automation = _answer("The automation as the worker now holds it.", "Automation")
    approval = _answer("The approval.", "Approval")
    writer = actor(False, "Who makes the change, kept as `updated_by` (default `admin-api`).")
    write = {"400": bad, "404": missing,
             "409": _answer("The automations topic rejected the write.", "Problem"),
             "413": too_large}
    decider = actor(True, "Who decides, kept as `decided_by`: the authenticated operator "
                          "(docs/admin.md).")

    def switch_op(verb: str) -> dict[str, Any]:
        return op(f"{verb}Automation", f"{verb.capitalize()} (a file automation gets an "
                  "overriding topic entry).", {"200": automation, **write},
                  parameters=[ident, writer])

    def decide_op(verb: str) -> dict[str, Any]:
        return op(f"{verb}Approval", f"{verb.capitalize()} the held actions.", {
            "200": _answer("The decided approval.", "Approval"), "400": bad, "404": missing,
            "409": _answer("Decided, expired or dropped already: the outcome that stands.",
                           "Problem"),
            "413": too_large},
            parameters=[ident, decider], requestBody={
                "required": False, "content": {_JSON: {"schema": _ref("Decision")}}})

    paths = {
        "/v1/automations": {"get": op("listAutomations", "Every automation in effect.", {
            "200": {"description": "Automations, teams and rejected topic entries.",
                    "content": {_JSON: {"schema": {
                        "type": "object", "required": ["automations", "teams", "rejected"],
                        "properties": {
                            "automations": {"type": "array", "items": _ref("Automation")},
                            "teams": {"type": "object",
                                      "additionalProperties": {"type": "string"}},
                            "rejected": {"type": "array", "items": {
                                "type": "object", "required": ["id", "errors"]}}}}}}}})},
        "/v1/automations/{id}": {
            "get": op("getAutomation", "One automation.", {"200": automation, "404": missing},
                      parameters=[ident]),
            "put": op("putAutomation", "Create or replace a topic automation (JSON, or "
                      "YAML with a YAML content type).",
                      {"200": automation, "201": automation, **write},
                      parameters=[ident, writer], requestBody={"required": True, "content": {
                          _JSON: {"schema": _ref("AutomationDefinition")}}}),
            "delete": op("deleteAutomation", "Delete the topic entry.", {
                "200": {"description": "Deleted; `now`: the file's version, if any.",
                        "content": {_JSON: {"schema": {
                            "type": "object", "required": ["deleted", "now"], "properties": {
                                "deleted": {"type": "string"},
                                "now": {"anyOf": [_ref("Automation"), {"type": "null"}]}}}}}},
                **write}, parameters=[ident, writer]),
        },
        "/v1/automations/{id}/enable": {"post": switch_op("enable")},
        "/v1/automations/{id}/disable": {"post": switch_op("disable")},
        "/v1/approvals": {"get": op("listApprovals", "Approvals, optionally by status.", {
            "200": {"description": "The approvals.", "content": {_JSON: {"schema": {
                "type": "object", "required": ["approvals"], "properties": {
                    "approvals": {"type": "array", "items": _ref("Approval")}}}}}},
            "400": bad}, parameters=[{"name": "status", "in": "query", "required": False,
                                      "schema": {"enum": list(STATUSES)}}])},
        "/v1/approvals/{id}": {"get": op("getApproval", "One approval.",
                                         {"200": approval, "404": missing},
                                         parameters=[ident])},
        "/v1/approvals/{id}/approve": {"post": decide_op("approve")},
        "/v1/approvals/{id}/reject": {"post": decide_op("reject")},
    }
    components: dict[str, Any] = {"schemas": _components()}
    doc: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {"title": "signalbox evaluator admin API", "version": "1",
                 "description": "Automations and approvals (docs/admin.md). Writes answer "
                                "once Kafka has the record and this worker applied it."},
        "paths": paths, "components": components}
    if token_required:
        components["securitySchemes"] = {"adminToken": {
            "type": "http", "scheme": "bearer",
            "description": "SIGNALBOX_ADMIN_TOKEN of the evaluator."}}
        doc["security"] = [{"adminToken": []}]
    return doc
