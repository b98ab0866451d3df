"""Fetch flow control, sans I/O: start a fetched record now, or hold its partition.

Records of a retry tier ripen in offset order (see :mod:`signalbox.dispatcher.policy.retry`),
so the first one not yet ripe holds its partition: the worker seeks back to it and
pauses the partition, and looks again once it is ripe — at the latest after
``recheck_s``, so a clock that jumps or a record that is not what it seems never
holds a partition for long. A ripe record not yet due is started as a *hop* (it moves
on to the tier that fits its remaining wait, without being looked at). A record whose
delivery headers this dispatcher cannot have written is started as *poison*: it is
dead-lettered, never delivered, and never stops its partition. Nothing on
``actions.commands`` is held. At most ``max_in_flight`` commands are handled at once.

The worker owns the consumer and the timers; this module only answers, from the
record, the clock and the policy, what to do — so it is tested on a manual clock.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from signalbox.common.clock import Clock
from signalbox.dispatcher.policy.retry import (
    DUE,
    DeliveryState,
    HeaderError,
    Headers,
    ripe_at,
    state_from_headers,
)
from signalbox.dispatcher.policy.rules import PolicyConfig

#: The shortest pause: a record ripe a moment from now is not polled in a busy loop.
MIN_PAUSE_S = 0.01


@dataclass(frozen=True)
class Start:
    """Handle the record now, with its delivery state."""

    state: DeliveryState
    #: Ripe but not due: re-queue it to the tier that fits, without looking at it.
    hop: bool = False
    #: Why its delivery headers cannot be trusted: fail it, do not deliver it.
    poison: str = ""


@dataclass(frozen=True)
class Hold:
    """Pause the partition at this record; resume it after ``resume_in_s``."""

    resume_in_s: float


class FlowControl:
    """What to start, what to hold, and when the dispatcher has enough in flight."""

    def __init__(self, clock: Clock, retry_topics: Sequence[str], policy: PolicyConfig,
                 recheck_s: float = 5.0, max_in_flight: int = 1000) -> None:
        self._clock = clock
        self._tier = {name: i for i, name in enumerate(retry_topics)}
        self._policy = policy
        self.recheck_s = recheck_s
        self.max_in_flight = max_in_flight

    def tier(self, topic: str) -> int | None:
        """The retry tier ``topic`` is, or ``None`` (``actions.commands``)."""
        return self._tier.get(topic)

    def look(self, topic: str, written_ms: int, headers: Headers | None) -> Start | Hold:
        """What to do with a record of ``topic`` written at ``written_ms`` (its Kafka
        timestamp, from the policy clock) carrying ``headers``."""
        tier = self._tier.get(topic)
        try:
            state = self.state(headers, tier)
        except HeaderError as exc:
            return Start(DeliveryState(), poison=exc.why)
        if tier is None:
            return Start(state)
        now = self._clock.now_ms()
        ripe = ripe_at(state.due_ms, written_ms, tier)
        if now < ripe:
            return Hold(self.pause_s(ripe - now))
        return Start(state, hop=state.due_ms > now)  # ripe, not due: on to the tier that fits

    def state(self, headers: Headers | None, tier: int | None) -> DeliveryState:
        """The record's delivery state; :class:`HeaderError` for one it cannot act on."""
        state = state_from_headers(headers, retry=tier is not None)
        longest = self._policy.longest_wait_s()
        if state.due_ms > self._clock.now_ms() + longest * 1000:
            raise HeaderError(f"header {DUE}: {state.due_ms} is more than {longest:g}s ahead, "
                              "further than any wait this dispatcher sets")
        return state

    def pause_s(self, wait_ms: float) -> float:
        """How long to pause a partition whose first record ripens in ``wait_ms``."""
        return max(MIN_PAUSE_S, min(wait_ms / 1000, self.recheck_s))

    def full(self, in_flight: int) -> bool:
        """Whether no more work may start until some in flight is done."""
        return in_flight >= self.max_in_flight
