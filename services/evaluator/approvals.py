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
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import structlog
from aiokafka import AIOKafkaProducer

from signalbox.common import schemas
from signalbox.common.clock import epoch_ms, now_ms
from signalbox.common.codec import AvroCodec, DecodeError
from signalbox.common.settings import Settings
from signalbox.common.topics import APPROVALS
from signalbox.evaluator import metrics
from signalbox.evaluator.compacted import CompactedReader, Entry, Producer
from signalbox.evaluator.engine import ApprovalRequest

log = structlog.get_logger(__name__)
DECIDED_TYPE = "approval.decided"
PENDING = "pending"


class ApprovalConflict(Exception):
    """The approval is already decided."""

    def __init__(self, message: str, approval: Mapping[str, Any]) -> None:
        super().__init__(message)
        self.approval = dict(approval)


def pending_record(request: ApprovalRequest, partition: int) -> dict[str, Any]:
    """A ``signalbox.Approval`` record for a request the engine just made."""
    t = request.trigger
    return {
        "approval_id": request.approval_id, "customer_id": request.customer_id,
        "partition": partition, "automation_id": request.automation_id,
        "automation_version": request.automation_version, "requested_at": request.requested_at,
        "trigger": {"type": t.type, "occurrence": t.occurrence, "facts": dict(t.facts)},
        "summary": request.summary, "command_ids": list(request.command_ids),
        "team": request.team, "status": PENDING,
        "decided_by": None, "decided_at": None, "reason": None,
    }


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


def as_json(record: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(record)
    out["requested_at"] = epoch_ms(record["requested_at"])
    if record.get("decided_at") is not None:
        out["decided_at"] = epoch_ms(record["decided_at"])
    out["trigger"] = {**record["trigger"], "facts": dict(record["trigger"]["facts"])}
    return out


def merge(known: Mapping[str, Any] | None, incoming: Mapping[str, Any]) -> Mapping[str, Any]:
    """The reader's rule, the same on every worker: a decision is final."""
    if known is None or known["status"] == PENDING:
        return incoming
    return known


class ApprovalsService:
    """Reads the approvals topic in full; writes requests, decisions and decided events."""

    def __init__(self, settings: Settings, codec: AvroCodec) -> None:
        kafka = self._kafka = settings.kafka
        self._codec = codec
        self._items: dict[str, Mapping[str, Any]] = {}
        self.topic = kafka.topic(APPROVALS)
        self.reader = CompactedReader(settings, APPROVALS, self._on_batch)
        self._producer_ = Producer(kafka, "ApprovalsService")

    @property
    def _producer(self) -> AIOKafkaProducer:
        return self._producer_.client

    async def start(self) -> None:
        await self._producer_.start()
        await self.reader.start()

    async def stop(self) -> None:
        await self.reader.stop()
        await self._producer_.stop()

    async def ready(self) -> str | None:
        return self.reader.not_ready("approvals")

    def all(self) -> list[dict[str, Any]]:
        return [as_json(r) for _, r in sorted(self._items.items())]

    def get(self, approval_id: str) -> dict[str, Any] | None:
        found = self._items.get(approval_id)
        return None if found is None else as_json(found)

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
                          reason=exc.reason)
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

    async def decide(self, approval_id: str, decision: str, decided_by: str,
                     reason: str | None) -> dict[str, Any]:
        """Record the decision, then tell the engine. KeyError: unknown id;
        :class:`ApprovalConflict`: decided already (here or by a concurrent caller)."""
        known = self._items[approval_id]
        if known["status"] != PENDING:
            raise ApprovalConflict(f"approval {approval_id!r} is already {known['status']}",
                                   as_json(known))
        mine = {**known, "status": decision, "decided_by": decided_by,
                "decided_at": now_ms(), "reason": reason}
        meta = await self._write(approval_id, mine)
        await self.reader.wait_for(meta.partition, meta.offset)
        winner = self._items[approval_id]
        if as_json(winner) != as_json(mine):
            await self._write(approval_id, winner)  # compaction must keep the winner
            raise ApprovalConflict(f"approval {approval_id!r} was {winner['status']} "
                                   "concurrently", as_json(winner))
        event_type = schemas.event_types()[DECIDED_TYPE]
        value = self._codec.encode(schemas.EVENT, decided_event(mine, epoch_ms(
            mine["decided_at"])))
        await self._producer.send_and_wait(
            self._kafka.topic(event_type.topic), key=str(mine["customer_id"]).encode(),
            value=value, partition=int(mine["partition"]))
        log.info("approval_decided", approval_id=approval_id, decision=decision,
                 decided_by=decided_by, customer_id=mine["customer_id"])
        return as_json(mine)

    async def _write(self, approval_id: str, record: Mapping[str, Any]) -> Any:
        value = self._codec.encode(schemas.APPROVAL, record)
        return await self._producer.send_and_wait(self.topic, key=approval_id.encode(),
                                                  value=value)
