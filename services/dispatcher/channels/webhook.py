"""Signed webhooks: a JSON POST to a configured endpoint that the receiver can verify.

The body (UTF-8 JSON)::

    {"id": "<command id>", "event": "customer.past_due", "customer_id": "cus_42",
     "automation": {"id": "dunning", "version": 3}, "trigger": "past_due",
     "issued_at": "2026-11-22T09:30:00Z", "data": {...the action's variables...}}

Headers: ``Content-Type: application/json``, ``Signalbox-Event``,
``Idempotency-Key: <command id>`` (the same on every attempt: receivers drop
repeats by it), and::

    Signalbox-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>

To verify, a receiver takes ``t`` and every ``v1`` from the header, computes the
HMAC-SHA256 of the bytes ``t + "." + body`` with the endpoint's secret, compares
it in constant time with a ``v1`` and rejects a ``t`` older (or newer) than its
tolerance (5 minutes here), which stops an intercepted request being replayed
later. :func:`verify_signature` does exactly that.

Private, loopback, link-local and other non-public addresses are refused unless
the endpoint sets ``allow_private``: the host is resolved, *every* address is
checked (:mod:`.addresses`: IPv4 inside IPv6 too), and the request goes to the
checked address (with the original Host header and TLS server name), so DNS
cannot swap in another address afterwards. An endpoint's ``ca_file`` replaces the
system trust store for its certificate.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import socket
import ssl
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from urllib.parse import urlsplit, urlunsplit

from signalbox.common.action_command import Command, WebhookCommand
from signalbox.common.errors import SignalboxError
from signalbox.dispatcher.channels.addresses import refusal
from signalbox.dispatcher.channels.base import action_of
from signalbox.dispatcher.channels.provider_http import call, new_client
from signalbox.dispatcher.channels.recipients import recipients_of
from signalbox.dispatcher.outcomes import Delivery, PermanentError, TransientError
from signalbox.dispatcher.providers import WebhookEndpoint

SIGNATURE_HEADER = "Signalbox-Signature"
TOLERANCE_S = 300.0


class BadSignature(SignalboxError, ValueError):
    """A webhook whose signature is missing, wrong, or too old."""

    what = "webhook signature"


def _mac(secret: str, timestamp: int, body: bytes) -> str:
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def sign(secret: str, body: bytes, timestamp: int) -> str:
    """The ``Signalbox-Signature`` header value for ``body`` sent at ``timestamp``."""
    return f"t={timestamp},v1={_mac(secret, timestamp, body)}"


def verify_signature(secret: str, header: str, body: bytes, tolerance_s: float = TOLERANCE_S,
                     now: float | None = None) -> int:
    """Check a received webhook; return its timestamp or raise :class:`BadSignature`."""
    fields: dict[str, list[str]] = {}
    for part in (header or "").split(","):
        key, sep, value = part.strip().partition("=")
        if sep:
            fields.setdefault(key, []).append(value)
    try:
        timestamp = int(fields["t"][0])
    except (KeyError, ValueError):
        raise BadSignature("no timestamp (t=) in the signature header") from None
    if not fields.get("v1"):
        raise BadSignature("no v1 signature in the signature header")
    age = (time.time() if now is None else now) - timestamp
    if abs(age) > tolerance_s:
        raise BadSignature(f"timestamp {timestamp} is {age:.0f}s from now, outside the "
                           f"tolerance of {tolerance_s:.0f}s (a replay, or a wrong clock)")
    expected = _mac(secret, timestamp, body)
    if not any(hmac.compare_digest(expected, v) for v in fields["v1"]):
        raise BadSignature("signature does not match the body")
    return timestamp


def _trust(ep: WebhookEndpoint) -> ssl.SSLContext | bool:
    return ssl.create_default_context(cafile=ep.ca_file) if ep.ca_file else True


def body_of(command: Command) -> bytes:
    a = action_of(command, WebhookCommand)
    issued = datetime.fromtimestamp(command.issued_at / 1000, UTC)
    return json.dumps({
        "id": command.command_id, "event": a.event, "customer_id": command.customer_id,
        "automation": {"id": command.automation_id, "version": command.automation_version},
        "trigger": command.trigger.type,
        "issued_at": issued.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "data": dict(a.variables),
    }, separators=(",", ":"), ensure_ascii=False).encode()


class WebhookChannel:
    name = "webhook"

    def __init__(self, endpoints: Mapping[str, WebhookEndpoint],
                 clock: Callable[[], float] = time.time) -> None:
        self._endpoints = dict(endpoints)
        self._clock = clock
        # One client per endpoint: each may trust its own CA.
        self._clients = {name: new_client(verify=_trust(ep))
                         for name, ep in self._endpoints.items()}

    def recipients(self, command: Command) -> tuple[str, ...]:
        return recipients_of(command)

    def _endpoint_of(self, command: Command) -> WebhookEndpoint:
        name = action_of(command, WebhookCommand).endpoint
        try:
            return self._endpoints[name]
        except KeyError:
            known = ", ".join(sorted(self._endpoints)) or "none"
            raise PermanentError(f"webhook endpoint {name!r} is not configured "
                                 f"(configured: {known})") from None

    def endpoint(self, command: Command) -> str:
        name = action_of(command, WebhookCommand).endpoint
        configured = self._endpoints.get(name)
        return urlsplit(configured.url).netloc if configured else f"webhook:{name}"

    async def _address(self, ep: WebhookEndpoint) -> str:
        """The checked address to connect to."""
        parts = urlsplit(ep.url)
        host = parts.hostname or ""
        port = parts.port or (443 if parts.scheme == "https" else 80)
        try:
            async with asyncio.timeout(ep.timeout_s):
                infos = await asyncio.get_running_loop().getaddrinfo(
                    host, port, type=socket.SOCK_STREAM)
        except (OSError, TimeoutError) as exc:
            raise TransientError(f"webhook {ep.name}: cannot resolve {host}: {exc}") from exc
        addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
        if not ep.allow_private:
            for address in addresses:
                why = refusal(address)
                if why:
                    raise PermanentError(
                        f"webhook {ep.name}: {host} resolves to {address}, {why}; refused "
                        f"(set allow_private: true for this endpoint to allow it)")
        return addresses[0]

    async def send(self, command: Command) -> Delivery:
        ep = self._endpoint_of(command)
        address = await self._address(ep)
        parts = urlsplit(ep.url)
        pinned = f"[{address}]" if ":" in address else address
        if parts.port:
            pinned += f":{parts.port}"
        url = urlunsplit(parts._replace(netloc=pinned))
        body = body_of(command)
        headers = {
            "Host": parts.netloc.rsplit("@", 1)[-1], "Content-Type": "application/json",
            SIGNATURE_HEADER: sign(ep.secret, body, int(self._clock())),
            "Signalbox-Event": action_of(command, WebhookCommand).event,
            "Idempotency-Key": command.command_id,
        }
        response = await call(
            self._clients[ep.name], "POST", url, f"webhook {ep.name} POST {parts.netloc}",
            content=body, headers=headers, timeout=ep.timeout_s,
            extensions={"sni_hostname": parts.hostname or ""})
        return Delivery(provider_ref=response.headers.get("X-Request-Id"),
                        detail=f"webhook {ep.name}: HTTP {response.status_code}")

    async def aclose(self) -> None:
        for client in self._clients.values():
            await client.aclose()
