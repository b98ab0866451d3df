"""The event catalogue as Markdown, generated from ``schemas/avro/event.avsc``.

The schema is the contract (design principle 4), so the operator-facing list of
event types is derived from it, never written by hand: ``signalbox events
catalogue > docs/events.md``, and a test fails when the committed file is stale.
Every type gets an example built from its fields; the same test feeds each
example through ingest's validation, so no example in the docs is refused.

A field may carry ``"signalbox.example"`` in the schema to choose its example
value; otherwise one is derived from the field's name and type.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from signalbox.common import schemas
from signalbox.common.schemas import EventType
from signalbox.ingest.avro_json import describe_fields, resolve
from signalbox.ingest.formats import rule_for
from signalbox.ingest.keys import INTERNAL_TYPES
from signalbox.ingest.validation import envelope_fields

EXAMPLE_TIME = "2026-11-22T09:30:00Z"
EXAMPLE_LATER = "2026-12-06T09:30:00Z"
_BY_NAME: Mapping[str, Any] = {
    "currency": "EUR", "product": "pro", "plan": "pro", "email": "ada@example.com",
    "phone": "+4915112345678", "name": "Ada Lovelace", "timezone": "Europe/Berlin",
    "locale": "en-GB", "metric": "api_calls", "feature": "reports", "reason": "card_declined",
    "status": "active", "source": "billing", "field": "company_size",
    "exp_month": 11, "exp_year": 2028, "nps": 9,
}


def _example_string(name: str) -> str:
    if name in _BY_NAME:
        return str(_BY_NAME[name])
    if name.endswith("_id"):
        return f"{name[:-3]}_1"
    return name.replace("_", "-")


def _example(name: str, schema: Any, field: Mapping[str, Any] | None = None) -> Any:
    """A plausible JSON value for one field; ``MISSING`` for optional fields left out."""
    if field is not None and "signalbox.example" in field:
        return field["signalbox.example"]
    schema = resolve(schema)
    if isinstance(schema, list):
        branches = [b for b in schema if b != "null"]
        return _example(name, branches[0]) if branches else None
    if isinstance(schema, dict):
        if schema.get("logicalType") == "timestamp-millis":
            return EXAMPLE_LATER if name.endswith(("due_at", "ends_at", "starts_at",
                                                   "expires_at")) else EXAMPLE_TIME
        kind = schema["type"]
        if kind == "enum":
            return schema["symbols"][0]
        if kind == "array":
            return [_example(name, schema["items"])]
        if kind == "map":
            return {"key": _example(name, schema["values"])}
        if kind == "record":
            return {f["name"]: _example(f["name"], f["type"], f) for f in schema["fields"]}
        schema = kind
    if schema == "string":
        return _example_string(name)
    if schema == "int" and name in _BY_NAME:  # a documented range (signalbox.ingest.formats)
        return _BY_NAME[name]
    if schema in ("int", "long"):
        return 4900 if name.endswith("_minor") else 3
    if schema in ("float", "double"):
        return 1.5
    if schema == "boolean":
        return True
    return None


def example(event_type: EventType) -> dict[str, Any]:
    """One valid JSON event of this type, as ``POST /v1/events`` accepts it."""
    return {
        "event_id": "evt_0001",
        "type": event_type.name,
        "customer_id": "cus_42",
        "occurred_at": EXAMPLE_TIME,
        "data": {f["name"]: _example(f["name"], f["type"], f) for f in event_type.fields},
    }


def _cell(text: str) -> str:
    """Text safe inside a Markdown table cell."""
    return text.replace("|", "\\|").replace("\n", " ")


def _table(fields: Iterable[Mapping[str, Any]]) -> list[str]:
    rows = ["| field | type | required | description |", "|---|---|---|---|"]
    for f in describe_fields(fields, rule_for):
        doc = f.get("doc", "")
        if "default" in f and f["default"] is not None:
            doc = f"{doc} Default: `{json.dumps(f['default'])}`.".strip()
        kind, doc = _cell(f["type"]), _cell(doc)
        rows.append(f"| `{f['name']}` | {kind} | {'yes' if f['required'] else 'no'} | {doc} |")
    return rows


def profile_fields() -> list[Mapping[str, Any]]:
    """The fields of the customer profile (`customer` in the envelope)."""
    customer = next(f for f in envelope_fields() if f["name"] == "customer")
    record = next(resolve(b) for b in customer["type"] if b != "null")
    return list(record["fields"])


def markdown() -> str:
    """The whole catalogue: the JSON envelope, then every event type by topic and name."""
    types = sorted(schemas.event_types().values(), key=lambda t: (t.topic, t.name))
    out = [
        "# Event catalogue",
        "",
        "<!-- Generated from schemas/avro/event.avsc by `signalbox events catalogue`;"
        " do not edit by hand. -->",
        "",
        "Every event is one JSON object, posted to ingest (`POST /v1/events`, one object or an"
        " array) or written as one line of a JSONL file for `signalbox simulate`. The envelope"
        " is the same for every type; `type` names the event type and `data` holds its fields."
        " Timestamps are RFC 3339 with a UTC offset (`2026-11-22T09:30:00Z`), or epoch"
        " milliseconds, between 1970 and 9999; amounts are integers in the currency's minor"
        " unit (cents). Ids are at most 256 characters; within one request every `event_id`"
        " is different.",
        "",
        "## Envelope",
        "",
        "| field | type | required | description |",
        "|---|---|---|---|",
        "| `type` | string | yes | The event type: one of the names below. |",
        *_table(envelope_fields())[2:],
        "| `data` | object | no | The event type's fields (below); may be left out when the"
        " type has no required field. |",
        "",
        "`customer` (what signalbox knows about the customer; a known value replaces the"
        " previous one, a missing one keeps it):",
        "",
        *_table(profile_fields()),
        "",
        "## Types",
        "",
        "| type | topic | what happened |",
        "|---|---|---|",
    ]
    out += [f"| [`{t.name}`](#{t.name.replace('.', '')}) | `{t.topic}` | {t.doc} |"
            for t in types]
    for t in types:
        out += ["", f"### {t.name}", "", t.doc or "", "", f"Topic: `{t.topic}`.", ""]
        if t.name in INTERNAL_TYPES:
            out += ["Internal: written by signalbox itself (the admin API); ingest refuses it "
                    "from every producer. `signalbox simulate` accepts it in its input.", ""]
        out += _table(t.fields) if t.fields else ["No fields: `data` is `{}`."]
        out += ["", "```json", json.dumps(example(t), indent=2), "```"]
    return "\n".join(out) + "\n"
