"""Derived triggers: usage levels, feature minutes, score milestones, health band."""

from __future__ import annotations

from typing import Any

from signalbox.evaluator.engine import Command
from tests.evaluator.engine.story import Story, automation, brief, day, variables

USAGE = """
automations:
  - id: usage-levels
    trigger: {type: usage.threshold_met, metric: api_calls}
    actions: [{type: email, template: usage_level}]
"""


def allowance(story: Story, start: float, end: float, units: float = 1000.0) -> None:
    story.event("allowance.set", day(start), metric="api_calls", allowance=units,
                period_start=day(start), period_end=day(end))


def use(story: Story, at: float, quantity: float, metric: str = "api_calls") -> list[int]:
    return [int(c.trigger.facts["level"])
            for c in story.event("usage.recorded", day(at), metric=metric, quantity=quantity)]


def test_scenario_usage_threshold_each_level_once_per_billing_period() -> None:
    story = Story(USAGE)
    allowance(story, 0, 30)
    assert use(story, 1, 400) == []
    assert use(story, 2, 150) == [50]
    assert use(story, 3, 10) == []
    assert use(story, 4, 600) == [90, 100]  # two levels crossed at once: both, in order
    assert use(story, 5, 600) == []  # over the allowance: nothing more this period
    allowance(story, 30, 60)  # the next billing period starts afresh
    assert use(story, 31, 500) == [50]


def test_scenario_usage_threshold_command_says_which_level_and_period() -> None:
    story = Story(USAGE)
    allowance(story, 0, 30)
    use(story, 1, 600)
    [command] = story.event("usage.recorded", day(2), metric="api_calls", quantity=350.0)
    facts = command.trigger.facts
    assert (facts["level"], facts["used"], facts["allowance"]) == ("90", "950.0", "1000.0")
    assert command.trigger.occurrence == f"usage:api_calls:{day(0)}:90"
    assert variables(command)["period_end_iso"] == "2026-12-02T00:00:00Z"


def test_scenario_usage_of_another_metric_or_without_allowance_fires_nothing() -> None:
    story = Story(USAGE)
    assert use(story, 1, 5000) == []  # no allowance known
    story.event("allowance.set", day(2), metric="seats", allowance=10.0, period_start=day(2),
                period_end=day(32))
    assert use(story, 3, 10, metric="seats") == []


def test_scenario_redelivered_usage_does_not_count_twice() -> None:
    story = Story(USAGE)
    allowance(story, 0, 30)
    story.event("usage.recorded", day(1), event_id="u-1", metric="api_calls", quantity=300.0)
    again = story.replay("u-1", "usage.recorded", day(1), metric="api_calls", quantity=300.0)
    assert again.duplicate and again.commands == ()
    assert use(story, 2, 150) == []  # 450, not 750


def test_scenario_feature_minutes_6_plus_2_over_a_threshold_of_8_fire_once() -> None:
    story = Story.of(automation("power-user",
                                "{type: feature.used_minutes, feature: reports, minutes: 8}",
                                "{type: crm, operation: add_tag, params: {tag: power-user}}"))
    session: dict[str, Any] = {"feature": "reports", "session_id": None}
    assert story.event("feature.used", day(1), duration_seconds=6 * 60, **session) == []
    [tag] = story.event("feature.used", day(2), duration_seconds=2 * 60, **session)
    assert tag.trigger.facts == {"feature": "reports", "minutes": "8",
                                 "total_seconds": "480"}
    assert story.event("feature.used", day(3), duration_seconds=30 * 60, **session) == []
    assert story.state is not None and story.state.tags == ("power-user",)


def test_scenario_feature_minutes_of_another_feature_do_not_add_up() -> None:
    story = Story.of(automation("power-user",
                                "{type: feature.used_minutes, feature: reports, minutes: 8}",
                                "{type: email, template: power_user}"))
    story.event("feature.used", day(1), feature="exports", duration_seconds=600,
                session_id=None)
    assert story.event("feature.used", day(2), feature="reports", duration_seconds=420,
                       session_id=None) == []


MILESTONES = """
automations:
  - id: milestone
    trigger: {type: score.milestone}
    actions: [{type: email, template: milestone}]
"""


def milestones(commands: list[Command]) -> list[str]:
    return [c.trigger.facts["milestone"] for c in commands]


def test_scenario_score_milestones_300_600_900_1200_by_default() -> None:
    story = Story(MILESTONES)
    assert milestones(story.event("score.adjusted", day(1), delta=299, reason=None)) == []
    assert milestones(story.event("score.adjusted", day(2), delta=1, reason=None)) == ["300"]
    assert milestones(story.event("score.adjusted", day(3), delta=1000, reason=None)) == [
        "600", "900", "1200"]


def test_scenario_a_milestone_crossed_twice_fires_once() -> None:
    story = Story(MILESTONES)
    assert milestones(story.event("score.adjusted", day(1), delta=350, reason=None)) == ["300"]
    story.event("score.adjusted", day(2), delta=-100, reason="refund")
    assert milestones(story.event("score.adjusted", day(3), delta=100, reason=None)) == []
    assert story.state is not None and story.state.milestones == (300,)


def test_scenario_adjust_score_action_feeds_milestones() -> None:
    story = Story(MILESTONES + """
  - id: big-order-points
    trigger: {type: order.placed}
    actions: [{type: adjust_score, delta: 350}]
""")
    commands = story.event("order.placed", day(1), order_id="o", product=None,
                           amount_minor=100000, currency="EUR")
    assert brief(commands) == [("milestone", "milestone", day(1))]  # no command for the score
    assert story.state is not None and story.state.score == 350


def test_scenario_health_status_changes_from_score_and_state() -> None:
    story = Story.of(automation("health", "{type: health.changed}",
                                "{type: crm, operation: update_field,"
                                ' params: {field: health, value: "{{ to }}"}}'),
                     automation("now-struggling", "{type: health.changed, to: struggling}",
                                "{type: alert, team: finance, template: struggling}"))
    assert story.event("customer.signed_up", day(0), plan="pro") == []  # first band: steady
    [healthy] = story.event("score.adjusted", day(1), delta=400, reason=None)
    assert healthy.trigger.facts == {"from": "steady", "to": "healthy", "score": "400"}
    failed = story.event("payment.failed", day(2), payment_id="p", invoice_id=None,
                         product="pro", amount_minor=1, currency="EUR", reason=None)
    assert brief(failed) == [("health", "update_field", day(2)),
                             ("now-struggling", "struggling", day(2))]
    back = story.event("payment.succeeded", day(3), payment_id="p2", invoice_id=None,
                       product="pro", amount_minor=1, currency="EUR", kind="automatic")
    assert [c.trigger.facts["to"] for c in back] == ["healthy"]
    [thriving] = story.event("score.adjusted", day(4), delta=600, reason=None)
    assert thriving.trigger.facts["to"] == "thriving"
