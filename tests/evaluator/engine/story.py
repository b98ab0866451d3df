"""Event stories for scenario tests: feed the engine like the shell does, collect commands.

Every step goes through the Avro state round trip and every command through the
ActionCommand schema, so the scenarios also prove ``records`` for every shape.
``advance`` ticks like the scheduler (every ``interval``) but wakes the customer
only when ``next_due`` says so, as the shell's ``TimerIndex`` does.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from signalbox.common import schemas
from signalbox.common.action_command import MessageCommand, command_from_record, command_to_record
from signalbox.common.codec import AvroCodec
from signalbox.evaluator.engine import (
    ApprovalOutcome,
    ApprovalRequest,
    AutomationSet,
    Command,
    CustomerState,
    Decision,
    Event,
    ExportCommand,
    Profile,
    Tick,
    evaluate,
    next_due,
    parse_automations,
)
from signalbox.evaluator.engine.model import DAY_MS, HOUR_MS, MINUTE_MS
from signalbox.evaluator.engine_records import (
    event_from_record,
    state_from_record,
    state_to_record,
)

T0 = int(datetime(2026, 11, 2, tzinfo=UTC).timestamp() * 1000)  # a Monday, 00:00 UTC
TEAMS = {"finance": "finance@example.com"}
CODEC = AvroCodec()

__all__ = ["DAY_MS", "HOUR_MS", "MINUTE_MS", "T0", "Story", "day", "message", "variables"]


#: The data of a ``payment.failed`` event (product pro) for stories that need one.
FAILED: dict[str, Any] = {"payment_id": "p", "invoice_id": None, "product": "pro",
                          "amount_minor": 4900, "currency": "EUR", "reason": None}


def day(n: float) -> int:
    return T0 + int(n * DAY_MS)


def automations(body: str, teams: Mapping[str, Any] | None = None) -> AutomationSet:
    return parse_automations("format: signalbox/automations@2\n" + body,
                             schemas.event_types(), dict(TEAMS if teams is None else teams),
                             source="story")


def automation(id: str, trigger: str, *actions: str, conditions: str | None = None) -> str:
    """One automation of a story's YAML; the trigger, the conditions and each action are
    YAML flow mappings: ``automation("remind", "{type: appointment.reminder}",
    "{type: email, template: appointment_reminder}")``."""
    lines = [f"  - id: {id}", f"    trigger: {trigger}"]
    if conditions is not None:
        lines.append(f"    conditions: {conditions}")
    lines += ["    actions:", *(f"      - {action}" for action in actions)]
    return "\n".join(lines) + "\n"


def event_record(event: Event) -> dict[str, Any]:
    """The ``signalbox.Event`` record ingest would write for ``event``."""
    record = {t.name: t.record for t in schemas.event_types().values()}[event.type]
    p = event.profile
    return {
        "event_id": event.event_id, "customer_id": event.customer_id,
        "occurred_at": event.occurred_at, "received_at": event.received_at,
        "source": event.source, "attributes": dict(event.attributes),
        "customer": None if p is None else {k: getattr(p, k) for k in (
            "email", "phone", "name", "timezone", "locale")},
        "payload": (record, dict(event.data)),
    }


class Story:
    def __init__(self, body: str, customer: str = "cus-1",
                 profile: Profile | None = None, interval: int = HOUR_MS,
                 teams: Mapping[str, Any] | None = None) -> None:
        self.automations = automations(body, teams)
        self.customer = customer
        self.profile = profile or Profile(email="ada@example.com", phone="+4915112345678",
                                          name="Ada", timezone="Europe/Berlin", locale="en-GB")
        self.state: CustomerState | None = None
        self.interval = interval
        self.clock = T0
        self.events = 0
        self.approvals: list[ApprovalRequest] = []
        self.settled: list[ApprovalOutcome] = []  # how held approvals ended, in order
        self.sent: list[Command] = []  # every command of the story, in order
        self.ticks = 0

    @classmethod
    def of(cls, *automations: str, profile: Profile | None = None) -> Story:
        """A story of the :func:`automation` s given."""
        return cls("automations:\n" + "".join(automations), profile=profile)

    def _apply(self, item: Event | Tick) -> Decision:
        if isinstance(item, Event):  # through the Avro contract, as the shell reads it
            item = event_from_record(CODEC.decode(schemas.EVENT, CODEC.encode(
                schemas.EVENT, event_record(item))))
        decision = evaluate(self.state, item, self.automations)
        if decision.state is not None:
            raw = CODEC.encode(schemas.CUSTOMER_STATE, state_to_record(decision.state))
            restored = state_from_record(CODEC.decode(schemas.CUSTOMER_STATE, raw))
            assert restored == decision.state
            self.state = restored
        for command in decision.commands:
            raw = CODEC.encode(schemas.ACTION_COMMAND, command_to_record(command))
            assert command_from_record(CODEC.decode(schemas.ACTION_COMMAND, raw)) == command
        self.approvals.extend(decision.approvals)
        self.settled.extend(decision.settled)
        self.sent.extend(decision.commands)
        return decision

    def event(self, type: str, at: int | None = None, *, event_id: str | None = None,
              attributes: Mapping[str, str] | None = None, ticks: bool = True,
              **data: Any) -> list[Command]:
        """The event at ``at`` (default: the story's clock) and its commands; the ticks due
        before it run first (their commands are in ``sent``) unless ``ticks`` is false (the
        event lands in a gap between the scheduler's ticks)."""
        at = self.clock if at is None else at
        if at > self.clock and ticks:
            self.advance(at)
        self.clock = max(self.clock, at)
        self.events += 1
        event = Event(event_id or f"evt-{self.events}", self.customer, type, at, data,
                      self.profile, dict(attributes or {}))
        return list(self._apply(event).commands)

    def replay(self, event_id: str, type: str, at: int, **data: Any) -> Decision:
        event = Event(event_id, self.customer, type, at, data, self.profile)
        return self._apply(event)

    def tick(self, at: int, interval: int | None = None) -> list[Command]:
        """One tick at ``at``, whatever next_due says (a late or repeated tick)."""
        self.ticks += 1
        self.clock = max(self.clock, at)
        return list(self._apply(Tick(0, at, interval or self.interval)).commands)

    def advance(self, to: int) -> list[Command]:
        """The scheduler's ticks from the clock up to ``to``; due customers only."""
        out: list[Command] = []
        t = self.clock - self.clock % self.interval + self.interval  # the next tick
        while self.state is not None:
            due = next_due(self.state, self.automations)
            if due is None:
                break
            t = max(t, -(-due // self.interval) * self.interval)  # the tick covering it
            if t > to:
                break
            out += self.tick(t)
            t += self.interval
        self.clock = max(self.clock, to)
        return out

def message(command: Command) -> MessageCommand:
    """The command's email or SMS (to whom, which template, with what); fails the test on
    another channel's command."""
    action = command.action
    assert isinstance(action, MessageCommand), action
    return action


def variables(command: Command) -> Mapping[str, str]:
    """The template variables of a message, webhook or CRM command (an export has none:
    it carries a record)."""
    action = command.action
    assert not isinstance(action, ExportCommand), action
    return action.variables


def brief(commands: list[Command]) -> list[tuple[str, str, int]]:
    """(automation, template or operation or event, issued_at) of each command."""
    out = []
    for c in commands:
        a = c.action
        what = getattr(a, "template", None) or getattr(a, "operation", None) \
            or getattr(a, "event", None) or getattr(a, "target", "")
        out.append((c.automation_id, str(what), c.issued_at))
    return out
