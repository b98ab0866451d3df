"""The template variable catalogue: which variables each trigger type provides.

:func:`signalbox.evaluator.engine.commands.variables` builds the variables of one
firing at run time; this module says, per trigger type and before anything fires,
which names that function will provide, so a template can be checked when its
automation is applied rather than when the dispatcher renders it (issue 10, item 4).
``tests/evaluator/engine/test_template_variables.py`` fires every trigger through the
engine and fails when this catalogue and ``variables()`` disagree; the variables
section of docs/automations.md is generated from it (``signalbox.evaluator.reference``).

What a firing provides:

* :data:`COMMON` for every trigger (the customer, the automation, the occurrence);
* an **event** trigger: every field of the event type's ``data`` (``""`` when an
  optional field is absent), ``<field>_iso`` for each time field (see
  :func:`is_time_field`), and :data:`EVENT_EXTRAS` for some types;
* a **derived** or **time** trigger: the facts of the occurrence, :data:`FACTS`;
* ``attr_<name>`` for each attribute of the event that fired it: free-form, so only
  present when the producer sent it (:data:`ATTRIBUTE_PREFIX`); time triggers have none;
* per action and channel, what the action or the dispatcher adds:
  :data:`ACTION_EXTRAS` (``team`` for alerts), :data:`CHANNEL_EXTRAS` (``unsubscribe_url``
  in email).

Every value is a string. Pure: event types come in as an argument.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from signalbox.evaluator.engine.triggers import TIME_TRIGGERS

#: Names ending in one of these hold epoch milliseconds when they hold a number;
#: ``variables()`` adds ``<name>_iso`` (UTC, ``2026-11-22T09:30:00Z``) for them.
TIME_SUFFIXES = ("_at", "_since", "period_start", "period_end")
ATTRIBUTE_PREFIX = "attr_"


@dataclass(frozen=True)
class Variable:
    name: str
    doc: str


def _vars(*pairs: tuple[str, str]) -> tuple[Variable, ...]:
    return tuple(Variable(n, d) for n, d in pairs)


def _time(name: str, doc: str) -> tuple[tuple[str, str], tuple[str, str]]:
    """A time fact: epoch milliseconds, and the same as ISO 8601 (``""`` when unknown)."""
    return (name, f"{doc}, epoch ms"), (f"{name}_iso", f"{doc}, ISO 8601 in UTC")


COMMON: tuple[Variable, ...] = _vars(
    ("customer_id", "The customer's id."),
    ("customer_name", "The customer's name (\"\" when unknown)."),
    ("customer_email", "The customer's email address (\"\" when unknown)."),
    ("customer_phone", "The customer's phone number, E.164 (\"\" when unknown)."),
    ("automation_id", "The automation's id."),
    ("automation_name", "The automation's name."),
    ("event_type", "The trigger type that fired (the event type for event triggers)."),
    ("event_id", "The id of the event that fired it (the occurrence for time triggers)."),
    ("occurrence", "What makes this firing unique (event id, or due time and key)."),
    ("score", "The customer's score."),
    ("health", "The customer's health band (\"\" before the first one)."),
    ("balance_minor", "The customer's balance, minor units."),
    ("past_due_minor", "The customer's past-due amount, minor units."),
)

#: Event triggers that add variables of their own.
EVENT_EXTRAS: Mapping[str, tuple[Variable, ...]] = {
    "payment.failed": _vars(("failed_count",
                             "Failed payments in a row for the payment's product.")),
}

#: The facts of each derived and time trigger's occurrence (the ``data`` its firing
#: carries; see ``engine.engine._derived`` and ``engine.timers``).
FACTS: Mapping[str, tuple[Variable, ...]] = {
    "usage.threshold_met": _vars(
        ("metric", "The metric."), ("level", "The level crossed, percent of the allowance."),
        ("used", "Usage in the period so far."), ("allowance", "The period's allowance."),
        *_time("period_start", "Start of the billing period"),
        *_time("period_end", "End of the billing period")),
    "feature.used_minutes": _vars(
        ("feature", "The feature."), ("minutes", "The minutes reached (the trigger's)."),
        ("total_seconds", "Total time of use so far, seconds.")),
    "score.milestone": _vars(
        ("milestone", "The milestone reached."), ("score", "The score now."),
        ("previous_score", "The score before this input.")),
    "health.changed": _vars(
        ("from", "The previous health band."), ("to", "The new health band."),
        ("score", "The score now.")),
    "past_due": _vars(
        ("days", "Days past due (the threshold reached)."),
        ("past_due_minor", "The past-due amount, minor units."),
        *_time("past_due_since", "Start of the past-due streak"),
        ("balance_minor", "The balance, minor units.")),
    "no_login": _vars(
        ("days", "Days without a login (the trigger's)."),
        *_time("last_login_at", "The last login (\"\" if never)")),
    "feature.unused": _vars(
        ("feature", "The feature."), ("days", "The timeframe in days (the trigger's)."),
        *_time("last_used_at", "The feature's last use (\"\" if never)")),
    "affiliate.qualified": _vars(
        ("score", "The score at the check."), ("min_score", "The trigger's minimum score.")),
    "subscription.ending": _vars(
        ("subscription_id", "The subscription or agreement."), ("product", "Its product."),
        ("kind", "subscription or service_agreement."),
        *_time("ends_at", "When it ends"), ("days", "Days before the end.")),
    "appointment.reminder": _vars(
        ("appointment_id", "The appointment."), *_time("starts_at", "When it starts"),
        ("title", "Its title (\"\" when none)."),
        ("before_minutes", "Minutes before the start.")),
    "task.due_soon": _vars(
        ("task_id", "The task."), ("title", "Its title."), *_time("due_at", "When it is due"),
        ("before_hours", "Hours before it is due.")),
    "task.overdue": _vars(
        ("task_id", "The task."), ("title", "Its title."), *_time("due_at", "When it was due"),
        ("after_hours", "Hours past its due time.")),
    "invoice.due_soon": _vars(
        ("invoice_id", "The invoice."), ("amount_minor", "Its amount, minor units."),
        ("currency", "Its currency, ISO 4217."), *_time("due_at", "When it is due"),
        ("product", "Its product (\"\" when none)."), ("days", "Days before it is due.")),
    "invoice.overdue": _vars(
        ("invoice_id", "The invoice."), ("amount_minor", "Its amount, minor units."),
        ("currency", "Its currency, ISO 4217."), *_time("due_at", "When it was due"),
        ("product", "Its product (\"\" when none)."), ("days", "Days past its due date.")),
    "card.expiring": _vars(
        *_time("expires_at", "When the card expires"), ("days", "Days before it expires.")),
    "card.expired": _vars(*_time("expires_at", "When the card expired")),
}

#: Added by the action that sends (whatever the trigger).
ACTION_EXTRAS: Mapping[str, tuple[Variable, ...]] = {
    "alert": _vars(("team", "The team alerted.")),
}

#: Added by the dispatcher's channel when it renders (whatever the trigger).
CHANNEL_EXTRAS: Mapping[str, tuple[Variable, ...]] = {
    "email": _vars(("unsubscribe_url", "The customer's one-click unsubscribe link (\"\" for "
                                       "internal mail, or when the dispatcher has no "
                                       "SIGNALBOX_PUBLIC_URL and SIGNALBOX_UNSUBSCRIBE_SECRET).")),
    "sms": (),
}


def is_time_field(name: str, avro_type: Any) -> bool:
    """An event field ``variables()`` also gives as ``<name>_iso``: a number with a
    time suffix (its value, when present, is epoch milliseconds)."""
    branches = avro_type if isinstance(avro_type, list) else [avro_type]
    numeric = any(b in ("int", "long") or (isinstance(b, dict) and b.get("type") in
                                             ("int", "long")) for b in branches)
    return numeric and name.endswith(TIME_SUFFIXES)


def event_variables(fields: Collection[Mapping[str, Any]]) -> tuple[Variable, ...]:
    """The variables an event type's ``data`` fields become."""
    out: list[Variable] = []
    for f in fields:
        doc = str(f.get("doc") or f"The event's {f['name']}.")
        out.append(Variable(f["name"], doc))
        if is_time_field(f["name"], f["type"]):
            out.append(Variable(f"{f['name']}_iso", f"{f['name']} as ISO 8601, UTC "
                                                     "(\"\" when absent)."))
    return tuple(out)


def trigger_variables(trigger_type: str, event_types: Mapping[str, Any]
                      ) -> dict[str, Variable] | None:
    """Every variable a firing of ``trigger_type`` provides, by name (``attr_*`` and the
    action and channel extras aside); ``None`` for an unknown trigger type.

    ``event_types``: :func:`signalbox.common.schemas.event_types` (objects with ``fields``).
    """
    if trigger_type in FACTS:
        own = FACTS[trigger_type]
    elif trigger_type in event_types:
        own = (*event_variables(event_types[trigger_type].fields),
               *EVENT_EXTRAS.get(trigger_type, ()))
    else:
        return None
    out = {v.name: v for v in COMMON}
    out.update({v.name: v for v in own})
    return out


def has_attributes(trigger_type: str) -> bool:
    """Whether a firing may carry ``attr_*`` variables: only what an event fires does."""
    return trigger_type not in TIME_TRIGGERS


def provided(trigger_type: str, event_types: Mapping[str, Any], action: str,
             channel: str) -> frozenset[str]:
    """The names a template of ``channel`` sent by an ``action`` of this trigger may use
    (``attr_*`` aside: see :func:`has_attributes`)."""
    own = trigger_variables(trigger_type, event_types) or {}
    extras = (*ACTION_EXTRAS.get(action, ()), *CHANNEL_EXTRAS.get(channel, ()))
    return frozenset({*own, *(v.name for v in extras)})
