"""The decision function. Pure: every input it needs is an argument."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from signalbox.evaluator.engine.automations import (
    AlertAction,
    Automation,
    AutomationSet,
    EmailAction,
)
from signalbox.evaluator.engine.model import (
    Command,
    CustomerState,
    Decision,
    EmailCommand,
    Event,
    Profile,
    Tick,
    TriggerInfo,
)

#: How many processed event ids a customer's state remembers, so that a redelivered
#: event (at-least-once consumption) changes nothing and issues no new command.
DEDUPE_WINDOW = 256


def command_id(
    automation_id: str, version: int, customer_id: str, occurrence: str, action_index: int
) -> str:
    """Deterministic id: the same occurrence of the same automation is the same command."""
    key = "\x1f".join((automation_id, str(version), customer_id, occurrence, str(action_index)))
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:32]


def evaluate(
    state: CustomerState | None, item: Event | Tick, automations: AutomationSet
) -> Decision:
    """``(state, input, automations) -> (new state, commands)``."""
    if isinstance(item, Tick):
        # Time triggers are driven by ticks; the per-customer clock has nothing
        # to do until timers are registered.
        return Decision(state, ())
    if state is not None and item.event_id in state.recent_event_ids:
        return Decision(state, (), duplicate=True)
    new_state = _apply(state, item)
    commands: list[Command] = []
    for automation in automations.for_trigger(item.type):
        if _matches(automation, item):
            commands.extend(_commands(automation, new_state, item, automations.teams))
    return Decision(new_state, tuple(commands))


def _apply(state: CustomerState | None, event: Event) -> CustomerState:
    if state is None:
        state = CustomerState(
            customer_id=event.customer_id,
            profile=Profile(),
            first_seen_at=event.occurred_at,
            last_event_at=event.occurred_at,
        )
    failed = dict(state.failed_payments)
    product = str(event.data.get("product", ""))
    if event.type == "payment.failed":
        failed[product] = failed.get(product, 0) + 1
    elif event.type == "payment.succeeded":
        failed.pop(product, None)
    recent = (*state.recent_event_ids, event.event_id)[-DEDUPE_WINDOW:]
    return replace(
        state,
        profile=state.profile.merged(event.profile),
        first_seen_at=min(state.first_seen_at, event.occurred_at),
        last_event_at=max(state.last_event_at, event.occurred_at),
        failed_payments=dict(sorted(failed.items())),
        recent_event_ids=recent,
    )


def _matches(automation: Automation, event: Event) -> bool:
    return all(str(event.data.get(k)) == v for k, v in automation.trigger.filters.items())


def _facts(automation: Automation, event: Event) -> dict[str, str]:
    facts = {k: str(event.data.get(k)) for k in automation.trigger.filters}
    facts["event_type"] = event.type
    return facts


def _variables(state: CustomerState, event: Event, automation: Automation) -> dict[str, str]:
    out: dict[str, str] = {
        "customer_id": state.customer_id,
        "customer_name": state.profile.name or "",
        "customer_email": state.profile.email or "",
        "automation_name": automation.name,
        "event_type": event.type,
        "event_id": event.event_id,
    }
    out.update({f"attr_{k}": v for k, v in event.attributes.items()})
    out.update({k: _text(v) for k, v in event.data.items()})
    if event.type == "payment.failed":
        out["failed_count"] = str(state.failed_payments.get(str(event.data.get("product")), 0))
    return dict(sorted(out.items()))


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _commands(
    automation: Automation, state: CustomerState, event: Event, teams: Mapping[str, str]
) -> list[Command]:
    trigger = TriggerInfo(type=event.type, occurrence=event.event_id,
                          facts=_facts(automation, event))
    variables = _variables(state, event, automation)
    out = []
    for index, action in enumerate(automation.actions):
        if isinstance(action, EmailAction):
            to = action.to or ((state.profile.email,) if state.profile.email else ())
            email = EmailCommand(
                to=tuple(to),
                audience="customer" if not action.to else "internal",
                template=action.template,
                locale=state.profile.locale if not action.to else None,
                variables=variables,
            )
        elif isinstance(action, AlertAction):
            email = EmailCommand(
                to=(teams[action.team],), audience="internal", template=action.template,
                locale=None, variables={**variables, "team": action.team},
            )
        out.append(
            Command(
                command_id=command_id(
                    automation.id, automation.version, state.customer_id, event.event_id, index
                ),
                automation_id=automation.id,
                automation_version=automation.version,
                action_index=index,
                customer_id=state.customer_id,
                issued_at=event.occurred_at,
                trigger=trigger,
                action=email,
            )
        )
    return out
