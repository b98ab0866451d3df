"""The output does not depend on how often ticks come (hypothesis).

Random stories whose events land anywhere, so mostly inside the gaps between ticks;
the same story is run with ticks every minute, hour, day and week (each tick waking
the customer only when ``next_due`` says so, as the shell's timer index does), and
must issue the same commands — ids, contents, issued_at — in the same order.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from signalbox.evaluator.engine import (
    ApprovalRequest,
    AutomationSet,
    Command,
    CustomerState,
    Event,
    Tick,
    evaluate,
    next_due,
)
from tests.evaluator.engine.story import DAY_MS, HOUR_MS, MINUTE_MS, T0
from tests.evaluator.engine.test_properties import (
    AUTOMATIONS,
    EVERY_TRIGGER,
    Decide,
    any_events,
    decides,
    events,
    resolve,
)

WEEK_MS = 7 * DAY_MS
INTERVALS = (MINUTE_MS, HOUR_MS, DAY_MS, WEEK_MS)
#: After the last event (events are within 40 days of T0): every due time has come.
END = -(-(T0 + 80 * DAY_MS) // WEEK_MS) * WEEK_MS


Run = tuple[list[Command], list[ApprovalRequest], list[Event]]


def drive(story: list[Event | Decide], automations: AutomationSet, interval: int) -> Run:
    """Events in time order; before each, the ticks every ``interval`` that are due.
    Returns the commands and the approval requests, each in the order issued, and the
    events fed (a ``Decide`` resolved to the approval.decided of what was pending)."""
    state: CustomerState | None = None
    out: list[Command] = []
    approvals: list[ApprovalRequest] = []
    fed: list[Event] = []
    t = 0  # the next tick not yet run

    def ticks(until: int) -> None:
        nonlocal state, t
        while state is not None and (due := next_due(state, automations)) is not None:
            t = max(t, -(-due // interval) * interval)  # the first tick at or after it
            if t > until:
                return
            decision = evaluate(state, Tick(0, t, interval), automations)
            out.extend(decision.commands)
            approvals.extend(decision.approvals)
            state = decision.state
            t += interval

    for item in sorted(story, key=lambda i: i.occurred_at if isinstance(i, Event) else i.at):
        ticks(item.occurred_at if isinstance(item, Event) else item.at)
        event = resolve(item, state)
        assert isinstance(event, Event)
        fed.append(event)
        decision = evaluate(state, event, automations)
        out.extend(decision.commands)
        approvals.extend(decision.approvals)
        state = decision.state
    ticks(END)
    return out, approvals, fed


def same_for_every_interval(story: list[Event | Decide], automations: AutomationSet) -> None:
    """The minute run decides which approval a ``Decide`` names (what an operator saw
    listed); the other runs get the same decisions."""
    commands, approvals, fed = drive(story, automations, MINUTE_MS)
    for interval in INTERVALS[1:]:
        other = drive(list(fed), automations, interval)
        assert (other[0], other[1]) == (commands, approvals), interval


@settings(max_examples=100, deadline=None)
@given(st.lists(st.one_of(events, events, events, decides), min_size=1, max_size=25))
def test_commands_are_the_same_for_ticks_every_minute_hour_day_and_week(
        story: list[Event | Decide]) -> None:
    same_for_every_interval(story, AUTOMATIONS)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.one_of(any_events, any_events, decides), min_size=1, max_size=20))
def test_every_time_trigger_is_the_same_for_every_tick_interval(
        story: list[Event | Decide]) -> None:
    same_for_every_interval(story, EVERY_TRIGGER)
