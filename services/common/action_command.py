"""The command contract: one typed value for a ``signalbox.ActionCommand`` record.

The evaluator's engine builds a :class:`Command` and the shell encodes it with
:func:`command_to_record`; the dispatcher decodes the same record with
:func:`command_from_record` and reads it by attribute. One definition on both sides
of ``actions.commands``, held to the Avro schema (``schemas/avro/action_command.avsc``)
by ``tests/common/test_action_command.py``: every schema field has a dataclass field of the
same name and type and the other way round, for the record, its trigger and each
branch of the ``action`` union.

``action`` is one of five classes, one per union branch; the channel is the branch
(``command.channel``). Mappings inside a command are read-only by convention, as in
the engine's state.

Hot on both sides (the evaluator encodes every command it issues, the dispatcher
decodes every command it reads): branch lookups are dictionaries, no reflection.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from signalbox.common import schemas
from signalbox.common.clock import epoch_ms
from signalbox.common.errors import SignalboxError

#: The longest id a command may carry (ingest accepts ids up to 256 characters; command ids
#: are 32 hex digits). Ids go into ledger keys, results and logs: bounded, they always fit.
MAX_ID_CHARS = 256
_BOUNDED_IDS = ("command_id", "customer_id", "automation_id")


class CommandError(SignalboxError, ValueError):
    """A decoded command record that must not be acted on; ``where`` names the field."""

    what = "command"


@dataclass(frozen=True)
class TriggerInfo:
    """Why a command was issued: the trigger, its occurrence and the facts that matched."""

    type: str
    occurrence: str
    facts: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class MessageCommand:
    """A message (email or SMS): to the customer, or internal (alerts, fixed recipients)."""

    to: tuple[str, ...]
    audience: Literal["customer", "internal"]
    template: str
    locale: str | None
    variables: Mapping[str, str]

    channel: ClassVar[str]
    branch: ClassVar[str]


@dataclass(frozen=True)
class EmailCommand(MessageCommand):
    channel: ClassVar[str] = "email"
    branch: ClassVar[str] = schemas.EMAIL_ACTION


@dataclass(frozen=True)
class SmsCommand(MessageCommand):
    channel: ClassVar[str] = "sms"
    branch: ClassVar[str] = schemas.SMS_ACTION


@dataclass(frozen=True)
class WebhookCommand:
    """A signed POST to a configured endpoint (by name: the URL lives in the dispatcher)."""

    endpoint: str
    event: str
    variables: Mapping[str, str]

    channel: ClassVar[str] = "webhook"
    branch: ClassVar[str] = schemas.WEBHOOK_ACTION


@dataclass(frozen=True)
class CrmCommand:
    """One change to the customer's record in a configured CRM connection."""

    operation: str
    params: Mapping[str, str]
    variables: Mapping[str, str]
    connection: str = "default"

    channel: ClassVar[str] = "crm"
    branch: ClassVar[str] = schemas.CRM_ACTION


@dataclass(frozen=True)
class ExportCommand:
    """One record uploaded as a file to a configured export target."""

    target: str
    format: Literal["csv", "jsonl"]
    filename: str
    record: Mapping[str, str]

    channel: ClassVar[str] = "export"
    branch: ClassVar[str] = schemas.EXPORT_ACTION


ChannelCommand = EmailCommand | SmsCommand | WebhookCommand | CrmCommand | ExportCommand


@dataclass(frozen=True)
class Command:
    """One side effect the evaluator decided on; ``command_id`` is deterministic."""

    command_id: str
    automation_id: str
    automation_version: int
    action_index: int
    customer_id: str
    issued_at: int  # epoch ms: the input's event time or a time trigger's due time
    trigger: TriggerInfo
    action: ChannelCommand
    customer_timezone: str | None = None
    critical: bool = False

    @property
    def channel(self) -> str:
        """The channel that carries it out: the branch of the action union."""
        return self.action.channel


# -- the record codec ---------------------------------------------------------------


def _message_fields(a: MessageCommand) -> dict[str, Any]:
    return {"to": list(a.to), "audience": a.audience, "template": a.template,
            "locale": a.locale, "variables": dict(a.variables)}


def _webhook_fields(a: WebhookCommand) -> dict[str, Any]:
    return {"endpoint": a.endpoint, "event": a.event, "variables": dict(a.variables)}


def _crm_fields(a: CrmCommand) -> dict[str, Any]:
    return {"connection": a.connection, "operation": a.operation,
            "params": dict(a.params), "variables": dict(a.variables)}


def _export_fields(a: ExportCommand) -> dict[str, Any]:
    return {"target": a.target, "format": a.format, "filename": a.filename,
            "record": dict(a.record)}


_FIELDS_OF: dict[type, Callable[[Any], dict[str, Any]]] = {
    EmailCommand: _message_fields,
    SmsCommand: _message_fields,
    WebhookCommand: _webhook_fields,
    CrmCommand: _crm_fields,
    ExportCommand: _export_fields,
}


def action_fields(action: ChannelCommand) -> dict[str, Any]:
    """The action's record: its fields as the union branch holds them (JSON-ready)."""
    return _FIELDS_OF[type(action)](action)


def _email(r: Mapping[str, Any]) -> EmailCommand:
    return EmailCommand(tuple(r["to"]), r["audience"], r["template"], r.get("locale"),
                        dict(r.get("variables") or {}))


def _sms(r: Mapping[str, Any]) -> SmsCommand:
    return SmsCommand(tuple(r["to"]), r["audience"], r["template"], r.get("locale"),
                      dict(r.get("variables") or {}))


def _webhook(r: Mapping[str, Any]) -> WebhookCommand:
    return WebhookCommand(r["endpoint"], r["event"], dict(r.get("variables") or {}))


def _crm(r: Mapping[str, Any]) -> CrmCommand:
    return CrmCommand(r["operation"], dict(r.get("params") or {}),
                      dict(r.get("variables") or {}), r.get("connection", "default"))


def _export(r: Mapping[str, Any]) -> ExportCommand:
    return ExportCommand(r["target"], r["format"], r["filename"], dict(r["record"]))


_ACTION_BY_BRANCH: dict[str, Callable[[Mapping[str, Any]], ChannelCommand]] = {
    schemas.EMAIL_ACTION: _email,
    schemas.SMS_ACTION: _sms,
    schemas.WEBHOOK_ACTION: _webhook,
    schemas.CRM_ACTION: _crm,
    schemas.EXPORT_ACTION: _export,
}


def command_to_record(command: Command) -> dict[str, Any]:
    """The ``signalbox.ActionCommand`` record (the action as a ``(branch, fields)`` pair)."""
    a = command.action
    return {
        "command_id": command.command_id,
        "automation_id": command.automation_id,
        "automation_version": command.automation_version,
        "action_index": command.action_index,
        "customer_id": command.customer_id,
        "issued_at": command.issued_at,
        "trigger": {
            "type": command.trigger.type,
            "occurrence": command.trigger.occurrence,
            "facts": dict(command.trigger.facts),
        },
        "action": (a.branch, _FIELDS_OF[type(a)](a)),
        "customer_timezone": command.customer_timezone,
        "critical": command.critical,
    }


def command_from_record(record: Mapping[str, Any]) -> Command:
    """The command a decoded record holds; :class:`CommandError` for one not to act on
    (an id longer than :data:`MAX_ID_CHARS`, an action branch this code does not know).

    ``issued_at`` may be a datetime (fastavro's ``timestamp-millis``) or epoch ms. A record
    written with version 1 of the schema (a one-branch union) holds a bare email action."""
    for name in _BOUNDED_IDS:
        if len(record[name]) > MAX_ID_CHARS:
            raise CommandError(f"{name} of {len(record[name])} characters; at most "
                               f"{MAX_ID_CHARS} are accepted", where=name)
    action = record["action"]
    branch, fields = action if isinstance(action, tuple) else (schemas.EMAIL_ACTION, action)
    build = _ACTION_BY_BRANCH.get(branch)
    if build is None:
        raise CommandError(f"unknown action branch {branch!r} (known: "
                           f"{', '.join(sorted(_ACTION_BY_BRANCH))})", where="action")
    trigger = record["trigger"]
    # Positional, in field order: keywords cost a dataclass __init__ a third more here.
    return Command(
        record["command_id"],
        record["automation_id"],
        record["automation_version"],
        record["action_index"],
        record["customer_id"],
        epoch_ms(record["issued_at"]),
        TriggerInfo(trigger["type"], trigger["occurrence"], dict(trigger.get("facts") or {})),
        build(fields),
        record.get("customer_timezone"),
        bool(record.get("critical", False)),
    )


def command_to_json(command: Command) -> dict[str, Any]:
    """The command record as JSON-ready data (the action union as ``[branch, fields]``)."""
    record = command_to_record(command)
    record["action"] = list(record["action"])
    return record


def command_from_json(data: Mapping[str, Any]) -> Command:
    """The command :func:`command_to_json` wrote."""
    return command_from_record({**data, "action": tuple(data["action"])})
