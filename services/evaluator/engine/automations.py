"""Automations as data: the YAML format, its validation and the in-memory set.

Format ``signalbox/automations@2`` (``@1`` files are valid ``@2`` files and are
still read: @2 only adds optional keys)::

    format: signalbox/automations@2
    teams:                      # optional; merged over SIGNALBOX_TEAMS
      finance: finance@example.com
      ops: {email: ops@example.com, phone: "+4930123456", webhook: ops-hook}
    automations:
      - id: past-due-dunning    # stable id: part of every command id
        version: 1              # bump when the meaning changes
        name: Past due
        enabled: true
        critical: false         # true: ignores quiet hours and caps (never opt-outs)
        trigger: {type: past_due, days: [14, 30]}
        conditions: {active_subscription: true, exempt: {tags: [no-dunning]}}
        actions:
          - {type: email, to: customer, template: past_due}
          - {type: alert, team: finance, via: email, template: past_due_alert}

Triggers: :mod:`signalbox.evaluator.engine.triggers`; conditions:
:mod:`~signalbox.evaluator.engine.conditions`; actions:
:mod:`~signalbox.evaluator.engine.actions`.

A file with any error is rejected whole: nothing from it is applied. Every error
names the place: ``automations[2] (id=x): trigger.days: expected ...``.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from signalbox.common.errors import FileProblems
from signalbox.evaluator.engine.actions import (
    Action,
    AlertAction,
    ApprovalAction,
    EmailAction,
    Team,
    parse_action,
    parse_team,
)
from signalbox.evaluator.engine.conditions import Conditions, parse_conditions
from signalbox.evaluator.engine.triggers import (
    CATALOGUE,
    EVENT_PARAMS,
    ONCE_TRIGGERS,
    TIME_TRIGGERS,
    Param,
    known_triggers,
)

FORMAT = "signalbox/automations@2"
FORMATS = ("signalbox/automations@1", FORMAT)
_ID = re.compile(r"^[a-z0-9][a-z0-9._-]{0,99}$")
_FIELDS = ("id", "version", "name", "enabled", "critical", "trigger", "conditions", "actions")

__all__ = ["FORMAT", "Action", "AlertAction", "ApprovalAction", "EmailAction", "Team"]


class AutomationError(FileProblems):
    """An automation file that cannot be applied."""

    what = "automation file"


@dataclass(frozen=True)
class Trigger:
    type: str
    #: Event field filters: the field's value must be one of these.
    filters: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    #: The trigger type's parameters, parsed, with defaults filled in.
    params: Mapping[str, Any] = field(default_factory=dict)

    @property
    def is_time(self) -> bool:
        return self.type in TIME_TRIGGERS

    @property
    def fires_once(self) -> bool:
        """At most once ever per customer (the catalogue's ``once``)."""
        return self.type in ONCE_TRIGGERS


@dataclass(frozen=True)
class Automation:
    id: str
    version: int
    name: str
    enabled: bool
    trigger: Trigger
    actions: tuple[Action, ...]
    conditions: Conditions = field(default_factory=Conditions)
    critical: bool = False


@dataclass(frozen=True)
class AutomationSet:
    automations: tuple[Automation, ...] = ()
    teams: Mapping[str, Team] = field(default_factory=dict)
    _by_trigger: Mapping[str, tuple[Automation, ...]] = field(
        init=False, repr=False, compare=False, default_factory=dict)
    _timed: tuple[Automation, ...] = field(init=False, repr=False, compare=False, default=())

    def __post_init__(self) -> None:
        index: dict[str, list[Automation]] = {}
        for a in self.automations:
            if a.enabled:
                index.setdefault(a.trigger.type, []).append(a)
        object.__setattr__(self, "_by_trigger", {k: tuple(v) for k, v in index.items()})
        object.__setattr__(self, "_timed", tuple(
            a for a in self.automations if a.enabled and a.trigger.is_time))

    def for_trigger(self, trigger_type: str) -> tuple[Automation, ...]:
        """Enabled automations of this trigger type, by id."""
        return self._by_trigger.get(trigger_type, ())

    @property
    def timed(self) -> tuple[Automation, ...]:
        """Enabled automations with a time trigger, by id."""
        return self._timed


def load_automations(
    path: str | Path, event_types: Collection[str], teams: Mapping[str, Any] | None = None
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
    teams: Mapping[str, Any] | None = None,
    source: str = "<string>",
) -> AutomationSet:
    """Parse and validate a whole file. ``event_types``: names, or the mapping of
    :func:`signalbox.common.schemas.event_types` (then field filters are checked too).
    ``teams``: name → email address or :class:`Team` (e.g. from SIGNALBOX_TEAMS)."""
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise AutomationError(source, [f"not valid YAML: {exc}"]) from exc
    errors: list[str] = []
    if not isinstance(doc, dict):
        raise AutomationError(source, ["expected a mapping with 'format' and 'automations'"])
    if doc.get("format") not in FORMATS:
        errors.append(f"format: expected {' or '.join(map(repr, FORMATS))}, "
                      f"got {doc.get('format')!r}")
    directory: dict[str, Team] = {}
    for name, value in (teams or {}).items():
        team = value if isinstance(value, Team) else parse_team(str(name), value, errors)
        if team is not None:
            directory[str(name)] = team
    raw_teams = doc.get("teams") or {}
    if not isinstance(raw_teams, dict):
        errors.append("teams: expected a mapping of team name to email address or channels")
    else:
        for name, value in raw_teams.items():
            team = parse_team(str(name), value, errors)
            if team is not None:
                directory[str(name)] = team
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
    teams: Mapping[str, Team],
    errors: list[str],
) -> Automation | None:
    if not isinstance(item, dict):
        errors.append(f"{where}: expected a mapping")
        return None
    before = len(errors)
    unknown = set(item) - set(_FIELDS)
    if unknown:
        errors.append(f"{where}: unknown field(s) {', '.join(sorted(unknown))}")
    aid = item.get("id")
    if not isinstance(aid, str) or not _ID.match(aid):
        errors.append(f"{where}: id: expected lowercase letters, digits, '.', '_' or '-'")
    version = item.get("version", 1)
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        errors.append(f"{where}: version: expected a positive integer, got {version!r}")
    name = item.get("name", aid)
    for flag in ("enabled", "critical"):
        if not isinstance(item.get(flag, True), bool):
            errors.append(f"{where}: {flag}: expected true or false, got {item[flag]!r}")
    trigger = _trigger(item.get("trigger"), f"{where}: trigger", event_types, errors)
    conditions = parse_conditions(item.get("conditions"), f"{where}: conditions", errors)
    actions_raw = item.get("actions")
    actions: list[Action] = []
    if not isinstance(actions_raw, list) or not actions_raw:
        errors.append(f"{where}: actions: expected a non-empty list")
    else:
        for j, action in enumerate(actions_raw):
            parsed = parse_action(action, f"{where}: actions[{j}]", teams, errors)
            if parsed is not None:
                actions.append(parsed)
    if len(errors) > before or trigger is None:
        return None
    return Automation(str(aid), int(version), str(name), bool(item.get("enabled", True)),
                      trigger, tuple(actions), conditions, bool(item.get("critical", False)))


def _payload_fields(event_types: Collection[str], ttype: str) -> set[str] | None:
    """Names of the event type's filterable (text) fields, when the caller gave them."""
    info = event_types.get(ttype) if isinstance(event_types, Mapping) else None
    fields = getattr(info, "fields", None)
    if fields is None:
        return None
    return {f["name"] for f in fields if _is_text(f["type"])}


def _is_text(avro_type: Any) -> bool:
    branches = avro_type if isinstance(avro_type, list) else [avro_type]
    return any(b == "string" or (isinstance(b, dict) and b.get("type") == "enum")
               or (isinstance(b, str) and "." in b) for b in branches)


def _trigger(
    raw: Any, where: str, event_types: Collection[str], errors: list[str]
) -> Trigger | None:
    if not isinstance(raw, dict):
        errors.append(f"{where}: expected a mapping with a 'type'")
        return None
    ttype = raw.get("type")
    if not isinstance(ttype, str) or (ttype not in event_types and ttype not in CATALOGUE):
        known = ", ".join(known_triggers(event_types))
        errors.append(f"{where}.type: unknown trigger {ttype!r} (known: {known})")
        return None
    spec: Mapping[str, Param] = CATALOGUE[ttype].params if ttype in CATALOGUE \
        else EVENT_PARAMS.get(ttype, {})
    filterable = None if ttype in CATALOGUE else _payload_fields(event_types, ttype)
    params: dict[str, Any] = {}
    filters: dict[str, tuple[str, ...]] = {}
    for key, value in raw.items():
        if key == "type":
            continue
        if key in spec:
            parsed = spec[key].check(value, f"{where}.{key}", errors)
            if parsed is not None:
                params[key] = parsed
        elif ttype in CATALOGUE or (filterable is not None and key not in filterable):
            known_keys = sorted({*spec, *(filterable or ())})
            errors.append(f"{where}.{key}: unknown parameter for {ttype} "
                          f"(known: {', '.join(known_keys) or '-'})")
        else:
            values = value if isinstance(value, list) else [value]
            if not values or not all(isinstance(v, str) and v for v in values):
                errors.append(f"{where}.{key}: expected a string or a list of strings, "
                              f"got {value!r}")
            else:
                filters[key] = tuple(values)
    for key, param in spec.items():
        if key not in params and key not in raw:
            if param.required:
                errors.append(f"{where}.{key}: required for {ttype}")
            elif param.default is not None:
                params[key] = param.default
    return Trigger(ttype, filters, params)
