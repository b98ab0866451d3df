"""Conditions: "a customer who matches THAT", checked when a trigger fires.

``conditions`` of an automation (every key optional, all must hold)::

    conditions:
      products: [pro]             # the trigger's product, else any active subscription's
      plans: [gold]               # the customer's 'plan' attribute
      tags: {any: [vip], all: [], none: [churned]}   # a plain list means any
      segments: [smb]             # any of the 'segments' attribute (comma-separated)
      active_subscription: true   # at least one active subscription (false: none)
      where:                      # comparisons; all must hold
        - {field: amount_minor, op: ">=", value: 10000}   # a field of the event/occurrence
        - {field: state.score, op: "<", value: 300}        # a fact of the customer's state
        - {field: attributes.country, op: in, value: [DE, AT]}
      exempt: {tags: [no-dunning], segments: [], customers: [cus_1]}

A missing field fails a comparison (never an error at run time).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from signalbox.evaluator.engine.model import CustomerState

OPS: Mapping[str, Callable[[Any, Any], bool]] = {
    "==": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
    "in": lambda a, b: a in b,
    "not_in": lambda a, b: a not in b,
}

#: ``state.<name>`` fields a comparison can read.
STATE_FIELDS: Mapping[str, Callable[[CustomerState], Any]] = {
    "score": lambda s: s.score,
    "balance_minor": lambda s: s.balance_minor,
    "past_due_minor": lambda s: s.past_due_minor,
    "health": lambda s: s.health,
    "account_status": lambda s: s.account_status,
    "active_subscriptions": lambda s: sum(1 for a in s.subscriptions.values() if a.active),
    "open_invoices": lambda s: len(s.invoices),
    "failed_payments": lambda s: sum(s.failed_payments.values()),
    "tags": lambda s: s.tags,
}


@dataclass(frozen=True)
class Comparison:
    field: str
    op: str
    value: Any

    def holds(self, state: CustomerState, facts: Mapping[str, Any]) -> bool:
        actual = lookup(self.field, state, facts)
        if actual is None:
            return False
        if self.op in ("in", "not_in"):
            found = actual in self.value or str(actual) in self.value
            return found if self.op == "in" else not found
        if isinstance(self.value, (int, float)):
            actual = _number(actual)
            if actual is None:
                return False
        else:
            actual = str(actual)
        return OPS[self.op](actual, self.value)


@dataclass(frozen=True)
class Conditions:
    products: tuple[str, ...] = ()
    plans: tuple[str, ...] = ()
    tags_any: tuple[str, ...] = ()
    tags_all: tuple[str, ...] = ()
    tags_none: tuple[str, ...] = ()
    segments: tuple[str, ...] = ()
    active_subscription: bool | None = None
    where: tuple[Comparison, ...] = ()
    exempt_tags: tuple[str, ...] = ()
    exempt_segments: tuple[str, ...] = ()
    exempt_customers: tuple[str, ...] = ()

    def holds(self, state: CustomerState, facts: Mapping[str, Any]) -> bool:
        tags = set(state.tags)
        segments = segments_of(state)
        if state.customer_id in self.exempt_customers or tags & set(self.exempt_tags) \
                or segments & set(self.exempt_segments):
            return False
        if self.products and not set(self.products) & products_of(state, facts):
            return False
        if self.plans and state.attributes.get("plan") not in self.plans:
            return False
        if self.tags_any and not tags & set(self.tags_any):
            return False
        if not tags.issuperset(self.tags_all) or tags & set(self.tags_none):
            return False
        if self.segments and not segments & set(self.segments):
            return False
        if self.active_subscription is not None and \
                state.has_active_subscription != self.active_subscription:
            return False
        return all(c.holds(state, facts) for c in self.where)


def segments_of(state: CustomerState) -> set[str]:
    raw = state.attributes.get("segments", "")
    return {s.strip() for s in raw.split(",") if s.strip()}


def products_of(state: CustomerState, facts: Mapping[str, Any]) -> set[str]:
    """The trigger's product when it has one, else the active subscriptions' products."""
    product = facts.get("product")
    if product:
        return {str(product)}
    return {a.product for a in state.subscriptions.values() if a.active}


def lookup(path: str, state: CustomerState, facts: Mapping[str, Any]) -> Any:
    if path.startswith("state."):
        getter = STATE_FIELDS.get(path[6:])
        return getter(state) if getter else None
    if path.startswith("attributes."):
        return state.attributes.get(path[11:])
    return facts.get(path)


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return value
    try:
        return float(str(value))
    except ValueError:
        return None


def _strings(raw: Any, where: str, errors: list[str]) -> tuple[str, ...]:
    values = raw if isinstance(raw, list) else [raw]
    if not values or not all(isinstance(v, str) and v for v in values):
        errors.append(f"{where}: expected a string or a list of strings, got {raw!r}")
        return ()
    return tuple(values)


def parse_conditions(raw: Any, where: str, errors: list[str]) -> Conditions:
    if raw is None:
        return Conditions()
    if not isinstance(raw, dict):
        errors.append(f"{where}: expected a mapping")
        return Conditions()
    known = ("products", "plans", "tags", "segments", "active_subscription", "where", "exempt")
    unknown = sorted(set(raw) - set(known))
    if unknown:
        errors.append(f"{where}: unknown condition(s) {', '.join(unknown)} "
                      f"(known: {', '.join(known)})")
    out: dict[str, Any] = {}
    for key in ("products", "plans", "segments"):
        if key in raw:
            out[key] = _strings(raw[key], f"{where}.{key}", errors)
    tags = raw.get("tags")
    if isinstance(tags, list):
        out["tags_any"] = _strings(tags, f"{where}.tags", errors)
    elif isinstance(tags, dict):
        for mode in ("any", "all", "none"):
            if mode in tags:
                out[f"tags_{mode}"] = _strings(tags[mode], f"{where}.tags.{mode}", errors)
        if set(tags) - {"any", "all", "none"}:
            errors.append(f"{where}.tags: expected keys any, all, none")
    elif tags is not None:
        errors.append(f"{where}.tags: expected a list or a mapping with any/all/none")
    active = raw.get("active_subscription")
    if active is not None and not isinstance(active, bool):
        errors.append(f"{where}.active_subscription: expected true or false, got {active!r}")
    else:
        out["active_subscription"] = active
    where_raw = raw.get("where", [])
    if not isinstance(where_raw, list):
        errors.append(f"{where}.where: expected a list of comparisons")
        where_raw = []
    out["where"] = tuple(c for i, item in enumerate(where_raw)
                         if (c := _comparison(item, f"{where}.where[{i}]", errors)) is not None)
    exempt = raw.get("exempt", {})
    if not isinstance(exempt, dict) or set(exempt) - {"tags", "segments", "customers"}:
        errors.append(f"{where}.exempt: expected a mapping with tags, segments, customers")
    else:
        for key in ("tags", "segments", "customers"):
            if key in exempt:
                out[f"exempt_{key}"] = _strings(exempt[key], f"{where}.exempt.{key}", errors)
    return Conditions(**out)


def _comparison(raw: Any, where: str, errors: list[str]) -> Comparison | None:
    if not isinstance(raw, dict) or set(raw) != {"field", "op", "value"}:
        errors.append(f"{where}: expected a mapping with field, op and value")
        return None
    field, op, value = raw["field"], raw["op"], raw["value"]
    before = len(errors)
    if not isinstance(field, str) or not field:
        errors.append(f"{where}.field: expected a field name, got {field!r}")
    elif field.startswith("state.") and field[6:] not in STATE_FIELDS:
        errors.append(f"{where}.field: unknown state field {field!r} "
                      f"(known: {', '.join('state.' + k for k in STATE_FIELDS)})")
    if op not in OPS:
        errors.append(f"{where}.op: unknown operator {op!r} (known: {', '.join(OPS)})")
    elif op in ("in", "not_in"):
        if not isinstance(value, list):
            errors.append(f"{where}.value: '{op}' needs a list, got {value!r}")
        else:
            value = tuple(v if isinstance(v, (int, float)) and not isinstance(v, bool)
                          else str(v) for v in value)
    elif isinstance(value, bool) or not isinstance(value, (int, float, str)):
        errors.append(f"{where}.value: expected a number or a string, got {value!r}")
    if len(errors) > before:
        return None
    return Comparison(field, op, value)
