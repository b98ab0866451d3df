"""The dispatcher's view of a command and of what became of it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from signalbox.common import schemas
from signalbox.common.clock import epoch_ms
from signalbox.common.codec import union_branch
from signalbox.common.commands import MAX_ID_CHARS, CommandError
from signalbox.common.errors import SignalboxError


class Outcome(StrEnum):
    """Terminal states. Exactly one is recorded per command id."""

    DELIVERED = "delivered"
    SUPPRESSED = "suppressed"
    FAILED = "failed"
    IN_DOUBT = "in_doubt"


ATTEMPTING = "attempting"


@dataclass(frozen=True)
class Command:
    command_id: str
    customer_id: str
    automation_id: str
    channel: str
    action: Mapping[str, Any]
    issued_at: int
    automation_version: int = 1
    trigger_type: str = ""
    customer_timezone: str | None = None
    critical: bool = False


@dataclass(frozen=True)
class Delivery:
    """A side effect the outside world accepted."""

    provider_ref: str | None = None
    detail: str = ""


class DeliveryError(SignalboxError):
    """Base of the failures a channel reports."""

    what = "delivery"


class TransientError(DeliveryError):
    """Not accepted, and safe to try again (connection refused, 4xx, timeout before data)."""

    what = "delivery (transient)"


class PermanentError(DeliveryError):
    """Not accepted, and trying again will not help (5xx, bad address, template error)."""

    what = "delivery (permanent)"


class InDoubtError(DeliveryError):
    """The effect may or may not have happened (connection lost during data): never resend."""

    what = "delivery (in doubt)"


def command_from_record(record: Mapping[str, Any]) -> Command:
    for name in ("command_id", "customer_id", "automation_id"):
        if len(record[name]) > MAX_ID_CHARS:
            raise CommandError(f"{name} of {len(record[name])} characters; at most "
                               f"{MAX_ID_CHARS} are accepted")
    branch, action = union_branch(record["action"], schemas.EMAIL_ACTION)
    channel = schemas.CHANNEL_BY_ACTION.get(branch, branch)
    return Command(
        command_id=record["command_id"],
        customer_id=record["customer_id"],
        automation_id=record["automation_id"],
        channel=channel,
        action=action,
        issued_at=epoch_ms(record["issued_at"]),
        automation_version=record.get("automation_version", 1),
        trigger_type=record["trigger"]["type"],
        customer_timezone=record.get("customer_timezone"),
        critical=bool(record.get("critical", False)),
    )
