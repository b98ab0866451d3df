"""The dispatcher configuration file: values, secrets from the environment, clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from signalbox.common.settings import DispatcherSettings, Settings
from signalbox.dispatcher.channels import (
    CrmChannel,
    EmailChannel,
    ExportChannel,
    OutboxChannel,
    SmsChannel,
    WebhookChannel,
    build_channels,
)
from signalbox.dispatcher.providers import ConfigError, DispatcherConfig, load

FULL = """
format: signalbox/dispatcher@1
outbox: {outbox}
sms:
  account_sid: AC123
  auth_token: ${{SMS_TOKEN}}
  from: "+14155550100"
  base_url: http://127.0.0.1:1/
webhooks:
  billing: {{url: "https://hooks.example.com/in", secret: "${{HOOK_SECRET}}-suffix"}}
crm:
  default: {{kind: hubspot, token: "${{HUBSPOT_TOKEN}}"}}
  legacy:
    kind: rest
    base_url: https://crm.example.com/api
    headers: {{X-Api-Key: k}}
    operations:
      add_tag: {{method: PUT, url: "/c/{{{{ customer_id }}}}/tags", body: {{t: [1, "x"]}}}}
exports:
  dwh: {{protocol: sftp, host: sftp.example.com, user: sb, password: pw}}
policy:
  anything: [goes, here]
"""

ENV = {"SMS_TOKEN": "tok", "HOOK_SECRET": "0123456789abcdef", "HUBSPOT_TOKEN": "hs"}


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "dispatcher.yaml"
    path.write_text(text)
    return path


def test_no_file_means_outbox_for_everything_but_email(tmp_path: Path) -> None:
    config = load(Settings.from_env({}).dispatcher.config_file, {})
    assert config == DispatcherConfig()
    channels = build_channels(DispatcherSettings(), "", config)
    assert set(channels) == {"email", "sms", "webhook", "crm", "export"}
    assert isinstance(channels["email"], EmailChannel)
    assert all(isinstance(channels[c], OutboxChannel) for c in ("sms", "webhook", "crm", "export"))


async def test_full_file_with_secrets_from_the_environment(tmp_path: Path) -> None:
    path = write(tmp_path, FULL.format(outbox=tmp_path / "out"))
    env = {**ENV, "SIGNALBOX_DISPATCHER_CONFIG": str(path)}
    config = load(Settings.from_env(env).dispatcher.config_file, env)
    assert config.outbox_dir == str(tmp_path / "out")
    assert config.sms is not None
    assert (config.sms.auth_token, config.sms.base_url) == ("tok", "http://127.0.0.1:1")
    assert "tok" not in repr(config)
    assert config.webhooks["billing"].secret == "0123456789abcdef-suffix"
    assert config.crm["default"].base_url == "https://api.hubapi.com"
    assert config.crm["default"].token == "hs"
    op = config.crm["legacy"].operations["add_tag"]
    assert (op.method, op.url, op.body) == ("PUT", "/c/{{ customer_id }}/tags", {"t": [1, "x"]})
    assert config.exports["dwh"].port == 22
    assert config.policy == {"anything": ["goes", "here"]}
    assert all(config.configured(c) for c in ("email", "sms", "webhook", "crm", "export"))
    channels = build_channels(DispatcherSettings(), "", config)
    assert {n: type(c) for n, c in channels.items()} == {
        "email": EmailChannel, "sms": SmsChannel, "webhook": WebhookChannel,
        "crm": CrmChannel, "export": ExportChannel}
    for channel in channels.values():
        await channel.aclose()


def test_forced_outbox_channels(tmp_path: Path) -> None:
    path = write(tmp_path, "outbox_channels: [email]\n")
    channels = build_channels(DispatcherSettings(), "", load(path, {}))
    assert isinstance(channels["email"], OutboxChannel)


@pytest.mark.parametrize(("text", "message"), [
    ("sms: {account_sid: a, auth_token: b, from: '12'}",
     "sms.from: expected an E.164 number or an alphanumeric sender id, got '12'"),
    ("webhooks: {w: {url: 'ftp://x', secret: '0123456789abcdef'}}",
     "webhooks.w.url: expected an http(s) URL, got 'ftp://x'"),
    ("webhooks: {w: {url: 'https://x', secret: '${NOPE}'}}",
     "webhooks.w.secret: environment variable NOPE is not set"),
    ("webhooks: {w: {url: 'https://x', secret: '0123456789abcdef', ca_file: /nope.pem}}",
     "webhooks.w.ca_file: no such file: '/nope.pem'"),
    ("crm: {c: {kind: salesforce}}",
     "crm.c.kind: expected one of hubspot, rest, got 'salesforce'"),
    ("crm: {c: {kind: rest, base_url: 'http://x', operations: {fly: {url: /}}}}",
     "crm.c.operations.fly: unknown operation"),
    ("crm: {c: {kind: rest, base_url: 'http://x', operations: {add_tag: {url: /, body: '{}'}}}}",
     "crm.c.operations.add_tag.body: expected a mapping or a list (the JSON body), got str"),
    ("exports: {e: {protocol: sftp, host: h, user: u, port: 70000}}",
     "exports.e.port: expected a port number 1-65535, got 70000"),
    ("exports: {e: {protocol: scp, host: h, user: u}}",
     "exports.e.protocol: expected one of ftp, ftps, sftp, got 'scp'"),
    ("smss: {}", "smss: unknown key"),
    ("format: other", "format: expected 'signalbox/dispatcher@1'"),
    ("[1, 2]", "(top level): expected a mapping, got list"),
])
def test_errors_name_file_and_key(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load(path, {})
    assert str(err.value).startswith(f"{path}: {message}")


def test_unreadable_and_malformed_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read the dispatcher configuration"):
        load(tmp_path / "missing.yaml", {})
    with pytest.raises(ConfigError, match="not valid YAML"):
        load(write(tmp_path, "a: [1"), {})
