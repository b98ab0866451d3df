"""Properties of the engine over random stories of events and ticks (hypothesis)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from signalbox.common import schemas
from signalbox.common.codec import AvroCodec
from signalbox.evaluator.engine import (
    CustomerState,
    Decision,
    Event,
    Profile,
    Tick,
    TimerIndex,
    evaluate,
    next_due,
)
from signalbox.evaluator.engine_records import state_to_record
from tests.evaluator.engine.story import DAY_MS, HOUR_MS, T0, automations

AUTOMATIONS = automations("""
teams: {ops: {email: ops@example.com, phone: "+4930123456", webhook: ops-hook}}
automations:
  - {id: failed, trigger: {type: payment.failed, min_failures: 2},
     actions: [{type: email, template: t}, {type: adjust_score, delta: -100}]}
  - {id: dunning, trigger: {type: past_due, days: [3, 6]},
     actions: [{type: email, template: t}, {type: alert, team: ops, via: sms, template: t}]}
  - {id: miss-you, trigger: {type: no_login, days: 4}, actions: [{type: email, template: t}]}
  - {id: unused, trigger: {type: feature.unused, feature: f, days: 5, recheck_days: 7},
     actions: [{type: email, template: t}]}
  - {id: ending, trigger: {type: subscription.ending, days: [2]},
     actions: [{type: email, template: t}]}
  - {id: invoice-soon, trigger: {type: invoice.due_soon, days: 1},
     actions: [{type: email, template: t}]}
  - {id: invoice-late, trigger: {type: invoice.overdue, days: [0, 2]},
     actions: [{type: crm, operation: add_tag, params: {tag: late}}]}
  - {id: remind, trigger: {type: appointment.reminder, before_minutes: [1440, 60]},
     actions: [{type: sms, template: t}]}
  - {id: task-late, trigger: {type: task.overdue}, actions: [{type: email, template: t}]}
  - {id: card, trigger: {type: card.expiring, days: 10}, actions: [{type: email, template: t}]}
  - {id: affiliate, trigger: {type: affiliate.qualified, min_score: 50, recheck_days: 3},
     actions: [{type: email, template: t}]}
  - {id: levels, trigger: {type: usage.threshold_met, levels: [50, 100]},
     actions: [{type: webhook, endpoint: hook, event: usage}]}
  - {id: minutes, trigger: {type: feature.used_minutes, minutes: 8},
     actions: [{type: adjust_score, delta: 40}]}
  - {id: milestone, trigger: {type: score.milestone, milestones: [50, 100]},
     actions: [{type: email, template: t}]}
  - {id: health, trigger: {type: health.changed}, actions: [{type: email, template: t}]}
  - id: approve-refund
    trigger: {type: payment.refunded}
    actions:
      - type: approval
        actions: [{type: crm, operation: add_tag, params: {tag: refunded}},
                  {type: email, template: t}]
""")
CODEC = AvroCodec()

when = st.integers(0, 40 * DAY_MS).map(lambda ms: T0 + ms)
products = st.sampled_from(["pro", "basic"])


def _data(kind: str, n: int, at: int, amount: int, product: str) -> dict[str, Any]:
    money: dict[str, Any] = {"amount_minor": amount, "currency": "EUR"}
    return {
        "payment.failed": {"payment_id": f"p{n}", "invoice_id": None, "product": product,
                           "reason": None, **money},
        "payment.succeeded": {"payment_id": f"p{n}", "invoice_id": f"in{n % 3}",
                              "product": product, "kind": "automatic", **money},
        "payment.refunded": {"payment_id": f"p{n}", "refund_id": f"r{n}", "product": None,
                             "reason": None, **money},
        "balance.updated": {"balance_minor": amount, "past_due_minor": amount % 3 * amount,
                            "currency": "EUR"},
        "subscription.started": {"subscription_id": f"s{n % 2}", "product": product,
                                 "kind": "subscription", "ends_at": at + 5 * DAY_MS,
                                 "trial_ends_at": None},
        "subscription.ended": {"subscription_id": f"s{n % 2}", "product": product,
                               "kind": "subscription", "ends_at": None, "cause": None},
        "invoice.issued": {"invoice_id": f"in{n % 3}", "due_at": at + 3 * DAY_MS,
                           "product": product, **money},
        "user.logged_in": {"user_id": None},
        "feature.used": {"feature": "f", "duration_seconds": amount % 600, "session_id": None},
        "score.adjusted": {"delta": amount % 80 - 20, "reason": None},
        "allowance.set": {"metric": "m", "allowance": 100.0, "period_start": at,
                          "period_end": at + 10 * DAY_MS},
        "usage.recorded": {"metric": "m", "quantity": float(amount % 70)},
        "appointment.booked": {"appointment_id": f"a{n % 2}", "starts_at": at + 2 * DAY_MS,
                               "title": None},
        "task.added": {"task_id": f"t{n % 2}", "title": "x", "due_at": at + DAY_MS},
        "card.updated": {"card_id": "c", "brand": None, "last4": None, "exp_month": n % 12 + 1,
                         "exp_year": 2026},
    }[kind]


@dataclass(frozen=True)
class Decide:
    """approval.decided for whatever approval is pending when it comes."""

    n: int
    at: int
    approve: bool


events = st.builds(
    lambda kind, n, at, amount, product: Event(
        f"e{n}", "cus-1", kind, at, _data(kind, n, at, amount, product),
        Profile(email="a@example.com")),
    st.sampled_from(["payment.failed", "payment.succeeded", "payment.refunded",
                     "balance.updated", "subscription.started", "subscription.ended",
                     "invoice.issued", "user.logged_in", "feature.used", "score.adjusted",
                     "allowance.set", "usage.recorded", "appointment.booked", "task.added",
                     "card.updated"]),
    st.integers(0, 60), when, st.integers(1, 5000), products)
ticks = st.builds(lambda at: Tick(0, at - at % HOUR_MS, HOUR_MS), when)
decides = st.builds(Decide, st.integers(0, 60), when, st.booleans())


def _time(item: Event | Tick | Decide) -> int:
    return item.occurred_at if isinstance(item, Event) else item.at


#: Mostly in time order, as a partition delivers them; sometimes shuffled (late events).
inputs = st.one_of(
    st.lists(st.one_of(events, events, ticks, decides), min_size=5, max_size=40).map(
        lambda items: sorted(items, key=_time)),
    st.lists(st.one_of(events, ticks, decides), max_size=30))


def resolve(item: Event | Tick | Decide, state: CustomerState | None) -> Event | Tick:
    if not isinstance(item, Decide):
        return item
    pending = sorted(state.approvals) if state is not None else []
    return Event(f"d{item.n}", "cus-1", "approval.decided", item.at, {
        "approval_id": pending[0] if pending else "apr-none",
        "decision": "approved" if item.approve else "rejected", "decided_by": "bob",
        "reason": None})


def run(story: list[Event | Tick | Decide], state: CustomerState | None = None
        ) -> tuple[CustomerState | None, list[Decision], list[Event | Tick]]:
    decisions, fed = [], []
    for item in story:
        concrete = resolve(item, state)
        decision = evaluate(state, concrete, AUTOMATIONS)
        decisions.append(decision)
        fed.append(concrete)
        state = decision.state
    return state, decisions, fed


def state_bytes(state: CustomerState | None) -> bytes:
    return b"" if state is None else CODEC.encode(schemas.CUSTOMER_STATE,
                                                  state_to_record(state))


@settings(max_examples=150, deadline=None)
@given(inputs)
def test_the_engine_is_deterministic_byte_for_byte(story: list[Event | Tick | Decide]) -> None:
    state1, decisions1, _ = run(story)
    state2, decisions2, _ = run(list(story))
    assert decisions1 == decisions2
    assert state_bytes(state1) == state_bytes(state2)


@settings(max_examples=150, deadline=None)
@given(inputs, st.data())
def test_replaying_inputs_emits_no_command_twice(story: list[Event | Tick | Decide],
                                                 data: st.DataObject) -> None:
    """At-least-once delivery: a redelivered event changes nothing and issues nothing; a
    redelivered tick issues nothing again (it may find work that fell due since it first
    came — the customer did not exist yet — but never a command already issued)."""
    state, decisions, fed = run(story)
    emitted = [c.command_id for d in decisions for c in d.commands]
    assert len(emitted) == len(set(emitted))  # every command id once
    if not fed:
        return
    replay = data.draw(st.lists(st.sampled_from(fed), max_size=15))
    for item in replay:
        decision = evaluate(state, item, AUTOMATIONS)
        if isinstance(item, Event):
            assert decision.duplicate and decision.commands == () and decision.approvals == ()
            assert decision.state is state
        again = evaluate(decision.state, item, AUTOMATIONS)  # the same input at once again
        assert again.commands == () and again.approvals == ()
        emitted += [c.command_id for c in decision.commands]
        state = decision.state
    assert len(emitted) == len(set(emitted))


@settings(max_examples=100, deadline=None)
@given(st.lists(events, max_size=25), st.integers(1, 30))
def test_a_late_tick_fires_what_regular_ticks_would_have(story: list[Event], days: int
                                                         ) -> None:
    """Catch-up: one tick after an outage fires the same commands, at the same due times,
    as the ticks that should have come, each once."""
    ordered = sorted(story, key=lambda e: e.occurred_at)
    state, _, _ = run(list(ordered))
    if state is None:
        return
    end = max(e.occurred_at for e in ordered) + days * DAY_MS
    end -= end % HOUR_MS
    regular: list[tuple[str, int]] = []
    s: CustomerState | None = state
    t = state.clock - state.clock % HOUR_MS + HOUR_MS
    while s is not None and (due := next_due(s, AUTOMATIONS)) is not None:
        t = max(t, -(-due // HOUR_MS) * HOUR_MS)
        if t > end:
            break
        d = evaluate(s, Tick(0, t, HOUR_MS), AUTOMATIONS)
        regular += [(c.command_id, c.issued_at) for c in d.commands]
        s = d.state
        t += HOUR_MS
    late = evaluate(state, Tick(0, end, HOUR_MS), AUTOMATIONS)
    assert [(c.command_id, c.issued_at) for c in late.commands] == regular


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from("abcdefgh"),
                          st.one_of(st.none(), st.integers(0, 100)),
                          st.integers(0, 100)), max_size=60))
def test_timer_index_pops_exactly_the_due_customers_in_due_order(
        ops: list[tuple[str, int | None, int]]) -> None:
    index = TimerIndex()
    model: dict[str, int] = {}
    for customer, due, pop_at in ops:
        index.set(customer, due)
        if due is None:
            model.pop(customer, None)
        else:
            model[customer] = due
        expected = sorted((d, c) for c, d in model.items() if d <= pop_at)
        assert index.pop_due(pop_at) == [c for _, c in expected]
        for _, c in expected:
            del model[c]
        assert len(index) == len(model)


EVERY_TRIGGER = automations("""
teams: {ops: {email: ops@example.com, phone: "+4930123456", webhook: ops-hook}}
automations:
""" + "".join(f"""
  - id: t{i}
    trigger: {{type: {name}{params}}}
    conditions: {{where: [{{field: state.score, op: ">", value: -1000}}]}}
    actions:
      - {{type: email, template: t}}
      - {{type: adjust_score, delta: 7}}
      - {{type: approval, actions: [{{type: crm, operation: add_tag, params: {{tag: t{i}}}}}]}}
""" for i, (name, params) in enumerate(sorted({
    **{t: "" for t in schemas.event_types()},
    "usage.threshold_met": "", "feature.used_minutes": ", minutes: 2",
    "score.milestone": ", milestones: [10, 20, 50]", "health.changed": "",
    "past_due": ", days: [1, 2]", "no_login": ", days: 2",
    "feature.unused": ", feature: feature, days: 2, recheck_days: 3",
    "subscription.ending": ", days: 1", "appointment.reminder": "", "task.due_soon": "",
    "task.overdue": "", "invoice.due_soon": ", days: 1", "invoice.overdue": "",
    "card.expiring": ", days: 5", "card.expired": "",
    "affiliate.qualified": ", min_score: 20, recheck_days: 2"}.items()))))


def _sample(event_type: str, n: int, at: int) -> Event:
    from tests.evaluator.engine.test_event_scenarios import CASES
    data = dict(CASES[event_type][0])
    for key, value in data.items():  # times relative to the event
        if key.endswith("_at") and isinstance(value, int):
            data[key] = at + (value - CASES["invoice.issued"][0]["due_at"]) + 2 * DAY_MS
    if event_type == "allowance.set":
        data.update(period_start=at, period_end=at + 5 * DAY_MS)
    return Event(f"x{n}", "cus-1", event_type, at, data, Profile(phone="+4915112345678"))


any_events = st.builds(_sample, st.sampled_from(sorted(schemas.event_types())),
                       st.integers(0, 80), when)
any_inputs = st.lists(st.one_of(any_events, any_events, ticks, decides), min_size=3,
                      max_size=40).map(lambda items: sorted(items, key=_time))


@settings(max_examples=150, deadline=None)
@given(any_inputs)
def test_every_trigger_and_event_type_runs_and_round_trips(story: list[Event | Tick | Decide]
                                                           ) -> None:
    """No input crashes the engine, and every state it returns survives Avro."""
    from signalbox.common.action_command import command_to_record
    from signalbox.evaluator.engine_records import state_from_record

    state: CustomerState | None = None
    for item in story:
        decision = evaluate(state, resolve(item, state), EVERY_TRIGGER)
        for command in decision.commands:
            CODEC.encode(schemas.ACTION_COMMAND, command_to_record(command))
        state = decision.state
        if state is not None:
            raw = state_bytes(state)
            assert state_from_record(CODEC.decode(schemas.CUSTOMER_STATE, raw)) == state
