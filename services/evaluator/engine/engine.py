"""The decision function. Pure: every input it needs is an argument.

``evaluate(state, event, automations)``: fold the event into the state, fire the
event's automations and the derived triggers the change implies (usage levels,
feature minutes, score milestones, health band), release or drop held approvals.

``evaluate(state, tick, automations)``: fire every time trigger due up to the tick
(see :mod:`signalbox.evaluator.engine.timers`). An event first does the same up to
the time it was learned, on the state before it, then applies: a due time is settled
by whichever input passes it first, with the same result.

A held approval's expiry is a due time like the time triggers': a tick or an event
learned at or after ``expires_at`` first settles it by its ``on_expiry`` (approve
releases the held commands, reject drops them), so a decision that comes later
finds nothing held, whatever the ticks' interval. Every approval that ends (decided,
expired, or dropped by the state's cap) is reported in ``Decision.settled``.

Score changes of an input (the event's and those of adjust_score actions) are
summed and checked once for milestones and health after the input's automations
ran; the actions of those derived automations change the state but do not trigger
again, so one input always ends.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from signalbox.common.action_command import Command, TriggerInfo
from signalbox.evaluator.engine.automations import Automation, AutomationSet
from signalbox.evaluator.engine.commands import Firing, facts_text, fire, with_tags
from signalbox.evaluator.engine.model import (
    ApprovalOutcome,
    ApprovalRequest,
    CustomerState,
    Decision,
    Event,
    PendingApproval,
    Tick,
)
from signalbox.evaluator.engine.state import (
    apply_event,
    event_digest,
    health_of,
    invoices_fall_overdue,
    known_time,
    new_state,
    prune,
    seen,
)
from signalbox.evaluator.engine.state_limits import bound, key_text
from signalbox.evaluator.engine.timers import Occurrence, due_occurrences, next_time


class _Run:
    """Accumulates one input's state changes, commands and approvals."""

    def __init__(self, state: CustomerState, automations: AutomationSet) -> None:
        self.state = state
        self.automations = automations
        self.commands: list[Command] = []
        self.approvals: list[ApprovalRequest] = []
        self.settled: list[ApprovalOutcome] = []

    def fire(self, firing: Firing) -> None:
        fired = fire(self.state, firing, self.automations.teams)
        self.state = fired.state
        self.commands.extend(fired.commands)
        self.approvals.extend(fired.approvals)

    def decision(self) -> Decision:
        """The decision, with every collection of the state within its cap (an approval
        the cap drops is settled as dropped: its held commands are gone)."""
        state, dropped = bound(self.state)
        if "approvals" in dropped:
            self.settled.extend(
                ApprovalOutcome(k, state.customer_id, "dropped", state.clock, False, p)
                for k, p in self.state.approvals.items() if k not in state.approvals)
        return Decision(state, tuple(self.commands), tuple(self.approvals),
                        settled=tuple(self.settled), dropped=dropped)

    def release(self, held: PendingApproval) -> None:
        """Send an approval's held commands, as they were built when it was held."""
        for command in held.commands:
            self.state = with_tags(self.state, command.action)
        self.commands.extend(held.commands)

    def expire(self, until: int) -> None:
        """Settle every held approval with ``expires_at <= until`` by its ``on_expiry``,
        in expiry order (ties: approval id)."""
        due = sorted((p.expires_at, k) for k, p in self.state.approvals.items()
                     if p.expires_at is not None and p.expires_at <= until)
        if not due:
            return
        held, gone = self.state.approvals, {k for _, k in due}
        self.state = self.state.evolve(approvals={k: p for k, p in held.items()
                                                  if k not in gone})
        for at, k in due:
            release = held[k].on_expiry == "approve"
            if release:
                self.release(held[k])
            self.settled.append(ApprovalOutcome(k, self.state.customer_id, "expired", at,
                                                release, held[k]))


def evaluate(
    state: CustomerState | None, item: Event | Tick, automations: AutomationSet
) -> Decision:
    """``(state, input, automations) -> (new state, commands, approvals)``."""
    if isinstance(item, Tick):
        return _tick(state, item, automations) if state is not None else Decision(None)
    if state is not None and seen(state, event_digest(item.event_id)):
        return Decision(state, (), duplicate=True)
    return _event(state or new_state(item), item, automations)


def _event(state: CustomerState, event: Event, automations: AutomationSet) -> Decision:
    learned = known_time(event)
    run = _Run(state, automations)
    _advance(run, learned, arm_at=learned)  # due times up to the event, on the state before
    before = run.state
    run.state = apply_event(before, event)
    if event.type == "approval.decided":
        _decide(run, event)
    for a in automations.for_trigger(event.type):
        facts = _event_facts(a, run.state, event)
        if facts is not None and a.conditions.holds(run.state, event.data):
            run.fire(Firing(a, TriggerInfo(event.type, event.event_id, facts),
                            event.occurred_at, event.data, event.event_id, event.attributes))
    for firing in _derived(before, run.state, event, automations):
        if firing.automation.conditions.holds(run.state, firing.data):
            run.fire(firing)
    _score_and_health(run, before, event.occurred_at, event.event_id, event.attributes)
    return run.decision()


def _event_facts(a: Automation, state: CustomerState, event: Event) -> dict[str, str] | None:
    """The facts that matched, or ``None`` when the trigger's filters do not match."""
    facts = {"event_type": event.type}
    for key, allowed in a.trigger.filters.items():
        value = event.data.get(key)
        if value is None or str(value) not in allowed:
            return None
        facts[key] = str(value)
    min_failures = a.trigger.params.get("min_failures")
    if min_failures is not None:
        count = state.failed_payments.get(key_text(event.data.get("product", "")), 0)
        if count < min_failures:
            return None
        facts["failed_count"] = str(count)
    return dict(sorted(facts.items()))


def _derived(before: CustomerState, after: CustomerState, event: Event,
             automations: AutomationSet) -> Iterator[Firing]:
    """Usage levels and feature minutes crossed by this event."""
    if event.type in ("usage.recorded", "allowance.set"):
        metric = key_text(event.data["metric"])
        old, new = before.usage.get(metric), after.usage.get(metric)
        if new is not None and new.allowance > 0:
            used_before = old.used if old is not None and \
                old.period_start == new.period_start else 0.0
            for a in automations.for_trigger("usage.threshold_met"):
                if a.trigger.params.get("metric", metric) != metric:
                    continue
                for level in a.trigger.params["levels"]:
                    line = new.allowance * level / 100
                    if used_before < line <= new.used:
                        data = {"metric": metric, "level": level, "used": new.used,
                                "allowance": new.allowance, "period_start": new.period_start,
                                "period_end": new.period_end}
                        yield _derived_firing(a, event, data,
                                              f"usage:{metric}:{new.period_start}:{level}")
    if event.type == "feature.used":
        feature = key_text(event.data["feature"])
        old_s = before.feature_seconds.get(feature, 0)
        new_s = after.feature_seconds.get(feature, 0)
        for a in automations.for_trigger("feature.used_minutes"):
            minutes = a.trigger.params["minutes"]
            if a.trigger.params.get("feature", feature) == feature and \
                    old_s < minutes * 60 <= new_s:
                data = {"feature": feature, "minutes": minutes, "total_seconds": new_s}
                yield _derived_firing(a, event, data, f"feature:{feature}:{minutes}m")


def _derived_firing(a: Automation, event: Event, data: Mapping[str, Any],
                    occurrence: str) -> Firing:
    trigger = TriggerInfo(a.trigger.type, occurrence, facts_text(data))
    return Firing(a, trigger, event.occurred_at, data, event.event_id, event.attributes)


def _score_and_health(run: _Run, before: CustomerState, at: int, input_id: str,
                      attributes: Mapping[str, str]) -> None:
    old, new = before.score, run.state.score
    reached = set(run.state.milestones)
    crossed: set[int] = set()
    for a in run.automations.for_trigger("score.milestone"):
        for m in a.trigger.params["milestones"]:
            if old < m <= new and m not in reached:
                crossed.add(m)
                data = {"milestone": m, "score": new, "previous_score": old}
                trigger = TriggerInfo(a.trigger.type, f"milestone:{m}", facts_text(data))
                if a.conditions.holds(run.state, data):
                    run.fire(Firing(a, trigger, at, data, input_id, attributes))
    if crossed:
        run.state = run.state.evolve(milestones=tuple(sorted(reached | crossed)))
    band = health_of(run.state)
    previous = run.state.health
    if band == previous:
        return
    run.state = run.state.evolve(health=band)
    if previous is None:
        return  # the first band is not a change
    for a in run.automations.for_trigger("health.changed"):
        p = a.trigger.params
        if ("to" in p and band not in p["to"]) or ("from" in p and previous not in p["from"]):
            continue
        data = {"from": previous, "to": band, "score": run.state.score}
        trigger = TriggerInfo(a.trigger.type, f"health:{input_id}:{band}", facts_text(data))
        if a.conditions.holds(run.state, data):
            run.fire(Firing(a, trigger, at, data, input_id, attributes))


def _decide(run: _Run, event: Event) -> None:
    """approval.decided: approved releases the held commands; rejected drops them. Settled
    either way, even when nothing is held (decided before, expired or never known), so
    the approvals topic stops waiting for it."""
    data = event.data
    aid = str(data["approval_id"])
    pending = run.state.approvals.get(aid)
    approved = data["decision"] == "approved"
    if pending is not None:
        run.state = run.state.evolve(approvals={k: v for k, v in run.state.approvals.items()
                                                if k != aid})
        if approved:
            run.release(pending)
    run.settled.append(ApprovalOutcome(
        aid, run.state.customer_id, "approved" if approved else "rejected", event.occurred_at,
        approved and pending is not None, pending, _text(data.get("decided_by")),
        _text(data.get("reason"))))


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _tick(state: CustomerState, tick: Tick, automations: AutomationSet) -> Decision:
    run = _Run(state, automations)
    _advance(run, tick.at, arm_at=tick.at - tick.interval_ms)
    if run.state is state:
        return Decision(state)
    run.state = prune(run.state, tick.at)
    return run.decision()


def _advance(run: _Run, until: int, arm_at: int) -> None:
    """Move the customer's time forward to ``until``: every due time in between, in
    time order, is settled on the state as it is then (invoices falling overdue at
    it, then the occurrences due at it, then the score and health they changed).
    An automation without a mark is armed at ``arm_at``."""
    start = run.state
    timed = run.automations.timed
    marks = {a.id: start.timer_marks.get(a.id, arm_at) for a in timed}
    while (at := next_time(run.state, run.automations, marks, until)) is not None:
        before = run.state = invoices_fall_overdue(run.state, at)
        run.expire(at)  # held approvals expiring at it, before the occurrences due at it
        for o in due_occurrences(run.state, run.automations, marks, at):
            _fire_due(run, o)
        _score_and_health(run, before, at, f"tick:{at}", {})
        marks = {k: max(v, at) for k, v in marks.items()}
    marks = {k: max(v, until) for k, v in sorted(marks.items())}
    if marks != start.timer_marks or run.state is not start:
        run.state = run.state.evolve(timer_marks=marks, clock=max(run.state.clock, until))


def _fire_due(run: _Run, o: Occurrence) -> None:
    a = o.automation
    if not a.conditions.holds(run.state, o.facts):
        return
    if a.trigger.fires_once:
        if a.id in run.state.fired:
            return
        run.state = run.state.evolve(fired=(*run.state.fired, a.id))  # oldest first
    trigger = TriggerInfo(a.trigger.type, o.occurrence, facts_text(o.facts))
    run.fire(Firing(a, trigger, o.due, o.facts, o.occurrence, {}))
