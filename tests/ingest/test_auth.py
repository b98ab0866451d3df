"""Who may post what: API keys, scopes, internal types, and the loopback-only opt-out."""

from __future__ import annotations

import io
import os
import stat
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from signalbox.cli import build_parser
from signalbox.common import schemas
from signalbox.common.clock import now_ms
from signalbox.common.settings import IngestSettings, Settings, SettingsError
from signalbox.ingest.keys import Authenticator, KeyFile, KeyFileError, Refusal
from signalbox.ingest.keys_cli import run as keys_run
from signalbox.testing import InMemoryEventProducer
from tests.ingest.support import ClientFactory, usage_recorded
from tests.support.events import payment_failed

TYPES = schemas.event_types()


def decided() -> dict[str, Any]:
    """A well-formed ``approval.decided``: what a forger would post."""
    return payment_failed(event_id="evt_forged", type="approval.decided",
                          data={"approval_id": "apr_1", "decision": "approved",
                                "decided_by": "mallory"})


@pytest.mark.parametrize(("headers", "reason"), [
    ({}, "missing Authorization header"),
    ({"Authorization": "Basic dXNlcjpwYXNz"}, "must be 'Bearer <key>'"),
    ({"Authorization": "Bearer "}, "must be 'Bearer <key>'"),
    ({"Authorization": "Bearer sbk_000000000000_" + "A" * 43}, "unknown or revoked API key"),
    ({"Authorization": "Bearer not-a-key"}, "unknown or revoked API key"),
])
async def test_no_or_wrong_key_is_401_with_the_reason(
        offline_settings: Settings, memory_producer: InMemoryEventProducer,
        make_offline_client: ClientFactory,
        offline_api_key: str, headers: dict[str, str], reason: str) -> None:
    client = await make_offline_client(offline_settings, memory_producer, headers)
    response = await client.post("/v1/events", json=payment_failed())
    assert response.status == 401
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="signalbox-ingest"'
    body = await response.json()
    assert body["error"] == "unauthorized"
    assert reason in body["detail"]
    assert memory_producer.sent == []


async def test_a_key_of_another_signature_is_refused(
        offline_settings: Settings, memory_producer: InMemoryEventProducer,
        make_offline_client: ClientFactory,
        offline_api_key: str) -> None:
    """Same id, other secret: the digest decides, not the id."""
    forged = offline_api_key[:-4] + ("AAAA" if not offline_api_key.endswith("AAAA") else "BBBB")
    client = await make_offline_client(offline_settings, memory_producer,
                                       {"Authorization": f"Bearer {forged}"})
    response = await client.post("/v1/events", json=payment_failed())
    assert response.status == 401
    assert (await response.json())["detail"] == "unknown or revoked API key"


async def test_a_scoped_key_gets_403_outside_its_types_and_nothing_is_written(
        offline_settings: Settings, memory_producer: InMemoryEventProducer,
        make_offline_client: ClientFactory) -> None:
    _, token = KeyFile(offline_settings.ingest.keys_file).create(
        "stripe", ["payment.*", "invoice.issued"], TYPES, now_ms())
    client = await make_offline_client(offline_settings, memory_producer,
                                       {"Authorization": f"Bearer {token}"})
    response = await client.post("/v1/events", json=[
        payment_failed(event_id="e1"), usage_recorded(event_id="e2")])
    assert response.status == 403
    body = await response.json()
    assert body["error"] == "forbidden_event_type"
    assert body["errors"] == [{"path": "$[1].type", "reason": "the key 'stripe' may send "
                               "payment.*, invoice.issued only, not 'usage.recorded'"}]
    assert memory_producer.sent == []
    ok = await client.post("/v1/events", json=payment_failed(event_id="e3"))
    assert ok.status == 202


@pytest.mark.parametrize("auth", ["keys", "none"])
async def test_approval_decisions_are_refused_for_every_producer(
        offline_settings: Settings, memory_producer: InMemoryEventProducer,
        make_offline_client: ClientFactory,
        auth: str) -> None:
    """Finding 1 of issue 9: a forged approval.decided must never reach the event topic."""
    offline_settings = replace(offline_settings, ingest=replace(offline_settings.ingest, auth=auth))
    client = await make_offline_client(offline_settings, memory_producer)
    response = await client.post("/v1/events", json=[payment_failed(), decided()])
    assert response.status == 403
    body = await response.json()
    assert body["errors"][0]["path"] == "$[1].type"
    assert "written by signalbox only" in body["errors"][0]["reason"]
    assert "admin API" in body["errors"][0]["reason"]
    assert memory_producer.sent == []


async def test_without_keys_on_loopback_anyone_may_post(
        offline_settings: Settings, memory_producer: InMemoryEventProducer,
        make_offline_client: ClientFactory) -> None:
    open_ingest = replace(offline_settings.ingest, auth="none")
    client = await make_offline_client(replace(offline_settings, ingest=open_ingest),
                                       memory_producer, {})
    response = await client.post("/v1/events", json=payment_failed())
    assert response.status == 202


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "10.0.0.5", "ingest.internal"])
def test_the_opt_out_is_refused_beyond_loopback(host: str) -> None:
    with pytest.raises(SettingsError, match=r"INGEST_AUTH: 'none'.*loopback only"):
        Settings.from_env({"INGEST_AUTH": "none", "SIGNALBOX_BIND_HOST": host})


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "::1", "localhost"])
def test_the_opt_out_is_allowed_on_loopback(host: str) -> None:
    settings = Settings.from_env({"INGEST_AUTH": "none", "SIGNALBOX_BIND_HOST": host})
    assert settings.ingest.auth == "none"


def test_keys_are_required_by_default() -> None:
    assert Settings.from_env({}).ingest.auth == "keys"
    assert Settings.from_env({"SIGNALBOX_BIND_HOST": "0.0.0.0"}).ingest.auth == "keys"


def test_only_a_digest_is_stored_and_the_file_is_private(tmp_path: Path) -> None:
    store = KeyFile(tmp_path / "keys.json")
    key, token = store.create("billing", ["*"], TYPES, now_ms())
    text = store.path.read_text()
    assert token not in text and token.split("_", 2)[2] not in text
    assert key.sha256 in text
    assert stat.S_IMODE(os.stat(store.path).st_mode) == 0o600


@pytest.mark.parametrize(("name", "types", "error"), [
    ("billing", [], "at least one event type"),
    ("billing", ["approval.decided"], "written by signalbox only"),
    ("billing", ["payment.faild"], "matches no producer event type"),
    ("bad name!", ["*"], "key name 'bad name!'"),
])
def test_key_creation_refuses_what_cannot_work(tmp_path: Path, name: str, types: list[str],
                                               error: str) -> None:
    with pytest.raises(KeyFileError, match=error):
        KeyFile(tmp_path / "keys.json").create(name, types, TYPES, now_ms())


def test_a_wildcard_key_still_cannot_send_internal_types(tmp_path: Path) -> None:
    key, _ = KeyFile(tmp_path / "keys.json").create("all", ["*"], TYPES, now_ms())
    assert key.allows("payment.failed")
    assert not key.allows("approval.decided")


def test_rotation_two_keys_then_revoke_without_restart(tmp_path: Path) -> None:
    store = KeyFile(tmp_path / "keys.json")
    auth = Authenticator(store.path, recheck_s=0)
    assert isinstance(auth.authenticate("Bearer x"), Refusal)
    assert "no API key is configured" in str(auth.authenticate("Bearer x"))
    old, old_token = store.create("billing", ["*"], TYPES, now_ms())
    new, new_token = store.create("billing", ["*"], TYPES, now_ms())
    assert auth.authenticate(f"Bearer {old_token}") == old
    assert auth.authenticate(f"bearer {new_token}") == new
    store.revoke(old.key_id, now_ms())
    assert auth.authenticate(f"Bearer {old_token}") == Refusal("unknown or revoked API key")
    assert auth.authenticate(f"Bearer {new_token}") == new


def test_a_broken_keys_file_keeps_the_keys_last_read(tmp_path: Path) -> None:
    store = KeyFile(tmp_path / "keys.json")
    key, token = store.create("billing", ["*"], TYPES, now_ms())
    auth = Authenticator(store.path, recheck_s=0)
    store.path.write_text("{ not json")
    assert auth.authenticate(f"Bearer {token}") == key
    with pytest.raises(KeyFileError, match="unreadable keys file"):
        store.load()


def test_keys_cli_create_list_revoke(tmp_path: Path) -> None:
    settings = Settings(ingest=IngestSettings(keys_file=str(tmp_path / "keys.json")))
    parser = build_parser()

    def cli(*argv: str) -> tuple[int, str, str]:
        out, err = io.StringIO(), io.StringIO()
        code = keys_run(settings, parser.parse_args(["keys", *argv]), out, err)
        return code, out.getvalue(), err.getvalue()

    code, token, note = cli("create", "--name", "stripe", "--types", "payment.*, invoice.paid")
    assert code == 0 and token.startswith("sbk_") and "only time it is shown" in note
    key_id = token.split("_")[1]
    code, listed, _ = cli("list")
    assert listed.startswith(f"{key_id}\tstripe\tpayment.*,invoice.paid\tcreated ")
    assert listed.rstrip().endswith("active")
    code, revoked, _ = cli("revoke", key_id)
    assert code == 0 and "\trevoked " in revoked
    assert cli("revoke", "nosuchkey")[0] == 2
    code, _, err = cli("create", "--name", "x", "--types", "approval.decided")
    assert code == 2 and "written by signalbox only" in err


def test_no_keys_file_means_no_key_and_keys_appear_without_restart(tmp_path: Path) -> None:
    store = KeyFile(tmp_path / "keys.json")
    auth = Authenticator(store.path, recheck_s=0)
    assert auth.active == 0
    _, token = store.create("billing", ["*"], TYPES, now_ms())
    assert not isinstance(auth.authenticate(f"Bearer {token}"), Refusal)
    store.path.unlink()  # removing the file removes every key
    assert isinstance(auth.authenticate(f"Bearer {token}"), Refusal)
