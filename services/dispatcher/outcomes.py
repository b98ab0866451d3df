"""What became of a command: its terminal outcomes (and the in-flight mark), a delivery,
and the delivery errors a channel raises. The command is in
:mod:`signalbox.common.action_command`."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from signalbox.common.errors import SignalboxError


class Outcome(StrEnum):
    """Terminal states. Exactly one is recorded per command id."""

    DELIVERED = "delivered"
    SUPPRESSED = "suppressed"
    FAILED = "failed"
    IN_DOUBT = "in_doubt"


ATTEMPTING = "attempting"


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
