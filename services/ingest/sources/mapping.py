"""Source mappings: a billing system's webhook payloads → signalbox events, as data. Pure.

Format ``signalbox/source-mapping@1`` (the whole guide is docs/sources.md)::

    format: signalbox/source-mapping@1
    source: chargebee              # the URL (/v1/sources/chargebee) and producer name
    version: 1                     # bump when the meaning of the mapping changes
    auth: {scheme: basic, secrets_env: CHARGEBEE_WEBHOOK_CREDENTIALS}
    type: event_type               # JMESPath: the source event's type
    event_id: id                   # JMESPath: its id, which becomes signalbox's event_id
    envelope:                      # defaults of every rule below (JMESPath)
      customer_id: content.customer.id
      occurred_at: epoch_ms(occurred_at)
    events:
      payment_failed:              # a source event type
        - type: payment.failed     # the signalbox event type
          when: content.invoice != null          # optional condition (JMESPath)
          customer: {email: content.customer.email}
          data:
            payment_id: content.transaction.id
            product: {const: subscription}       # a constant
          attributes: {chargebee_site: {const: acme}}

Every value is a JMESPath expression evaluated on the source payload (with the
functions of :mod:`signalbox.ingest.sources.functions`), or ``{const: value}``. A
``null`` result leaves the field out (its default applies; a required field is then
reported by ingest's validation). One source event may map to several signalbox
events; each rule after the first of a type then needs its own ``id_suffix``
(``event_id`` becomes ``<source id>:<suffix>``), so every event id stays deterministic
and a replayed webhook is recognised downstream.

``event_id_header`` (optional) names a request header holding the source's own
idempotency key (Lago's ``X-Lago-Unique-Key``): when a webhook carries it, it is the id.

A mapping file with any error is refused whole, and every error names the place:
``mappings/chargebee.yaml: events.payment_failed[0].data.produt: unknown field of
payment.failed; did you mean 'product'?``.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jmespath
import yaml
from jmespath.exceptions import JMESPathError
from jmespath.parser import ParsedResult

from signalbox.common import schemas
from signalbox.common.errors import FileProblems, SignalboxError
from signalbox.common.schemas import EventType
from signalbox.ingest.avro_json import suggest
from signalbox.ingest.event_docs import profile_fields
from signalbox.ingest.keys import INTERNAL_TYPES
from signalbox.ingest.sources.functions import OPTIONS

FORMAT = "signalbox/source-mapping@1"
SCHEMES = {
    "stripe": ("secrets_env",),
    "basic": ("secrets_env",),
    "hmac-sha256": ("secrets_env", "header"),
}
_AUTH_KEYS = frozenset({"scheme", "secrets_env", "header", "encoding", "tolerance_s"})
_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
_SUFFIX = re.compile(r"^[a-z0-9_.-]{1,32}$")
_TOP = ("format", "source", "version", "doc", "auth", "type", "event_id", "event_id_header",
        "envelope", "events")
_ENVELOPE = ("customer_id", "occurred_at")
_RULE = ("type", "when", "id_suffix", "customer_id", "occurred_at", "customer", "attributes",
         "data", "doc")


class MappingError(FileProblems):
    """A mapping file that cannot be used."""

    what = "mapping file"


@dataclass(frozen=True)
class Value:
    """One mapped value: a compiled JMESPath expression, or a constant."""

    text: str
    expression: ParsedResult | None = None
    constant: Any = None

    def of(self, payload: Any) -> Any:
        if self.expression is None:
            return self.constant
        return self.expression.search(payload, options=OPTIONS)


@dataclass(frozen=True)
class Rule:
    """One source type → one signalbox event type."""

    event_type: str
    customer_id: Value
    occurred_at: Value
    when: Value | None = None
    id_suffix: str | None = None
    customer: Mapping[str, Value] = field(default_factory=dict)
    attributes: Mapping[str, Value] = field(default_factory=dict)
    data: Mapping[str, Value] = field(default_factory=dict)


@dataclass(frozen=True)
class Auth:
    """How the source proves a webhook is its own (see :mod:`signalbox.ingest.sources.auth`)."""

    scheme: str
    secrets_env: str
    header: str = ""
    encoding: str = "base64"
    tolerance_s: int = 300


@dataclass(frozen=True)
class SourceMapping:
    """A validated mapping file."""

    source: str
    version: int
    auth: Auth
    type: Value
    event_id: Value
    rules: Mapping[str, tuple[Rule, ...]]
    path: str = ""
    #: A request header that carries the source's own idempotency key (Lago's
    #: X-Lago-Unique-Key); when a webhook has it, it is the source event id.
    event_id_header: str = ""

    @property
    def event_types(self) -> tuple[str, ...]:
        """The signalbox event types this source may produce (its scopes)."""
        return tuple(sorted({r.event_type for rules in self.rules.values() for r in rules}))




class _Errors:
    def __init__(self) -> None:
        self.items: list[str] = []

    def add(self, where: str, reason: str) -> None:
        self.items.append(f"{where}: {reason}" if where else reason)


def _key(parent: str, name: str) -> str:
    text = name if re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", name) else f'"{name}"'
    return f"{parent}.{text}" if parent else text


def _value(raw: Any, where: str, errors: _Errors) -> Value | None:
    if isinstance(raw, dict) and set(raw) == {"const"}:
        return Value(f"const {raw['const']!r}", constant=raw["const"])
    if not isinstance(raw, str) or not raw.strip():
        errors.add(where, "expected a JMESPath expression (text) or {const: value}, got "
                          f"{type(raw).__name__} {raw!r}")
        return None
    try:
        return Value(raw, expression=jmespath.compile(raw))
    except JMESPathError as exc:
        errors.add(where, f"not a JMESPath expression: {str(exc).splitlines()[0]}")
        return None


def _values(raw: Any, where: str, allowed: Collection[str] | None, what: str,
            errors: _Errors) -> dict[str, Value]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        errors.add(where, f"expected a mapping of field → expression, got {type(raw).__name__}")
        return {}
    out: dict[str, Value] = {}
    for name, spec in raw.items():
        here = _key(where, str(name))
        if allowed is not None and name not in allowed:
            errors.add(here, f"unknown field of {what}{suggest(str(name), allowed, 'fields')}")
            continue
        value = _value(spec, here, errors)
        if value is not None:
            out[str(name)] = value
    return out


def _rule(raw: Any, where: str, envelope: Mapping[str, Value], known: Mapping[str, EventType],
          errors: _Errors) -> Rule | None:
    if not isinstance(raw, dict):
        errors.add(where, f"expected a rule (a mapping with 'type'), got {type(raw).__name__}")
        return None
    before = len(errors.items)
    for name in raw:
        if name not in _RULE:
            errors.add(_key(where, str(name)), f"unknown key{suggest(str(name), _RULE, 'keys')}")
    type_name = raw.get("type")
    event_type = known.get(type_name) if isinstance(type_name, str) else None
    if event_type is None:
        errors.add(_key(where, "type"), f"unknown signalbox event type {type_name!r}"
                   f"{suggest(str(type_name), known, 'see docs/events.md')}")
    elif event_type.name in INTERNAL_TYPES:
        errors.add(_key(where, "type"), f"{event_type.name} is written by signalbox only; "
                                        "no source may produce it")
    fields = {f["name"]: f for f in event_type.fields} if event_type is not None else None
    what = event_type.name if event_type is not None else "the event type"
    data = _values(raw.get("data"), _key(where, "data"), fields, what, errors)
    if fields is not None:
        for name, f in fields.items():
            if "default" not in f and name not in data:
                errors.add(_key(_key(where, "data"), name),
                           f"required field of {what} not mapped")
    profile = [f["name"] for f in profile_fields()]
    customer = _values(raw.get("customer"), _key(where, "customer"), profile,
                       "the customer profile", errors)
    attributes = _values(raw.get("attributes"), _key(where, "attributes"), None, "", errors)
    envelope_values = {}
    for name in _ENVELOPE:
        spec = raw.get(name)
        value = _value(spec, _key(where, name), errors) if spec is not None else envelope.get(name)
        if value is None and spec is None:
            errors.add(_key(where, name), "not mapped here nor in envelope")
        envelope_values[name] = value
    when = _value(raw["when"], _key(where, "when"), errors) if "when" in raw else None
    suffix = raw.get("id_suffix")
    if suffix is not None and not (isinstance(suffix, str) and _SUFFIX.match(suffix)):
        errors.add(_key(where, "id_suffix"), "1-32 of a-z, 0-9, '_', '.', '-'")
    if len(errors.items) > before or event_type is None:
        return None
    customer_id, occurred_at = envelope_values["customer_id"], envelope_values["occurred_at"]
    assert customer_id is not None and occurred_at is not None
    return Rule(event_type.name, customer_id, occurred_at, when, suffix, customer, attributes,
                data)


def _auth(raw: Any, errors: _Errors) -> Auth | None:
    if not isinstance(raw, dict):
        errors.add("auth", f"required: a mapping with scheme ({', '.join(SCHEMES)}) and "
                           "secrets_env (the environment variable holding the secrets)")
        return None
    scheme = raw.get("scheme")
    if scheme not in SCHEMES:
        errors.add("auth.scheme", f"unknown scheme {scheme!r} (known: {', '.join(SCHEMES)})")
        return None
    ok = True
    for name in raw:
        if name not in _AUTH_KEYS:
            errors.add(_key("auth", str(name)),
                       f"unknown key{suggest(str(name), _AUTH_KEYS, 'keys')}")
            ok = False
    for name in SCHEMES[scheme]:
        if not isinstance(raw.get(name), str) or not raw[name]:
            errors.add(_key("auth", name), f"required for scheme {scheme}")
            ok = False
    encoding = raw.get("encoding", "base64")
    if encoding not in ("base64", "hex"):
        errors.add("auth.encoding", f"base64 or hex, not {encoding!r}")
        ok = False
    tolerance = raw.get("tolerance_s", 300)
    if not isinstance(tolerance, int) or isinstance(tolerance, bool) or tolerance < 1:
        errors.add("auth.tolerance_s", f"a positive number of seconds, not {tolerance!r}")
        ok = False
    if not ok:
        return None
    return Auth(scheme, raw["secrets_env"], raw.get("header", ""), encoding, tolerance)


def parse_mapping(raw: Any, source: str, known: Mapping[str, EventType] | None = None
                  ) -> SourceMapping:
    """A validated mapping from the YAML document ``raw``; :class:`MappingError` with every
    problem, each prefixed by its place, when it is not usable."""
    known = schemas.event_types() if known is None else known
    errors = _Errors()
    if not isinstance(raw, dict):
        raise MappingError(source, [f"expected a mapping document ({FORMAT}), got "
                                    f"{type(raw).__name__}"])
    if raw.get("format") != FORMAT:
        errors.add("format", f"expected {FORMAT!r}, got {raw.get('format')!r}")
    for name in raw:
        if name not in _TOP:
            errors.add(str(name), f"unknown key{suggest(str(name), _TOP, 'keys')}")
    name = raw.get("source")
    if not isinstance(name, str) or not _NAME.match(name):
        errors.add("source", "required: 1-64 of a-z, 0-9, '_', '-' (the URL path and the "
                             f"producer name), got {name!r}")
    version = raw.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        errors.add("version", f"required: a positive integer, got {version!r}")
    auth = _auth(raw.get("auth"), errors)
    type_ = _value(raw.get("type"), "type", errors)
    event_id = _value(raw.get("event_id"), "event_id", errors)
    envelope = _values(raw.get("envelope"), "envelope", _ENVELOPE, "envelope", errors)
    id_header = raw.get("event_id_header", "")
    if not isinstance(id_header, str):
        errors.add("event_id_header", f"a header name, got {id_header!r}")
    events = raw.get("events")
    rules: dict[str, tuple[Rule, ...]] = {}
    if not isinstance(events, dict) or not events:
        errors.add("events", "required: source event type → list of rules")
        events = {}
    for source_type, specs in events.items():
        where = _key("events", str(source_type))
        specs = specs if isinstance(specs, list) else [specs]
        parsed = [_rule(spec, f"{where}[{i}]", envelope, known, errors)
                  for i, spec in enumerate(specs)]
        suffixes = [spec.get("id_suffix") if isinstance(spec, dict) else None for spec in specs]
        if len(specs) > 1 and (None in suffixes[1:] or len(set(suffixes)) < len(suffixes)):
            errors.add(where, "several rules for one source type: every rule after the first "
                              "needs its own id_suffix (so each event has its own id)")
        rules[str(source_type)] = tuple(r for r in parsed if r is not None)
    if errors.items:
        raise MappingError(source, errors.items)
    assert isinstance(name, str) and isinstance(version, int) and auth is not None
    assert type_ is not None and event_id is not None
    return SourceMapping(name, version, auth, type_, event_id, rules, source, str(id_header))


def load_mapping(path: str | Path, known: Mapping[str, EventType] | None = None
                 ) -> SourceMapping:
    """Read and validate one mapping file."""
    try:
        text = Path(path).read_text("utf-8")
    except OSError as exc:
        raise MappingError(str(path), [f"cannot read: {exc.strerror}"]) from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise MappingError(str(path), [f"not YAML: {exc}"]) from None
    return parse_mapping(raw, str(path), known)


# --- applying a mapping ------------------------------------------------------------------


class PayloadError(SignalboxError, ValueError):
    """A source payload the mapping cannot read (no id or type, or an expression failed
    on it); ``where`` names the mapping's place, ``why`` says why."""

    what = "source payload"

    def __init__(self, where: str, reason: str) -> None:
        super().__init__(f"{where}: {reason}", where=where, why=reason)


@dataclass(frozen=True)
class Translation:
    """What one source payload became: zero or more JSON events (the ``POST /v1/events``
    shape). ``mapped`` is false for a source type the mapping does not know."""

    source_type: str
    source_id: str
    mapped: bool
    events: tuple[dict[str, Any], ...] = ()


def _eval(value: Value, payload: Any, where: str) -> Any:
    try:
        return value.of(payload)
    except JMESPathError as exc:
        raise PayloadError(where, f"{value.text}: {str(exc).splitlines()[0]}") from None


def _fields(values: Mapping[str, Value], payload: Any, where: str,
            as_text: bool = False) -> dict[str, Any]:
    out = {}
    for name, value in values.items():
        got = _eval(value, payload, _key(where, name))
        if got is None:
            continue
        if as_text and isinstance(got, bool):
            got = "true" if got else "false"
        elif as_text and isinstance(got, int | float):
            got = str(got)
        out[name] = got
    return out


def _text(value: Value, payload: Any, where: str) -> str:
    got = _eval(value, payload, where)
    if isinstance(got, int) and not isinstance(got, bool):
        got = str(got)
    if not isinstance(got, str) or not got:
        raise PayloadError(where, f"{value.text} gave {got!r}, not a non-empty text")
    return got


def translate(mapping: SourceMapping, payload: Any,
              headers: Mapping[str, str] | None = None) -> Translation:
    """The signalbox events one source payload maps to; :class:`PayloadError` when the
    payload has no readable type or id, or an expression fails on it. ``headers``: the
    webhook's, for ``event_id_header`` (a replayed payload has none: ``event_id`` then)."""
    source_type = _text(mapping.type, payload, "type")
    given = (headers or {}).get(mapping.event_id_header, "") if mapping.event_id_header else ""
    source_id = given.strip() or _text(mapping.event_id, payload, "event_id")
    rules = mapping.rules.get(source_type)
    if rules is None:
        return Translation(source_type, source_id, mapped=False)
    events = []
    for i, rule in enumerate(rules):
        where = f"{_key('events', source_type)}[{i}]"
        if rule.when is not None and not _eval(rule.when, payload, _key(where, "when")):
            continue
        event: dict[str, Any] = {
            "event_id": source_id if rule.id_suffix is None else f"{source_id}:{rule.id_suffix}",
            "type": rule.event_type,
            "customer_id": _eval(rule.customer_id, payload, _key(where, "customer_id")),
            "occurred_at": _eval(rule.occurred_at, payload, _key(where, "occurred_at")),
            "source": mapping.source,
            "data": _fields(rule.data, payload, _key(where, "data")),
        }
        customer = _fields(rule.customer, payload, _key(where, "customer"))
        if customer:
            event["customer"] = customer
        attributes = _fields(rule.attributes, payload, _key(where, "attributes"), as_text=True)
        if attributes:
            event["attributes"] = attributes
        events.append(event)
    return Translation(source_type, source_id, mapped=True, events=tuple(events))
