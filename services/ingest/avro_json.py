"""JSON values → Avro values, read off an Avro type. Pure.

A generic walker over Avro type definitions (primitives, ``timestamp-millis``,
unions, records, maps, arrays, enums, named references), so the HTTP API follows
the schema without per-type code. It collects every problem with its JSONPath
instead of stopping at the first.
"""

from __future__ import annotations

import copy
import difflib
import json
import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any

import ciso8601

from signalbox.common import schemas
from signalbox.common.clock import epoch_ms
from signalbox.common.schemas import Schema

if TYPE_CHECKING:
    from signalbox.ingest.formats import Rule

_INT_RANGE = {"int": (-(2**31), 2**31 - 1), "long": (-(2**63), 2**63 - 1)}
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
#: Instants ingest takes: fastavro decodes timestamp-millis to Python datetimes (years
#: 1..9999), and nothing in a billing history predates 1970.
MIN_TIME_MS = 0
MAX_TIME_MS = 253_402_300_799_999  # 9999-12-31T23:59:59.999Z
#: Problems kept per request: an answer (and its log line) stays small whatever the input.
MAX_PROBLEMS = 50
#: Marks a field absent from the JSON object (``None`` is JSON ``null``).
MISSING: Any = object()


@dataclass(frozen=True)
class Problem:
    """One reason an input was refused, at a JSONPath such as ``$[1].data.amount_minor``."""

    path: str
    reason: str

    def as_json(self) -> dict[str, str]:
        return {"path": self.path, "reason": self.reason}


def json_type(value: Any) -> str:
    """The JSON name of a decoded value's type, for error messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object" if isinstance(value, dict) else type(value).__name__


#: The most characters of a producer's value echoed in an answer or a log line.
ECHO_LIMIT = 64


def clip(text: str, limit: int = ECHO_LIMIT) -> str:
    """``repr(text)``, cut to ``limit`` characters with the full length said."""
    if len(text) <= limit:
        return repr(text)
    return f"{text[:limit]!r}... ({len(text)} characters)"


def child_path(path: str, key: str | int) -> str:
    """``$.a`` + ``b`` → ``$.a.b``; odd keys in brackets (``$.attributes["my key"]``),
    long ones cut to :data:`ECHO_LIMIT` characters."""
    if isinstance(key, int):
        return f"{path}[{key}]"
    if len(key) > ECHO_LIMIT:
        return f"{path}[{json.dumps(key[:ECHO_LIMIT])[:-1]}...\"]"
    if _IDENTIFIER.match(key):
        return f"{path}.{key}"
    return f"{path}[{json.dumps(key)}]"


@dataclass(frozen=True)
class _Names:
    """Named types of the Event schema: definitions by (full and short) name, and the
    full name of each definition (by identity), since inline ones carry only a short one."""

    by_name: dict[str, Schema]
    full: dict[int, str]


def _collect_names(schema: Any, namespace: str, out: _Names) -> None:
    if isinstance(schema, list):
        for branch in schema:
            _collect_names(branch, namespace, out)
        return
    if not isinstance(schema, dict):
        return
    kind = schema.get("type")
    if kind in ("record", "enum", "fixed"):
        namespace = schema.get("namespace", namespace)
        name = schema["name"]
        full = name if "." in name else f"{namespace}.{name}".lstrip(".")
        out.full[id(schema)] = full
        out.by_name[full] = schema
        out.by_name.setdefault(full.rsplit(".", 1)[-1], schema)
        for field in schema.get("fields", ()):
            _collect_names(field["type"], namespace, out)
    elif kind == "array":
        _collect_names(schema["items"], namespace, out)
    elif kind == "map":
        _collect_names(schema["values"], namespace, out)
    else:
        _collect_names(kind, namespace, out)


@cache
def _names() -> _Names:
    """Every named type of the Event schema, so a field may refer to one by name."""
    out = _Names({}, {})
    _collect_names(schemas.current()[schemas.EVENT].raw, "", out)
    return out


def _full_name(definition: Schema) -> str:
    return _names().full.get(id(definition), str(definition["name"]))


def resolve(schema: Any) -> Any:
    """A name → its definition; ``{"type": "string"}`` → ``"string"``."""
    if isinstance(schema, str):
        return _names().by_name.get(schema, schema)
    if isinstance(schema, dict) and isinstance(schema.get("type"), str | list) \
            and set(schema) <= {"type", "doc"}:
        return resolve(schema["type"])
    return schema


def describe(schema: Any) -> str:
    """A short human description of an Avro type, as the event-type catalogue shows it."""
    schema = resolve(schema)
    if isinstance(schema, list):
        return " | ".join(describe(b) for b in schema)
    if isinstance(schema, str):
        return schema
    if schema.get("logicalType") == "timestamp-millis":
        return "timestamp (RFC 3339 with offset, or epoch milliseconds; years 1970..9999)"
    kind = schema["type"]
    if kind == "array":
        return f"array<{describe(schema['items'])}>"
    if kind == "map":
        return f"map<{describe(schema['values'])}>"
    if kind == "enum":
        return "enum(" + " | ".join(schema["symbols"]) + ")"
    return _full_name(schema) if kind == "record" else str(kind)


def describe_fields(fields: Iterable[Mapping[str, Any]],
                    rules: Callable[[str], Rule | None] = lambda name: None
                    ) -> list[dict[str, Any]]:
    """Fields as the catalogue lists them: name, type, required, default, doc (with what
    ``rules`` check beyond the type)."""
    out = []
    for f in fields:
        entry: dict[str, Any] = {"name": f["name"], "type": describe(f["type"]),
                                 "required": "default" not in f}
        if "default" in f:
            entry["default"] = f["default"]
        rule = rules(f["name"])
        doc = str(f.get("doc", ""))
        if rule is not None:
            doc = f"{doc.rstrip('.')}. Checked: {rule.doc}." if doc else f"Checked: {rule.doc}."
        if doc:
            entry["doc"] = doc
        out.append(entry)
    return out


class Converter:
    """Walks a JSON value along an Avro type, building the Avro value and noting problems."""

    def __init__(self, keep: int = MAX_PROBLEMS,
                 rules: Callable[[str], Rule | None] = lambda name: None) -> None:
        #: The first ``keep`` problems; ``total`` counts them all.
        self.problems: list[Problem] = []
        self.total = 0
        self._keep = keep
        self._rules = rules  # checks of meaning by field name, after the Avro type

    @property
    def full(self) -> bool:
        """No more problems are kept (only counted): skip composing their reasons."""
        return self.total >= self._keep

    def fail(self, path: str, reason: str) -> Any:
        self.total += 1
        if len(self.problems) < self._keep:
            self.problems.append(Problem(path, reason))
        return None

    def value(self, schema: Any, value: Any, path: str) -> Any:
        schema = resolve(schema)
        if isinstance(schema, list):
            return self.union(schema, value, path)
        if isinstance(schema, str):
            return self.primitive(schema, value, path)
        if schema.get("logicalType") == "timestamp-millis":
            return self.timestamp(value, path)
        kind = schema["type"]
        if kind == "record":
            return self.record(schema["fields"], value, path)
        if kind == "map":
            return self.map(schema["values"], value, path)
        if kind == "array":
            return self.array(schema["items"], value, path)
        if kind == "enum":
            return self.enum(schema["symbols"], value, path)
        if isinstance(kind, str):  # a primitive, perhaps with another logical type
            return self.primitive(kind, value, path)
        return self.fail(path, f"Avro type {describe(schema)} is not accepted over JSON")

    def primitive(self, kind: str, value: Any, path: str) -> Any:
        check = _PRIMITIVES.get(kind)
        if check is None:
            return self.fail(path, f"Avro type {kind} is not accepted over JSON")
        reason = check(value)
        return value if reason is None else self.fail(path, reason)

    def timestamp(self, value: Any, path: str) -> Any:
        if isinstance(value, str):
            ms = self._parse_timestamp(value, path)
        elif isinstance(value, bool) or not isinstance(value, int):
            return self.fail(path, "expected an RFC 3339 timestamp (2026-11-22T09:30:00Z) or "
                                   f"epoch milliseconds, got {json_type(value)}")
        else:
            ms = value
        if ms is not None and not MIN_TIME_MS <= ms <= MAX_TIME_MS:
            return self.fail(path, "timestamp outside 1970-01-01T00:00:00Z.."
                                   f"9999-12-31T23:59:59.999Z: {clip(str(value))}")
        return ms

    def _parse_timestamp(self, text: str, path: str) -> int | None:
        """RFC 3339 (``ciso8601``'s strict parser): date, ``T``, time with seconds, offset."""
        try:
            parsed = ciso8601.parse_rfc3339(text)
        except ValueError as exc:
            self.fail(path, f"not an RFC 3339 timestamp such as 2026-11-22T09:30:00Z "
                            f"({str(exc).rstrip('.')}): {clip(text)}")
            return None
        if parsed.year < 1970:  # as written, too: the description's pattern says so
            self.fail(path, f"timestamp outside 1970-01-01T00:00:00Z..9999-12-31T23:59:59.999Z: "
                            f"{clip(text)}")
            return None
        return epoch_ms(parsed)

    def union(self, branches: list[Any], value: Any, path: str) -> Any:
        if value is None and "null" in branches:
            return None
        candidates = [b for b in branches if b != "null"]
        if len(candidates) == 1:
            return self.value(candidates[0], value, path)
        for branch in candidates:  # general unions: the first branch the value fits
            trial = Converter(self._keep, self._rules)
            converted = trial.value(branch, value, path)
            if not trial.problems:
                resolved = resolve(branch)
                is_record = isinstance(resolved, dict) and resolved.get("type") == "record"
                return (_full_name(resolved), converted) if is_record else converted
        return self.fail(path, f"expected {describe(branches)}, got {json_type(value)}")

    def record(self, fields: Sequence[Mapping[str, Any]], value: Any, path: str,
               also_allowed: frozenset[str] = frozenset()) -> Any:
        if not isinstance(value, dict):
            return self.fail(path, f"expected an object, got {json_type(value)}")
        known = {f["name"] for f in fields}
        for key in value:
            if key in known or key in also_allowed:
                continue
            if self.full:
                self.fail(path, "")  # counted only
            else:
                self.fail(child_path(path, key),
                          "unknown field" + suggest(key, known | also_allowed, "known fields"))
        out: dict[str, Any] = {}
        for field in fields:
            name = field["name"]
            given = value.get(name, MISSING)
            if given is not MISSING:
                before = self.total
                out[name] = converted = self.value(field["type"], given, child_path(path, name))
                rule = self._rules(name)
                if rule is not None and converted is not None and self.total == before:
                    reason = rule.check(converted)
                    if reason is not None:
                        self.fail(child_path(path, name), reason)
            elif "default" in field:
                out[name] = copy.deepcopy(field["default"])
            else:
                self.fail(child_path(path, name), "required field missing")
        return out

    def map(self, values: Any, value: Any, path: str) -> Any:
        if not isinstance(value, dict):
            return self.fail(path, f"expected an object, got {json_type(value)}")
        out = {}
        for key, item in value.items():
            item_path = child_path(path, key)
            if _not_unicode(key):
                self.fail(item_path, "key is not valid Unicode (lone surrogate)")
            out[key] = self.value(values, item, item_path)
        return out

    def array(self, items: Any, value: Any, path: str) -> Any:
        if not isinstance(value, list):
            return self.fail(path, f"expected an array, got {json_type(value)}")
        return [self.value(items, item, child_path(path, i)) for i, item in enumerate(value)]

    def enum(self, symbols: Sequence[str], value: Any, path: str) -> Any:
        if isinstance(value, str) and value in symbols:
            return value
        got = clip(value) if isinstance(value, str) else json_type(value)
        return self.fail(path, f"expected one of {', '.join(symbols)}, got {got}")


def suggest(given: str, known: Iterable[str], what: str) -> str:
    """``; did you mean 'x'? (known fields: ...)`` — typos are the usual cause."""
    names = sorted(known)
    close = difflib.get_close_matches(given, names, n=1) if len(given) <= ECHO_LIMIT else []
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return f"{hint} ({what}: {', '.join(names) or 'none'})"


def _not_unicode(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _string(value: Any) -> str | None:
    if not isinstance(value, str):
        return f"expected a string, got {json_type(value)}"
    return "string is not valid Unicode (lone surrogate)" if _not_unicode(value) else None


def _integer(value: Any, kind: str) -> str | None:
    if isinstance(value, bool) or not isinstance(value, int):
        return f"expected an integer, got {json_type(value)}"
    low, high = _INT_RANGE[kind]
    if not low <= value <= high:
        return f"integer out of range for Avro {kind} ({low}..{high})"
    return None


def _number(value: Any) -> str | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return f"expected a number, got {json_type(value)}"
    return None if math.isfinite(value) else "expected a finite number"


def _boolean(value: Any) -> str | None:
    return None if isinstance(value, bool) else f"expected true or false, got {json_type(value)}"


def _null(value: Any) -> str | None:
    return None if value is None else f"expected null, got {json_type(value)}"


_PRIMITIVES: dict[str, Callable[[Any], str | None]] = {
    "string": _string,
    "int": lambda v: _integer(v, "int"),
    "long": lambda v: _integer(v, "long"),
    "float": _number,
    "double": _number,
    "boolean": _boolean,
    "null": _null,
}
