"""``signalbox sources test|replay``: try a mapping on a payload; backfill history into Kafka.

``sources test --mapping F --payload P.json`` prints the events a payload becomes (as
``POST /v1/events`` JSON), or every problem: of the mapping file (file: place: reason),
of the payload (the mapping's place), or of the events (what ingest would answer).
``--mapping`` is a file or the name of a built-in mapping (stripe, chargebee, lago).

``sources replay --source stripe --file events.jsonl`` runs every payload of a file
(one JSON object a line, or Stripe's list export ``{"object": "list", "data": [...]}``
on a line) through the source's mapping and produces the events to Kafka with
:class:`signalbox.client.EventClient`, oldest first, in batches, with a progress bar.
The event ids are the source event ids, as for the webhooks, so a replay over events
already received (or a replay run twice) is deduplicated downstream.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from signalbox.common.settings import Settings
from signalbox.ingest.avro_json import ECHO_LIMIT
from signalbox.ingest.sources.catalogue import BUILTIN, builtin_path, load_sources
from signalbox.ingest.sources.mapping import (
    MappingError,
    PayloadError,
    SourceMapping,
    load_mapping,
    translate,
)
from signalbox.ingest.validation import InvalidEvents, InvalidJson, decode_json, validate_batch

BATCH = 500


def add_parser(sub: Any) -> None:
    sources = sub.add_parser("sources", help="webhook sources: try a mapping, backfill history")
    actions = sources.add_subparsers(dest="action", required=True)
    test = actions.add_parser(
        "test", help="print the events a payload becomes under a mapping, or the problems")
    test.add_argument("--mapping", required=True,
                      help=f"mapping YAML file, or a built-in one: {', '.join(BUILTIN)}")
    test.add_argument("--payload", required=True, help="one source payload (JSON file)")
    test.add_argument("--header", action="append", default=[], metavar="NAME=VALUE",
                      help="a request header the mapping reads (event_id_header)")
    replay = actions.add_parser(
        "replay", help="map a file of source payloads and produce the events to Kafka")
    replay.add_argument("--source", required=True, help="source name (its mapping is used)")
    replay.add_argument("--file", required=True, help="JSONL: one source payload a line")
    replay.add_argument("--mapping", help="mapping file instead of the source's own")


def _mapping(spec: str) -> SourceMapping:
    return load_mapping(builtin_path(spec) if spec in BUILTIN and not Path(spec).exists()
                        else spec)


def _say(action: str, *lines: str) -> None:
    """Each line on stderr as ``signalbox sources <action>: <line>``."""
    for line in lines:
        print(f"signalbox sources {action}: {line}", file=sys.stderr)


def _refuse(action: str, *problems: str) -> int:
    """Say why the input cannot be used; the exit status for unusable input, 2."""
    _say(action, *problems)
    return 2


def _mapping_problems(exc: MappingError) -> list[str]:
    return [f"{exc.source}: {error}" for error in exc.errors]


def _test(args: argparse.Namespace, out: TextIO) -> int:
    try:
        mapping = _mapping(args.mapping)
    except MappingError as exc:
        return _refuse("test", *_mapping_problems(exc))
    try:
        payload = decode_json(Path(args.payload).read_bytes())
    except OSError as exc:
        return _refuse("test", f"{args.payload}: {exc.strerror}")
    except InvalidJson as exc:
        return _refuse("test", f"{args.payload}: {exc.problem.reason}")
    headers = dict(h.split("=", 1) for h in args.header if "=" in h)
    try:
        result = translate(mapping, payload, headers)
    except PayloadError as exc:
        _say("test", f"{args.payload}: {exc.where}: {exc.why}")
        return 1
    if not result.events:
        why = "no rule's condition held" if result.mapped else "the mapping does not use it"
        _say("test", f"{result.source_type} {result.source_id}: no event ({why}); the webhook "
                     "would be answered 200")
        return 0
    json.dump(list(result.events), out, indent=2)
    out.write("\n")
    try:
        validate_batch(list(result.events), received_at=0)
    except InvalidEvents as exc:
        _say("test", *(f"ingest would refuse it (400): {problem.path}: {problem.reason}"
                       for problem in exc.problems))
        return 1
    return 0


def read_payloads(lines: TextIO, source: str) -> Iterator[tuple[str, Any]]:
    """``(place, payload)`` for every payload of a JSONL file; Stripe's list export
    (``{"object": "list", "data": [...]}``) on a line gives each of its items."""
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        place = f"{source}:{number}"
        try:
            value = decode_json(line.encode("utf-8"))
        except InvalidJson as exc:
            raise InvalidJson(f"{place}: {exc.problem.reason}") from None
        if isinstance(value, dict) and value.get("object") == "list" and \
                isinstance(value.get("data"), list):
            for i, item in enumerate(value["data"]):
                yield f"{place}[{i}]", item
        else:
            yield place, value


@dataclass
class ReplayReport:
    """What a replay did: events produced, and payloads counted by outcome."""

    produced: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)


def plan_replay(mapping: SourceMapping, payloads: Iterator[tuple[str, Any]],
                report: ReplayReport) -> list[dict[str, Any]]:
    """The valid events of every payload, oldest first; a payload whose events ingest
    would refuse is left out and reported (file:line, source id, path, reason)."""
    events: list[tuple[int, dict[str, Any]]] = []
    for place, payload in payloads:
        try:
            result = translate(mapping, payload)
        except PayloadError as exc:
            report.outcomes["unreadable"] += 1
            report.problems.append(f"{place}: {exc.where}: {exc.why}")
            continue
        if not result.events:
            report.outcomes["unmapped" if not result.mapped else "skipped"] += 1
            continue
        try:
            valid = validate_batch(list(result.events), received_at=0)
        except InvalidEvents as exc:
            report.outcomes["rejected"] += 1
            report.problems += [f"{place} ({result.source_id[:ECHO_LIMIT]}): {p.path}: "
                                f"{p.reason}" for p in exc.problems]
            continue
        report.outcomes["mapped"] += 1
        events += [(int(v.record["occurred_at"]), e) for v, e in zip(valid, result.events,
                                                                    strict=True)]
    events.sort(key=lambda pair: pair[0])  # stable: a payload's events keep their order
    return [e for _, e in events]


async def _produce(settings: Settings, source: str, events: list[dict[str, Any]],
                   report: ReplayReport) -> None:
    from tqdm import tqdm

    from signalbox.client import EventClient

    async with EventClient(settings, producer=source, client_id="signalbox-replay") as client:
        with tqdm(total=len(events), unit="event", desc=f"replay {source}",
                  file=sys.stderr) as bar:
            for start in range(0, len(events), BATCH):
                batch = _unique(events[start:start + BATCH])
                await client.send(batch)
                report.produced += len(batch)
                bar.update(min(BATCH, len(events) - start))


def _unique(batch: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One event per id in a batch (a file holding an event twice): the first wins."""
    seen: set[str] = set()
    out = []
    for event in batch:
        if event["event_id"] not in seen:
            seen.add(event["event_id"])
            out.append(event)
    return out


def _replay(settings: Settings, args: argparse.Namespace) -> int:
    try:
        if args.mapping:
            mapping: SourceMapping | None = _mapping(args.mapping)
        else:
            found = load_sources().get(args.source)
            mapping = found.mapping if found is not None else None
    except MappingError as exc:
        return _refuse("replay", *_mapping_problems(exc))
    if mapping is None:
        return _refuse("replay", f"no source named {args.source!r} (built in: "
                                 f"{', '.join(BUILTIN)}; or give --mapping)")
    report = ReplayReport()
    try:
        with open(args.file, encoding="utf-8") as lines:
            events = plan_replay(mapping, read_payloads(lines, args.file), report)
    except OSError as exc:
        return _refuse("replay", f"{args.file}: {exc.strerror}")
    except InvalidJson as exc:  # its reason starts with file:line
        return _refuse("replay", exc.problem.reason)
    _say("replay", *report.problems)
    asyncio.run(_produce(settings, mapping.source, events, report))
    counts = ", ".join(f"{n} {k}" for k, n in sorted(report.outcomes.items()))
    _say("replay", f"{report.produced} events produced ({counts or 'no payloads'})")
    return 1 if report.problems else 0


def run(args: argparse.Namespace) -> int:
    if args.action == "test":
        return _test(args, sys.stdout)
    return _replay(Settings.from_env(), args)
