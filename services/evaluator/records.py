"""Avro records ↔ engine values. Pure functions; the codec does the bytes."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from signalbox.common import schemas
from signalbox.common.clock import epoch_ms
from signalbox.evaluator.engine import (
    Command,
    CustomerState,
    Event,
    Profile,
    Tick,
)


def _profile(raw: Mapping[str, Any] | None) -> Profile | None:
    if raw is None:
        return None
    return Profile(**{k: raw.get(k) for k in ("email", "phone", "name", "timezone", "locale")})


def event_from_record(record: Mapping[str, Any]) -> Event:
    record_name, payload = record["payload"]
    return Event(
        event_id=record["event_id"],
        customer_id=record["customer_id"],
        type=schemas.event_type_by_record()[record_name],
        occurred_at=epoch_ms(record["occurred_at"]),
        received_at=epoch_ms(record["received_at"]),
        data=dict(payload),
        profile=_profile(record.get("customer")),
        attributes=dict(record.get("attributes") or {}),
        source=record.get("source", "api"),
    )


def tick_from_record(record: Mapping[str, Any]) -> Tick:
    return Tick(partition=record["partition"], at=epoch_ms(record["at"]),
                interval_ms=record["interval_ms"])


def state_from_record(record: Mapping[str, Any]) -> CustomerState:
    profile = _profile(record["profile"]) or Profile()
    return CustomerState(
        customer_id=record["customer_id"],
        profile=profile,
        first_seen_at=epoch_ms(record["first_seen_at"]),
        last_event_at=epoch_ms(record["last_event_at"]),
        failed_payments=dict(record.get("failed_payments") or {}),
        recent_event_ids=tuple(record.get("recent_event_ids") or ()),
    )


def state_to_record(state: CustomerState) -> dict[str, Any]:
    p = state.profile
    return {
        "customer_id": state.customer_id,
        "profile": {"email": p.email, "phone": p.phone, "name": p.name,
                    "timezone": p.timezone, "locale": p.locale},
        "first_seen_at": state.first_seen_at,
        "last_event_at": state.last_event_at,
        "failed_payments": dict(state.failed_payments),
        "recent_event_ids": list(state.recent_event_ids),
    }


def command_to_record(command: Command) -> dict[str, Any]:
    a = command.action
    return {
        "command_id": command.command_id,
        "automation_id": command.automation_id,
        "automation_version": command.automation_version,
        "action_index": command.action_index,
        "customer_id": command.customer_id,
        "issued_at": command.issued_at,
        "trigger": {
            "type": command.trigger.type,
            "occurrence": command.trigger.occurrence,
            "facts": dict(command.trigger.facts),
        },
        "action": (
            schemas.EMAIL_ACTION,
            {"to": list(a.to), "audience": a.audience, "template": a.template,
             "locale": a.locale, "variables": dict(a.variables)},
        ),
    }

