"""From a fired automation to commands: ids, template variables, channels, approvals.

Action indices count the actions in document order, an approval's held actions
included (the approval itself takes no index), so a command's id names one action
of one occurrence for good: ``command_id(automation, version, customer, occurrence,
index)``. Internal actions (adjust_score, the state side of add_tag / remove_tag)
change the state and, for the score, issue no command.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from signalbox.common.action_command import (
    ChannelCommand,
    Command,
    CrmCommand,
    EmailCommand,
    ExportCommand,
    SmsCommand,
    TriggerInfo,
    WebhookCommand,
)
from signalbox.evaluator.engine.actions import (
    Action,
    AlertAction,
    ApprovalAction,
    CrmAction,
    EmailAction,
    ExportAction,
    ScoreAction,
    SmsAction,
    Team,
    WebhookAction,
)
from signalbox.evaluator.engine.automations import Automation
from signalbox.evaluator.engine.model import ApprovalRequest, CustomerState, PendingApproval
from signalbox.evaluator.engine.state import with_tags_added
from signalbox.evaluator.engine.state_limits import clip
from signalbox.evaluator.engine.template_variables import TIME_SUFFIXES


def command_id(
    automation_id: str, version: int, customer_id: str, occurrence: str, action_index: int
) -> str:
    """Deterministic id: the same occurrence of the same automation is the same command."""
    key = "\x1f".join((automation_id, str(version), customer_id, occurrence, str(action_index)))
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:32]


def approval_id(automation_id: str, version: int, customer_id: str, occurrence: str,
                first_index: int) -> str:
    return "apr-" + command_id(automation_id, version, customer_id, occurrence,
                               first_index)[:28]


@dataclass(frozen=True)
class Firing:
    """One automation firing for one customer: its trigger and the facts it saw."""

    automation: Automation
    trigger: TriggerInfo
    issued_at: int
    data: Mapping[str, Any]  # the event's data, or the time occurrence's facts
    event_id: str
    attributes: Mapping[str, str]


@dataclass(frozen=True)
class Fired:
    state: CustomerState
    commands: tuple[Command, ...]
    approvals: tuple[ApprovalRequest, ...]


def text(value: Any) -> str:
    return "" if value is None else str(value)


def iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _is_ms(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def facts_text(data: Mapping[str, Any]) -> dict[str, str]:
    return {k: text(v) for k, v in sorted(data.items()) if v is not None}


def variables(state: CustomerState, firing: Firing) -> dict[str, str]:
    """Everything a template may use (all strings); per trigger type, the names are
    :mod:`signalbox.evaluator.engine.template_variables` (keep the two in step).

    A time field gives ``<name>_iso`` even when absent (``""``), so the names a
    trigger provides never depend on which optional fields an event carried."""
    a = firing.automation
    out: dict[str, str] = {
        "customer_id": state.customer_id,
        "customer_name": state.profile.name or "",
        "customer_email": state.profile.email or "",
        "customer_phone": state.profile.phone or "",
        "automation_id": a.id,
        "automation_name": a.name,
        "event_type": firing.trigger.type,
        "event_id": firing.event_id,
        "occurrence": firing.trigger.occurrence,
        "score": str(state.score),
        "health": state.health or "",
        "balance_minor": str(state.balance_minor),
        "past_due_minor": str(state.past_due_minor),
    }
    out.update({f"attr_{k}": v for k, v in firing.attributes.items()})
    for k, v in firing.data.items():
        out[k] = text(v)
        if k.endswith(TIME_SUFFIXES) and (v is None or _is_ms(v)):
            out[f"{k}_iso"] = "" if v is None else iso(v)
    if firing.trigger.type == "payment.failed":
        product = clip(text(firing.data.get("product")))
        out["failed_count"] = str(state.failed_payments.get(product, 0))
    return dict(sorted(out.items()))


def fire(state: CustomerState, firing: Firing, teams: Mapping[str, Team]) -> Fired:
    """Carry out one automation's actions: the new state, its commands and approvals."""
    a = firing.automation
    commands: list[Command] = []
    approvals: list[ApprovalRequest] = []
    values = variables(state, firing)
    index = 0
    for action in a.actions:
        if isinstance(action, ApprovalAction):
            first = index
            held = []
            for inner in action.actions:  # built now, effects only once approved
                _, command = _one(state, firing, teams, inner, index, values)
                index += 1
                if command is not None:
                    held.append(command)
            state, request = _hold(state, firing, action, first, tuple(held))
            approvals.append(request)
            continue
        state, command = _one(state, firing, teams, action, index, values)
        index += 1
        if command is not None:
            commands.append(command)
    return Fired(state, tuple(commands), tuple(approvals))


def _hold(state: CustomerState, firing: Firing, action: ApprovalAction, first: int,
          held: tuple[Command, ...]) -> tuple[CustomerState, ApprovalRequest]:
    a = firing.automation
    aid = approval_id(a.id, a.version, state.customer_id, firing.trigger.occurrence, first)
    summary = action.summary or f"{a.name}: " + "; ".join(describe(c) for c in held)
    # Counted from when signalbox knew of the trigger (an event imported late opens
    # with its whole window): the trigger's time, or the input's if that is later.
    expires_at = max(firing.issued_at, state.clock) + action.expires_after_ms
    pending = PendingApproval(a.id, a.version, firing.issued_at, firing.trigger, summary, held,
                              action.team, expires_at, action.on_expiry)
    request = ApprovalRequest(aid, state.customer_id, a.id, a.version, firing.issued_at,
                              firing.trigger, summary, tuple(c.command_id for c in held),
                              action.team, expires_at, action.on_expiry)
    approvals = dict(state.approvals)
    approvals[aid] = pending
    return state.evolve(approvals=dict(sorted(approvals.items()))), request


def with_tags(state: CustomerState, action: ChannelCommand) -> CustomerState:
    """The engine knows the tags it sets: add_tag / remove_tag change the state too."""
    if not isinstance(action, CrmCommand) or action.operation not in ("add_tag", "remove_tag"):
        return state
    tag = clip(action.params["tag"])
    if action.operation == "add_tag":
        return state.evolve(tags=with_tags_added(state.tags, (tag,)))
    return state.evolve(tags=tuple(t for t in state.tags if t != tag))


def describe(command: Command) -> str:
    """One line for a human deciding an approval."""
    c = command.action
    if isinstance(c, (EmailCommand, SmsCommand)):
        to = ", ".join(c.to) or "the customer (no address known)"
        return f"{c.channel} '{c.template}' to {to}"
    if isinstance(c, WebhookCommand):
        return f"webhook '{c.event}' to {c.endpoint}"
    if isinstance(c, CrmCommand):
        params = ", ".join(f"{k}={v}" for k, v in c.params.items())
        return f"crm {c.operation} ({params})"
    return f"export {c.format} to {c.target}"


def _one(state: CustomerState, firing: Firing, teams: Mapping[str, Team], action: Action,
         index: int, values: Mapping[str, str]) -> tuple[CustomerState, Command | None]:
    if isinstance(action, ScoreAction):
        return state.evolve(score=state.score + action.delta), None
    channel = _channel(state, teams, action, values)
    a = firing.automation
    return with_tags(state, channel), Command(
        command_id=command_id(a.id, a.version, state.customer_id, firing.trigger.occurrence,
                              index),
        automation_id=a.id,
        automation_version=a.version,
        action_index=index,
        customer_id=state.customer_id,
        issued_at=firing.issued_at,
        trigger=firing.trigger,
        action=channel,
        customer_timezone=state.profile.timezone,
        critical=a.critical,
    )


def _channel(state: CustomerState, teams: Mapping[str, Team], action: Action,
             values: Mapping[str, str]) -> ChannelCommand:
    p = state.profile
    if isinstance(action, EmailAction):
        if action.to:
            return EmailCommand(action.to, "internal", action.template, None, values)
        return EmailCommand((p.email,) if p.email else (), "customer", action.template,
                            p.locale, values)
    if isinstance(action, SmsAction):
        if action.to:
            return SmsCommand(action.to, "internal", action.template, None, values)
        return SmsCommand((p.phone,) if p.phone else (), "customer", action.template, p.locale,
                          values)
    if isinstance(action, AlertAction):
        team = teams[action.team]
        values = {**values, "team": action.team}
        if action.via == "webhook":
            return WebhookCommand(team.webhook or "", action.template, values)
        if action.via == "sms":
            return SmsCommand((team.phone,) if team.phone else (), "internal", action.template,
                              None, values)
        return EmailCommand((team.email,) if team.email else (), "internal", action.template,
                            None, values)
    if isinstance(action, CrmAction):
        return CrmCommand(action.operation, action.params, values, action.connection)
    if isinstance(action, WebhookAction):
        return WebhookCommand(action.endpoint, action.event, values)
    if isinstance(action, ExportAction):
        record = {f: values.get(f, "") for f in action.fields}
        return ExportCommand(action.target, action.format, action.filename, record)
    raise TypeError(f"no channel for action {action!r}")  # ScoreAction/ApprovalAction: above
