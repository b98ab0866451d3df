"""Retry topics: where a command waits for its next attempt without blocking its partition.

A command that cannot be carried out now (transient failure, open breaker, busy
channel, quiet hours) is written, unchanged, to the retry tier whose delay bound
covers its wait, with its delivery state in Kafka headers. The tiers are
``actions.retry.1s`` … ``actions.retry.1h``; within a tier every record waits at
most the tier's bound, so records are due roughly in offset order and a
consumer can pause a partition until its first record is due. A wait longer than
the last tier's bound is covered by hops: the record is re-queued, unchanged,
until it is due within the bound.

Headers (ASCII): ``signalbox-due`` (epoch ms), ``signalbox-attempts`` (attempts
made), ``signalbox-first-attempt`` (epoch ms, 0 before the first one),
``signalbox-reason`` (why it waits), ``signalbox-replay`` (the replay id of a
command resent by ``signalbox dlq replay``; also on ``actions.commands``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from signalbox.common.topics import ACTIONS_RETRY

#: The longest wait of each tier (seconds), in the order of ``ACTIONS_RETRY``.
BOUNDS: tuple[float, ...] = (1.0, 10.0, 60.0, 600.0, 3600.0)
assert len(BOUNDS) == len(ACTIONS_RETRY)

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
    """Index of the shortest tier whose bound covers the wait (the last for longer waits)."""
    for i, bound in enumerate(BOUNDS):
        if wait_seconds <= bound:
            return i
    return len(BOUNDS) - 1
