"""Fetch flow control on a manual clock, without a broker: which records start, which
hold their partition and for how long."""

from __future__ import annotations

import pytest

from signalbox.dispatcher.flow_control import MIN_PAUSE_S, FlowControl, Hold, Start
from signalbox.dispatcher.policy.retry import ATTEMPTS, DUE, DeliveryState, Headers
from signalbox.dispatcher.policy.rules import PolicyConfig
from signalbox.testing import ManualClock

NOW = 1_790_000_000_000
RETRY_TOPICS = ("t.retry.1s", "t.retry.10s", "t.retry.1m", "t.retry.10m", "t.retry.1h")
TWO_DAYS_MS = 2 * 86_400_000  # PolicyConfig()'s longest wait


def flow(clock: ManualClock, recheck_s: float = 5.0, max_in_flight: int = 1000) -> FlowControl:
    return FlowControl(clock, RETRY_TOPICS, PolicyConfig(), recheck_s, max_in_flight)


def waiting(due_ms: int, attempts: int = 1, replay: str = "") -> Headers:
    return DeliveryState(attempts=attempts, first_attempt_ms=NOW - 60_000, due_ms=due_ms,
                         reason="503", replay=replay).headers()


def state(due_ms: int, attempts: int = 1, replay: str = "") -> DeliveryState:
    return DeliveryState(attempts, NOW - 60_000, due_ms, "503", replay)


@pytest.mark.parametrize(("topic", "written_ms", "headers", "expected"), [
    # actions.commands: never held, whatever its headers say is due.
    ("t.commands", NOW, None, Start(DeliveryState())),
    ("t.commands", NOW, [("other", b"y")], Start(DeliveryState())),
    ("t.commands", NOW, waiting(NOW + 3_600_000), Start(state(NOW + 3_600_000))),
    # Written now to the 1 s tier, due in a second: held until then.
    ("t.retry.1s", NOW, waiting(NOW + 1000), Hold(1.0)),
    # Due in 5 ms: held for the shortest pause, not polled in a busy loop.
    ("t.retry.1s", NOW, waiting(NOW + 5), Hold(MIN_PAUSE_S)),
    # Due in an hour on the 1 h tier: looked at again after recheck_s.
    ("t.retry.1h", NOW, waiting(NOW + 3_600_000), Hold(5.0)),
    # Ripe by its tier's delay though due later: held until the tier's delay only.
    ("t.retry.10s", NOW - 8000, waiting(NOW + 50_000), Hold(2.0)),
    # Due now, or overdue: started.
    ("t.retry.1s", NOW - 1000, waiting(NOW), Start(state(NOW))),
    ("t.retry.1m", NOW - 90_000, waiting(NOW - 30_000, attempts=3),
     Start(state(NOW - 30_000, attempts=3))),
    # Ripe by its tier's delay, due in 50 s: a hop to the tier that fits.
    ("t.retry.10s", NOW - 10_000, waiting(NOW + 50_000), Start(state(NOW + 50_000), hop=True)),
    ("t.retry.1h", NOW - 3_600_000, waiting(NOW + 1, replay="r-1"),
     Start(state(NOW + 1, replay="r-1"), hop=True)),
], ids=["command", "command, other headers", "command, due later", "1s tier, due in 1s",
        "due in 5ms", "1h tier", "10s tier ripe in 2s", "due now", "overdue",
        "hop", "hop of a replay"])
def test_what_happens_to_a_fetched_record(topic: str, written_ms: int, headers: Headers | None,
                                          expected: Start | Hold) -> None:
    assert flow(ManualClock(NOW)).look(topic, written_ms, headers) == expected


@pytest.mark.parametrize(("topic", "headers", "why"), [
    ("t.retry.1s", [], f"a retry record without the header(s) {DUE}, {ATTEMPTS}, "
                       "signalbox-first-attempt"),
    ("t.retry.10s", [(DUE, b"soon"), (ATTEMPTS, b"1"), ("signalbox-first-attempt", b"1")],
     f"header {DUE}: expected 1 to 16 ASCII digits, got b'soon'"),
    ("t.retry.1h", waiting(NOW + TWO_DAYS_MS + 1),
     f"header {DUE}: {NOW + TWO_DAYS_MS + 1} is more than 172800s ahead, further than any "
     "wait this dispatcher sets"),
    ("t.commands", [(ATTEMPTS, None)], f"header {ATTEMPTS}: expected 1 to 16 ASCII digits, "
                                       "got null"),
], ids=["retry without headers", "not a number", "due too far ahead", "null on a command"])
def test_a_record_with_headers_this_dispatcher_never_writes_is_started_as_poison(
        topic: str, headers: Headers, why: str) -> None:
    # Never held: a record that lies about when it is due must not stop its partition.
    assert flow(ManualClock(NOW)).look(topic, NOW, headers) == Start(DeliveryState(),
                                                                     poison=why)


def test_the_furthest_due_time_accepted_is_the_longest_wait_from_now() -> None:
    clock = ManualClock(NOW)
    headers = waiting(NOW + TWO_DAYS_MS)
    assert flow(clock).look("t.retry.1h", NOW, headers) == Hold(5.0)


def test_a_held_partition_is_released_as_the_clock_reaches_its_first_record() -> None:
    clock = ManualClock(NOW)
    control = flow(clock, recheck_s=2.0)
    headers = waiting(NOW + 9_000)  # 9 s on the 10 s tier: ripe when due
    assert control.look("t.retry.10s", NOW, headers) == Hold(2.0)
    clock.advance(2.0)
    assert control.look("t.retry.10s", NOW, headers) == Hold(2.0)
    clock.advance(6.5)
    assert control.look("t.retry.10s", NOW, headers) == Hold(0.5)
    clock.advance(0.5)
    assert control.look("t.retry.10s", NOW, headers) == Start(state(NOW + 9_000))
    clock.advance(3600)  # long overdue: still started, never a hop
    assert control.look("t.retry.10s", NOW, headers) == Start(state(NOW + 9_000))


def test_a_clock_that_jumps_back_holds_a_partition_no_longer_than_recheck_s() -> None:
    clock = ManualClock(NOW)
    control = flow(clock, recheck_s=5.0)
    headers = waiting(NOW)
    assert control.look("t.retry.1s", NOW - 1000, headers) == Start(state(NOW))
    clock.set(NOW - 86_400_000)
    assert control.look("t.retry.1s", NOW - 1000, headers) == Hold(5.0)


@pytest.mark.parametrize(("topic", "tier"), [
    ("t.commands", None), ("t.retry.1s", 0), ("t.retry.1m", 2), ("t.retry.1h", 4),
    ("t.retry.2h", None)])
def test_tiers_are_the_retry_topics_in_order(topic: str, tier: int | None) -> None:
    assert flow(ManualClock(NOW)).tier(topic) == tier


@pytest.mark.parametrize(("in_flight", "full"), [(0, False), (2, False), (3, True), (4, True)])
def test_no_more_work_starts_once_max_in_flight_are_handled(in_flight: int,
                                                           full: bool) -> None:
    assert flow(ManualClock(NOW), max_in_flight=3).full(in_flight) is full
