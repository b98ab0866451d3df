"""``signalbox automations apply FILE`` and ``signalbox automations list``.

``apply`` validates the file whole, then the set the evaluators would build
afterwards (their own file, ``SIGNALBOX_AUTOMATIONS_FILE`` or the packaged default,
overridden by the topic's entries), and only then writes one record per automation
that changed (plus the team directory if the file has one). ``--prune`` deletes
topic entries the file does not name. Nothing is written when anything is invalid;
``--dry-run`` writes nothing and prints the diff.

``list`` shows that effective set as ``GET /v1/automations`` does: each automation
with its source (the evaluators' file, or the topic), and the topic entries the
evaluators reject. Run it with the evaluators' ``SIGNALBOX_AUTOMATIONS_FILE``.
"""

from __future__ import annotations

import asyncio
import difflib
import json
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TextIO

import yaml

from signalbox.common.clock import now_ms
from signalbox.common.registry import codec_for
from signalbox.common.settings import Settings
from signalbox.evaluator.definitions import (
    AUTOMATION,
    TEAMS,
    TEAMS_KEY,
    Change,
    Definitions,
    Stored,
    canonical,
    describe,
    load_file,
)
from signalbox.evaluator.engine import AutomationError, AutomationSet
from signalbox.evaluator.source import AutomationsSource, AutomationsWriter


@dataclass(frozen=True)
class Plan:
    """What ``apply`` writes: records to put and keys to delete, by change kind."""

    put: tuple[Stored, ...]
    delete: tuple[str, ...]
    created: tuple[str, ...]
    updated: tuple[str, ...]
    unchanged: tuple[str, ...]


def plan(topic: Definitions, file: Definitions, prune: bool, by: str, at: int) -> Plan:
    """Compare the file with the topic's entries. Pure."""
    put: list[Stored] = []
    created: list[str] = []
    updated: list[str] = []
    unchanged: list[str] = []
    wanted = dict(file.file_automations)
    for aid, definition in sorted(wanted.items()):
        old = topic.topic.get(aid)
        if old is not None and canonical(old.definition) == canonical(definition):
            unchanged.append(aid)
            continue
        (updated if old is not None else created).append(aid)
        put.append(Stored(aid, AUTOMATION, dict(definition), at, by))
    if file.file_teams:
        old = topic.topic.get(TEAMS_KEY)
        if old is None or canonical(old.definition) != canonical(file.file_teams):
            (updated if old is not None else created).append(TEAMS_KEY)
            put.append(Stored(TEAMS_KEY, TEAMS, dict(file.file_teams), at, by))
        else:
            unchanged.append(TEAMS_KEY)
    delete = tuple(sorted(k for k in topic.topic if prune and k not in wanted
                          and not (k == TEAMS_KEY and file.file_teams)))
    return Plan(tuple(put), delete, tuple(created), tuple(updated), tuple(unchanged))


async def _read_topic(settings: Settings) -> AutomationsSource:
    """The topic read to its end over the evaluators' file, as an evaluator holds it."""
    from signalbox.evaluator.main import file_definitions

    source = AutomationsSource(settings.kafka, codec_for(settings.registry),
                               file_definitions(settings), AutomationSet())
    await source.reader.start()
    try:
        await asyncio.wait_for(source.reader.caught_up.wait(), timeout=60)
    finally:
        await source.reader.stop()
    return source


def apply_command(settings: Settings, path: str, prune: bool, by: str,
                  out: TextIO = sys.stdout, dry_run: bool = False) -> int:
    """``signalbox automations apply``: exit 0, or 2 with every problem on stderr."""
    try:
        file = load_file(path, settings)  # as the evaluators and simulate read a file
    except AutomationError as exc:
        for error in exc.errors:
            print(f"{exc.source}: {error}", file=sys.stderr)
        return 2
    return asyncio.run(_apply(settings, file, path, prune, by, out, dry_run))


def list_command(settings: Settings, out: TextIO = sys.stdout, as_json: bool = False) -> int:
    """``signalbox automations list``: the effective set with sources, and rejections."""
    return asyncio.run(_list(settings, out, as_json))


def _yaml(definition: Mapping[str, Any] | None) -> list[str]:
    if definition is None:
        return []
    return yaml.safe_dump(json.loads(canonical(definition)), sort_keys=True,
                           default_flow_style=False, allow_unicode=True).splitlines(True)


def diff(topic: Definitions, todo: Plan, path: str) -> str:
    """What ``todo`` changes on the topic, as a unified diff of YAML per key. Pure."""
    parts: list[str] = []
    for key in [*todo.created, *todo.updated, *todo.delete]:
        old = topic.topic.get(key)
        new = next((s for s in todo.put if s.id == key), None)
        parts += difflib.unified_diff(
            _yaml(old.definition if old else None), _yaml(new.definition if new else None),
            fromfile=f"topic/{key}" if old else "/dev/null",
            tofile=f"{path}/{key}" if new else "/dev/null")
    return "".join(line if line.endswith("\n") else line + "\n" for line in parts)


def _print_keys(todo: Plan, prefix: str, out: TextIO) -> None:
    """``created``/``updated``/``deleted`` (or ``would …``) and ``unchanged`` key lines."""
    for label, keys in (("create", todo.created), ("update", todo.updated),
                        ("delete", todo.delete)):
        for key in keys:
            print(f"{prefix}{label if prefix else label + 'd'}\t{key}", file=out)
    for key in todo.unchanged:
        print(f"unchanged\t{key}", file=out)


async def _apply(settings: Settings, file: Definitions, path: str, prune: bool, by: str,
                 out: TextIO, dry_run: bool = False) -> int:
    source = await _read_topic(settings)
    todo = plan(source.definitions, file, prune, by, now_ms())
    after = source.definitions
    for stored in todo.put:
        after = after.with_change(Change(stored.id, stored))
    for key in todo.delete:
        after = after.with_change(Change(key, None))
    try:
        after.build()
    except AutomationError as exc:
        for error in exc.errors:
            print(f"{path}: with the topic's other entries: {error}", file=sys.stderr)
        return 2
    if dry_run:
        out.write(diff(source.definitions, todo, path))
        _print_keys(todo, "would ", out)
        print(f"dry run: would write {len(todo.put)}, delete {len(todo.delete)}; "
              f"{len(todo.unchanged)} unchanged; nothing written", file=out)
        return 0
    writer = AutomationsWriter(settings.kafka, codec_for(settings.registry))
    await writer.start()
    try:
        for stored in todo.put:
            await writer.put(stored)
        for key in todo.delete:
            await writer.delete(key)
    finally:
        await writer.stop()
    _print_keys(todo, "", out)
    print(f"{len(todo.put)} written, {len(todo.delete)} deleted, {len(todo.unchanged)} "
          f"unchanged on {writer.topic}", file=out)
    return 0


async def _list(settings: Settings, out: TextIO, as_json: bool = False) -> int:
    source = await _read_topic(settings)
    defs = source.definitions
    items = [describe(aid, origin, d, defs.topic.get(aid))
             for aid, (origin, d) in defs.effective().items()]
    rejected = [{"id": r.key, "errors": list(r.errors)} for r in source.rejected.values()]
    if as_json:  # the body of GET /v1/automations
        json.dump({"automations": items, "teams": defs.teams(), "rejected": rejected}, out,
                  indent=2, default=str)
        out.write("\n")
        return 0
    print("id\tversion\tenabled\ttrigger\tsource\tupdated_at\tupdated_by", file=out)
    for d in items:
        when = datetime.fromtimestamp(d["updated_at"] / 1000, UTC).isoformat() \
            if d["updated_at"] else "-"
        where = "topic" if d["origin"] == "topic" else f"file {defs.file_source}"
        if d["origin"] == "topic" and d["id"] in defs.file_automations:
            where = "topic (overrides the file)"
        print(f"{d['id']}\t{d['version']}\t{str(d['enabled']).lower()}\t{d['trigger']}"
              f"\t{where}\t{when}\t{d['updated_by'] or '-'}", file=out)
    if TEAMS_KEY in defs.topic:
        print(f"teams\t{canonical(defs.topic[TEAMS_KEY].definition)}", file=out)
    for r in rejected:
        print(f"REJECTED {r['id']}: {'; '.join(r['errors'])}", file=out)
    return 0
