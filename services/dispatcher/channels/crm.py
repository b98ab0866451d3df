"""CRM changes for the customer's contact: HubSpot, or any REST CRM by configuration.

A command names a connection and an operation; its ``params`` values are
templates, rendered in the sandbox with the command's variables plus
``customer_id``, ``command_id`` and ``automation_id``. A ``rest`` connection maps
each operation to a method, a URL template (relative to ``base_url`` unless
absolute; values are percent-encoded in it) and a JSON body whose strings are
templates, each rendered on its own with the rendered params as variables too, so
a value cannot break out of its string however it is quoted. Requests carry the
connection's token as ``Authorization: Bearer``, its extra headers, and
``Idempotency-Key: <command id>``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote, urlsplit

import httpx

from signalbox.common.action_command import Command, CrmCommand
from signalbox.dispatcher.channels.base import action_of
from signalbox.dispatcher.channels.hubspot import HubSpot
from signalbox.dispatcher.channels.provider_http import call, new_client
from signalbox.dispatcher.channels.recipients import recipients_of
from signalbox.dispatcher.outcomes import Delivery, PermanentError
from signalbox.dispatcher.providers import CrmConnection
from signalbox.dispatcher.templates import TemplateStore


def variables_of(command: Command) -> dict[str, Any]:
    """What templates in a command's parameters may use."""
    return {**action_of(command, CrmCommand).variables, "customer_id": command.customer_id,
            "command_id": command.command_id, "automation_id": command.automation_id}


class RestCrm:
    def __init__(self, connection: CrmConnection, client: httpx.AsyncClient,
                 templates: TemplateStore) -> None:
        self._c = connection
        self._client = client
        self._templates = templates

    async def perform(self, command: Command, params: Mapping[str, str]) -> Delivery:
        op = action_of(command, CrmCommand).operation
        spec = self._c.operations.get(op)
        if spec is None:
            raise PermanentError(f"crm {self._c.name}: operation {op!r} is not configured "
                                 f"(configured: {', '.join(sorted(self._c.operations))})")
        where = f"crm.{self._c.name}.operations.{op}"
        values = {**variables_of(command), **params}
        # Values are percent-encoded in the URL: "a/../b" stays one path segment.
        url = self._templates.inline(
            spec.url, {k: quote(str(v), safe="") for k, v in values.items()}, f"{where}.url")
        if not urlsplit(url).scheme:
            url = f"{self._c.base_url}/{url.lstrip('/')}"
        body = self._render(spec.body, values, f"{where}.body")
        headers = {**self._c.headers, "Idempotency-Key": command.command_id}
        if self._c.token:
            headers["Authorization"] = f"Bearer {self._c.token}"
        response = await call(self._client, spec.method, url,
                              f"crm {self._c.name} {spec.method} {urlsplit(url).path}",
                              json=body, headers=headers, timeout=self._c.timeout_s)
        return Delivery(provider_ref=response.headers.get("Location"),
                        detail=f"crm {self._c.name} {op}: HTTP {response.status_code}")


    def _render(self, shape: Any, values: Mapping[str, Any], where: str) -> Any:
        if isinstance(shape, str):
            return self._templates.inline(shape, values, where)
        if isinstance(shape, Mapping):
            return {k: self._render(v, values, f"{where}.{k}") for k, v in shape.items()}
        if isinstance(shape, list):
            return [self._render(v, values, f"{where}[{i}]") for i, v in enumerate(shape)]
        return shape


class CrmChannel:
    name = "crm"

    def __init__(self, connections: Mapping[str, CrmConnection],
                 templates: TemplateStore) -> None:
        self._connections = dict(connections)
        self._templates = templates
        self._client = new_client()
        self._drivers: dict[str, HubSpot | RestCrm] = {
            name: HubSpot(c, self._client) if c.kind == "hubspot"
            else RestCrm(c, self._client, templates)
            for name, c in self._connections.items()}

    def recipients(self, command: Command) -> tuple[str, ...]:
        return recipients_of(command)

    def _name(self, command: Command) -> str:
        return action_of(command, CrmCommand).connection or "default"

    def endpoint(self, command: Command) -> str:
        c = self._connections.get(self._name(command))
        return urlsplit(c.base_url).netloc if c else f"crm:{self._name(command)}"

    def params(self, command: Command) -> dict[str, str]:
        """The operation's parameters, each rendered in the sandbox."""
        values = variables_of(command)
        return {k: self._templates.inline(str(v), values, f"crm.params.{k}")
                for k, v in action_of(command, CrmCommand).params.items()}

    async def send(self, command: Command) -> Delivery:
        name = self._name(command)
        driver = self._drivers.get(name)
        if driver is None:
            raise PermanentError(f"crm connection {name!r} is not configured "
                                 f"(configured: {', '.join(sorted(self._drivers)) or 'none'})")
        return await driver.perform(command, self.params(command))

    async def aclose(self) -> None:
        await self._client.aclose()
