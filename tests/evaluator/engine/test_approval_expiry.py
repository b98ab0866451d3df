"""Approvals that end: expiry by ``on_expiry`` as a due time, and the state's cap."""

from __future__ import annotations

import io
import json

import pytest

from signalbox.common import schemas
from signalbox.evaluator.engine import AutomationError, Event, evaluate, parse_automations
from signalbox.evaluator.engine.state_limits import MAX_APPROVALS
from signalbox.evaluator.simulate import run
from tests.evaluator.engine.story import DAY_MS, FAILED, HOUR_MS, MINUTE_MS, Story, brief, day

WEEK_MS = 7 * DAY_MS


def held(expiry: str = "") -> str:
    """An automation holding a tag and an email for finance's approval."""
    return f"""
automations:
  - id: suspend
    trigger: {{type: payment.failed}}
    actions:
      - type: approval
        team: finance
{expiry}
        actions:
          - {{type: crm, operation: add_tag, params: {{tag: suspended}}}}
          - {{type: email, template: account_suspended}}
"""


EXPIRES_72H = held("        expires_after: 72h")
APPROVE_72H = held("        expires_after: 72h\n        on_expiry: approve")


def test_an_approval_nobody_decides_is_rejected_at_its_expiry_by_a_tick() -> None:
    story = Story(EXPIRES_72H)
    assert story.event("payment.failed", day(2), **FAILED) == []
    [request] = story.approvals
    assert (request.expires_at, request.on_expiry) == (day(5), "reject")
    assert story.advance(day(10)) == []  # expired: nothing sent
    [outcome] = story.settled
    assert (outcome.approval_id, outcome.status, outcome.at, outcome.released) == (
        request.approval_id, "expired", day(5), False)
    assert story.state is not None and story.state.approvals == {}
    assert story.state.tags == ()
    late = story.event("approval.decided", day(11), approval_id=request.approval_id,
                       decision="approved", decided_by="bob", reason=None)
    assert late == []  # too late: nothing is held any more
    assert story.settled[-1].held is None and not story.settled[-1].released


def test_on_expiry_approve_releases_the_held_commands_at_the_expiry() -> None:
    story = Story(APPROVE_72H)
    story.event("payment.failed", day(2), **FAILED)
    [request] = story.approvals
    released = story.advance(day(10))
    assert [c.command_id for c in released] == list(request.command_ids)
    assert brief(released) == [("suspend", "add_tag", day(2)),
                               ("suspend", "account_suspended", day(2))]
    assert story.state is not None and story.state.tags == ("suspended",)
    [outcome] = story.settled
    assert (outcome.status, outcome.at, outcome.released) == ("expired", day(5), True)


def test_without_expires_after_an_approval_expires_after_seven_days_rejected() -> None:
    story = Story(held())
    story.event("payment.failed", day(2), **FAILED)
    [request] = story.approvals
    assert (request.expires_at, request.on_expiry) == (day(9), "reject")
    assert story.advance(day(8)) == [] and story.settled == []
    story.advance(day(9))
    assert [o.status for o in story.settled] == ["expired"]


def test_an_event_imported_late_opens_its_approval_with_the_whole_window() -> None:
    story = Story(EXPIRES_72H)  # happened on day 2, received (imported) on day 20
    late = Event("f1", "cus-1", "payment.failed", day(2), FAILED, received_at=day(20))
    [request] = evaluate(None, late, story.automations).approvals
    assert request.requested_at == day(2) and request.expires_at == day(20) + 3 * DAY_MS


@pytest.mark.parametrize("interval", [MINUTE_MS, HOUR_MS, DAY_MS, WEEK_MS])
def test_expiry_does_not_depend_on_how_often_ticks_come(interval: int) -> None:
    """A decision an hour after the expiry releases nothing, one an hour before releases
    everything, with ticks every minute or once a week (the event settles the expiry
    that no tick has reached yet)."""
    late = Story(EXPIRES_72H, interval=interval)
    late.event("payment.failed", day(2), **FAILED)
    decided = late.event("approval.decided", day(5) + HOUR_MS, approval_id=late.approvals[0]
                         .approval_id, decision="approved", decided_by="bob", reason=None)
    assert decided == [] and late.sent == []
    assert [(o.status, o.at, o.released) for o in late.settled] == [
        ("expired", day(5), False), ("approved", day(5) + HOUR_MS, False)]

    early = Story(APPROVE_72H, interval=interval)
    early.event("payment.failed", day(2), **FAILED)
    [request] = early.approvals
    early.event("approval.decided", day(5) - HOUR_MS, approval_id=request.approval_id,
                decision="rejected", decided_by="bob", reason="no")
    early.advance(day(30))
    assert early.sent == []  # rejected in time: the expiry's approve never comes
    assert [(o.status, o.released) for o in early.settled] == [("rejected", False)]


def test_a_decision_in_time_is_settled_once_and_the_expiry_does_nothing() -> None:
    story = Story(EXPIRES_72H)
    story.event("payment.failed", day(2), **FAILED)
    [request] = story.approvals
    released = story.event("approval.decided", day(3), approval_id=request.approval_id,
                           decision="approved", decided_by="bob", reason="ok")
    assert [c.command_id for c in released] == list(request.command_ids)
    story.advance(day(10))
    [outcome] = story.settled
    assert (outcome.status, outcome.at, outcome.released, outcome.decided_by,
            outcome.reason) == ("approved", day(3), True, "bob", "ok")
    assert outcome.held is not None and outcome.held.expires_at == day(5)


def test_an_approval_the_cap_drops_is_settled_as_dropped() -> None:
    story = Story(EXPIRES_72H)
    for n in range(MAX_APPROVALS + 1):
        story.event("payment.failed", day(2) + n * MINUTE_MS, event_id=f"f{n}", **FAILED)
    first = story.approvals[0].approval_id
    assert story.state is not None and first not in story.state.approvals
    [outcome] = story.settled
    assert (outcome.approval_id, outcome.status, outcome.released) == (first, "dropped", False)
    assert outcome.at == day(2) + MAX_APPROVALS * MINUTE_MS


@pytest.mark.parametrize(("field", "value", "reason"), [
    ("expires_after", "3 days", "expected a duration like 30m, 72h or 7d, at most 365d"),
    ("expires_after", "0h", "expected a duration like 30m, 72h or 7d, at most 365d"),
    ("expires_after", "366d", "expected a duration like 30m, 72h or 7d, at most 365d"),
    ("expires_after", 72, "expected a duration like 30m, 72h or 7d, at most 365d"),
    ("on_expiry", "maybe", "expected reject or approve"),
])
def test_expiry_settings_are_validated_with_the_place_and_reason(
        field: str, value: object, reason: str) -> None:
    text = "format: signalbox/automations@2\nteams: {finance: f@example.com}\n" + held(
        f"        {field}: {json.dumps(value)}")
    with pytest.raises(AutomationError) as caught:
        parse_automations(text, schemas.event_types(), source="t")
    [error] = caught.value.errors
    assert error.startswith(f"automations[0] (id=suspend): actions[0].{field}: {reason}")


def simulate(tick_ms: int, decided_at: int) -> list[dict[str, object]]:
    automations = parse_automations("format: signalbox/automations@2\nteams: {finance: "
                                    "f@example.com}\n" + APPROVE_72H, schemas.event_types())
    failed = Event("f1", "cus-1", "payment.failed", day(2), FAILED, received_at=day(2))
    story = Story(APPROVE_72H)
    story.event("payment.failed", day(2), event_id="f1", **FAILED)
    decided = Event("d1", "cus-1", "approval.decided", decided_at, {
        "approval_id": story.approvals[0].approval_id, "decision": "rejected",
        "decided_by": "bob", "reason": None}, received_at=decided_at)
    out = io.StringIO()
    run(automations, [failed, decided], out, tick_ms, until=day(12))
    return [json.loads(line) for line in out.getvalue().splitlines()]


def test_simulate_settles_the_expiry_the_same_whatever_the_tick() -> None:
    hourly, weekly = simulate(HOUR_MS, day(6)), simulate(WEEK_MS, day(6))
    assert hourly == weekly
    assert [line["kind"] for line in hourly] == [
        "approval_request", "command", "command", "approval_settled", "approval_settled"]
    assert hourly[3]["status"] == "expired" and hourly[3]["released"] is True
    assert hourly[4]["status"] == "rejected" and hourly[4]["released"] is False
