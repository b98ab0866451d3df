"""Automations as data: the YAML format, its validation and the in-memory set.

Format ``signalbox/automations@1``::

    format: signalbox/automations@1
    teams:                      # optional; merged over SIGNALBOX_TEAMS
      finance: finance@example.com
    automations:
      - id: payment-failed-pro  # stable id: part of every command id
        version: 1              # bump when the meaning changes
        name: Payment failed (Pro)
        enabled: true
        trigger: {type: payment.failed, product: pro}
        actions:
          - {type: email, to: customer, template: payment_failed}
          - {type: alert, team: finance, via: email, template: payment_failed_alert}

A file with any error is rejected whole: nothing from it is applied.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

FORMAT = "signalbox/automations@1"
_ID = re.compile(r"^[a-z0-9][a-z0-9._-]{0,99}$")
#: Trigger keys other than ``type`` filter on the event payload's field of that name.
_FILTER_FIELDS = ("product",)


class AutomationError(ValueError):
    """An automation file that cannot be applied; ``errors`` lists every problem found."""

    def __init__(self, source: str, errors: list[str]) -> None:
        self.source = source
        self.errors = errors
        super().__init__(f"{source}: " + "; ".join(errors))


@dataclass(frozen=True)
class Trigger:
    type: str
    filters: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class EmailAction:
    """Email to the customer (``to: customer``) or to fixed addresses."""

    template: str
    to: tuple[str, ...] = ()  # empty: the customer's address
    audience: str = "customer"


@dataclass(frozen=True)
class AlertAction:
    """Internal alert to a team (resolved through the team directory)."""

    team: str
    template: str
    via: str = "email"


Action = EmailAction | AlertAction


@dataclass(frozen=True)
class Automation:
    id: str
    version: int
    name: str
    enabled: bool
    trigger: Trigger
    actions: tuple[Action, ...]


@dataclass(frozen=True)
class AutomationSet:
    automations: tuple[Automation, ...] = ()
    teams: Mapping[str, str] = field(default_factory=dict)

    def for_trigger(self, trigger_type: str) -> tuple[Automation, ...]:
        return tuple(a for a in self.automations if a.enabled and a.trigger.type == trigger_type)


def load_automations(
    path: str | Path, event_types: Collection[str], teams: Mapping[str, str] | None = None
) -> AutomationSet:
    source = str(path)
    try:
        text = Path(path).read_text("utf-8")
    except OSError as exc:
        raise AutomationError(source, [f"cannot read: {exc.strerror}"]) from exc
    return parse_automations(text, event_types, teams, source=source)


def parse_automations(
    text: str,
    event_types: Collection[str],
    teams: Mapping[str, str] | None = None,
    source: str = "<string>",
) -> AutomationSet:
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise AutomationError(source, [f"not valid YAML: {exc}"]) from exc
    errors: list[str] = []
    if not isinstance(doc, dict):
        raise AutomationError(source, ["expected a mapping with 'format' and 'automations'"])
    if doc.get("format") != FORMAT:
        errors.append(f"format: expected {FORMAT!r}, got {doc.get('format')!r}")
    directory = dict(teams or {})
    raw_teams = doc.get("teams") or {}
    if not isinstance(raw_teams, dict):
        errors.append("teams: expected a mapping of team name to email address")
    else:
        for name, address in raw_teams.items():
            if not isinstance(address, str) or "@" not in address:
                errors.append(f"teams.{name}: expected an email address, got {address!r}")
            else:
                directory[str(name)] = address
    raw = doc.get("automations")
    if not isinstance(raw, list):
        errors.append("automations: expected a list")
        raw = []
    parsed: list[Automation] = []
    seen: set[str] = set()
    for i, item in enumerate(raw):
        where = f"automations[{i}]"
        if isinstance(item, dict) and isinstance(item.get("id"), str):
            where += f" (id={item['id']})"
        automation = _automation(item, where, event_types, directory, errors)
        if automation is not None:
            if automation.id in seen:
                errors.append(f"{where}: id: duplicate id {automation.id!r}")
            seen.add(automation.id)
            parsed.append(automation)
    if errors:
        raise AutomationError(source, errors)
    return AutomationSet(tuple(sorted(parsed, key=lambda a: a.id)), directory)


def _automation(
    item: Any,
    where: str,
    event_types: Collection[str],
    teams: Mapping[str, str],
    errors: list[str],
) -> Automation | None:
    if not isinstance(item, dict):
        errors.append(f"{where}: expected a mapping")
        return None
    before = len(errors)
    unknown = set(item) - {"id", "version", "name", "enabled", "trigger", "actions"}
    if unknown:
        errors.append(f"{where}: unknown field(s) {', '.join(sorted(unknown))}")
    aid = item.get("id")
    if not isinstance(aid, str) or not _ID.match(aid):
        errors.append(f"{where}: id: expected lowercase letters, digits, '.', '_' or '-'")
    version = item.get("version", 1)
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        errors.append(f"{where}: version: expected a positive integer, got {version!r}")
    name = item.get("name", aid)
    enabled = item.get("enabled", True)
    if not isinstance(enabled, bool):
        errors.append(f"{where}: enabled: expected true or false, got {enabled!r}")
    trigger = _trigger(item.get("trigger"), f"{where}: trigger", event_types, errors)
    actions_raw = item.get("actions")
    actions: list[Action] = []
    if not isinstance(actions_raw, list) or not actions_raw:
        errors.append(f"{where}: actions: expected a non-empty list")
    else:
        for j, action in enumerate(actions_raw):
            parsed = _action(action, f"{where}: actions[{j}]", teams, errors)
            if parsed is not None:
                actions.append(parsed)
    if len(errors) > before or trigger is None:
        return None
    return Automation(str(aid), int(version), str(name), bool(enabled), trigger, tuple(actions))


def _trigger(
    raw: Any, where: str, event_types: Collection[str], errors: list[str]
) -> Trigger | None:
    if not isinstance(raw, dict):
        errors.append(f"{where}: expected a mapping with a 'type'")
        return None
    ttype = raw.get("type")
    if ttype not in event_types:
        known = ", ".join(sorted(event_types))
        errors.append(f"{where}.type: unknown trigger {ttype!r} (known: {known})")
        return None
    filters: dict[str, str] = {}
    for key, value in raw.items():
        if key == "type":
            continue
        if key not in _FILTER_FIELDS:
            errors.append(f"{where}.{key}: unknown filter (known: {', '.join(_FILTER_FIELDS)})")
        elif not isinstance(value, str):
            errors.append(f"{where}.{key}: expected a string, got {value!r}")
        else:
            filters[key] = value
    return Trigger(str(ttype), filters)


def _action(raw: Any, where: str, teams: Mapping[str, str], errors: list[str]) -> Action | None:
    if not isinstance(raw, dict):
        errors.append(f"{where}: expected a mapping with a 'type'")
        return None
    kind = raw.get("type")
    template = raw.get("template")
    if not isinstance(template, str) or not template:
        errors.append(f"{where}.template: expected a template name")
        return None
    if kind == "email":
        to = raw.get("to", "customer")
        if to == "customer":
            return EmailAction(template=template)
        addresses = [to] if isinstance(to, str) else to
        if not isinstance(addresses, list) or not all(
            isinstance(a, str) and "@" in a for a in addresses
        ):
            errors.append(f"{where}.to: expected 'customer' or email address(es), got {to!r}")
            return None
        return EmailAction(template=template, to=tuple(addresses), audience="internal")
    if kind == "alert":
        team, via = raw.get("team"), raw.get("via", "email")
        if not isinstance(team, str) or team not in teams:
            errors.append(
                f"{where}.team: unknown team {team!r} (known: {', '.join(sorted(teams)) or '-'})"
            )
            return None
        if via != "email":
            errors.append(f"{where}.via: only 'email' alerts are supported, got {via!r}")
            return None
        return AlertAction(team=team, template=template, via=via)
    errors.append(f"{where}.type: unknown action {kind!r} (known: alert, email)")
    return None
