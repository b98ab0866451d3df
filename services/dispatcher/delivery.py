"""The delivery core, sans I/O: what to do with a command, and what an attempt came to.

:func:`decide` walks the policy in its fixed order — driver, recipients, opt-out,
quiet hours, frequency cap, deadline, busy channel, circuit breaker — and returns
one :data:`Decision`: end it without a call (:class:`Suppress`, :class:`Fail`),
move it to a retry tier without a call (:class:`Defer`), or :class:`Attempt` it.
:func:`attempt_outcome` maps what the channel call returned or raised to the
command's result or its retry. Neither touches Kafka, a channel, a clock or a
metric: the facts come in through a read-only :class:`DeliveryView` (whose
breaker look never claims the half-open trial) and side effects go out as
requests (``Attempt.reserve_contact``, ``AttemptOutcome.breaker``) that the
worker carries out. So every policy and error path is testable without a broker.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Literal, Protocol

from signalbox.common.action_command import Command, MessageCommand
from signalbox.dispatcher.outcomes import (
    ATTEMPTING,
    Delivery,
    InDoubtError,
    Outcome,
    PermanentError,
    TransientError,
)
from signalbox.dispatcher.policy.backoff import backoff_seconds
from signalbox.dispatcher.policy.protection import cap_reached, quiet_until
from signalbox.dispatcher.policy.retry import DeliveryState
from signalbox.dispatcher.policy.rules import ChannelPolicy, PolicyConfig


@dataclass(frozen=True)
class Result:
    """A terminal outcome, as recorded in the ledger and on ``actions.results``."""

    outcome: Outcome
    detail: str
    attempts: int
    provider_ref: str | None = None


@dataclass(frozen=True)
class Retry:
    """Move the command to a retry tier: due in ``wait_s``, with its new delivery state."""

    state: DeliveryState
    wait_s: float


@dataclass(frozen=True)
class Suppress:
    """End the command as ``suppressed`` without a call (nobody to send to, opted out, capped)."""

    detail: str


@dataclass(frozen=True)
class Fail:
    """End the command as ``failed`` without a call (no driver, deadline passed)."""

    detail: str


DeferKind = Literal["quiet_hours", "busy", "circuit_open", "stopping"]


@dataclass(frozen=True)
class Defer:
    """Retry later without a call; ``kind`` labels the deferral metric."""

    wait_s: float
    kind: DeferKind
    reason: str


@dataclass(frozen=True)
class Attempt:
    """Call the channel at ``endpoint``.

    ``reserve_contact``: the command counts against a frequency cap; the worker holds a
    reservation while it is attempted and records the contact once it is delivered.
    """

    endpoint: str
    reserve_contact: bool = False


Decision = Suppress | Fail | Defer | Attempt


class DeliveryView(Protocol):
    """What :func:`decide` may ask about the world; every answer is a read, nothing changes."""

    def has_driver(self, channel: str) -> bool: ...

    def recipients(self, command: Command) -> tuple[str, ...]: ...

    def opted_out(self, command: Command, recipients: tuple[str, ...]) -> str | None:
        """Why the customer may not be contacted on this channel, or None."""
        ...

    def recent_contacts(self, command: Command) -> Sequence[int]:
        """Delivery times (epoch ms) to this customer on this channel, reservations included."""
        ...

    def channel_busy(self, channel: str) -> bool: ...

    def endpoint(self, command: Command) -> str: ...

    def breaker_wait_s(self, endpoint: str, policy: ChannelPolicy) -> float:
        """Seconds until the endpoint's breaker lets a call through; 0 if one may go now."""
        ...


def resumed(ledger_state: str | None, state: DeliveryState, poison: str, topic: str,
            hop: bool, now_ms: int) -> Result | Retry | None:
    """What the ledger and the record's delivery headers settle before any policy; None: decide.

    A command the ledger shows ``attempting`` was cut off mid-attempt by a process that
    died: in doubt, never resent. Headers that cannot be trusted fail it. A retry record
    read early from a shorter tier (``hop``) moves on to the tier that fits, unlooked at.
    """
    if ledger_state == ATTEMPTING:
        return Result(Outcome.IN_DOUBT, "an earlier attempt was interrupted between the "
                      "attempt and its outcome; not resent automatically", max(1, state.attempts))
    if poison:
        return Result(Outcome.FAILED, f"unusable delivery headers on {topic}: {poison}", 0)
    if hop:
        return Retry(state, (state.due_ms - now_ms) / 1000)
    return None


def decide(command: Command, state: DeliveryState, now_ms: int, policy: PolicyConfig,
           view: DeliveryView, rng: random.Random) -> Decision:
    """The next step for ``command``: the policy's checks in order, the first that ends it wins.

    Opt-outs, quiet hours and caps apply to the customer audience only; a critical
    command skips quiet hours and caps (never opt-outs). The breaker is asked last, so
    the worker claims a half-open trial only for a command it then attempts.
    """
    if not view.has_driver(command.channel):
        return Fail(f"no driver for channel {command.channel!r}")
    recipients = view.recipients(command)
    if not recipients:
        return Suppress("no recipient address is known")
    pol = policy.channel(command.channel)
    capped = False
    if isinstance(command.action, MessageCommand) and command.action.audience == "customer":
        reason = view.opted_out(command, recipients)
        if reason is not None:
            return Suppress(f"opted out: {reason}")
        quiet = policy.quiet_hours
        if quiet is not None and not command.critical and command.channel in quiet.channels:
            until = quiet_until(now_ms, command.customer_timezone, quiet)
            if until is not None:
                return Defer((until - now_ms) / 1000, "quiet_hours",
                             "quiet hours in the customer's time zone")
        cap = policy.frequency_caps.get(command.channel)
        if cap is not None and not command.critical:
            if cap_reached(view.recent_contacts(command), now_ms, cap):
                return Suppress(f"frequency cap: already {cap.max} {command.channel} "
                                f"in {cap.per_seconds:g}s")
            capped = True
    if state.first_attempt_ms and now_ms - state.first_attempt_ms >= pol.deadline_seconds * 1000:
        return Fail(f"deadline of {pol.deadline_seconds:g}s passed after {state.attempts} "
                    f"attempts; last: {state.reason}")
    if view.channel_busy(command.channel):
        return Defer(rng.uniform(0.5, 2.0) * pol.backoff_seconds, "busy",
                     f"{command.channel} channel busy")
    endpoint = view.endpoint(command)
    wait = view.breaker_wait_s(endpoint, pol)
    if wait > 0:
        return Defer(wait + rng.uniform(0, wait / 2), "circuit_open",
                     f"circuit open for {endpoint}")
    return Attempt(endpoint, reserve_contact=capped)


def settled(decision: Suppress | Fail, state: DeliveryState) -> Result:
    """The outcome of a command ended without a call."""
    outcome = Outcome.SUPPRESSED if isinstance(decision, Suppress) else Outcome.FAILED
    return Result(outcome, decision.detail, state.attempts)


def deferred(decision: Defer, state: DeliveryState, now_ms: int) -> Retry:
    """The retry of a deferred command.

    The deadline runs from the first attempt or provider-side deferral, so an endless
    outage (breaker open, no attempts) still ends in failed; quiet hours do not count.
    """
    first = state.first_attempt_ms or (0 if decision.kind == "quiet_hours" else now_ms)
    return Retry(replace(state, reason=decision.reason, first_attempt_ms=first),
                 decision.wait_s)


AttemptKind = Literal["delivered", "transient", "permanent", "in_doubt", "timeout", "error"]


@dataclass(frozen=True)
class AttemptOutcome:
    """What one channel call came to.

    ``kind`` labels the attempt metric; ``breaker`` is what to tell the endpoint's
    breaker (``succeeded``: the provider answered; ``failed``: it did not, or may not
    have); ``step`` is the command's result, or — for a transient failure with
    attempts and time left — its retry (nothing was sent: the attempt is withdrawn).
    """

    kind: AttemptKind
    breaker: Literal["succeeded", "failed"]
    step: Result | Retry


def attempt_outcome(sent: Delivery | BaseException, state: DeliveryState, now_ms: int,
                    first_ms: int, pol: ChannelPolicy, endpoint: str, channel: str,
                    rng: random.Random) -> AttemptOutcome:
    """Map a channel call's answer (``sent``: its delivery or what it raised) to an outcome.

    Transient → retried with back-off until ``max_attempts`` or the deadline; permanent →
    failed; in doubt, a timeout or an unexpected error (the driver may have acted) →
    in doubt, never resent. ``first_ms`` is when the first attempt was made.
    """
    attempt = state.attempts + 1
    if isinstance(sent, Delivery):
        return AttemptOutcome("delivered", "succeeded", Result(
            Outcome.DELIVERED, sent.detail, attempt, sent.provider_ref))
    if isinstance(sent, TransientError):
        if attempt >= pol.max_attempts:
            return AttemptOutcome("transient", "failed", Result(
                Outcome.FAILED, f"gave up after {attempt} attempts: {sent}", attempt))
        delay = backoff_seconds(pol, attempt, rng)
        if now_ms + delay * 1000 - first_ms >= pol.deadline_seconds * 1000:
            return AttemptOutcome("transient", "failed", Result(
                Outcome.FAILED, f"deadline of {pol.deadline_seconds:g}s would pass before "
                f"attempt {attempt + 1}: {sent}", attempt))
        return AttemptOutcome("transient", "failed", Retry(replace(
            state, attempts=attempt, first_attempt_ms=first_ms, reason=str(sent)), delay))
    if isinstance(sent, PermanentError):
        return AttemptOutcome("permanent", "succeeded", Result(
            Outcome.FAILED, str(sent), attempt))
    if isinstance(sent, InDoubtError):
        return AttemptOutcome("in_doubt", "failed", Result(
            Outcome.IN_DOUBT, str(sent), attempt))
    if isinstance(sent, TimeoutError):
        return AttemptOutcome("timeout", "failed", Result(
            Outcome.IN_DOUBT, f"no answer from {endpoint} within {pol.timeout_seconds:g}s; "
            "the effect may have happened", attempt))
    return AttemptOutcome("error", "failed", Result(
        Outcome.IN_DOUBT, f"unexpected error in the {channel} driver: "
        f"{type(sent).__name__}: {sent}", attempt))


def unexpected_outcome(error: str, attempted: bool, state: DeliveryState) -> Result:
    """The outcome of a command whose handling raised (``error``, already masked).

    Once ``attempting`` is recorded the channel may have acted: in doubt, not resent.
    """
    if attempted:
        return Result(Outcome.IN_DOUBT, f"unexpected error after the attempt was recorded; "
                      f"not resent: {error}", state.attempts + 1)
    return Result(Outcome.FAILED, f"unexpected error before any attempt: {error}",
                  state.attempts)
