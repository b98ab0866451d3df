"""Approvals: held actions wait on the compacted ``approvals`` topic for an operator.

The engine keeps the held actions in the customer's state and returns an
``ApprovalRequest``; the agent writes it here as *pending*. An operator decides
through the admin API: the decision is written to the approvals topic, and an
``approval.decided`` event goes to the customer's partition of the event topic,
where the engine releases (approved) or drops (rejected) the held actions.

Every worker reads the whole approvals topic (like the automations topic), so
any worker's admin API can answer for any approval. The first decision on the
topic wins, by the same rule on every reader; a losing concurrent decision gets
409 and re-asserts the winner, so compaction keeps the winning record.

**Ending.** The engine ends a held approval by a decision, by its expiry
(``expires_at``, settled by ``on_expiry``) or by the state's cap; it reports each
(``Decision.settled``) and the worker writes the approval again with ``settled_at``
before the customer's state is stored. A settled record is final on every reader.

**A decision survives a crash.** A decision is recorded on the topic first, then its
``approval.decided`` event is written; a process that dies in between leaves a
decision without a settlement. Every worker sends the event again for such
decisions once it has read the topic (at start-up) and every ``resend_every_s``
for those older than :data:`RESEND_AFTER_MS`. The event's id is fixed per approval
and the engine settles an approval once (a repeat finds nothing held), so a
decision is recorded once and applied once, wherever the crash fell.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping, Sequence
from typing import Any

import structlog
from aiokafka import AIOKafkaProducer

from signalbox.common import schemas
from signalbox.common.clock import epoch_ms, now_ms
from signalbox.common.codec import AvroCodec, DecodeError
from signalbox.common.errors import SignalboxError
from signalbox.common.settings import KafkaSettings
from signalbox.common.topics import APPROVALS
from signalbox.evaluator import metrics
from signalbox.evaluator.compacted import CompactedReader, Entry, Producer
from signalbox.evaluator.engine import ApprovalOutcome, ApprovalRequest, PendingApproval

log = structlog.get_logger(__name__)
DECIDED_TYPE = "approval.decided"
PENDING = "pending"
DECISIONS = ("approved", "rejected")
#: An operator's decision the evaluator has not settled this long after is sent to it
#: again (the admin API writes the event right after the decision: well within this).
RESEND_AFTER_MS = 30_000
RESEND_EVERY_S = 30.0
_TIMES = ("requested_at", "decided_at", "expires_at", "settled_at")


class ApprovalConflict(SignalboxError):
    """The approval is already decided."""

    what = "approval"

    def __init__(self, message: str, approval: Mapping[str, Any]) -> None:
        super().__init__(message)
        self.approval = dict(approval)


def pending_record(request: ApprovalRequest, partition: int) -> dict[str, Any]:
    """A ``signalbox.Approval`` record for a request the engine just made."""
    return _record(request.approval_id, request.customer_id, partition, request,
                   request.command_ids)


def _record(approval_id: str, customer_id: str, partition: int,
            held: ApprovalRequest | PendingApproval, command_ids: Sequence[str]
            ) -> dict[str, Any]:
    t = held.trigger
    return {
        "approval_id": approval_id, "customer_id": customer_id,
        "partition": partition, "automation_id": held.automation_id,
        "automation_version": held.automation_version, "requested_at": held.requested_at,
        "trigger": {"type": t.type, "occurrence": t.occurrence, "facts": dict(t.facts)},
        "summary": held.summary, "command_ids": list(command_ids),
        "team": held.team, "status": PENDING,
        "decided_by": None, "decided_at": None, "reason": None,
        "expires_at": held.expires_at,
        "on_expiry": None if held.expires_at is None else held.on_expiry,
        "settled_at": None, "released": False,
    }


def settled_record(outcome: ApprovalOutcome, partition: int,
                   known: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The record of an approval the engine settled (``None``: nothing to write, the
    engine held nothing and the topic knows nothing of it)."""
    if outcome.held is not None:
        base = _record(outcome.approval_id, outcome.customer_id, partition, outcome.held,
                       [c.command_id for c in outcome.held.commands])
    elif known is not None:
        base = dict(known)
    else:
        return None
    decided = outcome.status in DECISIONS
    return {**base, "status": outcome.status,
            "decided_by": outcome.decided_by if decided else None,
            "decided_at": outcome.at if decided else None,
            "reason": outcome.reason if decided else None,
            "settled_at": outcome.at, "released": outcome.released}


def decided_event(approval: Mapping[str, Any], at: int) -> dict[str, Any]:
    """The ``signalbox.Event`` that tells the engine; its id is fixed per approval, so a
    retried write is a duplicate the engine ignores."""
    return {
        "event_id": f"{DECIDED_TYPE}:{approval['approval_id']}",
        "customer_id": approval["customer_id"], "occurred_at": at, "received_at": at,
        "source": "admin-api", "customer": None, "attributes": {},
        "payload": (schemas.event_types()[DECIDED_TYPE].record, {
            "approval_id": approval["approval_id"], "decision": approval["status"],
            "decided_by": approval["decided_by"], "reason": approval["reason"]}),
    }


def as_json(record: Mapping[str, Any], now: int | None = None) -> dict[str, Any]:
    """The admin API's view; with ``now``, a pending approval past its expiry shows as
    expired (it can no longer be decided; the evaluator settles it at its next tick)."""
    out = dict(record)
    for name in _TIMES:
        if record.get(name) is not None:
            out[name] = epoch_ms(record[name])
    out["trigger"] = {**record["trigger"], "facts": dict(record["trigger"]["facts"])}
    if now is not None and expired(out, now):
        out["status"] = "expired"
    return out


def expired(record: Mapping[str, Any], now: int) -> bool:
    """Pending and past its expiry (times as epoch ms)."""
    return record["status"] == PENDING and record.get("expires_at") is not None \
        and now >= record["expires_at"]


def merge(known: Mapping[str, Any] | None, incoming: Mapping[str, Any]) -> Mapping[str, Any]:
    """The reader's rule, the same on every worker: the evaluator's settlement is final;
    before it, the first decision is."""
    if known is None or known.get("settled_at") is not None:
        return incoming if known is None else known
    if incoming.get("settled_at") is not None or known["status"] == PENDING:
        return incoming
    return known


def _decision(record: Mapping[str, Any]) -> tuple[Any, ...]:
    return record["status"], record["decided_by"], record["decided_at"], record["reason"]


class ApprovalsService:
    """Reads the approvals topic in full; writes requests, decisions and decided events."""

    def __init__(self, kafka: KafkaSettings, codec: AvroCodec,
                 resend_every_s: float = RESEND_EVERY_S) -> None:
        self._kafka = kafka
        self.resend_every_s = resend_every_s
        self._resending: asyncio.Task[None] | None = None
        self._codec = codec
        self._items: dict[str, Mapping[str, Any]] = {}
        self.topic = kafka.topic(APPROVALS)
        self.reader = CompactedReader(kafka, APPROVALS, self._on_batch)
        self._producer_ = Producer(kafka, "ApprovalsService")

    @property
    def _producer(self) -> AIOKafkaProducer:
        return self._producer_.client

    async def start(self) -> None:
        await self._producer_.start()
        await self.reader.start()
        self._resending = asyncio.create_task(self._resend_loop())

    async def stop(self) -> None:
        if self._resending is not None:
            self._resending.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._resending
        await self.reader.stop()
        await self._producer_.stop()

    async def ready(self) -> str | None:
        return self.reader.not_ready("approvals")

    def all(self) -> list[dict[str, Any]]:
        now = now_ms()
        return [as_json(r, now) for _, r in sorted(self._items.items())]

    def get(self, approval_id: str) -> dict[str, Any] | None:
        found = self._items.get(approval_id)
        return None if found is None else as_json(found, now_ms())

    def _on_batch(self, entries: Sequence[Entry]) -> None:
        for entry in entries:
            key = (entry.key or b"").decode("utf-8", "replace")
            if entry.value is None:
                self._items.pop(key, None)
                continue
            try:
                record = self._codec.decode(schemas.APPROVAL, entry.value)
            except DecodeError as exc:
                log.error("approval_record_unreadable", approval_id=key, offset=entry.offset,
                          reason=exc.why)
                continue
            self._items[key] = merge(self._items.get(key), record)
        metrics.APPROVALS_PENDING.set(
            sum(1 for r in self._items.values() if r["status"] == PENDING))

    async def verify(self, approval_id: str, decision: str) -> str | None:
        """Why an ``approval.decided`` event is not backed by a decision on the approvals
        topic (``None``: it is). Only the admin API writes decisions there, so an event
        any other producer wrote cannot release held actions. The decision may not have
        reached this worker's reader yet (the admin API may run on another worker): the
        topic is read to its end once before saying no."""
        if self._decided(approval_id, decision):
            return None
        try:
            await self.reader.read_to_end()
        except TimeoutError:
            return "the approvals topic could not be read to its end in time"
        if self._decided(approval_id, decision):
            return None
        known = self._items.get(approval_id)
        if known is not None and known.get("settled_at") is not None:
            return (f"approval {approval_id!r} was settled as {known['status']} before this "
                    f"{decision!r} reached the evaluator (it expired, or the customer's state "
                    "dropped it, first): nothing is released")
        status = "unknown" if known is None else f"{known['status']}"
        return (f"approval {approval_id!r} is {status} on the approvals topic, not "
                f"{decision!r}: a decision comes only from the admin API")

    def _decided(self, approval_id: str, decision: str) -> bool:
        known = self._items.get(approval_id)
        return known is not None and known["status"] == decision

    async def request(self, request: ApprovalRequest, partition: int) -> Any:
        """Send the pending record; returns a future the caller awaits before it stores
        the customer's state. A request already on the topic is not written again, so a
        redelivered input never turns a decided approval back into a pending one."""
        if request.approval_id in self._items:
            return None
        value = self._codec.encode(schemas.APPROVAL, pending_record(request, partition))
        log.info("approval_requested", approval_id=request.approval_id,
                 customer_id=request.customer_id, automation_id=request.automation_id)
        return await self._producer.send(self.topic, key=request.approval_id.encode(),
                                         value=value)

    async def settle(self, outcome: ApprovalOutcome, partition: int) -> Any:
        """Record how the engine ended an approval; returns a future the caller awaits
        before it stores the customer's state (``None``: nothing to write)."""
        known = self._items.get(outcome.approval_id)
        if known is not None and known.get("settled_at") is not None:
            return None  # a redelivered input: settled already
        record = settled_record(outcome, partition, known)
        if record is None:
            return None
        log.info("approval_settled", approval_id=outcome.approval_id, status=outcome.status,
                 released=outcome.released, customer_id=outcome.customer_id)
        return await self._producer.send(self.topic, key=outcome.approval_id.encode(),
                                         value=self._codec.encode(schemas.APPROVAL, record))

    async def decide(self, approval_id: str, decision: str, decided_by: str,
                     reason: str | None) -> dict[str, Any]:
        """Record the decision, then tell the engine. KeyError: unknown id;
        :class:`ApprovalConflict`: decided, expired or dropped already (here or by a
        concurrent caller)."""
        known = self._items[approval_id]
        now = now_ms()
        view = as_json(known, now)
        if view["status"] != PENDING:
            raise ApprovalConflict(f"approval {approval_id!r} is already {view['status']}",
                                   view)
        mine = {**known, "status": decision, "decided_by": decided_by,
                "decided_at": now, "reason": reason}
        meta = await self._write(approval_id, mine)
        await self.reader.wait_for(meta.partition, meta.offset)
        winner = self._items[approval_id]
        if _decision(as_json(winner)) != _decision(as_json(mine)):
            await self._write(approval_id, winner)  # compaction must keep the winner
            raise ApprovalConflict(f"approval {approval_id!r} was {winner['status']} "
                                   "concurrently", as_json(winner))
        await self._send_decided(mine)
        log.info("approval_decided", approval_id=approval_id, decision=decision,
                 decided_by=decided_by, customer_id=mine["customer_id"])
        return as_json(mine)

    async def _send_decided(self, record: Mapping[str, Any]) -> None:
        event_type = schemas.event_types()[DECIDED_TYPE]
        value = self._codec.encode(schemas.EVENT, decided_event(record, epoch_ms(
            record["decided_at"])))
        await self._producer.send_and_wait(
            self._kafka.topic(event_type.topic), key=str(record["customer_id"]).encode(),
            value=value, partition=int(record["partition"]))

    async def resend_unsettled(self, older_than_ms: int) -> int:
        """Send ``approval.decided`` again for every decision on the topic the evaluator
        has not settled, decided at least ``older_than_ms`` ago; returns how many."""
        cutoff = now_ms() - older_than_ms
        due = [r for r in self._items.values() if r["status"] in DECISIONS
               and r.get("settled_at") is None and epoch_ms(r["decided_at"]) <= cutoff]
        for record in due:
            await self._send_decided(record)
            metrics.DECISIONS_RESENT.inc()
            log.info("approval_decision_resent", approval_id=record["approval_id"],
                     decision=record["status"], customer_id=record["customer_id"])
        return len(due)

    async def _resend_loop(self) -> None:
        """At start-up (the topic read to its end) every unsettled decision, then every
        ``resend_every_s`` those older than :data:`RESEND_AFTER_MS`."""
        await self.reader.caught_up.wait()
        older_than = 0
        while True:
            try:
                await self.resend_unsettled(older_than)
            except Exception as exc:  # the broker away: the next round tries again
                log.warning("approval_resend_failed", error=f"{type(exc).__name__}: {exc}")
            older_than = RESEND_AFTER_MS
            await asyncio.sleep(self.resend_every_s)

    async def _write(self, approval_id: str, record: Mapping[str, Any]) -> Any:
        value = self._codec.encode(schemas.APPROVAL, record)
        return await self._producer.send_and_wait(self.topic, key=approval_id.encode(),
                                                  value=value)
