"""A due time inside a gap between ticks is settled by the event that comes first,
judged on the state as it was at the due time (issued_at = the due time)."""

from __future__ import annotations

from tests.evaluator.engine.story import HOUR_MS, Story, day, message
from tests.evaluator.engine.test_time_scenarios import MISS_YOU, PAST_DUE


def test_a_partial_payment_in_a_tick_gap_does_not_lose_the_day_14_notice() -> None:
    story = Story(PAST_DUE, interval=24 * HOUR_MS)
    story.event("subscription.started", day(-1), subscription_id="sub-1", product="pro",
                kind="subscription", ends_at=None)
    story.event("balance.updated", day(0), balance_minor=9900, past_due_minor=9900,
                currency="EUR")
    story.tick(day(12))
    story.event("payment.succeeded", day(15), ticks=False, payment_id="p-1", product="pro",
                amount_minor=1000, currency="EUR", kind="automatic")
    story.tick(day(17))
    notices = [c for c in story.sent if message(c).template == "past_due"]
    assert [(c.issued_at, c.trigger.facts["past_due_minor"]) for c in notices] == [
        (day(14), "9900")]  # as it was on day 14, before the payment
    hourly = Story(PAST_DUE)
    hourly.event("subscription.started", day(-1), subscription_id="sub-1", product="pro",
                 kind="subscription", ends_at=None)
    hourly.event("balance.updated", day(0), balance_minor=9900, past_due_minor=9900,
                 currency="EUR")
    hourly.event("payment.succeeded", day(15), payment_id="p-1", product="pro",
                 amount_minor=1000, currency="EUR", kind="automatic")
    hourly.advance(day(17))
    assert [c.command_id for c in hourly.sent] == [c.command_id for c in story.sent]


def test_a_login_in_a_tick_gap_does_not_lose_the_day_7_notice() -> None:
    story = Story(MISS_YOU, interval=24 * HOUR_MS)
    story.event("user.logged_in", day(0), user_id="u1")
    story.tick(day(5))
    story.event("user.logged_in", day(8), ticks=False, user_id="u1")
    story.tick(day(10))
    assert [(c.issued_at, c.trigger.facts["last_login_at"]) for c in story.sent] == [
        (day(7), str(day(0)))]
    story.advance(day(30))
    assert [c.issued_at for c in story.sent] == [day(7), day(15)]


def test_a_cancelled_task_in_a_gap_still_had_its_overdue_time_and_a_booking_after_none() -> None:
    """Every time trigger: what was due before the event fires; what the event removes
    or adds counts from then on."""
    story = Story("""
automations:
  - id: task-late
    trigger: {type: task.overdue}
    actions: [{type: email, template: task_overdue}]
  - id: remind
    trigger: {type: appointment.reminder, before_minutes: [60]}
    actions: [{type: sms, template: appointment_reminder}]
""", interval=7 * 24 * HOUR_MS)
    story.event("task.added", day(0), task_id="t1", title="Send papers", due_at=day(2))
    story.event("appointment.booked", day(0), ticks=False, appointment_id="a1",
                starts_at=day(3), title="Review")
    story.event("task.completed", day(4), ticks=False, task_id="t1", completed_by=None)
    assert [(c.automation_id, c.issued_at) for c in story.sent] == [
        ("task-late", day(2)), ("remind", day(3) - HOUR_MS)]
