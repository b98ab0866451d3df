"""Event triggers as stories: every event type of the catalogue fires its automations."""

from __future__ import annotations

from typing import Any

import pytest

from signalbox.common import schemas
from signalbox.evaluator.engine import CrmCommand, EmailCommand, WebhookCommand
from tests.evaluator.engine.story import Story, automation, brief, day, variables

#: One event of each type (data as the evaluator decodes it) and a filter it matches.
CASES: dict[str, tuple[dict[str, Any], dict[str, str]]] = {
    "customer.signed_up": ({"plan": "pro"}, {"plan": "pro"}),
    "account.status_changed": ({"status": "suspended", "previous_status": "active",
                                "reason": None}, {"status": "suspended"}),
    "custom_field.changed": ({"field": "company_size", "value": "50", "previous_value": None},
                             {"field": "company_size"}),
    "card.updated": ({"card_id": "c1", "brand": "visa", "last4": "4242", "exp_month": 4,
                      "exp_year": 2028}, {"brand": "visa"}),
    "payment.succeeded": ({"payment_id": "p1", "invoice_id": None, "product": "pro",
                           "amount_minor": 4900, "currency": "EUR", "kind": "one_time"},
                          {"kind": "one_time"}),
    "payment.failed": ({"payment_id": "p1", "invoice_id": None, "product": "pro",
                        "amount_minor": 4900, "currency": "EUR", "reason": "card_declined"},
                       {"product": "pro"}),
    "payment.refunded": ({"payment_id": "p1", "refund_id": "r1", "product": "pro",
                          "amount_minor": 4900, "currency": "EUR", "reason": None},
                         {"currency": "EUR"}),
    "credit.adjusted": ({"adjustment_id": "a1", "amount_minor": 500, "currency": "EUR",
                         "reason": "goodwill"}, {"reason": "goodwill"}),
    "balance.updated": ({"balance_minor": 4900, "past_due_minor": 0, "currency": "EUR"},
                        {"currency": "EUR"}),
    "invoice.issued": ({"invoice_id": "in1", "amount_minor": 4900, "currency": "EUR",
                        "due_at": day(14), "product": "pro"}, {"product": "pro"}),
    "invoice.paid": ({"invoice_id": "in1", "amount_minor": 4900, "currency": "EUR"},
                     {"invoice_id": "in1"}),
    "subscription.started": ({"subscription_id": "s1", "product": "pro",
                              "kind": "subscription", "ends_at": None, "trial_ends_at": None},
                             {"kind": "subscription"}),
    "subscription.renewed": ({"subscription_id": "s1", "product": "pro",
                              "kind": "subscription", "ends_at": day(60),
                              "previous_ends_at": day(30)}, {"product": "pro"}),
    "subscription.cancelled": ({"subscription_id": "s1", "product": "pro",
                                "kind": "subscription", "ends_at": day(30),
                                "cancelled_by": "customer", "reason": None},
                               {"cancelled_by": "customer"}),
    "subscription.ended": ({"subscription_id": "s1", "product": "pro", "kind": "subscription",
                            "ends_at": None, "cause": "expired"}, {"cause": "expired"}),
    "order.placed": ({"order_id": "o1", "product": "pro", "amount_minor": 100,
                      "currency": "EUR"}, {"product": "pro"}),
    "order.receipt": ({"order_id": "o1", "receipt_id": "rc1", "amount_minor": 100,
                       "currency": "EUR"}, {"order_id": "o1"}),
    "order.renewal": ({"order_id": "o2", "subscription_id": "s1", "product": "pro",
                       "amount_minor": 100, "currency": "EUR"}, {"subscription_id": "s1"}),
    "product.sold": ({"product": "router", "order_id": "o1", "quantity": 2},
                     {"product": "router"}),
    "product.replaced": ({"product": "pro", "previous_product": "basic",
                          "subscription_id": None}, {"previous_product": "basic"}),
    "service.resource_added": ({"service_id": "sv1", "resource_id": "+4930111",
                                "resource_type": "number"}, {"resource_type": "number"}),
    "service.resource_removed": ({"service_id": "sv1", "resource_id": "+4930111",
                                  "resource_type": "number", "reason": None},
                                 {"service_id": "sv1"}),
    "service.status_changed": ({"service_id": "sv1", "status": "suspended",
                                "previous_status": "active"}, {"status": "suspended"}),
    "usage.recorded": ({"metric": "api_calls", "quantity": 10.0}, {"metric": "api_calls"}),
    "allowance.set": ({"metric": "api_calls", "allowance": 1000.0, "period_start": day(0),
                       "period_end": day(30)}, {"metric": "api_calls"}),
    "feature.used": ({"feature": "reports", "duration_seconds": 60, "session_id": None},
                     {"feature": "reports"}),
    "user.logged_in": ({"user_id": "u1"}, {"user_id": "u1"}),
    "feedback.submitted": ({"feedback_id": "f1", "rating": "unhappy", "nps": 3,
                            "comment": "slow"}, {"rating": "unhappy"}),
    "score.adjusted": ({"delta": 10, "reason": "webinar"}, {"reason": "webinar"}),
    "appointment.booked": ({"appointment_id": "ap1", "starts_at": day(3), "title": None},
                           {"appointment_id": "ap1"}),
    "appointment.attended": ({"appointment_id": "ap1"}, {"appointment_id": "ap1"}),
    "appointment.cancelled": ({"appointment_id": "ap1", "reason": None},
                              {"appointment_id": "ap1"}),
    "task.added": ({"task_id": "t1", "title": "Sign", "due_at": None}, {"task_id": "t1"}),
    "task.form_submitted": ({"task_id": "t1", "form_id": "kyc"}, {"form_id": "kyc"}),
    "task.completed": ({"task_id": "t1", "completed_by": None}, {"task_id": "t1"}),
    "system.notification": ({"code": "quota_exceeded", "message": "Quota exceeded",
                             "severity": "warning"}, {"severity": "warning"}),
    "approval.decided": ({"approval_id": "apr-x", "decision": "approved", "decided_by": "bob",
                          "reason": None}, {"decision": "approved"}),
}


def test_every_event_type_has_a_scenario() -> None:
    assert set(CASES) == set(schemas.event_types())


@pytest.mark.parametrize("event_type", sorted(CASES))
def test_scenario_event_trigger(event_type: str) -> None:
    """Each event type fires its automation when the filter matches, and not otherwise."""
    data, filters = CASES[event_type]
    (key, value), = filters.items()
    story = Story(f"""
automations:
  - id: on-event
    trigger: {{type: {event_type}, {key}: "{value}"}}
    actions: [{{type: email, template: on_event}}]
  - id: other-value
    trigger: {{type: {event_type}, {key}: "not-{value}"}}
    actions: [{{type: email, template: never}}]
""")
    [command] = story.event(event_type, day(1), **data)
    assert command.automation_id == "on-event"
    assert command.trigger.type == event_type
    assert command.trigger.occurrence == "evt-1"
    assert command.trigger.facts[key] == value
    assert command.issued_at == day(1)
    assert isinstance(command.action, EmailCommand)
    assert command.action.variables[key] == value
    assert command.action.variables["event_type"] == event_type


def test_scenario_payment_failed_repeated_failures_are_counted_per_product() -> None:
    story = Story.of(automation("second-failure",
                                "{type: payment.failed, product: pro, min_failures: 2}",
                                "{type: alert, team: finance, template: repeated_failure}"))
    failed: dict[str, Any] = {"payment_id": "p", "invoice_id": None, "amount_minor": 4900,
                              "currency": "EUR", "reason": None}
    assert story.event("payment.failed", day(1), product="pro", **failed) == []
    assert story.event("payment.failed", day(2), product="basic", **failed) == []
    [alert] = story.event("payment.failed", day(3), product="pro", **failed)
    assert alert.trigger.facts["failed_count"] == "2"
    assert variables(alert)["failed_count"] == "2"
    story.event("payment.succeeded", day(4), payment_id="ok", invoice_id=None, product="pro",
                amount_minor=4900, currency="EUR", kind="automatic")
    assert story.event("payment.failed", day(5), product="pro", **failed) == []  # reset


def test_scenario_one_time_and_automatic_payments_are_told_apart() -> None:
    story = Story.of(automation("thanks-one-time", "{type: payment.succeeded, kind: one_time}",
                                "{type: email, template: thanks}"),
                     automation("receipt-auto", "{type: payment.succeeded, kind: automatic}",
                                "{type: email, template: receipt}"))
    paid: dict[str, Any] = {"payment_id": "p", "invoice_id": None, "product": "pro",
                            "amount_minor": 100, "currency": "EUR"}
    assert brief(story.event("payment.succeeded", day(1), kind="one_time", **paid)) == [
        ("thanks-one-time", "thanks", day(1))]
    assert brief(story.event("payment.succeeded", day(2), kind="automatic", **paid)) == [
        ("receipt-auto", "receipt", day(2))]


def test_scenario_remaining_amount_due_with_a_numeric_condition() -> None:
    story = Story.of(automation(
        "big-balance", "{type: balance.updated}",
        '{type: crm, operation: create_task, params: {title: "Call {{ customer_name }}"}}',
        conditions='{where: [{field: balance_minor, op: ">=", value: 10000}]}'))
    assert story.event("balance.updated", day(1), balance_minor=500, past_due_minor=0,
                       currency="EUR") == []
    [task] = story.event("balance.updated", day(2), balance_minor=12000, past_due_minor=0,
                         currency="EUR")
    assert isinstance(task.action, CrmCommand)
    assert task.action.operation == "create_task"
    assert task.action.params == {"title": "Call {{ customer_name }}"}


def test_scenario_unhappy_feedback_or_low_nps_alerts_a_team_by_webhook() -> None:
    story = Story("""
teams:
  success: {email: success@example.com, webhook: success-hook}
automations:
  - id: detractor
    trigger: {type: feedback.submitted}
    conditions:
      where: [{field: nps, op: "<=", value: 6}]
    actions: [{type: alert, team: success, via: webhook, event: customer.detractor}]
""")
    fb: dict[str, Any] = {"feedback_id": "f", "rating": "happy", "comment": None}
    assert story.event("feedback.submitted", day(1), nps=None, **fb) == []  # no NPS: no match
    assert story.event("feedback.submitted", day(2), nps=9, **fb) == []
    [hook] = story.event("feedback.submitted", day(3), nps=4, **fb)
    assert isinstance(hook.action, WebhookCommand)
    assert (hook.action.endpoint, hook.action.event) == ("success-hook", "customer.detractor")
    assert hook.action.variables["team"] == "success"


def test_scenario_custom_field_changes_are_kept_as_attributes_for_conditions() -> None:
    story = Story.of(automation(
        "enterprise-lead", "{type: order.placed}",
        "{type: crm, operation: create_opportunity, params: {name: Enterprise}}",
        conditions='{where: [{field: attributes.company_size, op: ">", value: 100}]}'))
    order: dict[str, Any] = {"order_id": "o", "product": "pro", "amount_minor": 100,
                             "currency": "EUR"}
    story.event("custom_field.changed", day(1), field="company_size", value="50",
                previous_value=None)
    assert story.event("order.placed", day(2), **order) == []
    story.event("custom_field.changed", day(3), field="company_size", value="500",
                previous_value="50")
    assert len(story.event("order.placed", day(4), **order)) == 1


def test_scenario_product_replaced_updates_the_subscription_product() -> None:
    story = Story.of(automation("pro-orders", "{type: order.renewal}",
                                "{type: email, template: renewal}", conditions="{products: [pro]}"))
    story.event("subscription.started", day(0), subscription_id="s1", product="basic",
                kind="subscription", ends_at=None, trial_ends_at=None)
    renewal: dict[str, Any] = {"order_id": "o", "subscription_id": "s1", "product": None,
                               "amount_minor": 1, "currency": "EUR"}
    assert story.event("order.renewal", day(1), **renewal) == []
    story.event("product.replaced", day(2), product="pro", previous_product="basic",
                subscription_id="s1")
    assert len(story.event("order.renewal", day(3), **renewal)) == 1
