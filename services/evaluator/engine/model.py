"""Immutable values the engine reads and returns.

Times are epoch milliseconds (UTC) everywhere. Collections inside the state are
plain mappings treated as read-only: the engine builds a new mapping whenever it
changes one, so an old state value is never mutated behind a caller's back.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any, Literal

from signalbox.common.action_command import Command, TriggerInfo

MINUTE_MS = 60_000
HOUR_MS = 60 * MINUTE_MS
DAY_MS = 24 * HOUR_MS


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
class OpenInvoice:
    amount_minor: int
    currency: str
    due_at: int
    known_at: int
    product: str | None = None


@dataclass(frozen=True)
class Agreement:
    """A subscription or service agreement."""

    product: str
    active: bool
    known_at: int
    kind: str = "subscription"
    ends_at: int | None = None


@dataclass(frozen=True)
class UsagePeriod:
    period_start: int
    period_end: int
    allowance: float
    used: float = 0.0


@dataclass(frozen=True)
class Appointment:
    starts_at: int
    known_at: int
    title: str | None = None


@dataclass(frozen=True)
class OpenTask:
    title: str
    known_at: int
    due_at: int | None = None


@dataclass(frozen=True)
class PendingApproval:
    """Commands held by an approval action until someone decides, or until
    ``expires_at`` settles them by ``on_expiry`` (``None``: held before approvals
    expired; it waits for a decision)."""

    automation_id: str
    automation_version: int
    requested_at: int
    trigger: TriggerInfo
    summary: str
    commands: tuple[Command, ...]
    team: str | None = None
    expires_at: int | None = None
    on_expiry: Literal["reject", "approve"] = "reject"


@dataclass(frozen=True)
class ApprovalRequest:
    """An approval the engine opened: the shell lists it for operators to decide.

    The decision comes back as an ``approval.decided`` event with ``approval_id``.
    """

    approval_id: str
    customer_id: str
    automation_id: str
    automation_version: int
    requested_at: int
    trigger: TriggerInfo
    summary: str
    command_ids: tuple[str, ...]
    team: str | None = None
    expires_at: int | None = None
    on_expiry: Literal["reject", "approve"] = "reject"


#: How a held approval ended: an operator's decision, its expiry, or the state's cap.
Settlement = Literal["approved", "rejected", "expired", "dropped"]


@dataclass(frozen=True)
class ApprovalOutcome:
    """A held approval the engine settled in this input, for the approvals topic (so the
    admin API shows what happened, and nothing resends a decision already applied).

    ``at``: the decision's time, the expiry time, or the input's time for a drop;
    ``released``: the held commands were sent; ``held``: the approval as it was held
    (``None``: a decision found nothing held — already settled, or never known)."""

    approval_id: str
    customer_id: str
    status: Settlement
    at: int
    released: bool
    held: PendingApproval | None = None
    decided_by: str | None = None
    reason: str | None = None


@dataclass(frozen=True)
class CustomerState:
    customer_id: str
    profile: Profile
    first_seen_at: int
    last_event_at: int
    failed_payments: Mapping[str, int] = field(default_factory=dict)
    recent_events: bytes = b""
    attributes: Mapping[str, str] = field(default_factory=dict)
    tags: tuple[str, ...] = ()
    account_status: str | None = None
    balance_minor: int = 0
    past_due_minor: int = 0
    past_due_since: int | None = None
    invoices: Mapping[str, OpenInvoice] = field(default_factory=dict)
    subscriptions: Mapping[str, Agreement] = field(default_factory=dict)
    card_expires_at: int | None = None
    card_known_at: int = 0
    usage: Mapping[str, UsagePeriod] = field(default_factory=dict)
    feature_seconds: Mapping[str, int] = field(default_factory=dict)
    feature_last_used: Mapping[str, int] = field(default_factory=dict)
    last_login_at: int | None = None
    score: int = 0
    milestones: tuple[int, ...] = ()
    health: str | None = None
    fired: tuple[str, ...] = ()
    appointments: Mapping[str, Appointment] = field(default_factory=dict)
    tasks: Mapping[str, OpenTask] = field(default_factory=dict)
    approvals: Mapping[str, PendingApproval] = field(default_factory=dict)
    clock: int = 0
    timer_marks: Mapping[str, int] = field(default_factory=dict)

    def evolve(self, **changes: Any) -> CustomerState:
        """A copy with ``changes``: ``dataclasses.replace`` without its per-call
        introspection (8x faster on this 30-field record; the engine's hot path)."""
        unknown = changes.keys() - _STATE_FIELDS
        if unknown:
            raise TypeError(f"CustomerState has no field(s) {', '.join(sorted(unknown))}")
        new = object.__new__(CustomerState)
        new.__dict__.update(self.__dict__)
        new.__dict__.update(changes)
        return new

    @property
    def has_active_subscription(self) -> bool:
        return any(a.active for a in self.subscriptions.values())


_STATE_FIELDS = frozenset(f.name for f in fields(CustomerState))


@dataclass(frozen=True)
class Decision:
    """What the engine decided: the state to store, the commands to send (in order),
    the approvals it opened and those it ended (``settled``); ``dropped``: entries the
    state lost to its caps, per collection (see
    :mod:`~signalbox.evaluator.engine.state_limits`), for the shell to count."""

    state: CustomerState | None
    commands: tuple[Command, ...] = ()
    approvals: tuple[ApprovalRequest, ...] = ()
    duplicate: bool = False
    settled: tuple[ApprovalOutcome, ...] = ()
    dropped: Mapping[str, int] = field(default_factory=dict)
