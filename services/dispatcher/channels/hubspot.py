"""CRM changes through HubSpot's public CRM v3 API (bearer token auth).

The customer's contact is found by email (``POST /crm/v3/objects/contacts/search``)
and created when missing (upsert). Per operation:

* ``add_tag`` / ``remove_tag``: the tag set lives in a multi-checkbox contact
  property (``tag_property``, values joined by ``;``), written with ``PATCH``;
* ``update_field``: ``PATCH`` of one contact property;
* ``move_stage``: the contact's newest deal in ``pipeline`` gets ``dealstage``
  (a deal is created in that stage when the contact has none there);
* ``create_opportunity``: a deal (``dealname``, ``amount``, ``deal_currency_code``,
  ``pipeline``, ``dealstage``) associated with the contact;
* ``create_task`` / ``add_note``: a task or note object associated with the contact.

Idempotency by command id: deals carry it in a property (``command_id_property``)
and tasks and notes end with a ``[signalbox <command id>]`` marker; before
creating one, the driver searches for an object that already carries the id, so
an operator's replay of an in-doubt command does not create a second one. Tag
and field updates set a value, which is idempotent by nature.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import httpx

from signalbox.common.action_command import Command, CrmCommand
from signalbox.dispatcher.channels.base import action_of
from signalbox.dispatcher.channels.provider_http import HttpRefused, call
from signalbox.dispatcher.outcomes import Delivery, PermanentError, TransientError
from signalbox.dispatcher.providers import CrmConnection

# HubSpot-defined association type ids, from the object to a contact.
TO_CONTACT = {"deals": 3, "notes": 202, "tasks": 204}


def _iso(epoch_ms: int) -> str:
    return datetime.fromtimestamp(epoch_ms / 1000, UTC).isoformat(
        timespec="milliseconds").replace("+00:00", "Z")


def marker(command: Command) -> str:
    return f"[signalbox {command.command_id}]"


class HubSpot:
    def __init__(self, connection: CrmConnection, client: httpx.AsyncClient) -> None:
        self._c = connection
        self._client = client
        self._headers = {"Authorization": f"Bearer {connection.token}", **connection.headers}
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = \
            weakref.WeakValueDictionary()

    async def _call(self, method: str, path: str, body: Mapping[str, Any] | None = None,
                    idempotency_key: str | None = None) -> dict[str, Any]:
        headers = dict(self._headers)
        if idempotency_key:
            headers["Idempotency-Key"] = idempotency_key
        response = await call(self._client, method, f"{self._c.base_url}{path}",
                              f"crm {self._c.name} {method} {path}", json=body,
                              headers=headers, timeout=self._c.timeout_s)
        data = response.json() if response.content else {}
        return data if isinstance(data, dict) else {}

    async def _search(self, kind: str, filters: list[dict[str, str]],
                      properties: list[str]) -> dict[str, Any] | None:
        found = await self._call("POST", f"/crm/v3/objects/{kind}/search", {
            "filterGroups": [{"filters": filters}], "properties": properties,
            "sorts": [{"propertyName": "createdate", "direction": "DESCENDING"}], "limit": 1})
        results = found.get("results") or []
        return results[0] if results else None

    async def _contact(self, email: str) -> dict[str, Any]:
        props = ["email", self._c.tag_property]
        found = await self._search(
            "contacts", [{"propertyName": "email", "operator": "EQ", "value": email}], props)
        if found is not None:
            return found
        try:
            return await self._call("POST", "/crm/v3/objects/contacts",
                                    {"properties": {"email": email}})
        except HttpRefused as exc:
            if exc.status != 409:
                raise
        # Created meanwhile by a concurrent command for the same customer: use that one.
        found = await self._search(
            "contacts", [{"propertyName": "email", "operator": "EQ", "value": email}], props)
        if found is None:
            raise TransientError(f"crm {self._c.name}: contact {email} exists (409) but "
                                 f"is not found yet")
        return found

    async def _update_contact(self, contact: Mapping[str, Any],
                              properties: Mapping[str, str]) -> Delivery:
        await self._call("PATCH", f"/crm/v3/objects/contacts/{contact['id']}",
                         {"properties": dict(properties)})
        return Delivery(provider_ref=f"contact:{contact['id']}",
                        detail=f"HubSpot contact {contact['id']}: set "
                               f"{', '.join(sorted(properties))}")

    async def _create_once(self, command: Command, kind: str, contact: Mapping[str, Any],
                           properties: Mapping[str, str], idempotency: dict[str, str]) -> Delivery:
        existing = await self._search(kind, [idempotency], ["hs_object_id"])
        if existing is not None:
            return Delivery(provider_ref=f"{kind}:{existing['id']}",
                            detail=f"HubSpot {kind} {existing['id']} already created by this "
                                   f"command")
        created = await self._call("POST", f"/crm/v3/objects/{kind}", {
            "properties": dict(properties),
            "associations": [{"to": {"id": str(contact["id"])}, "types": [
                {"associationCategory": "HUBSPOT_DEFINED",
                 "associationTypeId": TO_CONTACT[kind]}]}],
        }, idempotency_key=command.command_id)
        return Delivery(provider_ref=f"{kind}:{created.get('id')}",
                        detail=f"HubSpot {kind} {created.get('id')} created for contact "
                               f"{contact['id']}")

    def _deal(self, command: Command, p: Mapping[str, str], name: str) -> dict[str, str]:
        props = {"dealname": name, "pipeline": p.get("pipeline") or "default",
                 "dealstage": _need(p, "stage", command),
                 self._c.command_id_property: command.command_id}
        if p.get("amount_minor"):
            props["amount"] = f"{int(p['amount_minor']) / 100:.2f}"
        if p.get("currency"):
            props["deal_currency_code"] = p["currency"]
        return props

    def _edit_tags(self, op: str, contact: Mapping[str, Any], tag: str) -> dict[str, str]:
        current = (contact.get("properties") or {}).get(self._c.tag_property) or ""
        tags = [t for t in current.split(";") if t]
        if op == "add_tag":
            wanted = tags if tag in tags else [*tags, tag]
        else:
            wanted = [t for t in tags if t != tag]
        return {self._c.tag_property: ";".join(wanted)}

    async def perform(self, command: Command, params: Mapping[str, str]) -> Delivery:
        action = action_of(command, CrmCommand)
        op = action.operation
        email = params.get("email") or action.variables.get("customer_email")
        if not email:
            raise PermanentError(f"crm {self._c.name} {op}: no email to find the HubSpot "
                                 f"contact by (params.email or the customer's email)")
        # One lookup-or-create, and one read-change-write of the tags, at a time per contact.
        async with self._locks.setdefault(email.lower(), asyncio.Lock()):
            contact = await self._contact(email)
            if op in ("add_tag", "remove_tag"):
                return await self._update_contact(
                    contact, self._edit_tags(op, contact, _need(params, "tag", command)))
        if op == "update_field":
            return await self._update_contact(
                contact, {_need(params, "field", command): params.get("value", "")})
        if op == "move_stage":
            pipeline = params.get("pipeline") or "default"
            deal = await self._search("deals", [
                {"propertyName": "pipeline", "operator": "EQ", "value": pipeline},
                {"propertyName": "associations.contact", "operator": "EQ",
                 "value": str(contact["id"])}], ["dealstage"])
            if deal is None:
                name = params.get("name") or f"{email} ({pipeline})"
                return await self._create_once(command, "deals", contact,
                                               self._deal(command, params, name),
                                               self._by_command_id(command))
            await self._call("PATCH", f"/crm/v3/objects/deals/{deal['id']}",
                             {"properties": {"dealstage": _need(params, "stage", command)}})
            return Delivery(provider_ref=f"deals:{deal['id']}",
                            detail=f"HubSpot deal {deal['id']} moved to {params['stage']}")
        if op == "create_opportunity":
            return await self._create_once(
                command, "deals", contact,
                self._deal(command, params, _need(params, "name", command)),
                self._by_command_id(command))
        if op == "create_task":
            due = command.issued_at + int(params.get("due_in_days") or 0) * 86_400_000
            return await self._create_once(command, "tasks", contact, {
                "hs_task_subject": _need(params, "title", command),
                "hs_task_body": f"{params.get('body', '')}\n\n{marker(command)}".lstrip(),
                "hs_task_status": "NOT_STARTED", "hs_timestamp": _iso(due),
            }, _by_marker("hs_task_body", command))
        if op == "add_note":
            return await self._create_once(command, "notes", contact, {
                "hs_note_body": f"{_need(params, 'body', command)}\n\n{marker(command)}",
                "hs_timestamp": _iso(command.issued_at),
            }, _by_marker("hs_note_body", command))
        raise PermanentError(f"crm {self._c.name}: unknown operation {op!r}")

    def _by_command_id(self, command: Command) -> dict[str, str]:
        return {"propertyName": self._c.command_id_property, "operator": "EQ",
                "value": command.command_id}


def _by_marker(prop: str, command: Command) -> dict[str, str]:
    return {"propertyName": prop, "operator": "CONTAINS_TOKEN", "value": command.command_id}


def _need(params: Mapping[str, str], key: str, command: Command) -> str:
    value = params.get(key)
    if not value:
        raise PermanentError(f"crm {action_of(command, CrmCommand).operation}: params.{key} "
                             f"is required")
    return value

