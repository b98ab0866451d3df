"""Time triggers: the due times a customer's state implies, and when it next needs a tick.

Every time-triggered automation has, per customer, a *mark* (``timer_marks``): the
time up to which its due times are settled. Moving a customer's time forward to
``until`` — a tick at ``until``, or an event learned at ``until`` before it applies —
walks through every due time with ``mark < due <= until`` in time order: at each
due time *t* the open invoices due at *t* fall overdue (the state's ``clock`` is the
time up to which that is done), then every occurrence due at *t* fires (each once,
``issued_at`` = *t*, judged by the state as it is at *t*, after what fired before),
then the marks move to *t*. So a due time is judged by the state at that time, and
the output does not depend on how often ticks come: a late or missing tick is
caught up by the next tick or the next event, and a tick delivered twice fires
nothing the second time.

An event learned at *E* (ingest's ``received_at``; ``occurred_at`` when there is
none) first settles every due time up to *E* on the state before it, then applies:
a partial payment on day 15 of a past-due streak does not take back the day-14
notice, whenever the ticks come; a customer who gets a subscription on day 20 of a
streak is not sent the day-14 notice (it fires at 30).

**A new automation does not back-fill.** The first input that meets an automation
without a mark arms it: an event at *E*, a tick at ``at - interval_ms`` (due times
of the last interval still fire). Older due times are history, not a flood. Marks
are keyed by automation id: a new version keeps its mark (nothing fires twice), and
an automation disabled then enabled again is re-armed (no back-fill of the pause).
The shell re-runs ``next_due`` for its customers when the automation set changes.

**Reminders never fire for a moment that had passed when the fact was learned**
(an appointment booked 3 hours ahead gets its 1-hour reminder, not the 1-day one);
"overdue"/"expired"/"past due" states fire even when learned late.

Guards that depend on the state (an active subscription for past_due, an open
invoice, a qualifying score) are part of the occurrence: when they do not hold,
there is nothing due and the customer is not woken.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from signalbox.evaluator.engine.automations import Automation, AutomationSet
from signalbox.evaluator.engine.model import DAY_MS, HOUR_MS, MINUTE_MS, CustomerState
from signalbox.evaluator.engine.state import next_overdue

#: The version of the rules ``next_due`` follows beyond the automations (bump when they
#: change): the shell's timer digest includes it, so a due time stored by an older
#: version is computed afresh from the state. 2: invoices falling overdue are due times.
NEXT_DUE_RULES = 2


@dataclass(frozen=True)
class Occurrence:
    """One due time of one automation for one customer."""

    due: int
    automation: Automation
    key: str  # unique per automation and customer; part of the command id
    facts: Mapping[str, Any]

    @property
    def occurrence(self) -> str:
        return f"{self.due}:{self.key}"


#: (automation, state, after, until) -> occurrences with after < due <= until
#: (``until`` None: the earliest one after ``after`` is enough).
Generator = Callable[[Automation, CustomerState, int, "int | None"], Iterator[Occurrence]]


def _in(due: int, after: int, until: int | None) -> bool:
    return due > after and (until is None or due <= until)


def _past_due(a: Automation, s: CustomerState, after: int, until: int | None
              ) -> Iterator[Occurrence]:
    since = s.past_due_since
    if since is None or s.past_due_minor <= 0 or not s.has_active_subscription:
        return
    for days in a.trigger.params["days"]:
        due = since + days * DAY_MS
        if _in(due, after, until):
            yield Occurrence(due, a, f"past_due:{since}:{days}d", {
                "days": days, "past_due_minor": s.past_due_minor, "past_due_since": since,
                "balance_minor": s.balance_minor})


def _no_login(a: Automation, s: CustomerState, after: int, until: int | None
              ) -> Iterator[Occurrence]:
    anchor = s.last_login_at if s.last_login_at is not None else s.first_seen_at
    days = a.trigger.params["days"]
    due = anchor + days * DAY_MS
    if _in(due, after, until):
        yield Occurrence(due, a, f"no_login:{anchor}", {
            "days": days, "last_login_at": s.last_login_at})


def _recurring(first: int, every: int, after: int, until: int | None) -> Iterator[int]:
    """``first + k * every`` (k >= 0) within (after, until]; only the earliest if no until."""
    k = 0 if after < first else (after - first) // every + 1
    while True:
        due = first + k * every
        if until is not None and due > until:
            return
        yield due
        if until is None:
            return
        k += 1


def _feature_unused(a: Automation, s: CustomerState, after: int, until: int | None
                    ) -> Iterator[Occurrence]:
    p = a.trigger.params
    feature = p["feature"]
    last = s.feature_last_used.get(feature)
    anchor = last if last is not None else s.first_seen_at
    for due in _recurring(anchor + p["days"] * DAY_MS, p["recheck_days"] * DAY_MS, after,
                          until):
        yield Occurrence(due, a, f"feature.unused:{feature}:{anchor}:{due}", {
            "feature": feature, "days": p["days"], "last_used_at": last})


def _affiliate(a: Automation, s: CustomerState, after: int, until: int | None
               ) -> Iterator[Occurrence]:
    p = a.trigger.params
    if a.id in s.fired or s.score < p["min_score"]:
        return
    every = p["recheck_days"] * DAY_MS
    for due in _recurring(s.first_seen_at + every, every, after, until):
        yield Occurrence(due, a, "affiliate.qualified", {
            "score": s.score, "min_score": p["min_score"]})
        return  # once ever: the first qualifying check


def _subscription_ending(a: Automation, s: CustomerState, after: int, until: int | None
                         ) -> Iterator[Occurrence]:
    p = a.trigger.params
    for sid, sub in s.subscriptions.items():
        if not sub.active or sub.ends_at is None or (p.get("kind") and sub.kind not in p["kind"]) \
                or (p.get("product") and sub.product != p["product"]):
            continue
        for days in p["days"]:
            due = sub.ends_at - days * DAY_MS
            if due >= sub.known_at and _in(due, after, until):
                yield Occurrence(due, a, f"subscription.ending:{sid}:{sub.ends_at}:{days}d", {
                    "subscription_id": sid, "product": sub.product, "kind": sub.kind,
                    "ends_at": sub.ends_at, "days": days})


def _appointment(a: Automation, s: CustomerState, after: int, until: int | None
                 ) -> Iterator[Occurrence]:
    for aid, appt in s.appointments.items():
        for minutes in a.trigger.params["before_minutes"]:
            due = appt.starts_at - minutes * MINUTE_MS
            if due >= appt.known_at and _in(due, after, until):
                yield Occurrence(due, a, f"appointment:{aid}:{appt.starts_at}:{minutes}m", {
                    "appointment_id": aid, "starts_at": appt.starts_at, "title": appt.title,
                    "before_minutes": minutes})


def _task(offset_sign: int, param: str) -> Generator:
    def gen(a: Automation, s: CustomerState, after: int, until: int | None
            ) -> Iterator[Occurrence]:
        for tid, task in s.tasks.items():
            if task.due_at is None:
                continue
            for hours in a.trigger.params[param]:
                due = task.due_at + offset_sign * hours * HOUR_MS
                if (offset_sign > 0 or due >= task.known_at) and _in(due, after, until):
                    yield Occurrence(due, a, f"{a.trigger.type}:{tid}:{task.due_at}:{hours}h", {
                        "task_id": tid, "title": task.title, "due_at": task.due_at,
                        param: hours})
    return gen


def _invoice(offset_sign: int) -> Generator:
    def gen(a: Automation, s: CustomerState, after: int, until: int | None
            ) -> Iterator[Occurrence]:
        product = a.trigger.params.get("product")
        for iid, inv in s.invoices.items():
            if product and inv.product != product:
                continue
            for days in a.trigger.params["days"]:
                due = inv.due_at + offset_sign * days * DAY_MS
                if (offset_sign > 0 or due >= inv.known_at) and _in(due, after, until):
                    yield Occurrence(due, a, f"{a.trigger.type}:{iid}:{inv.due_at}:{days}d", {
                        "invoice_id": iid, "amount_minor": inv.amount_minor,
                        "currency": inv.currency, "due_at": inv.due_at, "product": inv.product,
                        "days": days})
    return gen


def _card_expiring(a: Automation, s: CustomerState, after: int, until: int | None
                   ) -> Iterator[Occurrence]:
    expires = s.card_expires_at
    if expires is None:
        return
    for days in a.trigger.params["days"]:
        due = expires - days * DAY_MS
        if due >= s.card_known_at and _in(due, after, until):
            yield Occurrence(due, a, f"card.expiring:{expires}:{days}d",
                             {"expires_at": expires, "days": days})


def _card_expired(a: Automation, s: CustomerState, after: int, until: int | None
                  ) -> Iterator[Occurrence]:
    expires = s.card_expires_at
    if expires is not None and _in(expires, after, until):
        yield Occurrence(expires, a, f"card.expired:{expires}", {"expires_at": expires})


GENERATORS: Mapping[str, Generator] = {
    "past_due": _past_due,
    "no_login": _no_login,
    "feature.unused": _feature_unused,
    "affiliate.qualified": _affiliate,
    "subscription.ending": _subscription_ending,
    "appointment.reminder": _appointment,
    "task.due_soon": _task(-1, "before_hours"),
    "task.overdue": _task(1, "after_hours"),
    "invoice.due_soon": _invoice(-1),
    "invoice.overdue": _invoice(1),
    "card.expiring": _card_expiring,
    "card.expired": _card_expired,
}


def due_occurrences(state: CustomerState, automations: AutomationSet, marks: Mapping[str, int],
                    at: int) -> list[Occurrence]:
    """Every occurrence with ``mark < due <= at``, in due order (ties: automation id, key)."""
    out = [o for a in automations.timed
           for o in GENERATORS[a.trigger.type](a, state, marks[a.id], at)]
    out.sort(key=lambda o: (o.due, o.automation.id, o.key))
    return out


def next_time(state: CustomerState, automations: AutomationSet, marks: Mapping[str, int],
              until: int | None = None) -> int | None:
    """The earliest due time after ``marks`` (per time automation id), of an open
    invoice falling overdue after the state's clock, or of a held approval's expiry;
    ``None``: nothing scheduled (up to ``until`` when given: the generators then build
    only the occurrences up to it)."""
    best = next_overdue(state)
    if best is not None and until is not None and best > until:
        best = None
    for held in state.approvals.values():  # a held approval's expiry (see engine)
        due = held.expires_at
        if due is not None and (best is None or due < best) and (until is None or due <= until):
            best = due
    for a in automations.timed:
        for o in GENERATORS[a.trigger.type](a, state, marks[a.id], until):
            if best is None or o.due < best:
                best = o.due
    return best


def next_due(state: CustomerState, automations: AutomationSet) -> int | None:
    """The earliest time this customer needs a tick (``None``: nothing scheduled). Pure.

    An automation the customer has no mark for yet counts from the customer's clock:
    the tick that arms it fires only what is due from then on. A held approval is due
    at its expiry.
    """
    return next_time(state, automations,
                     {a.id: state.timer_marks.get(a.id, state.clock) for a in automations.timed})
