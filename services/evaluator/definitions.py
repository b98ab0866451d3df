"""Automation definitions from two sources, merged and validated as one set. Pure.

Sources and precedence:

* the file (``SIGNALBOX_AUTOMATIONS_FILE``, or the built-in default): git-managed
  config or a Kubernetes ConfigMap, read at start-up;
* the compacted ``automations`` topic (``signalbox automations apply``, the admin API):
  read in full by every worker and followed live.

A topic entry overrides the file's automation with the same id; deleting the topic
entry (a tombstone) brings the file's version back. Teams: ``SIGNALBOX_TEAMS``, then
the file's ``teams:``, then the topic's team directory, later ones winning by name.

Every change is validated against the *whole* resulting set by :func:`compile_set`:
the engine's ``parse_automations`` (format, triggers, conditions, actions, teams),
then the templates the actions send (:mod:`signalbox.evaluator.template_check`). A
change that makes the set invalid is rejected whole, with the reasons, and the set
stays as it was: nothing is ever half-applied.

This is the one validation path: the file at start-up, ``signalbox automations
apply``, the admin API's PUT (through the topic) and ``signalbox simulate`` all go
through :func:`load_file` / :class:`Definitions`, with the teams and templates of the
same settings (``SIGNALBOX_TEAMS``, ``SIGNALBOX_TEMPLATES_DIR``). Pure but for the
files: the automations file :func:`load_file` reads and the templates the check reads.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from signalbox.common import schemas
from signalbox.common.settings import Settings
from signalbox.evaluator.engine import AutomationError, AutomationSet, parse_automations
from signalbox.evaluator.engine.automations import FORMAT
from signalbox.evaluator.template_check import TemplateCheck

#: Key of the team directory on the automations topic. Automation ids start with a
#: letter or digit, so it never collides with one.
TEAMS_KEY = "_teams"
AUTOMATION, TEAMS = "automation", "teams"


@dataclass(frozen=True)
class Stored:
    """One entry of the automations topic, decoded."""

    id: str
    kind: str  # AUTOMATION | TEAMS
    definition: Mapping[str, Any]
    updated_at: int
    updated_by: str


@dataclass(frozen=True)
class Change:
    """A topic record: ``stored`` ``None`` deletes ``key``'s entry."""

    key: str
    stored: Stored | None


@dataclass(frozen=True)
class Rejected:
    key: str
    errors: tuple[str, ...]


@dataclass(frozen=True)
class Definitions:
    """Everything the automation set is built from."""

    event_types: Collection[str]
    env_teams: Mapping[str, str] = field(default_factory=dict)
    file_source: str = ""
    file_automations: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    file_teams: Mapping[str, Any] = field(default_factory=dict)
    topic: Mapping[str, Stored] = field(default_factory=dict)
    #: The templates the actions may name (default: the built-in ones only).
    templates: TemplateCheck = field(default_factory=TemplateCheck, compare=False)

    def effective(self) -> dict[str, tuple[str, Mapping[str, Any]]]:
        """Automation definitions by id, each with its origin ("file" or "topic")."""
        out = {aid: ("file", d) for aid, d in self.file_automations.items()}
        out.update({k: ("topic", s.definition) for k, s in self.topic.items()
                    if s.kind == AUTOMATION})
        return dict(sorted(out.items()))

    def teams(self) -> dict[str, Any]:
        """The team directory of the file and the topic (an entry as the format has it)."""
        teams = {**self.file_teams}
        stored = self.topic.get(TEAMS_KEY)
        if stored is not None:
            teams.update({str(k): v for k, v in stored.definition.items()})
        return teams

    def build(self) -> AutomationSet:
        """The validated set; :class:`AutomationError` lists every problem."""
        return compile_set(self.event_types, self.env_teams, self.teams(),
                           [d for _, d in self.effective().values()], source="automations",
                           templates=self.templates)

    def with_change(self, change: Change) -> Definitions:
        topic = dict(self.topic)
        if change.stored is None:
            topic.pop(change.key, None)
        else:
            topic[change.key] = change.stored
        return replace(self, topic=topic)


def compile_set(event_types: Collection[str], env_teams: Mapping[str, str],
                teams: Mapping[str, Any], automations: Sequence[Mapping[str, Any]],
                source: str, templates: TemplateCheck) -> AutomationSet:
    """Build an AutomationSet from definitions through the one validator."""
    doc = {"format": FORMAT, "teams": dict(teams), "automations": list(automations)}
    return checked(json.dumps(doc), event_types, env_teams, source, templates)


def checked(text: str, event_types: Collection[str], env_teams: Mapping[str, str],
            source: str, templates: TemplateCheck) -> AutomationSet:
    """``text`` parsed by the engine, then its templates checked; every problem of the
    first stage that finds any is raised as one :class:`AutomationError`."""
    built = parse_automations(text, event_types, env_teams, source=source)
    problems = templates.problems(built, event_types if isinstance(event_types, Mapping)
                                  else schemas.event_types())
    if problems:
        raise AutomationError(source, problems)
    return built


def from_file(text: str, source: str, event_types: Collection[str],
              env_teams: Mapping[str, str], templates: TemplateCheck | None = None
              ) -> Definitions:
    """The file's definitions, validated whole (raises :class:`AutomationError`)."""
    templates = templates or TemplateCheck()
    checked(text, event_types, env_teams, source, templates)
    doc = yaml.safe_load(text)
    automations = {str(a["id"]): dict(a) for a in doc.get("automations") or ()}
    teams = {str(k): v for k, v in (doc.get("teams") or {}).items()}
    return Definitions(event_types, dict(env_teams), source, automations, teams,
                       templates=templates)


def configured(settings: Settings) -> Definitions:
    """No automations yet, with what every set is checked against: the event types, the
    teams of ``SIGNALBOX_TEAMS`` and the templates of ``SIGNALBOX_TEMPLATES_DIR``."""
    return Definitions(schemas.event_types(), dict(settings.evaluator.teams),
                       templates=TemplateCheck.configured(settings.templates_dir))


def load_file(path: str, settings: Settings) -> Definitions:
    """An automations file, validated whole as every path validates it (raises
    :class:`AutomationError`, also when it cannot be read)."""
    try:
        text = Path(path).read_text("utf-8")
    except OSError as exc:
        raise AutomationError(path, [f"cannot read: {exc.strerror}"]) from exc
    base = configured(settings)
    return from_file(text, path, base.event_types, base.env_teams, base.templates)


def apply_changes(defs: Definitions, changes: Iterable[Change]
                  ) -> tuple[Definitions, AutomationSet | None, list[Rejected]]:
    """Apply topic records in order; each one that breaks the set is rejected alone.

    Returns the new definitions, the new set (``None`` when nothing was accepted) and
    the rejections. The common case (all valid) costs one validation of the set.
    """
    rejected: list[Rejected] = []
    alone_ok = []
    candidate = defs
    for change in changes:  # a definition broken on its own needs no whole-set check
        problems = _problems_alone(candidate, change)
        if problems:
            rejected.append(Rejected(change.key, problems))
        else:
            alone_ok.append(change)
            candidate = candidate.with_change(change)
    if not alone_ok:
        return defs, None, rejected
    try:
        return candidate, candidate.build(), rejected
    except AutomationError:
        pass
    built: AutomationSet | None = None
    for change in alone_ok:  # something conflicts: find it, one record at a time
        trial = defs.with_change(change)
        try:
            built = trial.build()
        except AutomationError as exc:
            rejected.append(Rejected(change.key, tuple(exc.errors)))
            continue
        defs = trial
    return defs, built, rejected


def _problems_alone(defs: Definitions, change: Change) -> tuple[str, ...]:
    stored = change.stored
    if stored is None:
        return ()
    if stored.kind == TEAMS:
        if stored.id != TEAMS_KEY:
            return (f"a team directory must have the key {TEAMS_KEY!r}",)
        return ()
    if stored.definition.get("id") != stored.id:
        return (f"id: the definition's id {stored.definition.get('id')!r} is not the "
                f"key {stored.id!r}",)
    try:
        compile_set(defs.event_types, defs.env_teams, defs.teams(), [stored.definition],
                    source=f"automation {stored.id}", templates=defs.templates)
    except AutomationError as exc:
        return tuple(exc.errors)
    return ()


def canonical(definition: Mapping[str, Any]) -> str:
    """The JSON text stored on the topic: stable, so an unchanged definition compares equal."""
    return json.dumps(definition, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def stored_from_record(record: Mapping[str, Any], updated_at: int) -> Stored:
    """A decoded ``signalbox.AutomationRecord``; ValueError when its definition is no JSON
    object."""
    try:
        definition = json.loads(record["definition"])
    except json.JSONDecodeError as exc:
        raise ValueError(f"definition: not JSON: {exc}") from None
    if not isinstance(definition, dict):
        raise ValueError("definition: expected a JSON object")
    return Stored(record["id"], record["kind"], definition, updated_at, record["updated_by"])


def record_from_stored(stored: Stored) -> dict[str, Any]:
    return {"id": stored.id, "kind": stored.kind, "definition": canonical(stored.definition),
            "updated_at": stored.updated_at, "updated_by": stored.updated_by}


def describe(aid: str, origin: str, definition: Mapping[str, Any],
             stored: Stored | None) -> dict[str, Any]:
    """The JSON the admin API and ``automations list`` show for one automation."""
    return {
        "id": aid,
        "origin": origin,
        "version": definition.get("version", 1),
        "enabled": definition.get("enabled", True),
        "trigger": (definition.get("trigger") or {}).get("type")
        if isinstance(definition.get("trigger"), dict) else None,
        "updated_at": stored.updated_at if stored else None,
        "updated_by": stored.updated_by if stored else None,
        "definition": dict(definition),
    }
