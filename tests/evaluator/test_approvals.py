"""The approvals topic: requests from the engine, decisions from operators, on the real broker."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from signalbox.common import schemas
from signalbox.common.codec import AvroCodec
from signalbox.common.settings import Settings
from signalbox.common.topics import APPROVALS, EVENTS_USAGE
from signalbox.evaluator.approvals import ApprovalConflict, ApprovalsService, merge
from signalbox.evaluator.engine import ApprovalRequest, TriggerInfo
from tests.support.kafka import consume, drain

pytestmark = pytest.mark.kafka
codec = AvroCodec()


def request(approval_id: str, customer: str = "cus-1") -> ApprovalRequest:
    return ApprovalRequest(
        approval_id=approval_id, customer_id=customer, automation_id="big-refund",
        automation_version=3, requested_at=1_790_000_000_000,
        trigger=TriggerInfo(type="payment.refunded", occurrence="e-1", facts={"amount": "9"}),
        summary="Email the customer about the refund", command_ids=("c1", "c2"), team="finance")


@pytest.fixture
async def two_workers(settings: Settings) -> AsyncIterator[tuple[ApprovalsService, ...]]:
    workers = (ApprovalsService(settings, codec), ApprovalsService(settings, codec))
    for w in workers:
        await w.start()
    try:
        yield workers
    finally:
        for w in workers:
            await w.stop()


async def until_known(worker: ApprovalsService, approval_id: str) -> None:
    for _ in range(200):
        if worker.get(approval_id) is not None:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{approval_id} never arrived")


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


def test_a_decision_is_final_for_every_reader() -> None:
    pending = {"status": "pending", "decided_by": None}
    approved = {"status": "approved", "decided_by": "ada"}
    rejected = {"status": "rejected", "decided_by": "bob"}
    assert merge(None, pending) == pending
    assert merge(pending, approved) == approved
    assert merge(approved, rejected) == approved
    assert merge(approved, pending) == approved  # a late pending never reopens it
