"""past_due from both sources: open invoices past their due date and the billing
system's balance (``balance.updated``), combined by the rule in docs/automations.md."""

from __future__ import annotations

from signalbox.evaluator.engine import next_due
from tests.evaluator.engine.story import HOUR_MS, Story, day

DUNNING = """
automations:
  - id: dunning
    trigger: {type: past_due, days: [14, 30]}
    actions: [{type: email, template: past_due}]
  - id: health
    trigger: {type: health.changed, to: struggling}
    actions: [{type: email, template: health}]
"""


def subscribed(story: Story, at: int = day(-20)) -> None:
    story.event("subscription.started", at, subscription_id="sub-1", product="pro",
                kind="subscription", ends_at=None)


def invoice(story: Story, at: int, invoice_id: str, due: int, amount: int = 4900) -> None:
    story.event("invoice.issued", at, invoice_id=invoice_id, amount_minor=amount,
                currency="EUR", due_at=due, product="pro")


def unpaid_from_day_0() -> Story:
    """A subscriber with an invoice of 4900 due on day 0 (issued on day -14)."""
    story = Story(DUNNING)
    subscribed(story)
    invoice(story, day(-14), "in-1", due=day(0))
    return story


def balance(story: Story, at: int, past_due: int, owed: int | None = None) -> None:
    """The billing system's balance.updated."""
    story.event("balance.updated", at, balance_minor=past_due if owed is None else owed,
                past_due_minor=past_due, currency="EUR")


def dunning(story: Story) -> list[tuple[int, str, str]]:
    """(issued_at, past-due amount, streak start) of every past_due notice sent."""
    return [(c.issued_at, c.trigger.facts["past_due_minor"], c.trigger.facts["past_due_since"])
            for c in story.sent if c.automation_id == "dunning"]


def test_an_unpaid_invoice_makes_the_customer_past_due_from_its_due_date() -> None:
    story = unpaid_from_day_0()
    story.advance(day(60))
    assert dunning(story) == [(day(14), "4900", str(day(0))), (day(30), "4900", str(day(0)))]
    # struggling from the due date, not from whenever a tick came
    assert [(c.automation_id, c.issued_at) for c in story.sent
            if c.automation_id == "health"] == [("health", day(0))]


def test_falling_overdue_needs_no_tick_at_that_instant() -> None:
    """The due date is a due time of its own: the customer is woken for it, and a tick
    long after (or an event) settles it at the due date, not at the tick."""
    story = Story(DUNNING, interval=7 * 24 * HOUR_MS)
    subscribed(story)
    invoice(story, day(-14), "in-1", due=day(0) + 5 * HOUR_MS)
    assert story.state is not None
    assert next_due(story.state, story.automations) == day(0) + 5 * HOUR_MS
    story.tick(day(20))  # the scheduler was away: one tick on day 20
    assert dunning(story) == [(day(14) + 5 * HOUR_MS, "4900", str(day(0) + 5 * HOUR_MS))]


def test_an_invoice_issued_already_overdue_counts_from_when_it_arrives() -> None:
    story = Story(DUNNING)
    subscribed(story)
    invoice(story, day(2), "in-1", due=day(-5))
    story.advance(day(20))
    assert dunning(story) == [(day(16), "4900", str(day(2)))]


def test_a_paid_invoice_ends_the_streak_and_a_second_one_restarts_it() -> None:
    story = unpaid_from_day_0()
    invoice(story, day(-10), "in-2", due=day(3), amount=1000)  # a rise: the same streak
    story.advance(day(10))
    story.event("invoice.paid", day(10), invoice_id="in-1", amount_minor=4900, currency="EUR")
    story.advance(day(60))
    # 1000 still past due after a fall on day 10: the streak restarted there
    assert dunning(story) == [(day(24), "1000", str(day(10))), (day(40), "1000", str(day(10)))]
    story.event("payment.succeeded", day(61), payment_id="p-2", invoice_id="in-2",
                product="pro", amount_minor=1000, currency="EUR", kind="automatic")
    assert story.state is not None and story.state.past_due_minor == 0
    assert story.state.past_due_since is None


def test_paying_an_invoice_not_yet_due_is_no_fall_of_the_past_due_balance() -> None:
    story = unpaid_from_day_0()
    invoice(story, day(5), "in-2", due=day(35), amount=2000)
    story.event("payment.succeeded", day(6), payment_id="p-2", invoice_id="in-2",
                product="pro", amount_minor=2000, currency="EUR", kind="automatic")
    story.advance(day(20))
    assert dunning(story) == [(day(14), "4900", str(day(0)))]


def test_the_billing_balance_alone_still_drives_past_due() -> None:
    story = Story(DUNNING)
    subscribed(story)
    balance(story, day(0), 9900)
    story.advance(day(20))
    assert dunning(story) == [(day(14), "9900", str(day(0)))]


def test_both_sources_the_balance_is_authoritative_when_it_comes() -> None:
    """The billing system's balance after the invoice fell due says the same amount (no
    double count, the streak goes on); a lower balance later is a fall (restart); an
    invoice falling due after that balance adds to it."""
    story = unpaid_from_day_0()
    balance(story, day(1), 4900)
    story.advance(day(15))
    assert dunning(story) == [(day(14), "4900", str(day(0)))]
    balance(story, day(16), 3000)  # the billing system knows of a credit we never saw
    invoice(story, day(17), "in-2", due=day(20), amount=500)
    story.advance(day(60))
    assert dunning(story)[1:] == [(day(30), "3500", str(day(16))),
                                  (day(46), "3500", str(day(16)))]


def test_both_sources_a_zero_balance_before_the_due_date_does_not_hide_the_invoice() -> None:
    story = unpaid_from_day_0()
    balance(story, day(-13), 0, owed=4900)  # owed, not yet past due
    story.advance(day(20))
    assert dunning(story) == [(day(14), "4900", str(day(0)))]


def test_both_sources_a_zero_balance_after_the_due_date_ends_it() -> None:
    """The billing system says nothing is past due (paid where signalbox did not see it):
    its figure wins until the invoice set changes again."""
    story = unpaid_from_day_0()
    balance(story, day(5), 0)
    story.advance(day(40))
    assert dunning(story) == []
    story.event("invoice.paid", day(41), invoice_id="in-1", amount_minor=4900,
                currency="EUR")  # late news of what the balance already said
    assert story.state is not None and story.state.past_due_minor == 0
