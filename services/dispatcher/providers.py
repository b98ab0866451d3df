"""The dispatcher's provider configuration: one frozen object from one YAML file.

``SIGNALBOX_DISPATCHER_CONFIG`` names the file; without it every channel but
email writes to the outbox (development default). Secrets stay out of the file:
any string value may be or contain ``${NAME}``, replaced by the environment
variable ``NAME`` (an unset variable is an error naming the file and key)::

    format: signalbox/dispatcher@1
    outbox: .run/outbox            # where unconfigured channels write (default)
    outbox_channels: []            # channels forced to the outbox, e.g. [email]
    sms:                           # Twilio's Messages API, or anything speaking it
      account_sid: AC0123...
      auth_token: ${TWILIO_AUTH_TOKEN}
      from: "+14155550100"
      base_url: https://api.twilio.com
      timeout_seconds: 10
    webhooks:
      billing-sync: {url: "https://hooks.example.com/in", secret: "${HOOK_SECRET}",
                     allow_private: false, timeout_seconds: 10}
    crm:
      default: {kind: hubspot, token: "${HUBSPOT_TOKEN}", tag_property: signalbox_tags}
      legacy:
        kind: rest
        base_url: https://crm.internal/api
        headers: {Authorization: "Bearer ${LEGACY_TOKEN}"}
        operations:
          add_tag: {method: POST, url: "/contacts/{{ customer_id }}/tags",
                    body: {tag: "{{ tag }}", source: signalbox}}
    exports:
      warehouse: {protocol: sftp, host: sftp.example.com, port: 22, user: signalbox,
                  password: "${SFTP_PASSWORD}", directory: /incoming}
    policy: {...}                  # the delivery policy's own section, kept as written
    privacy: {recipients: masked}  # full: addresses in logs and results (development only)

Every error names the file and the key: ``dispatcher.yaml: webhooks.billing-sync.url:
expected an http(s) URL, got 'ftp://x'``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from signalbox.common.env import Env
from signalbox.common.fields import ConfigError as ConfigError
from signalbox.common.fields import Fields

FORMAT = "signalbox/dispatcher@1"
CRM_OPERATIONS = ("add_tag", "remove_tag", "move_stage", "create_task", "create_opportunity",
                  "update_field", "add_note")
CHANNEL_NAMES = ("email", "sms", "webhook", "crm", "export")


@dataclass(frozen=True)
class SmsProvider:
    account_sid: str
    auth_token: str = field(repr=False)
    from_number: str
    base_url: str = "https://api.twilio.com"
    timeout_s: float = 10.0


@dataclass(frozen=True)
class WebhookEndpoint:
    name: str
    url: str
    secret: str = field(repr=False)
    allow_private: bool = False
    timeout_s: float = 10.0
    ca_file: str = ""  # PEM CA bundle that replaces the system store (a private CA)


@dataclass(frozen=True)
class RestOperation:
    """One CRM operation of a generic REST connection.

    ``url`` is a sandboxed template; ``body`` is the JSON body's structure, in which
    every string is a template rendered on its own (so a value can never break out
    of its string, whatever it contains).
    """

    method: str
    url: str
    body: Any = None


@dataclass(frozen=True)
class CrmConnection:
    name: str
    kind: str  # hubspot | rest
    base_url: str
    token: str = field(default="", repr=False)
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)
    timeout_s: float = 10.0
    tag_property: str = "signalbox_tags"
    command_id_property: str = "signalbox_command_id"
    operations: Mapping[str, RestOperation] = field(default_factory=dict)


@dataclass(frozen=True)
class ExportTarget:
    name: str
    protocol: str  # ftp | ftps | sftp
    host: str
    port: int
    user: str
    password: str = field(default="", repr=False)
    private_key: str = ""  # path of an SSH private key (sftp)
    known_hosts: str = ""  # OpenSSH known_hosts file (sftp); empty: ~/.ssh/known_hosts
    ca_file: str = ""  # PEM CA bundle that replaces the system store (ftps)
    directory: str = "/"
    timeout_s: float = 30.0


@dataclass(frozen=True)
class DispatcherConfig:
    source: str = "(built-in defaults)"
    outbox_dir: str = ".run/outbox"
    outbox_channels: frozenset[str] = frozenset()
    sms: SmsProvider | None = None
    webhooks: Mapping[str, WebhookEndpoint] = field(default_factory=dict)
    crm: Mapping[str, CrmConnection] = field(default_factory=dict)
    exports: Mapping[str, ExportTarget] = field(default_factory=dict)
    policy: Mapping[str, Any] = field(default_factory=dict)
    #: Addresses and numbers unmasked in logs and results: development only.
    full_recipients: bool = False

    def configured(self, channel: str) -> bool:
        """Whether ``channel`` has a real driver configured (email always has SMTP)."""
        if channel in self.outbox_channels:
            return False
        return {"email": True, "sms": self.sms is not None, "webhook": bool(self.webhooks),
                "crm": bool(self.crm), "export": bool(self.exports)}.get(channel, False)


_E164 = re.compile(r"^\+[1-9][0-9]{1,14}$")
_ALPHANUMERIC_SENDER = re.compile(r"^(?=.*[A-Za-z])[A-Za-z0-9 ]{1,11}$")


def _sms(r: Fields) -> SmsProvider:
    r.only("provider", "account_sid", "auth_token", "from", "base_url", "timeout_seconds")
    r.choice("provider", ("twilio",), "twilio")
    sender = r.text("from")
    if not (_E164.match(sender) or _ALPHANUMERIC_SENDER.match(sender)):
        raise r.error("from", f"expected an E.164 number or an alphanumeric sender id, "
                              f"got {sender!r}")
    return SmsProvider(account_sid=r.text("account_sid"), auth_token=r.text("auth_token"),
                       from_number=sender, base_url=r.url("base_url", SmsProvider.base_url),
                       timeout_s=r.number("timeout_seconds", SmsProvider.timeout_s))


def _webhook(name: str, r: Fields) -> WebhookEndpoint:
    r.only("url", "secret", "allow_private", "timeout_seconds", "ca_file")
    secret = r.text("secret")
    if len(secret) < 16:
        raise r.error("secret", "must be at least 16 characters")
    return WebhookEndpoint(name=name, url=r.url("url"), secret=secret,
                           allow_private=r.flag("allow_private", False),
                           timeout_s=r.number("timeout_seconds", WebhookEndpoint.timeout_s),
                           ca_file=r.file("ca_file"))


def _json_shape(r: Fields, key: str) -> Any:
    """A mapping or list of JSON values (strings may be templates), or None when absent."""
    value = r.data.get(key)

    def check(v: Any, where: str) -> Any:
        if isinstance(v, Mapping):
            return {str(k): check(x, f"{where}.{k}") for k, x in v.items()}
        if isinstance(v, list):
            return [check(x, f"{where}[{i}]") for i, x in enumerate(v)]
        if v is None or isinstance(v, str | int | float | bool):
            return v
        raise r.error(where, f"expected a JSON value, got {type(v).__name__}")

    if value is not None and not isinstance(value, Mapping | list):
        raise r.error(key, f"expected a mapping or a list (the JSON body), got "
                           f"{type(value).__name__}")
    return check(value, key)


def _crm(name: str, r: Fields) -> CrmConnection:
    r.only("kind", "base_url", "token", "headers", "timeout_seconds", "tag_property",
           "command_id_property", "operations")
    kind = r.choice("kind", ("hubspot", "rest"))
    operations: dict[str, RestOperation] = {}
    if kind == "rest":
        ops = r.child("operations")
        for op, o in ops.items():
            if op not in CRM_OPERATIONS:
                raise ops.error(op, f"unknown operation (known: {', '.join(CRM_OPERATIONS)})")
            o.only("method", "url", "body")
            operations[op] = RestOperation(
                method=o.choice("method", ("GET", "POST", "PUT", "PATCH", "DELETE"), "POST"),
                url=o.text("url"), body=_json_shape(o, "body"))
        if not operations:
            raise r.error("operations", "a rest connection needs at least one operation")
    elif "operations" in r.data:
        raise r.error("operations", "only for kind: rest")
    return CrmConnection(
        name=name, kind=kind,
        base_url=r.url("base_url", "https://api.hubapi.com" if kind == "hubspot" else None),
        token=r.text("token", ""), headers=r.strings("headers"),
        timeout_s=r.number("timeout_seconds", CrmConnection.timeout_s),
        tag_property=r.text("tag_property", CrmConnection.tag_property),
        command_id_property=r.text("command_id_property", CrmConnection.command_id_property),
        operations=operations)


_DEFAULT_PORTS = {"ftp": 21, "ftps": 21, "sftp": 22}


def _export(name: str, r: Fields) -> ExportTarget:
    r.only("protocol", "host", "port", "user", "password", "private_key", "known_hosts",
           "ca_file", "directory", "timeout_seconds")
    protocol = r.choice("protocol", ("ftp", "ftps", "sftp"))
    target = ExportTarget(
        name=name, protocol=protocol, host=r.text("host"),
        port=r.port("port", _DEFAULT_PORTS[protocol]), user=r.text("user"),
        password=r.text("password", ""), private_key=r.file("private_key"),
        known_hosts=r.file("known_hosts"), ca_file=r.file("ca_file"),
        directory=r.text("directory", "/"),
        timeout_s=r.number("timeout_seconds", ExportTarget.timeout_s))
    if protocol != "sftp" and (target.private_key or target.known_hosts):
        raise r.error("private_key", "private_key and known_hosts are for sftp only")
    return target


def parse(data: Any, source: str, env: Env | Mapping[str, str]) -> DispatcherConfig:
    """The configuration in ``data`` (a parsed YAML document); ``source`` names it in errors;
    ``${NAME}`` is read from ``env``."""
    r = Fields(data, "", source, Env.of(env))
    r.only("format", "outbox", "outbox_channels", "sms", "webhooks", "crm", "exports", "policy",
           "privacy")
    if r.text("format", FORMAT) != FORMAT:
        raise r.error("format", f"expected {FORMAT!r}, got {r.data.get('format')!r}")
    forced = r.names("outbox_channels", "channels", known=CHANNEL_NAMES)
    policy = r.child("policy").data
    return DispatcherConfig(
        source=source,
        outbox_dir=r.text("outbox", DispatcherConfig.outbox_dir),
        outbox_channels=frozenset(forced),
        sms=_sms(r.child("sms")) if r.data.get("sms") else None,
        webhooks={n: _webhook(n, c) for n, c in r.child("webhooks").items()},
        crm={n: _crm(n, c) for n, c in r.child("crm").items()},
        exports={n: _export(n, c) for n, c in r.child("exports").items()},
        policy=policy,
        full_recipients=_privacy(r.child("privacy")),
    )


def _privacy(r: Fields) -> bool:
    r.only("recipients")
    return r.choice("recipients", ("masked", "full"), "masked") == "full"


def load(path: str | Path, environ: Env | Mapping[str, str] | None = None) -> DispatcherConfig:
    """Read ``path`` (``SIGNALBOX_DISPATCHER_CONFIG``, in :class:`DispatcherSettings`
    ``.config_file``; empty: built-in defaults); ``${NAME}`` is read from ``environ``."""
    env = Env.of(environ)
    if not path:
        return DispatcherConfig()
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the dispatcher configuration: "
                          f"{exc.strerror}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    return parse(data, str(path), env)
