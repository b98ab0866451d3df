"""The approvals topic: requests from the engine, decisions from operators, on the real broker."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from signalbox.common import schemas
from signalbox.common.clock import now_ms
from signalbox.common.codec import AvroCodec
from signalbox.common.settings import Settings
from signalbox.common.topics import APPROVALS, EVENTS_USAGE
from signalbox.evaluator.approvals import (
    ApprovalConflict,
    ApprovalsService,
    merge,
    pending_record,
)
from signalbox.evaluator.engine import ApprovalOutcome, ApprovalRequest, TriggerInfo
from signalbox.evaluator.engine.model import Settlement
from signalbox.testing import eventually
from tests.support.kafka import consume, drain, produce

codec = AvroCodec()


def request(approval_id: str, customer: str = "cus-1",
            expires_at: int | None = None) -> ApprovalRequest:
    return ApprovalRequest(
        approval_id=approval_id, customer_id=customer, automation_id="big-refund",
        automation_version=3, requested_at=1_790_000_000_000,
        trigger=TriggerInfo(type="payment.refunded", occurrence="e-1", facts={"amount": "9"}),
        summary="Email the customer about the refund", command_ids=("c1", "c2"), team="finance",
        expires_at=expires_at)


@pytest.fixture
async def two_workers(settings: Settings) -> AsyncIterator[tuple[ApprovalsService, ...]]:
    workers = (ApprovalsService(settings.kafka, codec), ApprovalsService(settings.kafka, codec))
    for w in workers:
        await w.start()
    try:
        yield workers
    finally:
        for w in workers:
            await w.stop()


async def until_known(worker: ApprovalsService, approval_id: str) -> None:
    async def known() -> dict[str, Any] | None:
        return worker.get(approval_id)

    assert await eventually(known, lambda a: a is not None), f"{approval_id} never arrived"


async def test_a_request_is_seen_by_every_worker_and_written_once(
        settings: Settings, two_workers: tuple[ApprovalsService, ...]) -> None:
    a, b = two_workers
    fut = await a.request(request("ap-1"), partition=1)
    await fut
    await until_known(b, "ap-1")
    seen = b.get("ap-1")
    assert seen is not None
    assert (seen["status"], seen["partition"], seen["automation_version"], seen["team"]) == (
        "pending", 1, 3, "finance")
    assert seen["trigger"] == {"type": "payment.refunded", "occurrence": "e-1",
                               "facts": {"amount": "9"}}
    await until_known(a, "ap-1")
    assert await a.request(request("ap-1"), partition=1) is None  # a redelivery: not again
    k = settings.kafka
    assert len(drain(k.bootstrap_servers, k.topic(APPROVALS), settle=1)) == 1


async def test_concurrent_decisions_one_wins_everywhere(
        settings: Settings, two_workers: tuple[ApprovalsService, ...]) -> None:
    a, b = two_workers
    await (await a.request(request("ap-2", "cus-2"), partition=0))
    await until_known(a, "ap-2")
    await until_known(b, "ap-2")
    results = await asyncio.gather(a.decide("ap-2", "approved", "ada", None),
                                   b.decide("ap-2", "rejected", "bob", "no"),
                                   return_exceptions=True)
    conflicts = [r for r in results if isinstance(r, ApprovalConflict)]
    winners = [r for r in results if isinstance(r, dict)]
    assert len(conflicts) == 1 and len(winners) == 1
    winner = winners[0]
    assert conflicts[0].approval["status"] == winner["status"]
    for worker in (a, b):
        assert worker.get("ap-2") == winner

    # Exactly one approval.decided event, the winner's, on the request's partition.
    k = settings.kafka
    [event] = consume(k.bootstrap_servers, k.topic(EVENTS_USAGE), 1)
    assert len(drain(k.bootstrap_servers, k.topic(EVENTS_USAGE), settle=1)) == 1
    assert event.partition == 0 and event.key == b"cus-2"
    payload = codec.decode(schemas.EVENT, event.value)["payload"][1]
    assert payload["decision"] == winner["status"]
    # The topic's last record for the key is the winner's, so compaction keeps it.
    records = drain(k.bootstrap_servers, k.topic(APPROVALS), settle=1)
    last = [r for r in records if r.key == b"ap-2"][-1]
    assert codec.decode(schemas.APPROVAL, last.value)["status"] == winner["status"]


def test_a_decision_is_final_for_every_reader_and_a_settlement_more_so() -> None:
    pending = {"status": "pending", "decided_by": None, "settled_at": None}
    approved = {"status": "approved", "decided_by": "ada", "settled_at": None}
    rejected = {"status": "rejected", "decided_by": "bob", "settled_at": None}
    assert merge(None, pending) == pending
    assert merge(pending, approved) == approved
    assert merge(approved, rejected) == approved
    assert merge(approved, pending) == approved  # a late pending never reopens it
    # The evaluator's settlement is what happened to the held actions: it stands.
    applied = {**approved, "settled_at": 5}
    expired = {"status": "expired", "decided_by": None, "settled_at": 4}
    assert merge(approved, applied) == applied
    assert merge(approved, expired) == expired  # expired before the decision reached it
    assert merge(expired, approved) == expired
    assert merge(applied, {**applied, "settled_at": 9}) == applied


def decided(approval_id: str, customer: str, partition: int, decision: str,
            settled: bool = False) -> tuple[bytes, bytes]:
    """An approvals-topic record as the admin API writes a decision (and, ``settled``,
    as the evaluator writes it once applied)."""
    at = now_ms() - 60_000
    record = {**pending_record(request(approval_id, customer), partition), "status": decision,
              "decided_by": "ada", "decided_at": at, "reason": None,
              "settled_at": at + 1 if settled else None, "released": settled}
    return approval_id.encode(), codec.encode(schemas.APPROVAL, record)


async def test_a_decision_recorded_without_its_event_is_sent_again_by_a_starting_worker(
        settings: Settings) -> None:
    """The crash point: the admin API recorded decisions and died before writing their
    approval.decided events. A worker that starts sends them; settled ones it leaves."""
    k = settings.kafka
    produce(k.bootstrap_servers, k.topic(APPROVALS), [
        decided("ap-lost", "cus-1", 1, "approved"),
        decided("ap-lost-2", "cus-2", 0, "rejected"),
        decided("ap-done", "cus-3", 0, "approved", settled=True),
        (b"ap-open", codec.encode(schemas.APPROVAL, pending_record(request("ap-open"), 0)))])
    worker = ApprovalsService(settings.kafka, codec, resend_every_s=3600)  # start-up only
    await worker.start()
    try:
        events = await asyncio.to_thread(consume, k.bootstrap_servers, k.topic(EVENTS_USAGE), 2)
        got = {e.key: (e.partition, codec.decode(schemas.EVENT, e.value)) for e in events}
        assert len(await asyncio.to_thread(
            drain, k.bootstrap_servers, k.topic(EVENTS_USAGE), 1)) == 2  # once each
        assert {key: (p, e["event_id"], e["payload"][1]["decision"])
                for key, (p, e) in got.items()} == {
            b"cus-1": (1, "approval.decided:ap-lost", "approved"),
            b"cus-2": (0, "approval.decided:ap-lost-2", "rejected")}
        # Once the evaluator has settled them, nothing is sent again.
        decisions: list[tuple[str, str, Settlement]] = [("ap-lost", "cus-1", "approved"),
                                                        ("ap-lost-2", "cus-2", "rejected")]
        for aid, customer, status in decisions:
            await (await worker.settle(ApprovalOutcome(
                aid, customer, status, now_ms(), status == "approved"), 0))
        await worker.reader.read_to_end()
        assert await worker.resend_unsettled(0) == 0
        seen = worker.get("ap-lost")
        assert seen is not None and seen["released"] and seen["settled_at"] is not None
    finally:
        await worker.stop()


async def test_an_expired_approval_shows_as_expired_and_cannot_be_decided(
        settings: Settings, two_workers: tuple[ApprovalsService, ...]) -> None:
    a, b = two_workers
    await (await a.request(request("ap-old", expires_at=now_ms() - 1000), partition=0))
    await (await a.request(request("ap-new", "cus-2", expires_at=now_ms() + 3_600_000), 1))
    await until_known(b, "ap-old")
    await until_known(b, "ap-new")
    # Past its expiry it is no longer pending, even before the evaluator's tick settles it.
    assert [(x["approval_id"], x["status"]) for x in b.all()] == [
        ("ap-new", "pending"), ("ap-old", "expired")]
    with pytest.raises(ApprovalConflict, match="already expired"):
        await b.decide("ap-old", "approved", "ada", None)
    # The evaluator settles it: expired, by its on_expiry, for every reader.
    await (await a.settle(ApprovalOutcome("ap-old", "cus-1", "expired", now_ms(), False), 0))
    async def old() -> dict[str, Any] | None:
        return b.get("ap-old")

    found = await eventually(old, lambda f: f is not None and f["settled_at"] is not None)
    assert found is not None and (found["status"], found["released"], found["decided_by"]) == (
        "expired", False, None)
    # A decision's event that reaches the evaluator after that is refused, and says why.
    problem = await b.verify("ap-old", "approved")
    assert problem is not None and "settled as expired before this 'approved'" in problem
    # An approval the customer's state dropped (its cap) is no longer listed as pending.
    await (await a.settle(ApprovalOutcome("ap-new", "cus-2", "dropped", now_ms(), False), 1))
    async def statuses() -> list[str]:
        return [x["status"] for x in b.all()]

    await eventually(statuses, lambda now: now == ["dropped", "expired"])
    assert [(x["approval_id"], x["status"]) for x in b.all()] == [
        ("ap-new", "dropped"), ("ap-old", "expired")]
    with pytest.raises(ApprovalConflict, match="already dropped"):
        await b.decide("ap-new", "approved", "ada", None)
    k = settings.kafka
    assert drain(k.bootstrap_servers, k.topic(EVENTS_USAGE), settle=1) == []
