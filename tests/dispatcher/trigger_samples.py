"""A firing of every trigger in the catalogue, and the template variables the engine gives it.

Event triggers take the data of the catalogue's example event (optional fields either
given or left out); derived and time triggers the facts the engine computes for them
(engine.py, timers.py). The variables come from the engine's own ``variables()``, so a
template that renders here renders for a real command of that trigger.
"""

from __future__ import annotations

import json
from typing import Any

from signalbox.common import schemas
from signalbox.common.action_command import TriggerInfo
from signalbox.evaluator.engine import CATALOGUE, Automation, CustomerState, Profile, Trigger
from signalbox.evaluator.engine.commands import Firing, facts_text, variables
from signalbox.evaluator.engine.triggers import known_triggers
from signalbox.evaluator.simulate import read_events
from signalbox.ingest.event_docs import example

AT = 1_796_223_600_000  # 2026-12-02T15:00:00Z
DAY = 86_400_000

#: The facts each derived or time trigger carries (see engine.py and timers.py).
FACTS: dict[str, dict[str, Any]] = {
    "usage.threshold_met": {"metric": "api_calls", "level": 90, "used": 9000.0,
                            "allowance": 10000.0, "period_start": AT - 20 * DAY,
                            "period_end": AT + 10 * DAY},
    "feature.used_minutes": {"feature": "reports", "minutes": 300, "total_seconds": 18_030},
    "score.milestone": {"milestone": 600, "score": 612, "previous_score": 590},
    "health.changed": {"from": "healthy", "to": "struggling", "score": 40},
    "past_due": {"days": 14, "past_due_minor": 4900, "past_due_since": AT - 14 * DAY,
                 "balance_minor": 4900},
    "no_login": {"days": 7, "last_login_at": AT - 7 * DAY},
    "feature.unused": {"feature": "reports", "days": 30, "last_used_at": AT - 30 * DAY},
    "subscription.ending": {"subscription_id": "sub-1", "product": "pro",
                            "kind": "subscription", "ends_at": AT + 30 * DAY, "days": 30},
    "appointment.reminder": {"appointment_id": "ap-1", "starts_at": AT + DAY,
                             "title": "Billing review", "before_minutes": 1440},
    "task.due_soon": {"task_id": "t-1", "title": "Upload your tax form", "due_at": AT + DAY,
                      "before_hours": 24},
    "task.overdue": {"task_id": "t-1", "title": "Upload your tax form", "due_at": AT,
                     "after_hours": 0},
    "invoice.due_soon": {"invoice_id": "in-1", "amount_minor": 4900, "currency": "EUR",
                         "due_at": AT + 3 * DAY, "product": "pro", "days": 3},
    "invoice.overdue": {"invoice_id": "in-1", "amount_minor": 4900, "currency": "EUR",
                        "due_at": AT - 3 * DAY, "product": "pro", "days": 3},
    "card.expiring": {"expires_at": 1_798_761_600_000, "days": 30},  # 2027-01-01
    "card.expired": {"expires_at": 1_798_761_600_000},
    "affiliate.qualified": {"score": 450, "min_score": 400},
}

def event_data(trigger: str, optional_empty: bool = False) -> dict[str, Any]:
    """The data of the catalogue's example event, decoded as the engine sees it (optional
    fields left out when ``optional_empty``)."""
    event_type = schemas.event_types()[trigger]
    event = example(event_type)
    if optional_empty:
        required = {f["name"] for f in event_type.fields if "default" not in f}
        event["data"] = {k: v for k, v in event["data"].items() if k in required}
    [decoded] = read_events([json.dumps(event)])
    return dict(decoded.data)


def triggers() -> list[str]:
    """Every trigger an automation can name (event types and the catalogue)."""
    return known_triggers(schemas.event_types())


def template_variables(trigger: str, optional_empty: bool = False) -> dict[str, str]:
    """What ``variables()`` gives a firing of ``trigger`` for customer Ada."""
    data = FACTS[trigger] if trigger in CATALOGUE else event_data(trigger, optional_empty)
    automation = Automation("auto-1", 1, "Sample automation", True, Trigger(trigger), ())
    state = CustomerState("cus-1", Profile(email="ada@example.com", phone="+14155552671",
                                           name="Ada"), AT - 60 * DAY, AT)
    firing = Firing(automation, TriggerInfo(trigger, "occ-1", facts_text(data)), AT, data,
                    "evt-1", {})
    return variables(state, firing)
