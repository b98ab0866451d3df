"""A customer's state stays bounded: every collection capped, the oldest entries dropped
first, the drops reported in the decision, long texts from events clipped."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from signalbox.evaluator.engine import CustomerState, Decision, Event, Tick, TriggerInfo, evaluate
from signalbox.evaluator.engine.model import (
    Agreement,
    Appointment,
    OpenInvoice,
    OpenTask,
    PendingApproval,
    Profile,
    UsagePeriod,
)
from signalbox.evaluator.engine.state_limits import (
    CAPS,
    MAX_APPROVALS,
    MAX_ATTRIBUTES,
    MAX_INVOICES,
    MAX_KEY_CHARS,
    MAX_TAGS,
    MAX_VALUE_CHARS,
    bound,
)
from signalbox.evaluator.engine_records import state_from_record, state_to_record
from tests.evaluator.engine.story import (
    CODEC,
    DAY_MS,
    HOUR_MS,
    T0,
    Story,
    automations,
    variables,
)
from tests.evaluator.engine.test_properties import AUTOMATIONS

NONE = automations("automations: []\n")


class Customer:
    """One customer fed event after event, every decision kept."""

    def __init__(self) -> None:
        self.state: CustomerState | None = None
        self.decisions: list[Decision] = []
        self.n = 0

    def event(self, type: str, data: Mapping[str, Any] | None = None,
              attributes: Mapping[str, str] | None = None) -> Decision:
        self.n += 1
        at = T0 + self.n * 1000
        decision = evaluate(self.state, Event(f"e{self.n}", "cus-1", type, at, dict(data or {}),
                                              attributes=dict(attributes or {}),
                                              received_at=at), NONE)
        self.state = decision.state
        self.decisions.append(decision)
        return decision

    def dropped(self, collection: str) -> int:
        return sum(d.dropped.get(collection, 0) for d in self.decisions)


def _state(customer: Customer) -> CustomerState:
    assert customer.state is not None
    return customer.state


def test_ten_thousand_attributes_keep_the_newest_and_report_the_rest() -> None:
    customer = Customer()
    for i in range(10_000):
        customer.event("user.logged_in", {}, {f"a{i}": str(i)})
    state = _state(customer)
    assert list(state.attributes) == [f"a{i}" for i in range(10_000 - MAX_ATTRIBUTES, 10_000)]
    assert customer.dropped("attributes") == 10_000 - MAX_ATTRIBUTES
    assert customer.decisions[MAX_ATTRIBUTES - 1].dropped == {}
    assert customer.decisions[MAX_ATTRIBUTES].dropped == {"attributes": 1}


def test_an_attribute_set_again_counts_as_new() -> None:
    customer = Customer()
    customer.event("customer.signed_up", {"plan": "pro"})
    for i in range(3 * MAX_ATTRIBUTES):
        customer.event("user.logged_in", {}, {f"a{i}": "x", "region": "eu"})
    assert _state(customer).attributes["region"] == "eu"  # sent with every event: kept
    assert "plan" not in _state(customer).attributes  # set once, long ago: dropped


def test_one_event_with_ten_thousand_attributes_keeps_its_last_ones() -> None:
    customer = Customer()
    decision = customer.event("user.logged_in", {}, {f"a{i}": "x" for i in range(10_000)})
    assert decision.dropped == {"attributes": 10_000 - MAX_ATTRIBUTES}
    assert next(iter(_state(customer).attributes)) == f"a{10_000 - MAX_ATTRIBUTES}"


def test_ten_thousand_tags_keep_the_newest() -> None:
    customer = Customer()
    for i in range(10_000):
        customer.event("user.logged_in", {}, {"tags": f"t{i}, vip" if i % 7 == 0 else f"t{i}"})
    state = _state(customer)
    assert len(state.tags) == MAX_TAGS
    assert "vip" in state.tags  # added again and again: never the oldest for long
    assert state.tags[-1] == "t9999"
    assert customer.dropped("tags") == 10_000 + 1 - MAX_TAGS


def test_ten_thousand_invoices_keep_the_latest_due() -> None:
    customer = Customer()
    for i in range(10_000):
        due = T0 + (10_000 - i) * DAY_MS if i == 5 else T0 + i * DAY_MS  # one due last
        customer.event("invoice.issued", {"invoice_id": f"in{i}", "amount_minor": 100,
                                          "currency": "EUR", "due_at": due, "product": None})
    state = _state(customer)
    assert len(state.invoices) == MAX_INVOICES
    assert "in5" in state.invoices
    assert set(state.invoices) - {"in5"} == {f"in{i}" for i in
                                             range(10_000 - MAX_INVOICES + 1, 10_000)}
    assert customer.dropped("invoices") == 10_000 - MAX_INVOICES


#: Event n of a stream of ever new entries, oldest first by each collection's own order.
STREAMS: dict[str, Callable[[int], tuple[str, dict[str, Any]]]] = {
    "subscriptions": lambda n: ("subscription.started", {
        "subscription_id": f"k{n:04}", "product": "pro", "kind": "subscription",
        "ends_at": None, "trial_ends_at": None}),
    "usage": lambda n: ("allowance.set", {
        "metric": f"k{n:04}", "allowance": 10.0, "period_start": T0 + n,
        "period_end": T0 + 30 * DAY_MS}),
    "features": lambda n: ("feature.used", {"feature": f"k{n:04}", "duration_seconds": 5}),
    "failed_payments": lambda n: ("payment.failed", {
        "payment_id": f"p{n}", "invoice_id": None, "product": f"k{n:04}",
        "amount_minor": 100, "currency": "EUR", "reason": None}),
    "appointments": lambda n: ("appointment.booked", {
        "appointment_id": f"k{n:04}", "starts_at": T0 + 90 * DAY_MS, "title": "call"}),
    "tasks": lambda n: ("task.added", {"task_id": f"k{n:04}", "title": "call back",
                                       "due_at": None}),
}


def _keys(state: CustomerState, collection: str) -> list[str]:
    held = {"features": state.feature_seconds}.get(collection) or getattr(state, collection)
    return sorted(held)


@pytest.mark.parametrize("collection", sorted(STREAMS))
def test_each_collection_keeps_its_newest_entries(collection: str) -> None:
    cap, total = CAPS[collection], CAPS[collection] + 37
    customer = Customer()
    for n in range(total):
        customer.event(*STREAMS[collection](n))
    state = _state(customer)
    assert _keys(state, collection) == [f"k{n:04}" for n in range(total - cap, total)]
    assert customer.dropped(collection) == 37
    if collection == "features":
        assert state.feature_last_used.keys() == state.feature_seconds.keys()


def test_ended_subscriptions_go_before_active_ones() -> None:
    customer = Customer()
    for n in range(CAPS["subscriptions"] + 1):
        kind, data = STREAMS["subscriptions"](n)
        customer.event("subscription.ended" if n == 3 else kind, data)
    assert set(_keys(_state(customer), "subscriptions")) == {
        f"k{n:04}" for n in range(CAPS["subscriptions"] + 1) if n != 3}


def test_texts_from_events_are_clipped_and_still_found() -> None:
    story = Story("""
automations:
  - {id: second, trigger: {type: payment.failed, min_failures: 2},
     actions: [{type: email, template: t}]}
""")
    long = "p" * 10_000
    failed: dict[str, Any] = {"invoice_id": None, "product": long, "amount_minor": 100,
                              "currency": "EUR", "reason": None}
    assert story.event("payment.failed", payment_id="p1", **failed) == []
    [command] = story.event("payment.failed", payment_id="p2", **failed)
    assert variables(command)["failed_count"] == "2"
    state = story.state
    assert state is not None
    assert list(state.failed_payments) == ["p" * MAX_KEY_CHARS]


def test_attribute_names_values_and_profile_texts_are_clipped() -> None:
    customer = Customer()
    customer.event("user.logged_in", {}, {"n" * 5000: "v" * 5000, "tags": "t" * 5000})
    customer.event("custom_field.changed", {"field": "f" * 5000, "value": "w" * 5000,
                                            "previous_value": None})
    state = _state(customer)
    assert state.attributes["n" * MAX_KEY_CHARS] == "v" * MAX_VALUE_CHARS
    assert state.attributes["f" * MAX_KEY_CHARS] == "w" * MAX_VALUE_CHARS
    assert state.tags == ("t" * MAX_KEY_CHARS,)
    decision = evaluate(state, Event("e9", "cus-1", "user.logged_in", T0 + DAY_MS, {},
                                     profile=Profile(locale="x" * 5000)), NONE)
    assert decision.state is not None
    assert decision.state.profile.locale == "x" * MAX_VALUE_CHARS


def _full_state() -> CustomerState:
    """Every collection at its cap, every text at its longest (ASCII)."""
    def key(n: int) -> str:
        return f"{n:04}".ljust(MAX_KEY_CHARS, "k")
    trigger = TriggerInfo("payment.refunded", key(0), {"event_type": "payment.refunded"})
    return CustomerState(
        customer_id=key(0), profile=Profile(name=key(0), locale=key(0)),
        first_seen_at=T0, last_event_at=T0,
        failed_payments={key(n): 3 for n in range(CAPS["failed_payments"])},
        attributes={key(n): "v" * MAX_VALUE_CHARS for n in range(CAPS["attributes"])},
        tags=tuple(key(n) for n in range(CAPS["tags"])),
        invoices={key(n): OpenInvoice(100, "EUR", T0, T0, key(n))
                  for n in range(CAPS["invoices"])},
        subscriptions={key(n): Agreement(key(n), True, T0, key(n))
                       for n in range(CAPS["subscriptions"])},
        usage={key(n): UsagePeriod(T0, T0, 1.0) for n in range(CAPS["usage"])},
        feature_seconds={key(n): 1 for n in range(CAPS["features"])},
        feature_last_used={key(n): T0 for n in range(CAPS["features"])},
        appointments={key(n): Appointment(T0 + DAY_MS, T0, key(n))
                      for n in range(CAPS["appointments"])},
        tasks={key(n): OpenTask(key(n), T0) for n in range(CAPS["tasks"])},
        approvals={key(n): PendingApproval(key(0), 1, T0, trigger, "refund?", ())
                   for n in range(MAX_APPROVALS)},
        fired=tuple(key(n) for n in range(CAPS["fired"])),
        milestones=tuple(range(CAPS["milestones"])),
    )


def test_a_state_at_every_cap_fits_a_default_kafka_message() -> None:
    """Broker default max.message.bytes is 1,048,588; held approval commands come on
    top (their own size is bounded by the commands topic's limit)."""
    state = _full_state()
    assert bound(state) == (state, {})
    value = CODEC.encode("signalbox.CustomerState", state_to_record(state))
    assert len(value) < 524_288
    assert state_from_record(CODEC.decode("signalbox.CustomerState", value)) == state


@settings(max_examples=60, deadline=None)
@given(st.fixed_dictionaries({name: st.integers(0, 2 * cap) for name, cap in CAPS.items()}))
def test_bound_keeps_every_collection_within_its_cap(sizes: dict[str, int]) -> None:
    held = next(iter(_full_state().approvals.values()))
    grown = CustomerState("cus-1", Profile(), T0, T0,
        attributes={f"a{n}": "v" for n in range(sizes["attributes"])},
        tags=tuple(f"t{n}" for n in range(sizes["tags"])),
        invoices={f"i{n}": OpenInvoice(1, "EUR", T0 - n, T0) for n in range(sizes["invoices"])},
        subscriptions={f"s{n}": Agreement("p", n % 2 == 0, T0 + n)
                       for n in range(sizes["subscriptions"])},
        usage={f"u{n}": UsagePeriod(T0 + n, T0 + n, 1.0) for n in range(sizes["usage"])},
        feature_seconds={f"f{n}": n for n in range(sizes["features"])},
        feature_last_used={f"f{n}": T0 + n for n in range(sizes["features"])},
        failed_payments={f"p{n}": 1 for n in range(sizes["failed_payments"])},
        appointments={f"a{n}": Appointment(T0, T0 + n) for n in range(sizes["appointments"])},
        tasks={f"t{n}": OpenTask("x", T0 + n) for n in range(sizes["tasks"])},
        approvals={f"q{n:03}": replace(held, requested_at=T0 - n)
                   for n in range(sizes["approvals"])},
        fired=tuple(f"x{n}" for n in range(sizes["fired"])),
        milestones=tuple(range(sizes["milestones"])),
    )
    state, dropped = bound(grown)
    assert dropped == {k: n - CAPS[k] for k, n in sizes.items() if n > CAPS[k]}
    after = {"attributes": state.attributes, "tags": state.tags, "invoices": state.invoices,
             "subscriptions": state.subscriptions, "usage": state.usage,
             "features": state.feature_seconds, "failed_payments": state.failed_payments,
             "appointments": state.appointments, "tasks": state.tasks,
             "approvals": state.approvals, "fired": state.fired,
             "milestones": state.milestones}
    assert {k: len(v) for k, v in after.items()} == {k: min(n, CAPS[k])
                                                      for k, n in sizes.items()}
    assert state.feature_last_used.keys() == state.feature_seconds.keys()
    assert bound(state) == (state, {})  # idempotent
    assert bound(grown) == (state, dropped)  # deterministic
    if "invoices" in dropped:  # the earliest due went: the highest numbers here
        assert max(int(k[1:]) for k in state.invoices) == MAX_INVOICES - 1
    if "approvals" in dropped:  # the longest waiting went: the highest numbers here
        assert max(state.approvals) == f"q{MAX_APPROVALS - 1:03}"
    if "subscriptions" in dropped:  # ended ones first
        assert sum(a.active for a in state.subscriptions.values()) == \
            min(CAPS["subscriptions"], (sizes["subscriptions"] + 1) // 2)


#: Events that each add one new entry to a collection, and nothing removes one.
GROWING: dict[str, tuple[str, Callable[[int, int], dict[str, Any]]]] = {
    "invoices": ("invoice.issued", lambda i, at: {
        "invoice_id": f"in{i}", "amount_minor": 100, "currency": "EUR",
        "due_at": at + (i * 7919) % (30 * DAY_MS), "product": None}),
    "subscriptions": ("subscription.started", lambda i, at: {
        "subscription_id": f"s{i}", "product": "pro", "kind": "subscription",
        "ends_at": None, "trial_ends_at": None}),
    "usage": ("allowance.set", lambda i, at: {
        "metric": f"m{i}", "allowance": 100.0, "period_start": at - i % 5 * DAY_MS,
        "period_end": at + 10 * DAY_MS}),
    "features": ("feature.used", lambda i, at: {
        "feature": f"f{i}", "duration_seconds": 60, "session_id": None}),
    "failed_payments": ("payment.failed", lambda i, at: {
        "payment_id": f"p{i}", "invoice_id": None, "product": f"p{i}", "amount_minor": 100,
        "currency": "EUR", "reason": None}),
    "tasks": ("task.added", lambda i, at: {"task_id": f"t{i}", "title": "x", "due_at": None}),
    "approvals": ("payment.refunded", lambda i, at: {
        "payment_id": f"p{i}", "refund_id": f"r{i}", "product": None, "amount_minor": 100,
        "currency": "EUR", "reason": None}),
    "attributes": ("user.logged_in", lambda i, at: {"user_id": None}),
}


def _sizes(state: CustomerState) -> dict[str, int]:
    return {"invoices": len(state.invoices), "subscriptions": len(state.subscriptions),
            "usage": len(state.usage), "features": len(state.feature_seconds),
            "failed_payments": len(state.failed_payments), "tasks": len(state.tasks),
            "approvals": len(state.approvals), "attributes": len(state.attributes),
            "tags": len(state.tags)}


@settings(max_examples=25, deadline=None)
@given(st.lists(st.sampled_from(sorted(GROWING)), min_size=50, max_size=700))
def test_a_long_story_stays_within_the_caps_and_accounts_for_every_entry(
        story: list[str]) -> None:
    """Whatever the story, every collection stays within its cap, the state's record
    within the size budget, and every entry an event added is either kept or reported
    dropped (nothing in these stories removes one)."""
    state: CustomerState | None = None
    dropped: dict[str, int] = {}
    added = dict.fromkeys(CAPS, 0)
    for i, collection in enumerate(story):
        at = T0 + i * 60_000
        kind, data = GROWING[collection]
        attributes = {f"a{i}": "x", "tags": f"t{i}"} if kind == "user.logged_in" else {}
        decisions = [evaluate(state, Event(f"e{i}", "cus-1", kind, at, data(i, at),
                                           attributes=attributes, received_at=at),
                              AUTOMATIONS)]
        if i % 50 == 49:
            decisions.append(evaluate(decisions[0].state, Tick(0, at, HOUR_MS), AUTOMATIONS))
        state = decisions[-1].state
        assert state is not None
        for name, n in (item for d in decisions for item in d.dropped.items()):
            dropped[name] = dropped.get(name, 0) + n
        added[collection] += 1
        sizes = _sizes(state)
        assert all(size <= CAPS[name] for name, size in sizes.items())
    assert state is not None
    logins = added["attributes"]  # each sets a new attribute and a new tag, and "tags"
    created = {**added, "attributes": logins + min(logins, 1), "tags": logins}
    accounted = {name: size + dropped.get(name, 0) for name, size in _sizes(state).items()}
    assert accounted.pop("tags") - created["tags"] in (0, 1)  # "late": an overdue invoice's
    assert accounted == {name: created[name] for name in accounted}
    assert len(CODEC.encode("signalbox.CustomerState", state_to_record(state))) < 524_288
