"""Immutable values the engine reads and returns."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal


@dataclass(frozen=True)
class Profile:
    """Contact facts about a customer; ``None`` means unknown."""

    email: str | None = None
    phone: str | None = None
    name: str | None = None
    timezone: str | None = None
    locale: str | None = None

    def merged(self, newer: Profile | None) -> Profile:
        """Known newer values replace older ones; unknown ones keep what we had."""
        if newer is None:
            return self
        return Profile(
            email=newer.email or self.email,
            phone=newer.phone or self.phone,
            name=newer.name or self.name,
            timezone=newer.timezone or self.timezone,
            locale=newer.locale or self.locale,
        )


@dataclass(frozen=True)
class Event:
    """One customer event, as decoded from ``signalbox.Event``."""

    event_id: str
    customer_id: str
    type: str  # API name, e.g. "payment.failed"
    occurred_at: int  # epoch ms
    data: Mapping[str, Any] = field(default_factory=dict)
    profile: Profile | None = None
    attributes: Mapping[str, str] = field(default_factory=dict)
    source: str = "api"
    received_at: int = 0


@dataclass(frozen=True)
class Tick:
    """Time has reached ``at`` (epoch ms) on ``partition``."""

    partition: int
    at: int
    interval_ms: int


@dataclass(frozen=True)
class CustomerState:
    customer_id: str
    profile: Profile
    first_seen_at: int
    last_event_at: int
    failed_payments: Mapping[str, int] = field(default_factory=dict)
    recent_event_ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class TriggerInfo:
    """Why a command was issued: the trigger, its occurrence and the facts that matched."""

    type: str
    occurrence: str
    facts: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class EmailCommand:
    to: tuple[str, ...]
    audience: Literal["customer", "internal"]
    template: str
    locale: str | None
    variables: Mapping[str, str]

    channel = "email"


@dataclass(frozen=True)
class Command:
    command_id: str
    automation_id: str
    automation_version: int
    action_index: int
    customer_id: str
    issued_at: int
    trigger: TriggerInfo
    action: EmailCommand


@dataclass(frozen=True)
class Decision:
    """What the engine decided: the state to store and the commands to send, in order."""

    state: CustomerState | None
    commands: tuple[Command, ...] = ()
    duplicate: bool = False
