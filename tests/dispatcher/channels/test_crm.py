"""The CRM channel against a local HubSpot-format server and a generic REST server."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator

import pytest

from signalbox.common.action_command import Command, CrmCommand
from signalbox.dispatcher.channels.crm import CrmChannel
from signalbox.dispatcher.outcomes import InDoubtError, PermanentError, TransientError
from signalbox.dispatcher.providers import CrmConnection, RestOperation
from signalbox.dispatcher.templates import TemplateStore
from signalbox.testing.fakes.hubspot import FakeHubSpot
from signalbox.testing.fakes.rest import FakeRest
from tests.dispatcher.channels.support import make_command, without_variables


def crm(operation: str, connection: str = "default", customer: str = "cus-1",
        **params: str) -> Command:
    return make_command(CrmCommand(
        operation, params, {"customer_email": "ada@example.com", "customer_name": "Ada",
                            "plan": "pro"}, connection=connection), customer=customer)


@pytest.fixture
def hubspot() -> Iterator[FakeHubSpot]:
    with FakeHubSpot() as server:
        yield server


@pytest.fixture
def rest() -> Iterator[FakeRest]:
    with FakeRest() as server:
        yield server


@pytest.fixture
async def channel(hubspot: FakeHubSpot, rest: FakeRest) -> AsyncIterator[CrmChannel]:
    ch = CrmChannel({
        "default": CrmConnection("default", "hubspot", hubspot.url, token=hubspot.token,
                                 timeout_s=1.0),
        "legacy": CrmConnection(
            "legacy", "rest", f"{rest.url}/api", token="legacy-token",
            headers={"X-Tenant": "acme"}, operations={
                "add_tag": RestOperation("POST", "/contacts/{{ customer_id }}/tags",
                                         {"tag": "{{ tag }}", "by": "signalbox", "n": 1}),
                "update_field": RestOperation("PATCH", "contacts/{{ customer_id }}",
                                              {"fields": [{"name": "{{ field }}",
                                                           "value": "{{ value }}"}]})}),
    }, TemplateStore())
    yield ch
    await ch.aclose()


async def test_tags_upsert_the_contact_and_edit_the_multi_checkbox(
        hubspot: FakeHubSpot, channel: CrmChannel) -> None:
    await channel.send(crm("add_tag", tag="past-due"))
    await channel.send(crm("add_tag", tag="{{ plan }}-customer"))
    await channel.send(crm("add_tag", tag="past-due"))  # again: no change
    [contact] = hubspot.objects("contacts")
    assert contact.properties == {"email": "ada@example.com",
                                  "signalbox_tags": "past-due;pro-customer"}
    delivery = await channel.send(crm("remove_tag", tag="past-due"))
    assert contact.properties["signalbox_tags"] == "pro-customer"
    assert delivery.provider_ref == f"contact:{contact.id}"
    method, path, body = hubspot.calls[0]
    assert (method, path) == ("POST", "/crm/v3/objects/contacts/search")
    assert body["filterGroups"] == [{"filters": [
        {"propertyName": "email", "operator": "EQ", "value": "ada@example.com"}]}]


async def test_update_field(hubspot: FakeHubSpot, channel: CrmChannel) -> None:
    await channel.send(crm("update_field", field="lifecyclestage", value="customer"))
    assert hubspot.objects("contacts")[0].properties["lifecyclestage"] == "customer"


async def test_opportunity_then_stage_moves(hubspot: FakeHubSpot, channel: CrmChannel) -> None:
    command = crm("create_opportunity", name="Upgrade {{ customer_name }}",
                  amount_minor="129900", currency="EUR", pipeline="sales",
                  stage="qualifiedtobuy")
    await channel.send(command)
    again = await channel.send(command)  # a replay finds the deal by its command id
    assert "already created by this command" in again.detail
    [deal] = hubspot.objects("deals")
    [contact] = hubspot.objects("contacts")
    assert deal.properties == {"dealname": "Upgrade Ada", "pipeline": "sales",
                               "dealstage": "qualifiedtobuy", "amount": "1299.00",
                               "deal_currency_code": "EUR",
                               "signalbox_command_id": command.command_id}
    assert deal.contacts == {contact.id}
    await channel.send(crm("move_stage", pipeline="sales", stage="closedwon"))
    assert deal.properties["dealstage"] == "closedwon"
    await channel.send(crm("move_stage", pipeline="renewals", stage="open"))
    [renewal] = [d for d in hubspot.objects("deals") if d.properties["pipeline"] == "renewals"]
    assert renewal.properties["dealstage"] == "open"
    assert renewal.properties["dealname"] == "ada@example.com (renewals)"


async def test_task_and_note_associated_and_created_once(hubspot: FakeHubSpot,
                                                         channel: CrmChannel) -> None:
    task = crm("create_task", title="Call {{ customer_name }}", body="Card declined",
               due_in_days="2")
    await channel.send(task)
    await channel.send(task)
    note = crm("add_note", body="Payment failed for {{ plan }}")
    await channel.send(note)
    await channel.send(note)
    [t], [n], [contact] = (hubspot.objects(k) for k in ("tasks", "notes", "contacts"))
    assert t.properties["hs_task_subject"] == "Call Ada"
    assert t.properties["hs_timestamp"] == "2026-09-23T14:13:20.000Z"  # issued + 2 days
    assert t.properties["hs_task_body"] == f"Card declined\n\n[signalbox {task.command_id}]"
    assert n.properties["hs_note_body"].startswith("Payment failed for pro")
    assert t.contacts == n.contacts == {contact.id}


async def test_hubspot_failures(hubspot: FakeHubSpot, channel: CrmChannel) -> None:
    with pytest.raises(PermanentError, match=r"params\.tag is required"):
        await channel.send(crm("add_tag"))
    hubspot.fail_next(1, 429)
    with pytest.raises(TransientError, match="HTTP 429"):
        await channel.send(crm("add_tag", tag="x"))
    hubspot.fail_next(1, 500, skip=1)  # the search passes, the PATCH fails
    with pytest.raises(TransientError, match=r"PATCH /crm/v3/objects/contacts/.*HTTP 500"):
        await channel.send(crm("add_tag", tag="x"))
    hubspot.hang_next(1)
    with pytest.raises(InDoubtError):
        await channel.send(crm("add_tag", tag="x"))
    hubspot.release()
    bad = CrmChannel({"default": CrmConnection("default", "hubspot", hubspot.url, token="no")},
                     TemplateStore())
    try:
        with pytest.raises(PermanentError, match=r"HTTP 401.*INVALID_AUTHENTICATION"):
            await bad.send(crm("add_tag", tag="x"))
    finally:
        await bad.aclose()
    no_email = without_variables(crm("add_tag", tag="x"), {"customer_email"})
    with pytest.raises(PermanentError, match="no email to find the HubSpot contact"):
        await channel.send(no_email)


async def test_generic_rest_mapping(rest: FakeRest, channel: CrmChannel) -> None:
    command = crm("add_tag", connection="legacy", tag='say "hi", "admin": true')
    delivery = await channel.send(command)
    [r] = rest.recorded
    assert (r.method, r.path) == ("POST", "/api/contacts/cus-1/tags")
    assert json.loads(r.body) == {"tag": 'say "hi", "admin": true', "by": "signalbox", "n": 1}
    assert r.headers["Authorization"] == "Bearer legacy-token"
    assert r.headers["X-Tenant"] == "acme"
    assert r.headers["Idempotency-Key"] == command.command_id
    assert r.headers["Content-Type"] == "application/json"
    assert delivery.provider_ref == f"{rest.url}/items/1"
    await channel.send(crm("update_field", connection="legacy", field="plan", value="pro"))
    assert (rest.recorded[1].method, rest.recorded[1].path) == ("PATCH", "/api/contacts/cus-1")
    await channel.send(crm("add_tag", connection="legacy", customer="../admin?x=1", tag="t"))
    assert rest.recorded[2].path == "/api/contacts/..%2Fadmin%3Fx%3D1/tags"
    assert json.loads(rest.recorded[1].body) == {"fields": [{"name": "plan", "value": "pro"}]}
    assert channel.endpoint(command) == rest.url.removeprefix("http://")


async def test_generic_rest_errors(rest: FakeRest, channel: CrmChannel) -> None:
    with pytest.raises(PermanentError, match=r"operation 'add_note' is not configured"):
        await channel.send(crm("add_note", connection="legacy", body="x"))
    with pytest.raises(PermanentError, match=r"crm connection 'nope' is not configured"):
        await channel.send(crm("add_tag", connection="nope", tag="x"))
    with pytest.raises(PermanentError, match=r"template crm\.legacy\.operations\.update_field"
                                             r"\.body\.fields\[0\]\.value: undefined variable"):
        await channel.send(crm("update_field", connection="legacy", field="plan"))
    with pytest.raises(PermanentError,
                       match=r"template crm\.params\.tag: undefined variable: 'nope'"):
        await channel.send(crm("add_tag", connection="legacy", tag="{{ nope }}"))
    with pytest.raises(PermanentError, match=r"crm\.params\.tag: sandbox violation"):
        await channel.send(crm("add_tag", connection="legacy",
                               tag="{{ ''.__class__.__mro__[1].__subclasses__() }}"))
    rest.down()
    with pytest.raises(TransientError, match="cannot connect"):
        await channel.send(crm("add_tag", connection="legacy", tag="x"))
    rest.up()
    assert rest.recorded == []


async def test_concurrent_commands_for_one_contact(
        hubspot: FakeHubSpot, channel: CrmChannel) -> None:
    await asyncio.gather(*(channel.send(crm("add_tag", tag=f"t{i}")) for i in range(4)))
    [contact] = hubspot.objects("contacts")
    assert contact.properties["email"] == "ada@example.com"
    assert sorted(contact.properties["signalbox_tags"].split(";")) == ["t0", "t1", "t2", "t3"]


async def test_two_replicas_creating_one_contact(hubspot: FakeHubSpot) -> None:
    """Two drivers (no shared lock) racing to create the contact: a 409 is resolved by search."""
    conn = {"default": CrmConnection("default", "hubspot", hubspot.url, token=hubspot.token)}
    a, b = CrmChannel(conn, TemplateStore()), CrmChannel(conn, TemplateStore())
    try:
        for i in range(5):
            email = f"race{i}@example.com"
            commands = [crm("update_field", field=f"f{n}", value="1", email=email)
                        for n in range(2)]
            await asyncio.gather(a.send(commands[0]), b.send(commands[1]))
            [contact] = [c for c in hubspot.objects("contacts") if c.properties["email"] == email]
            assert contact.properties["f0"] == contact.properties["f1"] == "1"
    finally:
        await a.aclose()
        await b.aclose()
    assert hubspot.conflicts > 0  # the race did happen, and was resolved
