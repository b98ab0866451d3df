"""The pure engine: decisions from (state, input, automations), no Kafka, no clock."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

from signalbox.common import schemas
from signalbox.evaluator.engine import (
    AutomationSet,
    CustomerState,
    Event,
    Profile,
    Tick,
    command_id,
    evaluate,
    parse_automations,
)
from signalbox.evaluator.engine.state import DEDUPE_WINDOW, DIGEST_BYTES
from tests.evaluator.engine.story import message, variables

AUTOMATIONS = parse_automations(
    """
format: signalbox/automations@1
teams: {finance: finance@example.com}
automations:
  - id: payment-failed-pro
    name: Payment failed (Pro)
    trigger: {type: payment.failed, product: pro}
    actions:
      - {type: email, to: customer, template: payment_failed}
      - {type: alert, team: finance, template: payment_failed_alert}
  - id: welcome
    trigger: {type: customer.signed_up}
    actions:
      - {type: email, template: welcome}
  - id: paused
    enabled: false
    trigger: {type: payment.failed}
    actions:
      - {type: email, template: never}
""",
    schemas.event_types(),
)


def failed(event_id: str = "e1", product: str = "pro", customer: str = "cus-1",
           at: int = 1_000, email: str | None = "ada@example.com") -> Event:
    return Event(event_id=event_id, customer_id=customer, type="payment.failed", occurred_at=at,
                 data={"payment_id": f"p-{event_id}", "product": product, "amount_minor": 4900,
                       "currency": "EUR", "reason": None},
                 profile=Profile(email=email, name="Ada") if email else None)


def test_payment_failed_for_the_product_emails_customer_and_alerts_finance() -> None:
    decision = evaluate(None, failed(), AUTOMATIONS)
    customer, alert = decision.commands
    mail, alert_mail = message(customer), message(alert)
    assert mail.to == ("ada@example.com",)
    assert mail.audience == "customer"
    assert mail.template == "payment_failed"
    assert alert_mail.to == ("finance@example.com",)
    assert alert_mail.audience == "internal"
    assert alert_mail.variables["team"] == "finance"
    assert alert_mail.variables["failed_count"] == "1"
    assert customer.trigger.type == "payment.failed"
    assert customer.trigger.occurrence == "e1"
    assert customer.trigger.facts == {"product": "pro", "event_type": "payment.failed",
                                      "failed_count": "1"}
    assert customer.issued_at == 1_000  # event time, not the wall clock
    assert customer.command_id == command_id("payment-failed-pro", 1, "cus-1", "e1", 0)
    assert alert.command_id == command_id("payment-failed-pro", 1, "cus-1", "e1", 1)


def test_other_product_or_disabled_automation_issues_nothing() -> None:
    decision = evaluate(None, failed(product="basic"), AUTOMATIONS)
    assert decision.commands == ()
    assert decision.state is not None and decision.state.failed_payments == {"basic": 1}


def test_state_counts_failures_and_a_success_resets_them() -> None:
    s1 = evaluate(None, failed("e1"), AUTOMATIONS).state
    s2 = evaluate(s1, failed("e2", at=2_000), AUTOMATIONS)
    assert variables(s2.commands[1])["failed_count"] == "2"
    ok = Event("e3", "cus-1", "payment.succeeded", 3_000,
               {"payment_id": "p3", "product": "pro", "amount_minor": 4900, "currency": "EUR"})
    s3 = evaluate(s2.state, ok, AUTOMATIONS).state
    assert s3 is not None and s3.failed_payments == {}
    assert (s3.first_seen_at, s3.last_event_at) == (1_000, 3_000)


def test_profile_is_remembered_and_newer_facts_win() -> None:
    s1 = evaluate(None, failed("e1", email="old@example.com"), AUTOMATIONS).state
    later = evaluate(s1, failed("e2", email=None), AUTOMATIONS)
    assert message(later.commands[0]).to == ("old@example.com",)
    newest = evaluate(later.state, failed("e3", email="new@example.com"), AUTOMATIONS)
    assert message(newest.commands[0]).to == ("new@example.com",)


def test_customer_without_email_still_gets_a_command_for_the_dispatcher_to_settle() -> None:
    customer, alert = evaluate(None, failed(email=None), AUTOMATIONS).commands
    assert message(customer).to == ()  # the dispatcher records it as suppressed, not lost
    assert message(alert).to == ("finance@example.com",)


def test_redelivered_event_changes_nothing_and_issues_nothing() -> None:
    first = evaluate(None, failed(), AUTOMATIONS)
    again = evaluate(first.state, failed(), AUTOMATIONS)
    assert again.duplicate and again.commands == () and again.state == first.state


def test_dedupe_window_is_bounded() -> None:
    state = None
    for i in range(DEDUPE_WINDOW + 10):
        state = evaluate(state, failed(f"e{i}", product="basic"), AUTOMATIONS).state
    assert state is not None and len(state.recent_events) == DEDUPE_WINDOW * DIGEST_BYTES
    newest = evaluate(state, failed(f"e{DEDUPE_WINDOW + 9}", product="basic"), AUTOMATIONS)
    oldest = evaluate(state, failed("e0", product="basic"), AUTOMATIONS)
    assert newest.duplicate and not oldest.duplicate


def test_tick_leaves_customer_state_alone() -> None:
    state = evaluate(None, failed(), AUTOMATIONS).state
    assert evaluate(state, Tick(partition=0, at=5_000, interval_ms=1_000), AUTOMATIONS).state \
        is state


def test_no_automations_no_commands() -> None:
    assert evaluate(None, failed(), AutomationSet()).commands == ()


# -- properties ---------------------------------------------------------------

event_types = st.sampled_from(["payment.failed", "payment.succeeded", "customer.signed_up"])
events = st.builds(
    lambda i, t, product, at, email: Event(
        f"e{i}", "cus-1", t, at,
        {"payment_id": f"p{i}", "product": product, "amount_minor": 100, "currency": "EUR"},
        Profile(email=email)),
    st.integers(0, 30), event_types, st.sampled_from(["pro", "basic"]),
    st.integers(0, 10**12), st.one_of(st.none(), st.emails()),
)


def run(stream: list[Event]) -> tuple[CustomerState | None, list[str]]:
    state: CustomerState | None = None
    ids: list[str] = []
    for e in stream:
        d = evaluate(state, e, AUTOMATIONS)
        state = d.state
        ids.extend(c.command_id for c in d.commands)
    return state, ids


@settings(max_examples=200, deadline=None)
@given(st.lists(events, max_size=25))
def test_deterministic(stream: list[Event]) -> None:
    assert run(stream) == run(list(stream))


@settings(max_examples=200, deadline=None)
@given(st.lists(events, max_size=25), st.data())
def test_replaying_inputs_emits_no_new_command(stream: list[Event], data: st.DataObject) -> None:
    """At-least-once delivery: any prefix redelivered adds no command id."""
    state, ids = run(stream)
    replay = data.draw(st.lists(st.sampled_from(stream), max_size=10)) if stream else []
    for e in replay:
        d = evaluate(state, e, AUTOMATIONS)
        assert d.commands == () and d.duplicate
        state = d.state
    assert len(ids) == len(set(ids))


@settings(max_examples=100, deadline=None)
@given(st.lists(events, min_size=1, max_size=25))
def test_command_ids_are_unique_per_occurrence_and_action(stream: list[Event]) -> None:
    unique = {e.event_id: e for e in stream}
    _, ids = run(list(unique.values()))
    assert len(ids) == len(set(ids))


def test_state_survives_its_avro_round_trip() -> None:
    from signalbox.common.codec import AvroCodec
    from signalbox.evaluator.engine_records import state_from_record, state_to_record

    codec = AvroCodec()
    state = evaluate(None, failed(), AUTOMATIONS).state
    assert state is not None
    state = replace(state, failed_payments={"pro": 3, "basic": 1})
    raw = codec.encode(schemas.CUSTOMER_STATE, state_to_record(state))
    assert state_from_record(codec.decode(schemas.CUSTOMER_STATE, raw)) == state


def test_a_version_1_state_keeps_its_dedupe_memory() -> None:
    """State written before the digest window: its event ids still count as seen."""
    from signalbox.common.codec import HEADER_LEN, MAGIC, AvroCodec
    from signalbox.evaluator.engine_records import state_from_record
    from tests.common.spec import single_object

    [v1] = [v for v in schemas.history() if v.name == schemas.CUSTOMER_STATE
            and v.source.endswith("/1.avsc")]
    raw = single_object(v1, {
        "customer_id": "cus-1",
        "profile": {"email": "ada@example.com", "phone": None, "name": None, "timezone": None,
                    "locale": None},
        "first_seen_at": 1_000, "last_event_at": 2_000, "failed_payments": {"pro": 1},
        "recent_event_ids": ["e1", "e2"]})
    assert len(MAGIC + v1.fingerprint) == HEADER_LEN
    state = state_from_record(AvroCodec().decode(schemas.CUSTOMER_STATE, raw))
    assert state.failed_payments == {"pro": 1}
    assert evaluate(state, failed("e2"), AUTOMATIONS).duplicate
    decision = evaluate(state, failed("e3"), AUTOMATIONS)
    assert variables(decision.commands[1])["failed_count"] == "2"
