"""The trigger catalogue: every trigger type, what feeds it and its parameters.

Three kinds of trigger:

* **event**: every event type of ``schemas/avro/event.avsc`` fires on that event;
  other keys of the trigger filter on the event's fields (``product: pro``,
  ``rating: [unhappy, not_happy]``);
* **derived**: fired by an event through what it changes in the customer's state
  (usage crossing a level of the allowance, feature time adding up to N minutes,
  the score reaching a milestone, the health band changing);
* **time**: fired only by ticks, when a due time computed from the state has come
  (see :mod:`signalbox.evaluator.engine.timers`).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

Kind = Literal["event", "derived", "time"]
HEALTH_BANDS = ("thriving", "healthy", "steady", "struggling")
AGREEMENT_KINDS = ("subscription", "service_agreement")
DEFAULT_MILESTONES = (300, 600, 900, 1200)
#: Parameter checker: (value, where, errors) -> parsed value or None (errors appended).
Check = Callable[[Any, str, list[str]], Any]


@dataclass(frozen=True)
class Param:
    check: Check
    default: Any = None
    required: bool = False


@dataclass(frozen=True)
class TriggerSpec:
    name: str
    kind: Kind
    doc: str
    params: Mapping[str, Param] = field(default_factory=dict)
    #: Fires at most once ever per customer and automation (the engine keeps the
    #: automation's id in the state's ``fired``).
    once: bool = False


def positive_int(limit: int = 10**9) -> Check:
    def check(value: Any, where: str, errors: list[str]) -> int | None:
        if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= limit:
            errors.append(f"{where}: expected a whole number from 1 to {limit}, got {value!r}")
            return None
        return value
    return check


def non_negative_int(limit: int = 10**9) -> Check:
    def check(value: Any, where: str, errors: list[str]) -> int | None:
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= limit:
            errors.append(f"{where}: expected a whole number from 0 to {limit}, got {value!r}")
            return None
        return value
    return check


def int_list(item: Check) -> Check:
    """One number or a non-empty list of them; parsed as a sorted tuple without repeats."""
    def check(value: Any, where: str, errors: list[str]) -> tuple[int, ...] | None:
        values = value if isinstance(value, list) else [value]
        before = len(errors)
        parsed = [item(v, where, errors) for v in values]
        if not values:
            errors.append(f"{where}: expected at least one value")
        if len(errors) > before or not values:
            return None
        return tuple(sorted(set(parsed)))
    return check


def text(value: Any, where: str, errors: list[str]) -> str | None:
    if not isinstance(value, str) or not value:
        errors.append(f"{where}: expected a non-empty string, got {value!r}")
        return None
    return value


def one_of(*choices: str) -> Check:
    def check(value: Any, where: str, errors: list[str]) -> tuple[str, ...] | None:
        values = value if isinstance(value, list) else [value]
        bad = [v for v in values if v not in choices]
        if bad or not values:
            errors.append(f"{where}: expected one or more of {', '.join(choices)}, got {value!r}")
            return None
        return tuple(values)
    return check


_DAYS = int_list(positive_int(3650))

CATALOGUE: Mapping[str, TriggerSpec] = {s.name: s for s in (
    TriggerSpec("usage.threshold_met", "derived",
                "Usage of a metric crossed a level (percent of the period's allowance); each "
                "level fires once per billing period.",
                {"metric": Param(text), "levels": Param(int_list(positive_int(1000)),
                                                         (50, 90, 100))}),
    TriggerSpec("feature.used_minutes", "derived",
                "The feature's total time of use reached N minutes (sessions add up); once.",
                {"feature": Param(text), "minutes": Param(positive_int(10**7), required=True)}),
    TriggerSpec("score.milestone", "derived",
                "The score reached a milestone for the first time; each milestone fires once "
                "ever.",
                {"milestones": Param(int_list(positive_int()), DEFAULT_MILESTONES)}),
    TriggerSpec("health.changed", "derived",
                "The health band changed (thriving, healthy, steady, struggling).",
                {"to": Param(one_of(*HEALTH_BANDS)), "from": Param(one_of(*HEALTH_BANDS))}),
    TriggerSpec("past_due", "time",
                "Past-due balance (balance.updated, open invoices past their due date) AND at "
                "least one active subscription for a continuous streak of exactly N days (each "
                "threshold once per streak; any fall of the past-due balance restarts the "
                "streak).",
                params={"days": Param(_DAYS, (14, 30))}),
    TriggerSpec("no_login", "time", "No login for N days (counted from sign-up if never).",
                params={"days": Param(positive_int(3650), 7)}),
    TriggerSpec("feature.unused", "time",
                "A feature not used within its timeframe of N days; rechecked every "
                "recheck_days while it stays unused.",
                params={"feature": Param(text, required=True),
                        "days": Param(positive_int(3650), 30),
                        "recheck_days": Param(positive_int(3650), 45)}),
    TriggerSpec("subscription.ending", "time",
                "N days before a subscription or service agreement ends.",
                params={"days": Param(_DAYS, (30,)), "kind": Param(one_of(*AGREEMENT_KINDS)),
                        "product": Param(text)}),
    TriggerSpec("appointment.reminder", "time", "N minutes before a booked appointment.",
                params={"before_minutes": Param(int_list(positive_int(525_600)), (1440, 60))}),
    TriggerSpec("task.due_soon", "time", "N hours before an open task is due.",
                params={"before_hours": Param(int_list(positive_int(87_600)), (24,))}),
    TriggerSpec("task.overdue", "time", "An open task passed its due time.",
                params={"after_hours": Param(int_list(non_negative_int(87_600)), (0,))}),
    TriggerSpec("invoice.due_soon", "time", "N days before an open invoice is due.",
                params={"days": Param(_DAYS, (3,)), "product": Param(text)}),
    TriggerSpec("invoice.overdue", "time",
                "An open invoice is N days past its due date (0: on the due date).",
                params={"days": Param(int_list(non_negative_int(3650)), (0,)),
                        "product": Param(text)}),
    TriggerSpec("card.expiring", "time", "N days before the card on file expires.",
                params={"days": Param(_DAYS, (30,))}),
    TriggerSpec("card.expired", "time", "The card on file expired."),
    TriggerSpec("affiliate.qualified", "time",
                "The score is at least min_score at a check; checked every recheck_days from "
                "sign-up; fires once.",
                params={"min_score": Param(positive_int(), required=True),
                        "recheck_days": Param(positive_int(3650), 60)},
                once=True),
)}

#: Extra parameters an event trigger accepts beyond field filters.
EVENT_PARAMS: Mapping[str, Mapping[str, Param]] = {
    "payment.failed": {"min_failures": Param(positive_int(1000), 1)},
}

TIME_TRIGGERS = frozenset(n for n, s in CATALOGUE.items() if s.kind == "time")
ONCE_TRIGGERS = frozenset(n for n, s in CATALOGUE.items() if s.once)


def known_triggers(event_types: Collection[str]) -> list[str]:
    return sorted({*event_types, *CATALOGUE})
