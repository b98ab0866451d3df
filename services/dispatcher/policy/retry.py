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

import re
from collections.abc import Sequence
from dataclasses import dataclass

from signalbox.common.errors import SignalboxError
from signalbox.common.topics import ACTIONS_RETRY

#: The delay of each tier (seconds), in the order of ``ACTIONS_RETRY``.
DELAYS: tuple[float, ...] = (1.0, 10.0, 60.0, 600.0, 3600.0)
assert len(DELAYS) == len(ACTIONS_RETRY)

DUE = "signalbox-due"
ATTEMPTS = "signalbox-attempts"
FIRST_ATTEMPT = "signalbox-first-attempt"
REASON = "signalbox-reason"
REPLAY = "signalbox-replay"

Headers = Sequence[tuple[str, bytes | None]]


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


class HeaderError(SignalboxError, ValueError):
    """A delivery header this dispatcher cannot have written: the record is dead-lettered."""

    what = "delivery header"

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


#: 9999-12-31T23:59:59.999Z, the last instant a datetime can hold.
MAX_EPOCH_MS = 253_402_300_799_999
#: Far above any ``max_attempts``; a larger count is not a count this dispatcher wrote.
MAX_ATTEMPTS = 1_000_000
_DIGITS = re.compile(rb"[0-9]{1,16}")  # at most 16 digits: no costly int() of a long string
_REPLAY = re.compile(rb"[A-Za-z0-9:._-]{1,64}")
#: Headers a retry tier's record always carries (written by :meth:`DeliveryState.headers`).
REQUIRED_ON_RETRY = (DUE, ATTEMPTS, FIRST_ATTEMPT)


def _shown(raw: bytes | None) -> str:
    """A header value for an error message: bounded, whatever it holds."""
    if raw is None:
        return "null"
    text = repr(raw[:40])
    return text + f"… ({len(raw)} bytes)" if len(raw) > 40 else text


def _int(name: str, raw: bytes | None, maximum: int) -> int:
    if raw is None or not _DIGITS.fullmatch(raw):
        raise HeaderError(f"header {name}: expected 1 to 16 ASCII digits, got {_shown(raw)}")
    value = int(raw)
    if value > maximum:
        raise HeaderError(f"header {name}: {value} is above the largest accepted, {maximum}")
    return value


def state_from_headers(headers: Headers | None, retry: bool = False) -> DeliveryState:
    """The delivery state of a record; a fresh command has none of these headers.

    Raises :class:`HeaderError` for a value this dispatcher never writes (not a
    small non-negative integer, a null, a strange replay id) or, on a retry tier
    (``retry``), for a missing one: such a record must not stop the partition.
    """
    h: dict[str, bytes | None] = {}
    for name, value in headers or ():
        h[name] = value
    if retry:
        missing = [name for name in REQUIRED_ON_RETRY if name not in h]
        if missing:
            raise HeaderError(f"a retry record without the header(s) {', '.join(missing)}")
    replay = h.get(REPLAY, b"")
    if replay is None or (replay and not _REPLAY.fullmatch(replay)):
        raise HeaderError(f"header {REPLAY}: expected up to 64 letters, digits or ':._-', "
                          f"got {_shown(replay)}")
    reason = h.get(REASON, b"")
    return DeliveryState(
        attempts=_int(ATTEMPTS, h[ATTEMPTS], MAX_ATTEMPTS) if ATTEMPTS in h else 0,
        first_attempt_ms=(_int(FIRST_ATTEMPT, h[FIRST_ATTEMPT], MAX_EPOCH_MS)
                          if FIRST_ATTEMPT in h else 0),
        due_ms=_int(DUE, h[DUE], MAX_EPOCH_MS) if DUE in h else 0,
        reason=(reason or b"")[:1000].decode("utf-8", "replace"),
        replay=replay.decode("ascii"))


def tier_for(wait_seconds: float) -> int:
    """Index of the longest tier whose delay fits in the wait (the shortest for short waits)."""
    fitting = [i for i, delay in enumerate(DELAYS) if delay <= wait_seconds]
    return fitting[-1] if fitting else 0


def ripe_at(due_ms: int, written_ms: int, tier: int) -> int:
    """When a record of ``tier`` is next looked at: its due time, or its tier's delay."""
    return min(due_ms, written_ms + int(DELAYS[tier] * 1000))
