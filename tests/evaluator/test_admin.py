"""The admin HTTP API, served by the evaluator's shell, against the real broker."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import httpx
import pytest

from signalbox.common import schemas
from signalbox.common.codec import AvroCodec
from signalbox.common.settings import Settings
from signalbox.common.topics import APPROVALS, EVENTS_USAGE
from signalbox.evaluator.definitions import from_file
from signalbox.evaluator.shell import EvaluatorShell
from tests.evaluator.test_source import FILE
from tests.support.kafka import consume, produce
from tests.support.processes import free_port

pytestmark = pytest.mark.kafka
codec = AvroCodec()
TOKEN = "s3cret-token"


def automation(aid: str, **extra: Any) -> dict[str, Any]:
    return {"id": aid, "version": 1, "name": "Refunds", "trigger": {"type": "payment.failed"},
            "actions": [{"type": "email", "to": "customer", "template": "t"}], **extra}


async def started_shell(settings: Settings) -> EvaluatorShell:
    definitions = from_file(FILE, "test.yaml", schemas.event_types(), settings.teams)
    shell = EvaluatorShell(settings, codec, definitions, definitions.build())
    await shell.start()
    await asyncio.wait_for(shell.source.reader.caught_up.wait(), 30)
    await asyncio.wait_for(shell.approvals.reader.caught_up.wait(), 30)
    return shell


@pytest.fixture
async def api(settings: Settings) -> AsyncIterator[tuple[httpx.AsyncClient, EvaluatorShell]]:
    port = free_port()
    s = replace(settings, evaluator_admin_port=port, admin_token=TOKEN)
    shell = await started_shell(s)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30,
                                     headers={"Authorization": f"Bearer {TOKEN}"}) as client:
            yield client, shell
    finally:
        await shell.stop()


async def test_put_get_disable_and_delete_an_automation(
        api: tuple[httpx.AsyncClient, EvaluatorShell]) -> None:
    client, shell = api
    bad = automation("refunds", trigger={"type": "payment.exploded"})
    r = await client.put("/v1/automations/refunds", json=bad)
    assert r.status_code == 400
    [error] = r.json()["errors"]
    assert error["path"] == "trigger.type" and "payment.exploded" in error["reason"]

    r = await client.put("/v1/automations/refunds", json=automation("other"))
    assert r.status_code == 400 and r.json()["errors"][0]["path"] == "id"

    r = await client.put("/v1/automations/refunds", json=automation("refunds"),
                         headers={"X-Signalbox-Actor": "ada"})
    assert r.status_code == 201, r.text
    assert r.json()["origin"] == "topic" and r.json()["updated_by"] == "ada"
    # Applied by this worker before the answer: the agent's set has it now.
    assert "refunds" in {a.id for a in shell.automations.automations}

    r = await client.post("/v1/automations/refunds/disable")
    assert r.status_code == 200 and r.json()["enabled"] is False
    assert not next(a for a in shell.automations.automations if a.id == "refunds").enabled

    listed = (await client.get("/v1/automations")).json()
    assert {a["id"]: a["origin"] for a in listed["automations"]} == {
        "from-file": "file", "refunds": "topic"}

    assert (await client.delete("/v1/automations/refunds")).status_code == 200
    assert (await client.get("/v1/automations/refunds")).status_code == 404
    r = await client.delete("/v1/automations/from-file")
    assert r.status_code == 409 and "defined in the file" in r.json()["error"]

    # A file automation can be disabled: a topic entry overrides it by id.
    r = await client.post("/v1/automations/from-file/disable")
    assert r.status_code == 200 and r.json()["origin"] == "topic"
    assert [a.enabled for a in shell.automations.automations] == [False]


async def test_every_v1_request_needs_the_bearer_token(
        api: tuple[httpx.AsyncClient, EvaluatorShell]) -> None:
    client, _ = api
    r = await client.get("/v1/automations", headers={"Authorization": "Bearer wrong"})
    assert r.status_code == 401 and r.headers["WWW-Authenticate"] == "Bearer"
    assert (await client.get("/v1/automations")).status_code == 200


def pending(approval_id: str, customer: str, partition: int) -> dict[str, Any]:
    return {
        "approval_id": approval_id, "customer_id": customer, "partition": partition,
        "automation_id": "big-refund", "automation_version": 1,
        "requested_at": 1_790_000_000_000,
        "trigger": {"type": "payment.refunded", "occurrence": "e-1", "facts": {}},
        "summary": "email the customer", "command_ids": ["c1"], "team": None,
        "status": "pending", "decided_by": None, "decided_at": None, "reason": None,
    }


async def test_approve_and_reject_write_the_decision_and_the_decided_event(
        settings: Settings, api: tuple[httpx.AsyncClient, EvaluatorShell]) -> None:
    client, shell = api
    k = settings.kafka
    produce(k.bootstrap_servers, k.topic(APPROVALS), [
        (b"ap-1", codec.encode(schemas.APPROVAL, pending("ap-1", "cus-1", 1))),
        (b"ap-2", codec.encode(schemas.APPROVAL, pending("ap-2", "cus-2", 0)))])
    for _ in range(100):
        if len((await client.get("/v1/approvals?status=pending")).json()["approvals"]) == 2:
            break
        await asyncio.sleep(0.1)
    else:
        raise AssertionError("the pending approvals never showed up")

    r = await client.post("/v1/approvals/ap-1/approve", json={})
    assert r.status_code == 400 and r.json()["errors"][0]["path"] == "decided_by"
    r = await client.post("/v1/approvals/ap-1/approve",
                          json={"decided_by": "ada", "reason": "known customer"})
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "approved" and r.json()["decided_by"] == "ada"
    r = await client.post("/v1/approvals/ap-1/reject", json={"decided_by": "bob"})
    assert r.status_code == 409 and r.json()["approval"]["status"] == "approved"
    r = await client.post("/v1/approvals/ap-2/reject", json={"decided_by": "bob"})
    assert r.status_code == 200
    assert (await client.post("/v1/approvals/nope/reject", json={"decided_by": "x"})
            ).status_code == 404

    assert [a["approval_id"] for a in
            (await client.get("/v1/approvals?status=pending")).json()["approvals"]] == []
    assert (await client.get("/v1/approvals/ap-2")).json()["status"] == "rejected"

    records = consume(k.bootstrap_servers, k.topic(EVENTS_USAGE), 2)
    events = {r.key: (r.partition, codec.decode(schemas.EVENT, r.value)) for r in records}
    partition, approved = events[b"cus-1"]
    assert partition == 1  # the partition the request came from, whatever the partitioner
    assert approved["event_id"] == "approval.decided:ap-1"
    name, payload = approved["payload"]
    assert name == "signalbox.events.ApprovalDecided"
    assert payload == {"approval_id": "ap-1", "decision": "approved", "decided_by": "ada",
                       "reason": "known customer"}
    assert events[b"cus-2"][0] == 0 and events[b"cus-2"][1]["payload"][1]["decision"] == \
        "rejected"
    assert shell.approvals.get("ap-1") is not None
