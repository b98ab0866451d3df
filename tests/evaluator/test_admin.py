"""The admin HTTP API, served by the evaluator's shell, against the real broker."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from openapi_spec_validator import validate
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.core.result import Ok

from signalbox.common import schemas
from signalbox.common.codec import AvroCodec
from signalbox.common.settings import Settings, SettingsError
from signalbox.common.topics import APPROVALS, EVENTS_USAGE
from signalbox.evaluator.admin_openapi import document
from signalbox.evaluator.definitions import from_file
from signalbox.evaluator.shell import EvaluatorShell
from signalbox.testing import eventually, free_port, service_env
from signalbox.testing.processes import ServiceProcess
from tests.evaluator.test_source import FILE
from tests.support.kafka import consume, produce
from tests.support.templates import templates_check

codec = AvroCodec()
TOKEN = "s3cret-token"
ACTOR = "X-Signalbox-Actor"
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance]


def automation(aid: str, **extra: Any) -> dict[str, Any]:
    return {"id": aid, "version": 1, "name": "Refunds", "trigger": {"type": "payment.failed"},
            "actions": [{"type": "email", "to": "customer", "template": "t"}], **extra}


async def started_shell(settings: Settings) -> EvaluatorShell:
    # Its ops port free too: another test worker may hold the default 8081.
    settings = replace(settings, evaluator=replace(settings.evaluator, port=free_port()))
    definitions = from_file(FILE, "test.yaml", schemas.event_types(), settings.evaluator.teams,
                            templates_check())
    shell = EvaluatorShell(settings.kafka, settings.evaluator, settings.bind_host, codec,
                           definitions, definitions.build())
    await shell.start()
    await asyncio.wait_for(shell.source.reader.caught_up.wait(), 30)
    await asyncio.wait_for(shell.approvals.reader.caught_up.wait(), 30)
    return shell


@pytest.fixture
async def api(settings: Settings) -> AsyncIterator[tuple[httpx.AsyncClient, EvaluatorShell]]:
    port = free_port()
    s = replace(settings, evaluator=replace(settings.evaluator, admin_port=port, admin_token=TOKEN))
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
    async with httpx.AsyncClient(base_url=client.base_url, timeout=30) as anonymous:
        # Every path but the description needs it, unknown ones too.
        for path in ("/v1/approvals", "/v1/nothing", "/V1/automations", "//v1/automations"):
            assert (await anonymous.get(path)).status_code == 401, path
        described = await anonymous.get("/openapi.json")
    assert described.status_code == 200 and described.json() == document(token_required=True)


def test_the_evaluator_refuses_to_serve_the_admin_api_beyond_loopback_without_a_token(
        settings: Settings) -> None:
    definitions = from_file(FILE, "test.yaml", schemas.event_types(), settings.evaluator.teams,
                            templates_check())
    with pytest.raises(SettingsError, match=r"^SIGNALBOX_ADMIN_TOKEN: required, because "
                                            r"SIGNALBOX_BIND_HOST is '0\.0\.0\.0'"):
        EvaluatorShell(settings.kafka, settings.evaluator, "0.0.0.0", codec, definitions,
                       definitions.build())


def test_the_description_is_valid_openapi_3_1() -> None:
    for token_required in (True, False):
        doc = document(token_required)
        validate(doc)
        assert doc["openapi"] == "3.1.0"
        assert ("security" in doc) is token_required
    approval = doc["components"]["schemas"]["Approval"]
    # From schemas/avro/approval.avsc, not written twice.
    status = approval["properties"]["status"]
    assert (status["type"], status["enum"]) == (
        "string", ["pending", "approved", "rejected", "expired", "dropped"])
    decide = doc["paths"]["/v1/approvals/{id}/approve"]["post"]
    assert [p["name"] for p in decide["parameters"] if p["required"]] == ["id", ACTOR]
    assert "decided_by" not in doc["components"]["schemas"]["Decision"]["properties"]


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
    async def pending_count() -> int:
        return len((await client.get("/v1/approvals?status=pending")).json()["approvals"])

    assert await eventually(pending_count, lambda n: n == 2) == 2, \
        "the pending approvals never showed up"

    r = await client.post("/v1/approvals/ap-1/approve", json={})
    assert r.status_code == 400 and r.json()["errors"] == [
        {"path": ACTOR, "reason": "required: who decides"}]
    # The body cannot name someone else: who decides is the authenticated actor.
    r = await client.post("/v1/approvals/ap-1/approve", json={"decided_by": "mallory"},
                          headers={ACTOR: "ada"})
    assert r.status_code == 400 and r.json()["errors"][0]["path"] == "decided_by"
    assert "authenticated actor" in r.json()["errors"][0]["reason"]
    r = await client.post("/v1/approvals/ap-1/approve", json={}, headers={ACTOR: "x" * 201})
    assert r.status_code == 400 and r.json()["errors"][0]["path"] == ACTOR
    assert (await client.get("/v1/approvals/ap-1")).json()["status"] == "pending"

    r = await client.post("/v1/approvals/ap-1/approve", json={"reason": "known customer"},
                          headers={ACTOR: "ada"})
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "approved" and r.json()["decided_by"] == "ada"
    r = await client.post("/v1/approvals/ap-1/reject", headers={ACTOR: "bob"})
    assert r.status_code == 409 and r.json()["approval"]["status"] == "approved"
    r = await client.post("/v1/approvals/ap-2/reject", headers={ACTOR: "bob"})
    assert r.status_code == 200 and r.json()["decided_by"] == "bob"
    assert (await client.post("/v1/approvals/nope/reject", headers={ACTOR: "x"})
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


@pytest.fixture
def live_admin(settings: Settings, tmp_path: Path) -> Iterator[str]:
    """``signalbox evaluator`` as a process, admin token on; the admin API's base URL."""
    port, admin_port = free_port(), free_port()
    env = service_env(settings, EVALUATOR_PORT=str(port), EVALUATOR_ADMIN_PORT=str(admin_port),
                      EVALUATOR_STORE="memory://", EVALUATOR_DATA_DIR=str(tmp_path / "data"),
                      SIGNALBOX_ADMIN_TOKEN=TOKEN)
    proc = ServiceProcess("evaluator", env, tmp_path, port).start()
    try:
        proc.wait_ready()
        yield f"http://127.0.0.1:{admin_port}"
    finally:
        assert proc.stop() == 0, proc.tail()


def test_schemathesis_against_the_live_admin_api(live_admin: str, settings: Settings) -> None:
    """Requests generated from the description, valid and invalid, for every operation:
    no server error, and every answer as described."""
    k = settings.kafka
    produce(k.bootstrap_servers, k.topic(APPROVALS), [
        (b"ap-live", codec.encode(schemas.APPROVAL, pending("ap-live", "cus-1", 0)))])
    auth = {"Authorization": f"Bearer {TOKEN}"}
    schema = schemathesis.openapi.from_dict(httpx.get(f"{live_admin}/openapi.json").json())
    statuses: Counter[str] = Counter()
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), result  # the description's operations all load
        operation = result.ok()
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            @hypothesis_settings(max_examples=25, deadline=None, database=None,
                                 suppress_health_check=list(HealthCheck))
            @given(case=operation.as_strategy(generation_mode=mode))
            def run(case: Any) -> None:
                case.headers = {**(case.headers or {}), **auth}
                response = case.call(base_url=live_admin, timeout=30)
                statuses[f"{case.method} {response.status_code}"] += 1
                case.validate_response(response, checks=CHECKS, headers=auth)

            run()

    print(f"\nschemathesis against the live admin API: {dict(sorted(statuses.items()))}")
    assert sum(statuses.values()) > 200
    assert not [s for s in statuses if s.split()[1].startswith("5")]
    # The seeded approval is still pending unless a generated request decided it by name.
    found = httpx.get(f"{live_admin}/v1/approvals/ap-live", headers=auth).json()
    assert found["status"] == "pending"


async def test_bodies_are_bounded_and_answered_as_json(
        api: tuple[httpx.AsyncClient, EvaluatorShell]) -> None:
    client, _ = api
    huge = automation("huge", name="x" * 300_000)
    r = await client.put("/v1/automations/huge", json=huge)
    assert r.status_code == 413 and r.json() == {"error": "body larger than 262144 bytes"}
    # YAML keys need not be strings; a reason is kept on the approval and its event.
    r = await client.post("/v1/approvals/any/approve", content="{1: yes, reason: [x]}",
                          headers={ACTOR: "ada", "Content-Type": "application/yaml"})
    assert r.status_code == 400 and r.json()["errors"] == [
        {"path": "1", "reason": "unknown field"}, {"path": "reason", "reason": "expected a string"}]
    r = await client.post("/v1/approvals/any/approve", json={"reason": "x" * 2001},
                          headers={ACTOR: "ada"})
    assert r.status_code == 400
    assert r.json()["errors"] == [{"path": "reason",
                                   "reason": "reason longer than 2000 characters (2001)"}]
