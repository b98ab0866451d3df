"""What the dispatcher writes for a command, built without I/O: ledger entries, results,
dead letters and retry copies.

The worker decides *what* became of a command (:mod:`signalbox.dispatcher.delivery`);
this module turns that into the Kafka records the committer writes in one transaction
(:class:`~signalbox.dispatcher.commit.Write`): the ``actions.ledger`` entry keyed by
the ledger key, the ``actions.results`` record keyed like the command, a dead letter
on ``actions.dlq`` for ``failed`` and ``in_doubt`` (cut to fit the topic, never failing
for its size), or the command's unchanged bytes in the retry tier that fits its wait,
with its delivery state and its ``received_at`` in headers. Times come in as
arguments (the policy clock), so the records are a pure function of their inputs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import partial
from typing import Any, Protocol

from signalbox.common import schemas
from signalbox.common.action_command import Command
from signalbox.common.codec import AvroCodec
from signalbox.common.deadletter import DEFAULT_MAX_MESSAGE_BYTES, dead_letter, fit
from signalbox.common.metrics import received_at_header, received_at_of
from signalbox.dispatcher.commit import Write
from signalbox.dispatcher.delivery import Result, Retry
from signalbox.dispatcher.outcomes import Outcome
from signalbox.dispatcher.policy.retry import tier_for

#: The ``service`` a dispatcher dead letter names.
SERVICE = "dispatcher"
#: An outcome's detail (a provider's answer, an error) is cut to this many characters.
MAX_DETAIL_CHARS = 2000
#: Outcomes that come with a dead letter: an operator acts on them.
DEAD_LETTERED = (Outcome.FAILED, Outcome.IN_DOUBT)


def bounded_detail(detail: str) -> str:
    """``detail`` cut to :data:`MAX_DETAIL_CHARS`, saying how long it was."""
    if len(detail) <= MAX_DETAIL_CHARS:
        return detail
    return f"{detail[:MAX_DETAIL_CHARS]}… ({len(detail)} characters)"


def ledger_key(command_id: str, replay: str) -> str:
    """The ledger remembers a replayed command separately, once per dead letter replayed."""
    return f"{command_id}#replay:{replay}" if replay else command_id


class Consumed(Protocol):
    """The consumed record an outcome is about (an aiokafka ``ConsumerRecord``)."""

    @property
    def topic(self) -> str: ...

    @property
    def partition(self) -> int: ...

    @property
    def offset(self) -> int: ...

    @property
    def key(self) -> bytes | None: ...

    @property
    def value(self) -> bytes | None: ...

    @property
    def headers(self) -> Sequence[tuple[str, bytes]]: ...


@dataclass(frozen=True)
class Records:
    """Writes for one command; ``truncated``: its dead letter was cut to fit the topic."""

    writes: list[Write]
    truncated: bool = False


@dataclass(frozen=True)
class OutcomeRecords:
    """Builds the dispatcher's records for its topics (names with their prefix)."""

    codec: AvroCodec
    ledger_topic: str
    results_topic: str
    dlq_topic: str
    #: The retry tiers' topics, in the order of ``ACTIONS_RETRY``.
    retry_topics: Sequence[str]
    #: The largest dead letter the producer and ``actions.dlq`` take.
    dlq_max_bytes: int = DEFAULT_MAX_MESSAGE_BYTES

    def ledger_value(self, key: str, state: str, attempt: int, detail: str,
                     at_ms: int) -> bytes:
        """An encoded ``actions.ledger`` entry (``attempting`` or an outcome)."""
        return self.codec.encode(schemas.LEDGER_ENTRY, {
            "command_id": key, "state": state, "attempt": attempt,
            "at": at_ms, "detail": detail})

    def dead_letter(self, record: Consumed, error_type: str, reason: str,
                    now_ms: int) -> Records:
        """The record's dead letter, with its original bytes (cut to fit if need be)."""
        r, p = record, record.partition
        letter: dict[str, Any] = dead_letter(
            service=SERVICE, topic=r.topic, partition=p, offset=r.offset, key=r.key,
            value=r.value, error_type=error_type, reason=reason, failed_at=now_ms)
        fitted = fit(letter, partial(self.codec.encode, schemas.DEAD_LETTER),
                     self.dlq_max_bytes)
        return Records([Write(self.dlq_topic, fitted.key, fitted.value, p, fitted.headers)],
                       fitted.truncated)

    def outcome(self, record: Consumed, key: str, command: Command, result: Result,
                extra: Sequence[Write], now_ms: int) -> Records:
        """A terminal outcome: ledger entry, result, ``extra`` (contacts) and, for
        ``failed`` and ``in_doubt``, a dead letter."""
        p = record.partition
        writes = [
            Write(self.ledger_topic, key.encode(),
                  self.ledger_value(key, result.outcome.value, result.attempts, result.detail,
                                    now_ms),
                  p),
            Write(self.results_topic, record.key, self.codec.encode(
                schemas.ACTION_RESULT, {
                    "command_id": command.command_id, "customer_id": command.customer_id,
                    "automation_id": command.automation_id, "channel": command.channel,
                    "status": result.outcome.value, "detail": result.detail,
                    "attempts": result.attempts, "completed_at": now_ms,
                    "provider_ref": result.provider_ref}), p),
            *extra,
        ]
        if result.outcome not in DEAD_LETTERED:
            return Records(writes)
        letter = self.dead_letter(record, result.outcome.value,
                                  f"{result.outcome.value}: {result.detail}", now_ms)
        return Records(writes + letter.writes, letter.truncated)

    def retry(self, record: Consumed, retry: Retry, now_ms: int) -> Write:
        """The command's copy, unchanged, in the tier that fits its wait: due then."""
        wait_s = max(0.0, retry.wait_s)
        state = replace(retry.state, due_ms=now_ms + int(wait_s * 1000))
        topic = self.retry_topics[tier_for(wait_s)]
        # Record time from the policy clock: ripeness is measured against it.
        received = received_at_of(record.headers)  # kept for the event-to-outcome latency
        headers = state.headers() + ([received_at_header(received)] if received is not None else [])
        return Write(topic, record.key, record.value, record.partition, headers,
                     timestamp_ms=now_ms)
