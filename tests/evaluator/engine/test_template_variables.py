"""The variable catalogue says exactly what ``variables()`` provides, for every trigger.

Every trigger type fires through the engine (events through the Avro contract), and
the names of its command's variables must be the catalogue's: a name the catalogue
promises but the engine does not give would pass the template check and fail at
delivery; a name the engine gives but the catalogue lacks would be refused wrongly.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from signalbox.common import schemas
from signalbox.evaluator.engine import CATALOGUE, Command
from signalbox.evaluator.engine.template_variables import (
    ATTRIBUTE_PREFIX,
    FACTS,
    has_attributes,
    trigger_variables,
)
from signalbox.evaluator.simulate import Simulation, read_events
from signalbox.ingest.event_docs import example
from tests.evaluator.engine.story import Story, automations, day, variables

EVENT_TYPES = schemas.event_types()


def _names(command: Command) -> set[str]:
    return {k for k in variables(command) if not k.startswith(ATTRIBUTE_PREFIX)}


def _catalogued(trigger: str) -> set[str]:
    found = trigger_variables(trigger, EVENT_TYPES)
    assert found is not None, trigger
    return set(found)


def _one_per_event_type() -> str:
    return "automations:\n" + "".join(
        f"  - id: on-{name.replace('.', '-')}\n    trigger: {{type: {name}}}\n"
        f"    actions: [{{type: email, template: t}}]\n" for name in EVENT_TYPES)


@pytest.mark.parametrize("optional", ["present", "absent"])
def test_every_event_trigger_provides_exactly_its_catalogued_variables(optional: str) -> None:
    lines = []
    for n, event_type in enumerate(EVENT_TYPES.values()):
        event: dict[str, Any] = {**example(event_type), "event_id": f"e{n}",
                                 "customer_id": f"c{n}", "attributes": {"plan_tier": "gold"}}
        if optional == "absent":
            required = {f["name"] for f in event_type.fields if "default" not in f}
            event["data"] = {k: v for k, v in event["data"].items() if k in required}
        lines.append(json.dumps(event))
    simulation = Simulation(automations(_one_per_event_type()), tick_ms=3_600_000)
    fired: dict[str, set[str]] = {}
    for parsed in read_events(lines):
        for decision in simulation.feed(parsed):
            for command in decision.commands:
                fired[command.trigger.type] = _names(command)
                assert "attr_plan_tier" in variables(command)
    assert fired.keys() == EVENT_TYPES.keys()
    for trigger, names in fired.items():
        assert names == _catalogued(trigger), trigger


#: One automation per derived and time trigger, with parameters the story below meets.
TRIGGERS = {
    "usage.threshold_met": "levels: [50]",
    "feature.used_minutes": "feature: reports, minutes: 1",
    "score.milestone": "milestones: [300]",
    "health.changed": "",
    "past_due": "days: [14]",
    "no_login": "days: 7",
    "feature.unused": "feature: exports, days: 30",
    "affiliate.qualified": "min_score: 1, recheck_days: 10",
    "subscription.ending": "days: [30]",
    "appointment.reminder": "before_minutes: [60]",
    "task.due_soon": "before_hours: [24]",
    "task.overdue": "",
    "invoice.due_soon": "days: [3]",
    "invoice.overdue": "",
    "card.expiring": "days: [30]",
    "card.expired": "",
}
ALL_DERIVED_AND_TIME = "automations:\n" + "".join(
    f"  - id: a{n}\n    trigger: {{type: {name}{', ' + params if params else ''}}}\n"
    f"    actions: [{{type: email, template: t}}]\n"
    for n, (name, params) in enumerate(TRIGGERS.items()))


def test_every_derived_and_time_trigger_provides_exactly_its_catalogued_variables() -> None:
    story = Story(ALL_DERIVED_AND_TIME)
    story.event("customer.signed_up", day(0), plan="pro")
    story.event("subscription.started", day(0), subscription_id="sub-1", product="pro",
                kind="subscription", ends_at=day(40), trial_ends_at=None)
    story.event("allowance.set", day(0), metric="api_calls", allowance=100.0,
                period_start=day(0), period_end=day(30))
    story.event("usage.recorded", day(0), metric="api_calls", quantity=60.0)
    story.event("feature.used", day(0), feature="reports", duration_seconds=60, session_id=None)
    story.event("score.adjusted", day(0), delta=400, reason="onboarding")
    story.event("appointment.booked", day(0), appointment_id="ap-1", starts_at=day(5),
                title="Onboarding call")
    story.event("task.added", day(0), task_id="t1", title="Sign", due_at=day(5))
    story.event("invoice.issued", day(0), invoice_id="in-1", amount_minor=4900, currency="EUR",
                due_at=day(10), product="pro")
    story.event("card.updated", day(0), card_id="card-1", brand="visa", last4="4242",
                exp_month=12, exp_year=2026)
    story.event("balance.updated", day(1), balance_minor=9900, past_due_minor=9900,
                currency="EUR")
    story.advance(day(100))
    fired = {c.trigger.type: _names(c) for c in story.sent}
    assert fired.keys() == set(CATALOGUE)
    for trigger, names in fired.items():
        assert names == _catalogued(trigger), (
            f"{trigger}: update FACTS in signalbox.evaluator.engine.template_variables")


def test_the_catalogue_covers_every_trigger_and_only_time_triggers_lack_attributes() -> None:
    assert set(FACTS) == set(CATALOGUE)
    for name in [*CATALOGUE, *EVENT_TYPES]:
        assert trigger_variables(name, EVENT_TYPES) is not None
    assert trigger_variables("no.such", EVENT_TYPES) is None
    assert not has_attributes("past_due") and has_attributes("payment.failed")
    assert has_attributes("score.milestone")
