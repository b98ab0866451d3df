"""``signalbox automations apply FILE`` and ``signalbox automations list``.

``apply`` validates the file whole, then the set the topic would hold afterwards,
and only then writes one record per automation that changed (plus the team
directory if the file has one). ``--prune`` deletes topic entries the file does not
name. Nothing is written when anything is invalid. The evaluators' own file
(``SIGNALBOX_AUTOMATIONS_FILE``) is not known here; a topic entry that conflicts
with it is rejected by the evaluators and shown by ``list``.
"""

from __future__ import annotations

import asyncio
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

from signalbox.common import schemas
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
    from_file,
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
    empty = Definitions(schemas.event_types(), settings.teams)
    source = AutomationsSource(settings, codec_for(settings), empty, AutomationSet())
    await source.reader.start()
    try:
        await asyncio.wait_for(source.reader.caught_up.wait(), timeout=60)
    finally:
        await source.reader.stop()
    return source


def apply_command(settings: Settings, path: str, prune: bool, by: str,
                  out: TextIO = sys.stdout) -> int:
    """``signalbox automations apply``: exit 0, or 2 with every problem on stderr."""
    try:
        text = Path(path).read_text("utf-8")
        file = from_file(text, path, schemas.event_types(), settings.teams)
    except OSError as exc:
        print(f"{path}: cannot read: {exc.strerror}", file=sys.stderr)
        return 2
    except AutomationError as exc:
        for error in exc.errors:
            print(f"{exc.source}: {error}", file=sys.stderr)
        return 2
    return asyncio.run(_apply(settings, file, path, prune, by, out))


def list_command(settings: Settings, out: TextIO = sys.stdout) -> int:
    """``signalbox automations list``: what the topic holds, and what it rejected."""
    return asyncio.run(_list(settings, out))


async def _apply(settings: Settings, file: Definitions, path: str, prune: bool, by: str,
                 out: TextIO) -> int:
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
    writer = AutomationsWriter(settings.kafka, codec_for(settings))
    await writer.start()
    try:
        for stored in todo.put:
            await writer.put(stored)
        for key in todo.delete:
            await writer.delete(key)
    finally:
        await writer.stop()
    for label, keys in (("created", todo.created), ("updated", todo.updated),
                        ("deleted", todo.delete), ("unchanged", todo.unchanged)):
        for key in keys:
            print(f"{label}\t{key}", file=out)
    print(f"{len(todo.put)} written, {len(todo.delete)} deleted, {len(todo.unchanged)} "
          f"unchanged on {writer.topic}", file=out)
    return 0


async def _list(settings: Settings, out: TextIO) -> int:
    source = await _read_topic(settings)
    defs = source.definitions
    print("id\tversion\tenabled\ttrigger\tupdated_at\tupdated_by", file=out)
    for aid, (origin, definition) in defs.effective().items():
        d = describe(aid, origin, definition, defs.topic.get(aid))
        when = datetime.fromtimestamp(d["updated_at"] / 1000, UTC).isoformat() \
            if d["updated_at"] else "-"
        print(f"{aid}\t{d['version']}\t{str(d['enabled']).lower()}\t{d['trigger']}\t{when}"
              f"\t{d['updated_by']}", file=out)
    if TEAMS_KEY in defs.topic:
        print(f"teams\t{canonical(defs.topic[TEAMS_KEY].definition)}", file=out)
    for rejected in source.rejected.values():
        print(f"REJECTED {rejected.key}: {'; '.join(rejected.errors)}", file=out)
    return 0
