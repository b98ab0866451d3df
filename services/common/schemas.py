"""The Avro contract, loaded from ``schemas/avro`` (package data ``signalbox.schemas``).

Current schemas live in ``avro/*.avsc``; every schema version that was ever
written to Kafka is kept in ``avro/history/<full name>/<n>.avsc`` so that a
reader can resolve old records (single-object encoding names the writer schema
only by fingerprint).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from importlib.abc import Traversable
from typing import Any, cast

from fastavro import parse_schema
from fastavro.schema import fingerprint, to_parsing_canonical_form

Schema = dict[str, Any]

#: Full names of the top-level records written to Kafka.
EVENT = "signalbox.Event"
TICK = "signalbox.Tick"
ACTION_COMMAND = "signalbox.ActionCommand"
ACTION_RESULT = "signalbox.ActionResult"
LEDGER_ENTRY = "signalbox.LedgerEntry"
DEAD_LETTER = "signalbox.DeadLetter"
CUSTOMER_STATE = "signalbox.CustomerState"
AUTOMATION_RECORD = "signalbox.AutomationRecord"
APPROVAL = "signalbox.Approval"
REPLAY_MARK = "signalbox.ReplayMark"

#: Branches of ActionCommand's ``action`` union.
EMAIL_ACTION = "signalbox.actions.EmailAction"
SMS_ACTION = "signalbox.actions.SmsAction"
WEBHOOK_ACTION = "signalbox.actions.WebhookAction"
CRM_ACTION = "signalbox.actions.CrmAction"
EXPORT_ACTION = "signalbox.actions.ExportAction"
#: Channel name by action branch: how the dispatcher routes a command.
CHANNEL_BY_ACTION = {
    EMAIL_ACTION: "email",
    SMS_ACTION: "sms",
    WEBHOOK_ACTION: "webhook",
    CRM_ACTION: "crm",
    EXPORT_ACTION: "export",
}


@dataclass(frozen=True)
class SchemaVersion:
    """One parsed schema with its Avro single-object fingerprint."""

    name: str
    source: str
    raw: Schema
    parsed: Schema
    fingerprint: bytes
    #: ``parsed`` marked as parsed for fastavro: without the mark its reader, writer and
    #: validator parse the schema again on every call (9x slower writes for Event).
    io: Schema = field(init=False, compare=False, repr=False)
    #: ``io`` without ``timestamp-millis`` annotations: decodes those fields to the
    #: epoch milliseconds they hold instead of building a datetime per field.
    io_plain: Schema = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "io", cast(Schema, parse_schema(self.raw)))
        object.__setattr__(self, "io_plain", cast(Schema, parse_schema(_plain(self.raw))))


def _plain(schema: Any) -> Any:
    """``schema`` with every ``timestamp-millis`` logical type removed (a plain long)."""
    if isinstance(schema, list):
        return [_plain(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    if schema.get("logicalType") == "timestamp-millis":
        return {k: v for k, v in schema.items() if k != "logicalType"}
    out = dict(schema)
    if "fields" in schema:
        out["fields"] = [{**f, "type": _plain(f["type"])} for f in schema["fields"]]
    for key in ("items", "values"):
        if key in schema:
            out[key] = _plain(schema[key])
    return out


@dataclass(frozen=True)
class EventType:
    """An event type as the HTTP API names it, derived from a payload union branch."""

    name: str  # e.g. "payment.failed"
    record: str  # e.g. "signalbox.events.PaymentFailed"
    topic: str  # logical topic, e.g. "events.billing"
    doc: str
    fields: tuple[Mapping[str, Any], ...]


def _avro_dir() -> Traversable:
    return resources.files("signalbox.schemas").joinpath("avro")


def _fingerprint(parsed: Schema) -> bytes:
    return bytes.fromhex(fingerprint(to_parsing_canonical_form(parsed), "CRC-64-AVRO"))


def parse(raw: Schema, source: str) -> SchemaVersion:
    """A schema from anywhere (a file, a registry), parsed and fingerprinted."""
    parsed = cast(Schema, parse_schema(raw, _write_hint=False))
    name = f"{raw.get('namespace', '')}.{raw['name']}".lstrip(".")
    return SchemaVersion(name, source, raw, parsed, _fingerprint(parsed))


@cache
def current() -> Mapping[str, SchemaVersion]:
    """The current schema of every top-level record, by full name."""
    out: dict[str, SchemaVersion] = {}
    for entry in sorted(_avro_dir().iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".avsc"):
            version = parse(json.loads(entry.read_text("utf-8")), f"avro/{entry.name}")
            out[version.name] = version
    return out


@cache
def history() -> tuple[SchemaVersion, ...]:
    """Every archived writer schema (``avro/history/<name>/<n>.avsc``)."""
    root = _avro_dir().joinpath("history")
    out: list[SchemaVersion] = []
    if not root.is_dir():
        return ()
    for folder in sorted(root.iterdir(), key=lambda e: e.name):
        if not folder.is_dir():
            continue
        for entry in sorted(folder.iterdir(), key=lambda e: e.name):
            if entry.name.endswith(".avsc"):
                raw = json.loads(entry.read_text("utf-8"))
                out.append(parse(raw, f"avro/history/{folder.name}/{entry.name}"))
    return tuple(out)


def _union_branches(schema: Schema, field: str) -> Iterator[Schema]:
    for f in schema["fields"]:
        if f["name"] == field:
            yield from f["type"]


@cache
def event_type_by_record() -> Mapping[str, str]:
    """API event type name by payload record full name (the reverse of event_types())."""
    return {t.record: t.name for t in event_types().values()}


@cache
def event_types() -> Mapping[str, EventType]:
    """Event types accepted by ingest, by API name, from the Event payload union."""
    out: dict[str, EventType] = {}
    for branch in _union_branches(current()[EVENT].raw, "payload"):
        name = branch["signalbox.type"]
        out[name] = EventType(
            name=name,
            record=f"{branch['namespace']}.{branch['name']}",
            topic=branch["signalbox.topic"],
            doc=branch.get("doc", ""),
            fields=tuple(branch["fields"]),
        )
    return out
