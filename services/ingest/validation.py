"""JSON events in, ``signalbox.Event`` Avro records out. Pure: no clock, no I/O.

The rules are not written per event type: they are read from the Avro schema
(``schemas/avro/event.avsc``), so a new payload field or event type is accepted
as soon as the schema has it. Every problem is collected with the JSONPath of
the value and the reason, so a producer can fix a whole batch in one round. The
generic JSON → Avro walk is in :mod:`signalbox.ingest.avro_json`; this module adds
the event envelope (``type`` + ``data`` for the payload union) and batches.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

from signalbox.common import schemas
from signalbox.common.errors import SignalboxError
from signalbox.common.schemas import EventType
from signalbox.ingest.avro_json import (
    MISSING,
    Converter,
    Problem,
    child_path,
    clip,
    json_type,
    suggest,
)
from signalbox.ingest.formats import rule_for

#: Fields of ``signalbox.Event`` that the JSON envelope does not carry as such:
#: ``received_at`` is stamped by ingest, ``payload`` is given as ``type`` + ``data``.
_NOT_IN_JSON = frozenset({"received_at", "payload"})
_TYPE, _DATA = "type", "data"
_NON_EMPTY = ("event_id", "customer_id")


class InvalidJson(SignalboxError, ValueError):
    """The request body is not one JSON document ingest can read."""

    what = "request body"

    def __init__(self, reason: str) -> None:
        super().__init__(reason, where="$")
        self.problem = Problem("$", reason)


class InvalidEvents(SignalboxError, ValueError):
    """At least one event of a request is invalid: ``total`` problems, the first of them
    (at most ``avro_json.MAX_PROBLEMS``) in ``problems``."""

    what = "event"

    def __init__(self, problems: Sequence[Problem], total: int | None = None) -> None:
        super().__init__(f"{total or len(problems)} problem(s), first: {problems[0].path}: "
                         f"{problems[0].reason}", where=problems[0].path, why=problems[0].reason)
        self.problems = tuple(problems)
        self.total = len(problems) if total is None else total


@dataclass(frozen=True)
class ValidEvent:
    """An accepted event: its type (which says the topic) and its Avro record."""

    event_type: EventType
    record: Mapping[str, Any]

    @property
    def event_id(self) -> str:
        return str(self.record["event_id"])

    @property
    def customer_id(self) -> str:
        return str(self.record["customer_id"])

    @property
    def key(self) -> bytes:
        """The Kafka key: the customer id, so one customer's events share a partition."""
        return self.customer_id.encode("utf-8")


def as_sent_by(event: ValidEvent, producer: str, source_given: bool) -> ValidEvent:
    """The event as an authenticated producer sent it: ``source`` defaults to the key's
    name (the producer may still name a finer source itself)."""
    if source_given:
        return event
    return ValidEvent(event.event_type, {**event.record, "source": producer})


# --- JSON --------------------------------------------------------------------------------


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"duplicate key {clip(key)} in an object")
        out[key] = value
    return out


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def decode_json(body: bytes) -> Any:
    """Strict JSON: no NaN/Infinity, no duplicate keys (which value would win is a guess)."""
    try:
        return json.loads(body, object_pairs_hook=_no_duplicate_keys,
                          parse_constant=_no_constant)
    except UnicodeDecodeError as exc:
        raise InvalidJson(f"body is not UTF-8 text: {exc.reason} at byte {exc.start}") from None
    except RecursionError:
        raise InvalidJson("JSON is nested too deeply") from None
    except ValueError as exc:  # json.JSONDecodeError is a ValueError
        raise InvalidJson(f"invalid JSON: {exc}") from None


# --- events ------------------------------------------------------------------------------


@cache
def envelope_fields() -> tuple[Mapping[str, Any], ...]:
    """The Event fields a JSON event carries directly (all but received_at and payload)."""
    fields = schemas.current()[schemas.EVENT].raw["fields"]
    return tuple(f for f in fields if f["name"] not in _NOT_IN_JSON)


def _event(value: Any, path: str, received_at: int, conv: Converter) -> ValidEvent | None:
    if not isinstance(value, dict):
        conv.fail(path, f"expected an event object, got {json_type(value)}")
        return None
    before = conv.total
    record = conv.record(envelope_fields(), value, path, also_allowed=frozenset({_TYPE, _DATA}))
    for name in _NON_EMPTY:
        if record.get(name) == "":
            conv.fail(child_path(path, name), "must not be empty")
    event_type = _event_type(value.get(_TYPE, MISSING), child_path(path, _TYPE), conv)
    if event_type is not None:
        data = value.get(_DATA, {})
        payload = conv.record(event_type.fields, data, child_path(path, _DATA))
        record["payload"] = (event_type.record, payload)
    if event_type is None or conv.total > before:
        return None
    record["received_at"] = received_at
    return ValidEvent(event_type, record)


def _event_type(name: Any, path: str, conv: Converter) -> EventType | None:
    known = schemas.event_types()
    if isinstance(name, str) and name in known:
        return known[name]
    if name is MISSING:
        conv.fail(path, "required field missing")
    else:
        got = clip(name) if isinstance(name, str) else f"a {json_type(name)}"
        hint = suggest(name if isinstance(name, str) else "", known, "known types")
        conv.fail(path, f"unknown event type {got}{hint}")
    return None


def convert(schema: Any, value: Any, path: str = "$") -> Any:
    """A JSON value → the Avro value of ``schema`` (a type of the Event schema, or a name
    defined there); raises :class:`InvalidEvents` listing every problem."""
    conv = Converter(rules=rule_for)
    out = conv.value(schema, value, path)
    if conv.problems:
        raise InvalidEvents(conv.problems, conv.total)
    return out


def validate_batch(body: Any, received_at: int, path: str = "$") -> list[ValidEvent]:
    """One event object or an array of them → Avro records, all of them or none.

    Raises :class:`InvalidEvents` with every problem of every event, so a batch
    is either accepted whole or refused whole.
    """
    conv = Converter(rules=rule_for)
    items = list(_items(body, path, conv))
    events = [_event(item, item_path, received_at, conv) for item, item_path in items]
    _no_duplicate_ids(items, conv)
    if conv.problems:
        raise InvalidEvents(conv.problems, conv.total)
    return [e for e in events if e is not None]


def _no_duplicate_ids(items: list[tuple[Any, str]], conv: Converter) -> None:
    """One event_id is one occurrence: twice in a batch is a mistake (for two customers, the
    second would be dropped downstream as a duplicate), not something to guess about."""
    first: dict[str, str] = {}
    for item, item_path in items:
        event_id = item.get("event_id") if isinstance(item, dict) else None
        if not isinstance(event_id, str):
            continue
        if event_id in first:
            conv.fail(child_path(item_path, "event_id"),
                      f"duplicate event_id {clip(event_id)} in this batch (also at "
                      f"{first[event_id]})")
        else:
            first[event_id] = item_path


def _items(body: Any, path: str, conv: Converter) -> Iterator[tuple[Any, str]]:
    if isinstance(body, dict):
        yield body, path
    elif not isinstance(body, list):
        conv.fail(path, f"expected an event object or an array of them, got {json_type(body)}")
    elif not body:
        conv.fail(path, "empty batch: send at least one event")
    else:
        for i, item in enumerate(body):
            yield item, child_path(path, i)
