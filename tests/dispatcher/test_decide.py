"""The sans-I/O delivery core: every policy decision and attempt outcome, no broker.

A table per function; the world the core reads is a plain :class:`World`, time a
:class:`ManualClock`, and jitter a seeded ``random.Random`` (so waits are checked
against their bounds).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, time
from typing import Any, Literal

import pytest

from signalbox.common.action_command import (
    ChannelCommand,
    Command,
    EmailCommand,
    SmsCommand,
    TriggerInfo,
    WebhookCommand,
)
from signalbox.dispatcher.delivery import (
    Attempt,
    Decision,
    Defer,
    Fail,
    Result,
    Retry,
    Suppress,
    attempt_outcome,
    decide,
    deferred,
    resumed,
    settled,
    unexpected_outcome,
)
from signalbox.dispatcher.outcomes import (
    ATTEMPTING,
    Delivery,
    DeliveryError,
    InDoubtError,
    Outcome,
    PermanentError,
    TransientError,
)
from signalbox.dispatcher.policy.breaker import Breakers
from signalbox.dispatcher.policy.retry import DeliveryState
from signalbox.dispatcher.policy.rules import (
    ChannelPolicy,
    FrequencyCap,
    PolicyConfig,
    QuietHours,
)
from signalbox.testing import ManualClock

#: 2026-11-20 12:00 in Berlin: outside quiet hours.
NOON = int(datetime.fromisoformat("2026-11-20T12:00:00+01:00").timestamp() * 1000)
#: 2026-11-20 22:30 in Berlin: inside 21:00-08:00, 9.5 hours before it ends.
NIGHT = int(datetime.fromisoformat("2026-11-20T22:30:00+01:00").timestamp() * 1000)
HOUR_MS = 3_600_000


@dataclass
class World:
    """What the dispatcher knows, as :class:`~signalbox.dispatcher.delivery.DeliveryView`."""

    drivers: frozenset[str] = frozenset({"email", "sms", "webhook"})
    to: tuple[str, ...] = ("ada@example.com",)
    opt_out: str | None = None
    sent_at: Sequence[int] = ()
    busy: frozenset[str] = frozenset()
    breaker_s: float = 0.0
    asked: list[str] = field(default_factory=list)

    def has_driver(self, channel: str) -> bool:
        return channel in self.drivers

    def recipients(self, command: Command) -> tuple[str, ...]:
        return self.to

    def opted_out(self, command: Command, recipients: tuple[str, ...]) -> str | None:
        self.asked.append("opted_out")
        return self.opt_out

    def recent_contacts(self, command: Command) -> Sequence[int]:
        self.asked.append("recent_contacts")
        return self.sent_at

    def channel_busy(self, channel: str) -> bool:
        return channel in self.busy

    def endpoint(self, command: Command) -> str:
        return f"{command.channel}.example.com:443"

    def breaker_wait_s(self, endpoint: str, policy: ChannelPolicy) -> float:
        self.asked.append("breaker")
        return self.breaker_s


def command(channel: str = "email", audience: Literal["customer", "internal"] = "customer",
            critical: bool = False, timezone: str | None = "Europe/Berlin") -> Command:
    action: ChannelCommand = (
        WebhookCommand("crm-sync", "customer.past_due", {}) if channel == "webhook"
        else SmsCommand(("+14155552671",), audience, "payment_failed", None, {})
        if channel == "sms"
        else EmailCommand(("ada@example.com",), audience, "payment_failed", None, {}))
    return Command("c-1", "dunning", 1, 0, "cus_1", NOON, TriggerInfo("payment.failed", "e-1"),
                   action, customer_timezone=timezone, critical=critical)


QUIET = QuietHours(time(21), time(8), "Europe/Berlin", frozenset({"sms", "email"}))
CAP = FrequencyCap(max=2, per_seconds=86_400)
POLICY = PolicyConfig(
    defaults=ChannelPolicy(deadline_seconds=3_600, backoff_seconds=1.0, breaker_failures=3,
                           breaker_cooldown_seconds=30),
    frequency_caps={"email": CAP},
    quiet_hours=QUIET,
)
FRESH = DeliveryState()
RETRIED = DeliveryState(attempts=2, first_attempt_ms=NOON - HOUR_MS // 2, reason="503")
EXPIRED = DeliveryState(attempts=4, first_attempt_ms=NOON - HOUR_MS, reason="503")

# (name, command, state, now, world, expected): an exact decision, or (Defer kind, low, high).
DECISIONS: list[tuple[str, Command, DeliveryState, int, World,
                      Decision | tuple[str, float, float]]] = [
    ("no driver", command("webhook"), FRESH, NOON, World(drivers=frozenset({"email"})),
     Fail("no driver for channel 'webhook'")),
    ("nobody to send to", command(), FRESH, NOON, World(to=()),
     Suppress("no recipient address is known")),
    ("opted out", command(), FRESH, NOON, World(opt_out="unsubscribed"),
     Suppress("opted out: unsubscribed")),
    ("opt-out beats quiet hours", command(), FRESH, NIGHT, World(opt_out="bounced"),
     Suppress("opted out: bounced")),
    ("critical still honours opt-out", command(critical=True), FRESH, NOON,
     World(opt_out="unsubscribed"), Suppress("opted out: unsubscribed")),
    ("operator audience ignores opt-out", command(audience="internal"), FRESH, NOON,
     World(opt_out="unsubscribed"), Attempt("email.example.com:443")),
    ("quiet hours defer to their end", command(), FRESH, NIGHT, World(),
     ("quiet_hours", 9.5 * 3600, 9.5 * 3600)),
    ("quiet hours in the customer's zone", command(timezone="America/New_York"), FRESH,
     NIGHT, World(), Attempt("email.example.com:443", reserve_contact=True)),
    ("quiet hours skip critical", command(critical=True), FRESH, NIGHT, World(),
     Attempt("email.example.com:443")),
    ("quiet hours skip other channels", command("webhook"), FRESH, NIGHT, World(),
     Attempt("webhook.example.com:443")),
    ("quiet hours skip the team", command(audience="internal"), FRESH, NIGHT, World(),
     Attempt("email.example.com:443")),
    ("cap reached", command(), FRESH, NOON, World(sent_at=(NOON - HOUR_MS, NOON - 2 * HOUR_MS)),
     Suppress("frequency cap: already 2 email in 86400s")),
    ("cap counts the window only", command(), FRESH, NOON,
     World(sent_at=(NOON - HOUR_MS, NOON - 25 * HOUR_MS)),
     Attempt("email.example.com:443", reserve_contact=True)),
    ("cap skips critical", command(critical=True), FRESH, NOON,
     World(sent_at=(NOON, NOON)), Attempt("email.example.com:443")),
    ("uncapped channel reserves nothing", command("sms"), FRESH, NOON,
     World(to=("+4915112345678",)), Attempt("sms.example.com:443")),
    ("deadline passed", command(), EXPIRED, NOON, World(),
     Fail("deadline of 3600s passed after 4 attempts; last: 503")),
    ("deadline not yet passed", command(), RETRIED, NOON, World(),
     Attempt("email.example.com:443", reserve_contact=True)),
    ("suppression beats the deadline", command(), EXPIRED, NOON, World(opt_out="complaint"),
     Suppress("opted out: complaint")),
    ("busy channel", command(), FRESH, NOON, World(busy=frozenset({"email"})),
     ("busy", 0.5, 2.0)),
    ("deadline beats a busy channel", command(), EXPIRED, NOON,
     World(busy=frozenset({"email"})),
     Fail("deadline of 3600s passed after 4 attempts; last: 503")),
    ("open breaker", command(), FRESH, NOON, World(breaker_s=20), ("circuit_open", 20, 30)),
    ("busy is asked before the breaker", command(), FRESH, NOON,
     World(busy=frozenset({"email"}), breaker_s=20), ("busy", 0.5, 2.0)),
]


@pytest.mark.parametrize(("name", "cmd", "state", "now", "world", "expected"), DECISIONS,
                         ids=[case[0] for case in DECISIONS])
def test_decide(name: str, cmd: Command, state: DeliveryState, now: int, world: World,
                expected: Decision | tuple[str, float, float]) -> None:
    clock = ManualClock(now)
    decision = decide(cmd, state, clock.now_ms(), POLICY, world, random.Random(7))
    if isinstance(expected, tuple):
        kind, low, high = expected
        assert isinstance(decision, Defer) and decision.kind == kind
        assert low <= decision.wait_s <= high
    else:
        assert decision == expected


def test_the_breaker_is_asked_only_for_a_command_that_would_be_attempted() -> None:
    # A half-open breaker's trial is claimed on what decide saw: asking it for a command
    # that ends otherwise would waste the trial.
    for world, asked in ((World(opt_out="unsubscribed"), ["opted_out"]),
                         (World(sent_at=(NOON, NOON)), ["opted_out", "recent_contacts"]),
                         (World(), ["opted_out", "recent_contacts", "breaker"])):
        decide(command(), FRESH, NOON, POLICY, world, random.Random(1))
        assert world.asked == asked


def test_breaker_peek_claims_nothing_and_claim_takes_the_half_open_trial() -> None:
    clock = ManualClock(NOON)
    breakers = Breakers(clock)
    for _ in range(3):
        breakers.failed("smtp:25", 3, 30)
    assert breakers.peek_seconds("smtp:25", 3, 30) == pytest.approx(30)
    clock.advance(30)  # half-open
    assert breakers.peek_seconds("smtp:25", 3, 30) == 0
    assert breakers.peek_seconds("smtp:25", 3, 30) == 0  # a peek takes no trial
    breakers.claim("smtp:25", 3)
    assert breakers.peek_seconds("smtp:25", 3, 30) == pytest.approx(7.5)  # trial running
    breakers.claim("closed:25", 3)  # closed: nothing to claim
    assert breakers.peek_seconds("closed:25", 3, 30) == 0


@pytest.mark.parametrize(("decision", "state", "expected"), [
    (Suppress("opted out: x"), FRESH, Result(Outcome.SUPPRESSED, "opted out: x", 0)),
    (Fail("deadline"), EXPIRED, Result(Outcome.FAILED, "deadline", 4)),
])
def test_settled_keeps_the_attempts_made(decision: Suppress | Fail, state: DeliveryState,
                                         expected: Result) -> None:
    assert settled(decision, state) == expected


@pytest.mark.parametrize(("kind", "state", "first"), [
    ("quiet_hours", FRESH, 0),  # quiet hours do not start the deadline
    ("busy", FRESH, NOON),  # an outage with no attempt still runs out
    ("circuit_open", FRESH, NOON),
    ("stopping", FRESH, NOON),
    ("quiet_hours", RETRIED, RETRIED.first_attempt_ms),  # a running deadline keeps running
    ("circuit_open", RETRIED, RETRIED.first_attempt_ms),
])
def test_deferred_starts_the_deadline_except_for_quiet_hours(
        kind: Any, state: DeliveryState, first: int) -> None:
    retry = deferred(Defer(12.5, kind, "why"), state, NOON)
    assert retry == Retry(replace(state, reason="why", first_attempt_ms=first), 12.5)


PATIENT = ChannelPolicy(max_attempts=3, backoff_seconds=1, backoff_cap_seconds=4,
                        deadline_seconds=600, timeout_seconds=20)
EP = "smtp.example.com:587"

# (name, what the call returned or raised, state, now, kind, breaker, expected step)
OUTCOMES: list[tuple[str, Delivery | BaseException, DeliveryState, int, str, str,
                     Result | tuple[int, str]]] = [
    ("delivered", Delivery("msg-1", "250 ok"), FRESH, NOON, "delivered", "succeeded",
     Result(Outcome.DELIVERED, "250 ok", 1, "msg-1")),
    ("transient: retried", TransientError("421 busy"), FRESH, NOON, "transient", "failed",
     (1, "421 busy")),
    ("transient: retried again", TransientError("421 busy"),
     DeliveryState(attempts=1, first_attempt_ms=NOON - 5000), NOON, "transient", "failed",
     (2, "421 busy")),
    ("transient: out of attempts", TransientError("421 busy"),
     DeliveryState(attempts=2, first_attempt_ms=NOON - 5000), NOON, "transient", "failed",
     Result(Outcome.FAILED, "gave up after 3 attempts: 421 busy", 3)),
    ("transient: out of time", TransientError("421 busy"),
     DeliveryState(attempts=1, first_attempt_ms=NOON - 600_000), NOON, "transient", "failed",
     Result(Outcome.FAILED, "deadline of 600s would pass before attempt 3: 421 busy", 2)),
    ("permanent", PermanentError("550 no such user"), FRESH, NOON, "permanent", "succeeded",
     Result(Outcome.FAILED, "550 no such user", 1)),
    ("in doubt", InDoubtError("lost during DATA"), RETRIED, NOON, "in_doubt", "failed",
     Result(Outcome.IN_DOUBT, "lost during DATA", 3)),
    ("timeout", TimeoutError(), FRESH, NOON, "timeout", "failed",
     Result(Outcome.IN_DOUBT, f"no answer from {EP} within 20s; the effect may have "
            "happened", 1)),
    ("driver bug", KeyError("to"), FRESH, NOON, "error", "failed",
     Result(Outcome.IN_DOUBT, "unexpected error in the email driver: KeyError: 'to'", 1)),
    ("bare delivery error", DeliveryError("?"), FRESH, NOON, "error", "failed",
     Result(Outcome.IN_DOUBT, "unexpected error in the email driver: DeliveryError: ?", 1)),
]


@pytest.mark.parametrize(("name", "sent", "state", "now", "kind", "breaker", "expected"),
                         OUTCOMES, ids=[case[0] for case in OUTCOMES])
def test_attempt_outcome(name: str, sent: Delivery | BaseException, state: DeliveryState,
                         now: int, kind: str, breaker: str,
                         expected: Result | tuple[int, str]) -> None:
    first = state.first_attempt_ms or now
    out = attempt_outcome(sent, state, now, first, PATIENT, EP, "email", random.Random(3))
    assert (out.kind, out.breaker) == (kind, breaker)
    if isinstance(expected, Result):
        assert out.step == expected
    else:
        attempts, reason = expected
        assert isinstance(out.step, Retry)
        assert out.step.state == replace(state, attempts=attempts, first_attempt_ms=first,
                                         reason=reason)
        ceiling = min(PATIENT.backoff_cap_seconds, 2 ** (attempts - 1))
        assert 0 <= out.step.wait_s <= ceiling


DUE_LATER = DeliveryState(attempts=1, first_attempt_ms=NOON - 5000, due_ms=NOON + 90_000)
RESUMED: list[tuple[str, str | None, DeliveryState, str, bool, Result | Retry | None]] = [
    ("new command: decide", None, FRESH, "", False, None),
    ("interrupted attempt", ATTEMPTING, FRESH, "", False, Result(
        Outcome.IN_DOUBT, "an earlier attempt was interrupted between the attempt and its "
        "outcome; not resent automatically", 1)),
    ("interrupted retry keeps its count", ATTEMPTING, RETRIED, "bad header", True, Result(
        Outcome.IN_DOUBT, "an earlier attempt was interrupted between the attempt and its "
        "outcome; not resent automatically", 2)),
    ("poisoned headers", None, FRESH, "header x-due: not a number", True, Result(
        Outcome.FAILED, "unusable delivery headers on t.actions.retry.1m: header x-due: "
        "not a number", 0)),
    ("early from a short tier: on to the next", None, DUE_LATER, "", True,
     Retry(DUE_LATER, 90.0)),
]


@pytest.mark.parametrize(("name", "ledger", "state", "poison", "hop", "expected"), RESUMED,
                         ids=[case[0] for case in RESUMED])
def test_resumed(name: str, ledger: str | None, state: DeliveryState, poison: str, hop: bool,
                 expected: Result | Retry | None) -> None:
    assert resumed(ledger, state, poison, "t.actions.retry.1m", hop, NOON) == expected


@pytest.mark.parametrize(("attempted", "expected"), [
    (False, Result(Outcome.FAILED, "unexpected error before any attempt: KeyError: 'x'", 2)),
    (True, Result(Outcome.IN_DOUBT, "unexpected error after the attempt was recorded; "
                  "not resent: KeyError: 'x'", 3)),
])
def test_an_unexpected_error_is_in_doubt_once_attempted(attempted: bool,
                                                        expected: Result) -> None:
    assert unexpected_outcome("KeyError: 'x'", attempted, RETRIED) == expected
