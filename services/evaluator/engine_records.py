"""Avro records ↔ engine values. Pure functions; the codec does the bytes.

Commands have their own codec, shared with the dispatcher: :mod:`signalbox.common.action_command`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from signalbox.common import schemas
from signalbox.common.action_command import TriggerInfo, command_from_json, command_to_json
from signalbox.common.clock import epoch_ms
from signalbox.evaluator.engine import (
    Agreement,
    Appointment,
    CustomerState,
    Event,
    OpenInvoice,
    OpenTask,
    PendingApproval,
    Profile,
    Tick,
    UsagePeriod,
)
from signalbox.evaluator.engine.state import event_digest, remember

_PROFILE_FIELDS = ("email", "phone", "name", "timezone", "locale")


def _profile(raw: Mapping[str, Any] | None) -> Profile | None:
    if raw is None:
        return None
    return Profile(**{k: raw.get(k) for k in _PROFILE_FIELDS})


def _plain(value: Any) -> Any:
    """Decoded timestamp-millis → epoch ms; everything else as decoded."""
    return epoch_ms(value) if isinstance(value, datetime) else value


def event_from_record(record: Mapping[str, Any]) -> Event:
    record_name, payload = record["payload"]
    return Event(
        event_id=record["event_id"],
        customer_id=record["customer_id"],
        type=schemas.event_type_by_record()[record_name],
        occurred_at=epoch_ms(record["occurred_at"]),
        received_at=epoch_ms(record["received_at"]),
        data={k: _plain(v) for k, v in payload.items()},
        profile=_profile(record.get("customer")),
        attributes=dict(record.get("attributes") or {}),
        source=record.get("source", "api"),
    )


def tick_from_record(record: Mapping[str, Any]) -> Tick:
    return Tick(partition=record["partition"], at=epoch_ms(record["at"]),
                interval_ms=record["interval_ms"])


# -- customer state -----------------------------------------------------------------


def state_from_record(record: Mapping[str, Any]) -> CustomerState:
    recent = bytes(record.get("recent_events") or b"")
    for legacy_id in record.get("recent_event_ids") or ():  # version 1's window
        recent = remember(recent, event_digest(legacy_id))
    return CustomerState(
        customer_id=record["customer_id"],
        profile=_profile(record["profile"]) or Profile(),
        first_seen_at=epoch_ms(record["first_seen_at"]),
        last_event_at=epoch_ms(record["last_event_at"]),
        failed_payments=dict(record.get("failed_payments") or {}),
        recent_events=recent,
        attributes=dict(record.get("attributes") or {}),
        tags=tuple(record.get("tags") or ()),
        account_status=record.get("account_status"),
        balance_minor=record.get("balance_minor", 0),
        past_due_minor=record.get("past_due_minor", 0),
        past_due_since=record.get("past_due_since"),
        invoices={k: OpenInvoice(**v) for k, v in (record.get("invoices") or {}).items()},
        subscriptions={k: Agreement(**v)
                       for k, v in (record.get("subscriptions") or {}).items()},
        card_expires_at=record.get("card_expires_at"),
        card_known_at=record.get("card_known_at", 0),
        usage={k: UsagePeriod(**v) for k, v in (record.get("usage") or {}).items()},
        feature_seconds=dict(record.get("feature_seconds") or {}),
        feature_last_used=dict(record.get("feature_last_used") or {}),
        last_login_at=record.get("last_login_at"),
        score=record.get("score", 0),
        milestones=tuple(record.get("milestones") or ()),
        health=record.get("health"),
        fired=tuple(record.get("fired") or ()),
        appointments={k: Appointment(**v)
                      for k, v in (record.get("appointments") or {}).items()},
        tasks={k: OpenTask(**v) for k, v in (record.get("tasks") or {}).items()},
        approvals={k: _pending_from_record(v)
                   for k, v in (record.get("approvals") or {}).items()},
        clock=record.get("clock", 0),
        timer_marks=dict(record.get("timer_marks") or {}),
    )


def state_to_record(state: CustomerState, next_due: int | None = None,
                    timers_digest: int = 0) -> dict[str, Any]:
    """The record; ``next_due`` and ``timers_digest`` are the shell's timer summary
    (see :mod:`signalbox.evaluator.partition_timers`), not part of the engine's state.

    Hot (once per changed customer per batch): the engine's mappings and tuples are
    handed to the writer as they are (it only iterates them), nothing is copied."""
    p = state.profile
    return {
        "next_due": next_due,
        "timers_digest": timers_digest,
        "customer_id": state.customer_id,
        "profile": {"email": p.email, "phone": p.phone, "name": p.name,
                    "timezone": p.timezone, "locale": p.locale},
        "first_seen_at": state.first_seen_at,
        "last_event_at": state.last_event_at,
        "failed_payments": state.failed_payments,
        "recent_event_ids": (),
        "recent_events": state.recent_events,
        "attributes": state.attributes,
        "tags": state.tags,
        "account_status": state.account_status,
        "balance_minor": state.balance_minor,
        "past_due_minor": state.past_due_minor,
        "past_due_since": state.past_due_since,
        "invoices": {k: vars(v) for k, v in state.invoices.items()},
        "subscriptions": {k: vars(v) for k, v in state.subscriptions.items()},
        "card_expires_at": state.card_expires_at,
        "card_known_at": state.card_known_at,
        "usage": {k: vars(v) for k, v in state.usage.items()},
        "feature_seconds": state.feature_seconds,
        "feature_last_used": state.feature_last_used,
        "last_login_at": state.last_login_at,
        "score": state.score,
        "milestones": state.milestones,
        "health": state.health,
        "fired": state.fired,
        "appointments": {k: vars(v) for k, v in state.appointments.items()},
        "tasks": {k: vars(v) for k, v in state.tasks.items()},
        "approvals": {k: _pending_to_record(v) for k, v in state.approvals.items()},
        "clock": state.clock,
        "timer_marks": state.timer_marks,
    }


def _pending_to_record(p: PendingApproval) -> dict[str, Any]:
    return {
        "automation_id": p.automation_id,
        "automation_version": p.automation_version,
        "requested_at": p.requested_at,
        "trigger_type": p.trigger.type,
        "occurrence": p.trigger.occurrence,
        "facts": dict(p.trigger.facts),
        "team": p.team,
        "summary": p.summary,
        "commands": [json.dumps(command_to_json(c), sort_keys=True, separators=(",", ":"))
                     for c in p.commands],
        "expires_at": p.expires_at,
        "on_expiry": p.on_expiry,
    }


def _pending_from_record(r: Mapping[str, Any]) -> PendingApproval:
    return PendingApproval(
        automation_id=r["automation_id"],
        automation_version=r["automation_version"],
        requested_at=r["requested_at"],
        trigger=TriggerInfo(r["trigger_type"], r["occurrence"], dict(r.get("facts") or {})),
        summary=r["summary"],
        commands=tuple(command_from_json(json.loads(c)) for c in r["commands"]),
        team=r.get("team"),
        expires_at=r.get("expires_at"),
        on_expiry="approve" if r.get("on_expiry") == "approve" else "reject",
    )
