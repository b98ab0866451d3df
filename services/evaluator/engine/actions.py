"""Actions of an automation: what to do, as data, and their validation.

::

    - {type: email, to: customer, template: payment_failed}     # or to: [a@x, b@x]
    - {type: sms, to: customer, template: payment_failed}       # or to: ["+4915..."]
    - {type: alert, team: finance, via: email, template: payment_failed_alert}
    - {type: alert, team: ops, via: sms, template: past_due_alert}
    - {type: alert, team: ops, via: webhook, event: customer.past_due}
    - {type: crm, operation: add_tag, params: {tag: dunning}}   # connection: default
    - {type: webhook, endpoint: billing-hook, event: customer.past_due}
    - {type: export, target: finance-sftp, format: csv, fields: [customer_id, amount_minor]}
    - {type: adjust_score, delta: 50}                           # internal: no command
    - type: approval                                            # hold until decided
      team: finance
      summary: Cancel the account
      expires_after: 72h                                        # default 7d
      on_expiry: reject                                         # or approve
      actions: [...]

Team directory: ``teams: {finance: finance@example.com}`` or, with more channels,
``teams: {ops: {email: ops@example.com, phone: "+4930...", webhook: ops-hook}}``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

_E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")
_DURATION = re.compile(r"^([1-9][0-9]{0,8})(m|h|d)$")
_UNIT_MS = {"m": 60_000, "h": 3_600_000, "d": 86_400_000}
#: An approval nobody decides ends after this (``expires_after``), by ``on_expiry``.
DEFAULT_APPROVAL_EXPIRY_MS = 7 * 86_400_000
#: The longest ``expires_after``: a year.
MAX_APPROVAL_EXPIRY_MS = 365 * 86_400_000
ON_EXPIRY = ("reject", "approve")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")

#: Required and optional params of each CRM operation (mirrors CrmAction's doc).
CRM_PARAMS: Mapping[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "add_tag": (("tag",), ()),
    "remove_tag": (("tag",), ()),
    "move_stage": (("pipeline", "stage"), ()),
    "create_task": (("title",), ("body", "due_in_days")),
    "create_opportunity": (("name",), ("amount_minor", "currency", "pipeline", "stage")),
    "update_field": (("field", "value"), ()),
    "add_note": (("body",), ()),
}


@dataclass(frozen=True)
class Team:
    """Where a team is reached: an email address, a phone number, a webhook endpoint."""

    email: str | None = None
    phone: str | None = None
    webhook: str | None = None


@dataclass(frozen=True)
class EmailAction:
    """Email to the customer (``to: customer``) or to fixed addresses."""

    template: str
    to: tuple[str, ...] = ()  # empty: the customer's address
    audience: str = "customer"


@dataclass(frozen=True)
class SmsAction:
    """Text message to the customer's phone (``to: customer``) or fixed numbers."""

    template: str
    to: tuple[str, ...] = ()
    audience: str = "customer"


@dataclass(frozen=True)
class AlertAction:
    """Internal alert to a team (resolved through the team directory)."""

    team: str
    template: str
    via: str = "email"


@dataclass(frozen=True)
class CrmAction:
    operation: str
    params: Mapping[str, str] = field(default_factory=dict)
    connection: str = "default"


@dataclass(frozen=True)
class WebhookAction:
    endpoint: str
    event: str


@dataclass(frozen=True)
class ExportAction:
    target: str
    format: Literal["csv", "jsonl"]
    fields: tuple[str, ...]
    filename: str


@dataclass(frozen=True)
class ScoreAction:
    """Adjust the customer's score: internal state, feeds milestones and health."""

    delta: int


@dataclass(frozen=True)
class ApprovalAction:
    """Hold ``actions`` until an operator approves (sent) or rejects (dropped); nobody
    deciding within ``expires_after_ms`` settles it by ``on_expiry``."""

    actions: tuple[Action, ...]
    team: str | None = None
    summary: str | None = None
    expires_after_ms: int = DEFAULT_APPROVAL_EXPIRY_MS
    on_expiry: Literal["reject", "approve"] = "reject"


Action = (EmailAction | SmsAction | AlertAction | CrmAction | WebhookAction | ExportAction
          | ScoreAction | ApprovalAction)
ACTION_TYPES = ("adjust_score", "alert", "approval", "crm", "email", "export", "sms", "webhook")


def parse_team(name: str, raw: Any, errors: list[str]) -> Team | None:
    where = f"teams.{name}"
    if isinstance(raw, str):
        raw = {"email": raw}
    if not isinstance(raw, dict) or not raw or set(raw) - {"email", "phone", "webhook"}:
        errors.append(f"{where}: expected an email address or a mapping with email, phone "
                      f"and/or webhook, got {raw!r}")
        return None
    email, phone, webhook = raw.get("email"), raw.get("phone"), raw.get("webhook")
    before = len(errors)
    if email is not None and (not isinstance(email, str) or "@" not in email):
        errors.append(f"{where}: expected an email address, got {email!r}")
    if phone is not None and (not isinstance(phone, str) or not _E164.match(phone)):
        errors.append(f"{where}.phone: expected an E.164 number like +4930123456, got {phone!r}")
    if webhook is not None and (not isinstance(webhook, str) or not _NAME.match(webhook)):
        errors.append(f"{where}.webhook: expected an endpoint name, got {webhook!r}")
    return Team(email, phone, webhook) if len(errors) == before else None


def parse_action(raw: Any, where: str, teams: Mapping[str, Team], errors: list[str],
                 nested: bool = False) -> Action | None:
    if not isinstance(raw, dict):
        errors.append(f"{where}: expected a mapping with a 'type'")
        return None
    kind = raw.get("type")
    parser = _PARSERS.get(kind) if isinstance(kind, str) else None
    if parser is None:
        errors.append(f"{where}.type: unknown action {kind!r} (known: {', '.join(ACTION_TYPES)})")
        return None
    if nested and kind in ("approval", "adjust_score"):
        errors.append(f"{where}.type: an approval cannot hold {kind!r} actions")
        return None
    allowed = _FIELDS[str(kind)] | {"type"}
    unknown = sorted(set(raw) - allowed)
    if unknown:
        errors.append(f"{where}: unknown field(s) {', '.join(unknown)} for a {kind} action")
        return None
    return parser(raw, where, teams, errors)


def _template(raw: Mapping[str, Any], where: str, errors: list[str]) -> str | None:
    template = raw.get("template")
    if not isinstance(template, str) or not template:
        errors.append(f"{where}.template: expected a template name")
        return None
    return template


def _name(raw: Mapping[str, Any], key: str, where: str, errors: list[str]) -> str | None:
    value = raw.get(key)
    if not isinstance(value, str) or not _NAME.match(value):
        errors.append(f"{where}.{key}: expected a name (letters, digits, '.', '_', '-'), "
                      f"got {value!r}")
        return None
    return value


def _recipients(raw: Mapping[str, Any], where: str, errors: list[str], what: str,
                valid: Any) -> tuple[str, ...] | None:
    to = raw.get("to", "customer")
    if to == "customer":
        return ()
    addresses = [to] if isinstance(to, str) else to
    if not isinstance(addresses, list) or not addresses or \
            not all(isinstance(a, str) and valid(a) for a in addresses):
        errors.append(f"{where}.to: expected 'customer' or {what}, got {to!r}")
        return None
    return tuple(addresses)


def _email(raw: Mapping[str, Any], where: str, teams: Mapping[str, Team],
           errors: list[str]) -> Action | None:
    template = _template(raw, where, errors)
    to = _recipients(raw, where, errors, "email address(es)", lambda a: "@" in a)
    if template is None or to is None:
        return None
    return EmailAction(template, to, "internal" if to else "customer")


def _sms(raw: Mapping[str, Any], where: str, teams: Mapping[str, Team],
         errors: list[str]) -> Action | None:
    template = _template(raw, where, errors)
    to = _recipients(raw, where, errors, "E.164 number(s)", _E164.match)
    if template is None or to is None:
        return None
    return SmsAction(template, to, "internal" if to else "customer")


def _alert(raw: Mapping[str, Any], where: str, teams: Mapping[str, Team],
           errors: list[str]) -> Action | None:
    name, via = raw.get("team"), raw.get("via", "email")
    team = teams.get(name) if isinstance(name, str) else None
    if team is None:
        errors.append(f"{where}.team: unknown team {name!r} "
                      f"(known: {', '.join(sorted(teams)) or '-'})")
        return None
    if via not in ("email", "sms", "webhook"):
        errors.append(f"{where}.via: expected email, sms or webhook, got {via!r}")
        return None
    channel = {"email": team.email, "sms": team.phone, "webhook": team.webhook}[via]
    if channel is None:
        what = {"email": "email address", "sms": "phone", "webhook": "webhook endpoint"}[via]
        errors.append(f"{where}.via: team {name!r} has no {what}")
        return None
    name = str(name)
    if via == "webhook":
        event = raw.get("event", raw.get("template"))
        if not isinstance(event, str) or not event:
            errors.append(f"{where}.event: expected the event name the receiver is told")
            return None
        return AlertAction(name, event, via)
    template = _template(raw, where, errors)
    return AlertAction(name, template, via) if template else None


def _crm(raw: Mapping[str, Any], where: str, teams: Mapping[str, Team],
         errors: list[str]) -> Action | None:
    op = raw.get("operation")
    if op not in CRM_PARAMS:
        errors.append(f"{where}.operation: unknown operation {op!r} "
                      f"(known: {', '.join(CRM_PARAMS)})")
        return None
    params = raw.get("params", {})
    required, optional = CRM_PARAMS[str(op)]
    if not isinstance(params, dict):
        errors.append(f"{where}.params: expected a mapping")
        return None
    missing = [p for p in required if p not in params]
    unknown = sorted(set(params) - set(required) - set(optional))
    if missing or unknown:
        errors.append(f"{where}.params: {op} needs {', '.join(required)}"
                      + (f" and may have {', '.join(optional)}" if optional else "")
                      + (f"; missing {', '.join(missing)}" if missing else "")
                      + (f"; unknown {', '.join(unknown)}" if unknown else ""))
        return None
    bad = [k for k, v in params.items() if isinstance(v, (dict, list, bool)) or v is None]
    if bad:
        errors.append(f"{where}.params: expected text or numbers for {', '.join(sorted(bad))}")
        return None
    connection = _name(raw, "connection", where, errors) if "connection" in raw else "default"
    if connection is None:
        return None
    return CrmAction(str(op), {k: str(v) for k, v in sorted(params.items())}, connection)


def _webhook(raw: Mapping[str, Any], where: str, teams: Mapping[str, Team],
             errors: list[str]) -> Action | None:
    endpoint = _name(raw, "endpoint", where, errors)
    event = raw.get("event")
    if not isinstance(event, str) or not event:
        errors.append(f"{where}.event: expected the event name the receiver is told")
        return None
    return WebhookAction(endpoint, event) if endpoint else None


def _export(raw: Mapping[str, Any], where: str, teams: Mapping[str, Team],
            errors: list[str]) -> Action | None:
    target = _name(raw, "target", where, errors)
    fmt = raw.get("format", "csv")
    fields = raw.get("fields")
    before = len(errors)
    if fmt not in ("csv", "jsonl"):
        errors.append(f"{where}.format: expected csv or jsonl, got {fmt!r}")
    if not isinstance(fields, list) or not fields or \
            not all(isinstance(f, str) and f for f in fields) or len(set(fields)) != len(fields):
        errors.append(f"{where}.fields: expected a list of distinct variable names, "
                      f"got {fields!r}")
    filename = raw.get("filename", "{{ command_id }}." + str(fmt))
    if not isinstance(filename, str) or not filename or "/" in filename:
        errors.append(f"{where}.filename: expected a file name without '/', got {filename!r}")
    if len(errors) > before or target is None:
        return None
    return ExportAction(target, "csv" if fmt == "csv" else "jsonl", tuple(fields or ()),
                        filename)


def _score(raw: Mapping[str, Any], where: str, teams: Mapping[str, Team],
           errors: list[str]) -> Action | None:
    delta = raw.get("delta")
    if isinstance(delta, bool) or not isinstance(delta, int) or delta == 0:
        errors.append(f"{where}.delta: expected a non-zero whole number, got {delta!r}")
        return None
    return ScoreAction(delta)


def _approval(raw: Mapping[str, Any], where: str, teams: Mapping[str, Team],
              errors: list[str]) -> Action | None:
    team, summary, held = raw.get("team"), raw.get("summary"), raw.get("actions")
    before = len(errors)
    if team is not None and team not in teams:
        errors.append(f"{where}.team: unknown team {team!r} "
                      f"(known: {', '.join(sorted(teams)) or '-'})")
    if summary is not None and not isinstance(summary, str):
        errors.append(f"{where}.summary: expected text, got {summary!r}")
    if not isinstance(held, list) or not held:
        errors.append(f"{where}.actions: expected a non-empty list of actions to hold")
        held = []
    actions = [parse_action(a, f"{where}.actions[{i}]", teams, errors, nested=True)
               for i, a in enumerate(held)]
    expires = _expiry(raw.get("expires_after"), f"{where}.expires_after", errors)
    on_expiry = raw.get("on_expiry", "reject")
    if on_expiry not in ON_EXPIRY:
        errors.append(f"{where}.on_expiry: expected reject or approve (what happens to the "
                      f"held actions when nobody decides in time), got {on_expiry!r}")
    if len(errors) > before:
        return None
    return ApprovalAction(tuple(a for a in actions if a is not None),
                          team if isinstance(team, str) else None,
                          summary if isinstance(summary, str) else None,
                          expires, "approve" if on_expiry == "approve" else "reject")


def _expiry(raw: Any, where: str, errors: list[str]) -> int:
    """``expires_after``: ``30m``, ``72h``, ``7d`` (absent: 7 days) → milliseconds."""
    if raw is None:
        return DEFAULT_APPROVAL_EXPIRY_MS
    match = _DURATION.match(raw) if isinstance(raw, str) else None
    ms = int(match[1]) * _UNIT_MS[match[2]] if match else 0
    if not 0 < ms <= MAX_APPROVAL_EXPIRY_MS:
        errors.append(f"{where}: expected a duration like 30m, 72h or 7d, at most 365d, "
                      f"got {raw!r}")
    return ms


_PARSERS = {
    "email": _email, "sms": _sms, "alert": _alert, "crm": _crm, "webhook": _webhook,
    "export": _export, "adjust_score": _score, "approval": _approval,
}
_FIELDS: Mapping[str, set[str]] = {
    "email": {"to", "template"}, "sms": {"to", "template"},
    "alert": {"team", "via", "template", "event"},
    "crm": {"operation", "params", "connection"}, "webhook": {"endpoint", "event"},
    "export": {"target", "format", "fields", "filename"}, "adjust_score": {"delta"},
    "approval": {"team", "summary", "actions", "expires_after", "on_expiry"},
}

