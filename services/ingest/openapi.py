"""The OpenAPI 3.1 description of ingest, generated from the same catalogue it validates
against: the Avro schema (types, required fields, unions, enums, integer ranges) and the
format rules of :mod:`signalbox.ingest.formats`. Pure.

Every constraint stated here is one ingest enforces, so a request the description calls
invalid is refused (a contract test sends such requests). Ingest checks more than JSON
Schema can say (email syntax, phone validity, the timestamp range for text, duplicate ids
in a batch, sizes), so a request the description allows may still be refused, with 400.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from signalbox.common import schemas
from signalbox.common.settings import IngestSettings
from signalbox.ingest.avro_json import MAX_TIME_MS, resolve
from signalbox.ingest.formats import currencies, rule_for, time_zones
from signalbox.ingest.keys import INTERNAL_TYPES
from signalbox.ingest.validation import envelope_fields

_AVRO_INT = {"int": (-(2**31), 2**31 - 1), "long": (-(2**63), 2**63 - 1)}
_NON_EMPTY = frozenset({"event_id", "customer_id"})
_REF = "#/components/schemas/"
#: A written year of 1970..9999 (ingest also checks the instant in UTC).
_YEARS = "^(19[7-9][0-9]|[2-9][0-9]{3})-"
#: JSON Schema for fields whose set of values is a list (more exact than a pattern).
_ENUMS = {"timezone": lambda: sorted(time_zones()), "currency": lambda: sorted(currencies())}


def _type(name: str, schema: Any) -> dict[str, Any]:
    schema = resolve(schema)
    if isinstance(schema, list):
        branches = [_type(name, b) for b in schema]
        return branches[0] if len(branches) == 1 else {"anyOf": branches}
    if isinstance(schema, dict):
        if schema.get("logicalType") == "timestamp-millis":
            return {"anyOf": [
                {"type": "integer", "minimum": 0, "maximum": MAX_TIME_MS,
                 "description": "epoch milliseconds"},
                {"type": "string", "format": "date-time", "pattern": _YEARS,
                 "description": "RFC 3339 with offset, between 1970 and 9999"}]}
        kind = schema["type"]
        if kind == "enum":
            return {"type": "string", "enum": list(schema["symbols"])}
        if kind == "map":
            return {"type": "object", "additionalProperties": _type(name, schema["values"])}
        if kind == "array":
            return {"type": "array", "items": _type(name, schema["items"])}
        if kind == "record":
            return {"$ref": _REF + str(schema["name"])}
        schema = kind
    return _primitive(name, schema)


def _primitive(name: str, kind: str) -> dict[str, Any]:
    out: dict[str, Any]
    if kind in _AVRO_INT:
        low, high = _AVRO_INT[kind]
        out = {"type": "integer", "minimum": low, "maximum": high}
    else:
        out = {"type": {"string": "string", "double": "number", "float": "number",
                        "boolean": "boolean", "null": "null"}.get(kind, "string")}
    if kind == "null":
        return out
    rule = rule_for(name)
    if rule is not None:
        out.update(rule.schema)
    if name in _ENUMS:
        out = {"type": "string", "enum": _ENUMS[name]()}
    if name in _NON_EMPTY:
        out["minLength"] = 1
    return out


def _object(fields: Any, extra: Mapping[str, Any] | None = None,
            required_extra: tuple[str, ...] = ()) -> dict[str, Any]:
    properties: dict[str, Any] = {}
    required = list(required_extra)
    for f in fields:
        prop = _type(f["name"], f["type"])
        if f.get("doc"):
            prop = {**prop, "description": f["doc"]}
        if "default" in f:
            prop = {**prop, "default": f["default"]}
        else:
            required.append(f["name"])
        properties[f["name"]] = prop
    properties.update(extra or {})
    return {"type": "object", "additionalProperties": False, "required": required,
            "properties": properties}


def _event(event_type: schemas.EventType) -> dict[str, Any]:
    data = _object(event_type.fields)
    extra = {"type": {"const": event_type.name}, "data": data}
    needs_data = ("data",) if data["required"] else ()
    out = _object(envelope_fields(), extra, ("type", *needs_data))
    out["description"] = event_type.doc
    return out


def _component_name(event_type: str) -> str:
    return "Event_" + event_type.replace(".", "_")


def _error() -> dict[str, Any]:
    problem = {"type": "object", "required": ["path", "reason"],
               "properties": {"path": {"type": "string", "description": "JSONPath"},
                              "reason": {"type": "string"}}}
    return {"type": "object", "required": ["error", "detail"], "properties": {
        "error": {"type": "string"}, "detail": {"type": "string"},
        "errors": {"type": "array", "items": problem, "description": "the first problems"},
        "error_count": {"type": "integer", "description": "how many problems in all"},
        "limit_bytes": {"type": "integer"}, "max_message_bytes": {"type": "integer"}}}


def _source_webhook(error: Any) -> dict[str, Any]:
    """``POST /v1/sources/{source}``: a billing system's own webhook (docs/sources.md)."""
    accepted = {"type": "object", "required": ["accepted"], "properties": {
        "accepted": {"type": "array", "items": {"type": "string"}},
        "ignored": {"type": "string", "enum": ["unmapped", "skipped"]},
        "source": {"type": "string"}, "source_event_id": {"type": "string"},
        "source_event_type": {"type": "string"}}}
    return {
        "operationId": "postSourceWebhook",
        "summary": "A billing system's signed webhook, mapped to catalogue events.",
        "description": "The body is the source's own payload (Stripe, Chargebee, Lago, or "
                       "a mapping of your own), authenticated by the source's scheme instead "
                       "of an API key: Stripe-Signature (stripe), Authorization: Basic "
                       "(chargebee), X-Lago-Signature (lago, HMAC). The mapped events take "
                       "the path of POST /v1/events. See docs/sources.md.",
        "security": [],
        "parameters": [{"name": "source", "in": "path", "required": True,
                        "schema": {"type": "string"},
                        "description": "stripe, chargebee, lago, or a mapping's source"}],
        "requestBody": {"required": True, "content": {"application/json": {
            "schema": {"description": "The source's webhook payload, as it sends it."}}}},
        "responses": {
            "200": {"description": "Verified; a type the mapping does not use (unmapped) "
                                   "or no rule's condition held (skipped): nothing written.",
                    "content": {"application/json": {"schema": accepted}}},
            "202": {"description": "Kafka acknowledged every mapped event.",
                    "content": {"application/json": {"schema": accepted}}},
            "400": error("Missing or bad signature, stale timestamp, not JSON, unreadable "
                         "source event, or a mapped event ingest refuses (with "
                         "source_event_id): nothing written."),
            "404": error("Unknown source, or its secrets are not configured."),
            "413": error("Body or a mapped event's record too large."),
            "503": error("Kafka did not acknowledge in time: the source retries."),
        },
    }


def document(ingest: IngestSettings) -> dict[str, Any]:
    """The OpenAPI 3.1 document ``GET /openapi.json`` serves."""
    types = [t for t in schemas.event_types().values() if t.name not in INTERNAL_TYPES]
    components: dict[str, Any] = {_component_name(t.name): _event(t) for t in types}
    profile = next(resolve(b) for f in envelope_fields() if f["name"] == "customer"
                   for b in f["type"] if b != "null")
    components["CustomerProfile"] = _object(profile["fields"])
    components["Event"] = {
        "oneOf": [{"$ref": _REF + _component_name(t.name)} for t in types],
        "discriminator": {"propertyName": "type", "mapping": {
            t.name: _REF + _component_name(t.name) for t in types}}}
    components["Error"] = _error()

    def error(why: str) -> dict[str, Any]:
        return {"description": why,
                "content": {"application/json": {"schema": {"$ref": _REF + "Error"}}}}

    post: dict[str, Any] = {
        "operationId": "postEvents",
        "summary": "Send one event or a batch; all are written or none.",
        "requestBody": {"required": True, "content": {"application/json": {"schema": {
            "oneOf": [{"$ref": _REF + "Event"},
                      {"type": "array", "minItems": 1, "maxItems": ingest.max_batch,
                       "items": {"$ref": _REF + "Event"}}]}}}},
        "responses": {
            "202": {"description": "Kafka acknowledged every event.", "content": {
                "application/json": {"schema": {
                    "type": "object", "required": ["accepted"],
                    "properties": {"accepted": {"type": "array", "items": {"type": "string"}}}}}}},
            "400": error("Not JSON, or invalid events: each problem with its path."),
            "401": error("No API key, or not a valid one."),
            "403": error("An event type the key may not send, or an internal one."),
            "413": error("Body, batch or an event's record too large (limit in the answer)."),
            "415": error("Content-Type is not application/json."),
            "503": error("Kafka did not acknowledge in time: retry the whole batch."),
        },
    }
    components_doc: dict[str, Any] = {"schemas": components}
    if ingest.auth == "keys":
        post["security"] = [{"apiKey": []}]
        components_doc["securitySchemes"] = {"apiKey": {
            "type": "http", "scheme": "bearer",
            "description": "A key from `signalbox keys create`, scoped to event types."}}
    return {
        "openapi": "3.1.0",
        "info": {"title": "signalbox ingest", "version": "1",
                 "description": "JSON events in, Avro records on Kafka out. Generated from "
                                "schemas/avro/event.avsc and ingest's format rules."},
        "paths": {
            "/v1/events": {"post": post},
            "/v1/sources/{source}": {"post": _source_webhook(error)},
            "/v1/event-types": {"get": {
                "operationId": "getEventTypes", "summary": "The event catalogue as JSON.",
                "responses": {"200": {"description": "Envelope and event types.", "content": {
                    "application/json": {"schema": {"type": "object"}}}}}}},
        },
        "components": components_doc,
    }
