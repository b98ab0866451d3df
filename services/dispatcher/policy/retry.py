"""Retry topics: where a command waits for its next attempt without blocking its partition.

A command that cannot be carried out now (transient failure, open breaker, busy
channel, quiet hours) is written, unchanged, to a retry tier with its delivery
state in Kafka headers. Each tier has a fixed delay (``actions.retry.1s`` …
``actions.retry.1h``): a record is held until ``min(due, written + delay)``, and
since every record of a tier was written with at least that tier's delay still
to wait (the shortest tier excepted), those times grow with the offset: the
consumer pauses a partition until its first record is ripe, and nothing waits
behind a record that is due later. A ripe record that is not yet due is
re-queued (a hop) to the longest tier that fits its remaining wait, so a wait of
9 h 30 min takes 9 hops through the 1 h tier, 3 through 10 min, and so on.

Headers (ASCII): ``signalbox-due`` (epoch ms), ``signalbox-attempts`` (attempts
made), ``signalbox-first-attempt`` (epoch ms of the first attempt or deferral: the
deadline runs from it),
``signalbox-reason`` (why it waits), ``signalbox-replay`` (the replay id of a
command resent by ``signalbox dlq replay``; also on ``actions.commands``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from signalbox.common.topics import ACTIONS_RETRY

#: The delay of each tier (seconds), in the order of ``ACTIONS_RETRY``.
DELAYS: tuple[float, ...] = (1.0, 10.0, 60.0, 600.0, 3600.0)
assert len(DELAYS) == len(ACTIONS_RETRY)

DUE = "signalbox-due"
ATTEMPTS = "signalbox-attempts"
FIRST_ATTEMPT = "signalbox-first-attempt"
REASON = "signalbox-reason"
REPLAY = "signalbox-replay"

Headers = Sequence[tuple[str, bytes]]


@dataclass(frozen=True)
class DeliveryState:
    """What travels with a command between attempts."""

    attempts: int = 0
    first_attempt_ms: int = 0
    due_ms: int = 0
    reason: str = ""
    replay: str = ""

    def headers(self) -> list[tuple[str, bytes]]:
        out = [(DUE, str(self.due_ms).encode()), (ATTEMPTS, str(self.attempts).encode()),
               (FIRST_ATTEMPT, str(self.first_attempt_ms).encode()),
               (REASON, self.reason.encode("utf-8")[:1000])]
        if self.replay:
            out.append((REPLAY, self.replay.encode()))
        return out


def _int(raw: bytes | None) -> int:
    try:
        return int(raw or b"0")
    except ValueError:
        return 0


def state_from_headers(headers: Headers | None) -> DeliveryState:
    """The delivery state of a record; a fresh command has none of these headers."""
    h = {k: v for k, v in headers or ()}
    return DeliveryState(
        attempts=_int(h.get(ATTEMPTS)), first_attempt_ms=_int(h.get(FIRST_ATTEMPT)),
        due_ms=_int(h.get(DUE)), reason=h.get(REASON, b"").decode("utf-8", "replace"),
        replay=h.get(REPLAY, b"").decode("utf-8", "replace"))


def tier_for(wait_seconds: float) -> int:
    """Index of the longest tier whose delay fits in the wait (the shortest for short waits)."""
    fitting = [i for i, delay in enumerate(DELAYS) if delay <= wait_seconds]
    return fitting[-1] if fitting else 0


def ripe_at(due_ms: int, written_ms: int, tier: int) -> int:
    """When a record of ``tier`` is next looked at: its due time, or its tier's delay."""
    return min(due_ms, written_ms + int(DELAYS[tier] * 1000))
