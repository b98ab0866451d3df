"""The shipped automations fire as described and their templates render what they issue."""

from __future__ import annotations

from pathlib import Path

from signalbox.dispatcher.templates import TemplateStore
from signalbox.evaluator.engine import Command, EmailCommand, SmsCommand
from signalbox.evaluator.main import default_automations_path
from tests.evaluator.engine.story import DAY_MS, HOUR_MS, Story, day


def default_story() -> Story:
    text = Path(default_automations_path()).read_text("utf-8")
    return Story(text.split("format: signalbox/automations@2\n", 1)[1])


def render(commands: list[Command]) -> list[str]:
    store = TemplateStore()
    out = []
    for c in commands:
        if isinstance(c.action, EmailCommand):
            out.append(store.email(c.action.template, c.action.locale, c.action.variables)
                       .subject)
        elif isinstance(c.action, SmsCommand):
            out.append(store.sms(c.action.template, c.action.locale, c.action.variables))
    return out


def test_scenario_default_automations_over_a_customer_lifetime() -> None:
    story = default_story()
    story.event("subscription.started", day(0), subscription_id="s1", product="pro",
                kind="subscription", ends_at=None, trial_ends_at=None)
    story.event("card.updated", day(0), card_id="c1", brand="visa", last4="4242",
                exp_month=12, exp_year=2026)
    story.event("invoice.issued", day(1), invoice_id="in-1", amount_minor=4900,
                currency="EUR", due_at=day(15), product="pro")
    story.event("payment.failed", day(15), payment_id="p1", invoice_id="in-1", product="pro",
                amount_minor=4900, currency="EUR", reason="card_declined")
    story.event("balance.updated", day(16), balance_minor=4900, past_due_minor=4900,
                currency="EUR")
    story.event("appointment.booked", day(20), appointment_id="ap-1",
                starts_at=day(25) + 10 * HOUR_MS, title="Billing review")
    story.advance(day(60))
    fired = sorted({(c.automation_id, c.issued_at) for c in story.sent})
    assert fired == [
        ("appointment-reminder", day(25) + 10 * HOUR_MS - DAY_MS),
        ("appointment-reminder", day(25) + 9 * HOUR_MS),
        ("card-expiring", day(30)),  # 30 days before 2027-01-01
        ("invoice-due-soon", day(12)),
        # past due from the invoice's due date (day 15); the billing system's balance on
        # day 16 says the same amount, so the streak goes on
        ("past-due-dunning", day(29)),
        ("past-due-dunning", day(45)),
        ("payment-failed-pro", day(15)),
    ]
    rendered = render(story.sent)
    assert len(rendered) == len(story.sent)
    assert "Invoice in-1 is due on November 17, 2026" in rendered
    assert "Reminder: Billing review on Nov 27, 2026, 10:00 AM UTC" in rendered
    assert "Ada, your account is 14 days past due" in rendered
    assert "Past due 30 days: cus-1 (Ada)" in rendered
