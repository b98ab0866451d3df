"""Time triggers as event stories: what fires, when, and exactly once."""

from __future__ import annotations

from datetime import UTC, datetime

from signalbox.evaluator.engine import Tick, evaluate, next_due
from tests.evaluator.engine.story import (
    DAY_MS,
    HOUR_MS,
    MINUTE_MS,
    Story,
    automation,
    brief,
    day,
    message,
)

PAST_DUE = """
automations:
  - id: dunning
    trigger: {type: past_due, days: [14, 30]}
    actions:
      - {type: email, template: past_due}
      - {type: alert, team: finance, template: past_due_alert}
"""


def past_due_customer(story: Story, subscribed: bool = True) -> None:
    if subscribed:
        story.event("subscription.started", day(0), subscription_id="sub-1", product="pro",
                    kind="subscription", ends_at=None)
    story.event("balance.updated", day(1), balance_minor=9900, past_due_minor=9900,
                currency="EUR")


def test_scenario_past_due_fires_at_exactly_14_and_30_days_each_once() -> None:
    story = Story(PAST_DUE)
    past_due_customer(story)
    commands = story.advance(day(60))
    assert brief(commands) == [
        ("dunning", "past_due", day(15)), ("dunning", "past_due_alert", day(15)),
        ("dunning", "past_due", day(31)), ("dunning", "past_due_alert", day(31)),
    ]
    first = commands[0]
    assert first.trigger.type == "past_due"
    assert first.trigger.occurrence == f"{day(15)}:past_due:{day(1)}:14d"
    assert first.trigger.facts["days"] == "14" and first.trigger.facts["past_due_minor"] == "9900"
    assert message(first).to == ("ada@example.com",)
    assert message(first).variables["past_due_since_iso"] == "2026-11-03T00:00:00Z"
    assert story.ticks == 2  # woken only when due: a tick costs what is due


def test_scenario_a_payment_on_day_10_restarts_the_past_due_streak() -> None:
    story = Story(PAST_DUE)
    past_due_customer(story)
    story.event("payment.succeeded", day(11), payment_id="pay-1", product="pro",
                amount_minor=1000, currency="EUR", kind="one_time")  # day 10 of the streak
    commands = story.advance(day(60))
    # the streak restarted on day 11: 14 days is day 25, 30 days is day 41
    assert [c.issued_at for c in commands if c.action.channel == "email"
            and message(c).audience == "customer"] == [day(25), day(41)]
    assert commands[0].trigger.facts["past_due_minor"] == "8900"


def test_scenario_a_lower_balance_restarts_and_a_higher_one_does_not() -> None:
    story = Story(PAST_DUE)
    past_due_customer(story)
    story.event("balance.updated", day(5), balance_minor=15000, past_due_minor=15000,
                currency="EUR")  # more past due: the same streak
    assert [c.issued_at for c in story.advance(day(16))][:1] == [day(15)]
    story.event("balance.updated", day(20), balance_minor=0, past_due_minor=0, currency="EUR")
    assert story.advance(day(90)) == []  # paid off: the streak ended, nothing more


def test_scenario_no_active_subscription_no_past_due_action() -> None:
    story = Story(PAST_DUE)
    past_due_customer(story, subscribed=False)
    assert story.advance(day(60)) == []
    assert story.ticks == 0


def test_scenario_a_subscription_that_ended_stops_past_due_actions() -> None:
    story = Story(PAST_DUE)
    past_due_customer(story)
    story.event("subscription.ended", day(10), subscription_id="sub-1", product="pro",
                kind="subscription", ends_at=day(10))
    assert story.advance(day(60)) == []


def test_scenario_a_missed_tick_catches_up_once_at_the_due_time() -> None:
    story = Story(PAST_DUE)
    past_due_customer(story)
    # the scheduler was down from day 10 to day 40: one tick then
    commands = story.tick(day(40) + 5 * MINUTE_MS)
    assert brief(commands) == [
        ("dunning", "past_due", day(15)), ("dunning", "past_due_alert", day(15)),
        ("dunning", "past_due", day(31)), ("dunning", "past_due_alert", day(31)),
    ]
    assert story.tick(day(40) + 5 * MINUTE_MS) == []  # the same tick again
    assert story.tick(day(41)) == []  # and the next one
    assert story.state is not None and next_due(story.state, story.automations) is None


def test_scenario_a_new_automation_does_not_back_fill_old_due_times() -> None:
    story = Story("automations: []\n")
    past_due_customer(story)
    story.tick(day(10))
    story.automations = Story(PAST_DUE).automations  # added on day 20
    assert story.tick(day(20), interval=HOUR_MS) == []  # day 15 is history
    assert [c.issued_at for c in story.advance(day(60))] == [day(31), day(31)]


MISS_YOU = """
automations:
  - id: miss-you
    trigger: {type: no_login}
    actions: [{type: email, template: we_miss_you}]
"""


def test_scenario_no_login_for_7_days_and_a_login_resets_it() -> None:
    story = Story(MISS_YOU)
    story.event("user.logged_in", day(0), user_id="u1")
    story.event("user.logged_in", day(5), user_id="u1")
    commands = story.advance(day(30))
    assert brief(commands) == [("miss-you", "we_miss_you", day(12))]
    assert commands[0].trigger.facts == {"days": "7", "last_login_at": str(day(5))}


def test_scenario_no_login_counts_from_sign_up_when_never_logged_in() -> None:
    story = Story.of(automation("activate", "{type: no_login, days: 3}",
                                "{type: email, template: activate}"))
    story.event("customer.signed_up", day(1), plan="pro")
    assert [c.issued_at for c in story.advance(day(30))] == [day(4)]


def test_scenario_feature_not_used_within_its_timeframe_rechecked_every_45_days() -> None:
    story = Story.of(automation("reports-unused",
                                "{type: feature.unused, feature: reports, days: 30}",
                                "{type: email, template: try_reports}"))
    story.event("feature.used", day(0), feature="reports", duration_seconds=60, session_id=None)
    assert [c.issued_at for c in story.advance(day(120))] == [day(30), day(75), day(120)]
    story.event("feature.used", day(121), feature="reports", duration_seconds=60,
                session_id=None)
    assert [c.issued_at for c in story.advance(day(160))] == [day(151)]


def test_scenario_subscription_or_agreement_ending_in_n_days() -> None:
    story = Story.of(automation("renewal-notice",
                                "{type: subscription.ending, days: [30, 7],"
                                " kind: service_agreement}",
                                "{type: email, template: agreement_ending}"))
    story.event("subscription.started", day(0), subscription_id="sla-1", product="support",
                kind="service_agreement", ends_at=day(100))
    story.event("subscription.started", day(0), subscription_id="sub-1", product="pro",
                kind="subscription", ends_at=day(50))  # not an agreement: filtered out
    commands = story.advance(day(120))
    assert [c.issued_at for c in commands] == [day(70), day(93)]
    assert commands[0].trigger.facts["subscription_id"] == "sla-1"


def test_scenario_renewal_moves_the_end_and_the_reminder() -> None:
    story = Story.of(automation("ending", "{type: subscription.ending, days: 7}",
                                "{type: email, template: ending}"))
    story.event("subscription.started", day(0), subscription_id="s", product="pro",
                kind="subscription", ends_at=day(30))
    story.event("subscription.renewed", day(20), subscription_id="s", product="pro",
                kind="subscription", ends_at=day(60), previous_ends_at=day(30))
    assert [c.issued_at for c in story.advance(day(70))] == [day(53)]


def test_scenario_appointment_reminders_one_day_and_one_hour_before() -> None:
    story = Story.of(automation("remind", "{type: appointment.reminder}",
                                "{type: email, template: appointment_reminder}",
                                "{type: sms, template: appointment_reminder}"))
    starts = day(10) + 14 * HOUR_MS
    story.event("appointment.booked", day(1), appointment_id="ap-1", starts_at=starts,
                title="Onboarding call")
    commands = story.advance(day(12))
    assert [(c.action.channel, c.issued_at) for c in commands] == [
        ("email", starts - DAY_MS), ("sms", starts - DAY_MS),
        ("email", starts - HOUR_MS), ("sms", starts - HOUR_MS)]
    assert message(commands[1]).to == ("+4915112345678",)
    assert message(commands[0]).variables["starts_at_iso"] == "2026-11-12T14:00:00Z"
    story.event("user.logged_in", day(11), user_id=None)
    assert story.state is not None and story.state.appointments == {}  # past: forgotten


def test_scenario_appointment_booked_3_hours_ahead_gets_only_the_1_hour_reminder() -> None:
    story = Story.of(automation("remind", "{type: appointment.reminder}",
                                "{type: email, template: appointment_reminder}"))
    story.event("appointment.booked", day(1), appointment_id="ap-1",
                starts_at=day(1) + 3 * HOUR_MS, title=None)
    assert [c.issued_at for c in story.advance(day(2))] == [day(1) + 2 * HOUR_MS]


def test_scenario_a_cancelled_appointment_sends_no_reminder() -> None:
    story = Story.of(automation("remind", "{type: appointment.reminder}",
                                "{type: email, template: appointment_reminder}"))
    story.event("appointment.booked", day(1), appointment_id="ap-1", starts_at=day(5),
                title=None)
    story.event("appointment.cancelled", day(2), appointment_id="ap-1", reason=None)
    assert story.advance(day(10)) == []


def test_scenario_task_due_soon_and_overdue_unless_completed() -> None:
    story = Story.of(automation("due-soon", "{type: task.due_soon, before_hours: 24}",
                                "{type: email, template: task_due_soon}"),
                     automation("overdue", "{type: task.overdue}",
                                "{type: alert, team: finance, template: task_overdue}"))
    story.event("task.added", day(0), task_id="t1", title="Sign the contract", due_at=day(5))
    story.event("task.added", day(0), task_id="t2", title="Upload ID", due_at=day(7))
    story.event("task.completed", day(5) + HOUR_MS, task_id="t2", completed_by="ada")
    story.advance(day(10))
    commands = story.sent
    assert brief(commands) == [("due-soon", "task_due_soon", day(4)),
                               ("overdue", "task_overdue", day(5))]
    assert commands[1].trigger.facts["title"] == "Sign the contract"


def test_scenario_invoice_due_soon_and_overdue_unless_paid() -> None:
    story = Story.of(automation("due-soon", "{type: invoice.due_soon, days: 3}",
                                "{type: email, template: invoice_due_soon}"),
                     automation("overdue", "{type: invoice.overdue, days: [0, 7]}",
                                "{type: email, template: invoice_overdue}"))
    story.event("invoice.issued", day(0), invoice_id="in-1", amount_minor=4900,
                currency="EUR", due_at=day(14), product="pro")
    story.event("invoice.issued", day(0), invoice_id="in-2", amount_minor=100,
                currency="EUR", due_at=day(14), product=None)
    story.event("invoice.paid", day(12), invoice_id="in-2", amount_minor=100, currency="EUR")
    story.advance(day(30))
    commands = story.sent
    assert brief(commands) == [
        ("due-soon", "invoice_due_soon", day(11)), ("due-soon", "invoice_due_soon", day(11)),
        ("overdue", "invoice_overdue", day(14)), ("overdue", "invoice_overdue", day(21))]
    assert commands[2].trigger.facts["invoice_id"] == "in-1"


def test_scenario_invoice_paid_by_a_payment_for_it_stops_reminders() -> None:
    story = Story.of(automation("overdue", "{type: invoice.overdue}",
                                "{type: email, template: invoice_overdue}"))
    story.event("invoice.issued", day(0), invoice_id="in-1", amount_minor=4900,
                currency="EUR", due_at=day(14), product=None)
    story.event("payment.succeeded", day(3), payment_id="p", invoice_id="in-1", product="pro",
                amount_minor=4900, currency="EUR", kind="automatic")
    assert story.advance(day(30)) == []


def test_scenario_card_expiring_in_30_days_and_expired() -> None:
    story = Story.of(automation("expiring", "{type: card.expiring}",
                                "{type: email, template: card_expiring}"),
                     automation("expired", "{type: card.expired}",
                                "{type: email, template: card_expired}"))
    story.event("card.updated", day(0), card_id="card-1", brand="visa", last4="4242",
                exp_month=1, exp_year=2027)
    commands = story.advance(day(120))
    end = int(datetime(2027, 2, 1, tzinfo=UTC).timestamp()) * 1000  # valid through Jan
    assert brief(commands) == [("expiring", "card_expiring", end - 30 * DAY_MS),
                               ("expired", "card_expired", end)]


def test_scenario_a_replaced_card_cancels_the_old_expiry() -> None:
    story = Story.of(automation("expired", "{type: card.expired}",
                                "{type: email, template: card_expired}"))
    story.event("card.updated", day(0), card_id="c1", brand=None, last4=None, exp_month=12,
                exp_year=2026)
    story.event("card.updated", day(10), card_id="c2", brand=None, last4=None, exp_month=12,
                exp_year=2029)
    assert story.advance(day(90)) == []


def test_scenario_affiliate_qualification_by_score_rechecked_every_60_days_once() -> None:
    story = Story.of(automation("affiliate", "{type: affiliate.qualified, min_score: 500}",
                                "{type: email, template: affiliate_invite}"))
    story.event("customer.signed_up", day(0), plan="pro")
    story.event("score.adjusted", day(70), delta=600, reason="referrals")
    commands = story.advance(day(400))
    assert [c.issued_at for c in commands] == [day(120)]  # the check after the score rose
    assert commands[0].trigger.facts == {"min_score": "500", "score": "600"}


def test_scenario_time_triggers_respect_conditions_at_the_due_time() -> None:
    story = Story.of(automation("dunning", "{type: past_due, days: 14}",
                                "{type: email, template: past_due}",
                                conditions="{exempt: {tags: [no-dunning]}}"))
    past_due_customer(story)
    story.event("custom_field.changed", day(3), field="vip", value="yes", previous_value=None,
                attributes={"tags": "no-dunning"})
    assert story.advance(day(40)) == []


def test_tick_for_an_unknown_customer_is_nothing() -> None:
    story = Story(PAST_DUE)
    assert evaluate(None, Tick(0, day(1), HOUR_MS), story.automations).state is None


def test_scenario_an_event_from_a_clock_in_the_future_does_not_skip_timers() -> None:
    from signalbox.evaluator.engine import Event, Profile

    story = Story(PAST_DUE)
    past_due_customer(story)
    assert story.state is not None
    wrong_clock = Event("evt-future", "cus-1", "user.logged_in", day(400), {"user_id": None},
                        Profile(), received_at=day(2))
    story.state = evaluate(story.state, wrong_clock, story.automations).state
    assert [c.issued_at for c in story.advance(day(40))] == [day(15)] * 2 + [day(31)] * 2
