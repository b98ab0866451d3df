"""Signed webhooks against a real receiver that verifies them; address checks."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace

import pytest

from signalbox.common.action_command import Command, WebhookCommand
from signalbox.dispatcher.channels.addresses import refusal
from signalbox.dispatcher.channels.webhook import (
    BadSignature,
    WebhookChannel,
    body_of,
    sign,
    verify_signature,
)
from signalbox.dispatcher.outcomes import InDoubtError, PermanentError, TransientError
from signalbox.dispatcher.providers import WebhookEndpoint
from signalbox.testing.fakes.webhook import FakeReceiver
from tests.dispatcher.channels.support import make_command

SECRET = "receiver-secret-0123456789"


def hook(endpoint: str = "crm-sync") -> Command:
    return make_command(WebhookCommand(endpoint, "customer.past_due",
                                       {"days": "14", "plan": "pro"}))


@pytest.fixture
def receiver() -> Iterator[FakeReceiver]:
    with FakeReceiver(SECRET) as server:
        yield server


def endpoints(receiver: FakeReceiver, **extra: WebhookEndpoint) -> dict[str, WebhookEndpoint]:
    return {"crm-sync": WebhookEndpoint("crm-sync", f"{receiver.url}/hooks/in", SECRET,
                                        allow_private=True, timeout_s=1.0), **extra}


@pytest.fixture
async def channel(receiver: FakeReceiver) -> AsyncIterator[WebhookChannel]:
    ch = WebhookChannel(endpoints(receiver))
    yield ch
    await ch.aclose()


async def test_delivers_a_signed_body_the_receiver_verifies(receiver: FakeReceiver,
                                                            channel: WebhookChannel) -> None:
    command = hook()
    delivery = await channel.send(command)
    [got] = receiver.hooks
    assert got.path == "/hooks/in"
    assert got.body == {
        "id": command.command_id, "event": "customer.past_due", "customer_id": "cus-1",
        "automation": {"id": "auto-1", "version": 1}, "trigger": "payment.failed",
        "issued_at": "2026-09-21T14:13:20.000Z", "data": {"days": "14", "plan": "pro"}}
    assert got.headers["Idempotency-Key"] == command.command_id
    assert got.headers["Signalbox-Event"] == "customer.past_due"
    assert got.headers["Host"] == receiver.url.removeprefix("http://")
    assert delivery.provider_ref == "r1"


async def test_wrong_secret_is_refused_by_the_receiver(receiver: FakeReceiver) -> None:
    ch = WebhookChannel({"crm-sync": WebhookEndpoint("crm-sync", receiver.url, "x" * 20,
                                                     allow_private=True)})
    try:
        with pytest.raises(PermanentError, match=r"HTTP 401.*signature does not match"):
            await ch.send(hook())
    finally:
        await ch.aclose()
    assert receiver.hooks == []


def test_verify_signature_rejects_old_replayed_and_altered() -> None:
    body = b'{"id":"c1"}'
    now = 1_790_000_000
    header = sign(SECRET, body, now)
    assert verify_signature(SECRET, header, body, 300, now + 299) == now
    with pytest.raises(BadSignature, match="outside the tolerance"):
        verify_signature(SECRET, header, body, 300, now + 301)  # replayed later
    with pytest.raises(BadSignature, match="does not match"):
        verify_signature(SECRET, header, b'{"id":"c2"}', 300, now)
    forged = header.replace(f"t={now}", f"t={now + 1000}")  # a fresh timestamp, old signature
    with pytest.raises(BadSignature, match="does not match"):
        verify_signature(SECRET, forged, body, 300, now + 1000)
    with pytest.raises(BadSignature, match="no timestamp"):
        verify_signature(SECRET, "v1=abc", body, 300, now)
    # a receiver rotating secrets accepts any of several v1 values
    rotated = f"{header},v1={sign('other-secret-000000', body, now).split('v1=')[1]}"
    assert verify_signature("other-secret-000000", rotated, body, 300, now) == now


def test_signature_is_over_timestamp_and_exact_body() -> None:
    command = hook()
    body = body_of(command)
    assert json.loads(body)["id"] == command.command_id
    header = sign(SECRET, body, int(time.time()))
    verify_signature(SECRET, header, body)


@pytest.mark.parametrize(("url", "why"), [
    ("http://127.0.0.1:9/x", "127.0.0.1, a loopback address"),
    ("http://localhost:9/x", "a loopback address"),
    ("http://169.254.169.254/latest", "169.254.169.254, a link-local address"),
    ("http://10.1.2.3/x", "10.1.2.3, a private address"),
    ("http://[::1]:9/x", "::1, a loopback address"),
    ("http://[::ffff:192.168.1.1]/x", "a private address"),
    # IPv4 inside IPv6 (issue 9, finding 7): each form names the address it carries.
    ("http://[2002:7f00:1::1]/x", "6to4 for 127.0.0.1, a loopback address"),
    ("http://[2001:0:4136:e378:8000:63bf:80ff:fffe]/x",
     "Teredo client for 127.0.0.1, a loopback address"),
    ("http://[64:ff9b::a9fe:a9fe]/latest", "NAT64 for 169.254.169.254, a link-local address"),
    ("http://[::ffff:7f00:1]:9/x", "IPv4-mapped for 127.0.0.1, a loopback address"),
    ("http://[::127.0.0.1]:9/x", "a deprecated IPv4-compatible address"),
])
async def test_private_addresses_are_refused_before_connecting(url: str, why: str) -> None:
    ch = WebhookChannel({"crm-sync": WebhookEndpoint("crm-sync", url, SECRET)})
    try:
        with pytest.raises(PermanentError, match=f"resolves to .*{why}; refused"):
            await ch.send(hook())
    finally:
        await ch.aclose()


@pytest.mark.parametrize(("address", "why"), [
    ("2002:0a00:0001::1", "6to4 for 10.0.0.1, a private address"),
    ("2002:c0a8:0101:5::9", "6to4 for 192.168.1.1, a private address"),
    ("2001:0:4136:e378:8000:63bf:3fff:fdd2", "Teredo client for 192.0.2.45, a private address"),
    ("2001:0:7f00:1::1", "Teredo server for 127.0.0.1, a loopback address"),
    ("64:ff9b::7f00:1", "NAT64 for 127.0.0.1, a loopback address"),
    ("64:ff9b::0a01:0203", "NAT64 for 10.1.2.3, a private address"),
    ("64:ff9b:1::808:808", "a local-use NAT64 address"),
    ("::ffff:169.254.169.254", "IPv4-mapped for 169.254.169.254, a link-local address"),
    ("::ffff:0:7f00:1", "IPv4-translated for 127.0.0.1, a loopback address"),
    ("::8.8.8.8", "a deprecated IPv4-compatible address"),
    ("::1", "a loopback address"),
    ("::", "an unspecified address"),
    ("fe80::1%eth0", "a link-local address"),
    ("fd00::1", "a private address"),
    ("0.0.0.0", "an unspecified address"),
    ("100.64.0.1", "not a public address"),  # carrier-grade NAT
])
def test_embedded_and_plain_non_public_addresses_are_refused(address: str, why: str) -> None:
    assert refusal(address) == why


@pytest.mark.parametrize("address", [
    "8.8.8.8", "2606:4700:4700::1111", "2002:808:808::1", "64:ff9b::808:808",
    "::ffff:8.8.8.8"])
def test_public_addresses_pass_also_when_they_carry_a_public_ipv4(address: str) -> None:
    assert refusal(address) is None


async def test_unknown_endpoint_is_permanent(channel: WebhookChannel) -> None:
    with pytest.raises(PermanentError, match=r"'nope' is not configured \(configured: crm-sync\)"):
        await channel.send(hook("nope"))
    assert channel.endpoint(hook("nope")) == "webhook:nope"


async def test_failure_classes(receiver: FakeReceiver, channel: WebhookChannel) -> None:
    receiver.fail_next(1, 502)
    with pytest.raises(TransientError, match="HTTP 502"):
        await channel.send(hook())
    receiver.fail_next(1, 410)
    with pytest.raises(PermanentError, match="HTTP 410"):
        await channel.send(hook())
    receiver.hang_next(1)
    with pytest.raises(InDoubtError, match="no answer in time"):
        await channel.send(hook())
    receiver.release()
    receiver.down()
    with pytest.raises(TransientError, match="cannot connect"):
        await channel.send(hook())
    receiver.up()
    await channel.send(hook())
    assert len(receiver.hooks) == 1


async def test_https_pinned_address_keeps_the_host_name_for_tls() -> None:
    with FakeReceiver(SECRET, tls=True) as secure:
        assert secure.url.startswith("https://localhost:")
        ep = WebhookEndpoint("crm-sync", f"{secure.url}/in", SECRET, allow_private=True,
                             timeout_s=2.0, ca_file=secure.ca_file)
        ch = WebhookChannel({"crm-sync": ep})
        try:
            await ch.send(hook())  # connects to the resolved address, verifies "localhost"
        finally:
            await ch.aclose()
        untrusting = WebhookChannel({"crm-sync": replace(ep, ca_file="")})
        try:
            with pytest.raises(PermanentError, match="TLS certificate not trusted"):
                await untrusting.send(hook())
        finally:
            await untrusting.aclose()
    assert len(secure.hooks) == 1
    assert secure.hooks[0].headers["Host"] == secure.url.removeprefix("https://")
