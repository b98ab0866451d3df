"""The schema contract (DESIGN principle 4): a new schema must read old data.

Every schema version ever written to Kafka is archived as
``schemas/avro/history/<full name>/<n>.avsc``. For each archived writer version,
random records are written with it and read back with the current schemas; the
archive must hold the current version of every record so that the next change
is checked against it.
"""

from __future__ import annotations

import copy
import io
import json
import random
from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import PurePosixPath
from typing import Any, cast

import pytest
from fastavro import schemaless_reader
from fastavro.schema import to_parsing_canonical_form
from fastavro.utils import generate_many

from signalbox.common import schemas
from signalbox.common.codec import HEADER_LEN, AvroCodec, DecodeError
from signalbox.common.schemas import SchemaVersion
from signalbox.common.topics import EVENTS_BILLING, EVENTS_USAGE
from tests.common.spec import schema_version, single_object

#: Random records written with each archived version.
SAMPLES = 200


@contextmanager
def seeded(seed: str) -> Iterator[None]:
    """fastavro's generators draw from the global ``random``: make them repeatable."""
    state = random.getstate()
    random.seed(seed)
    try:
        yield
    finally:
        random.setstate(state)


def old_records(writer: SchemaVersion, count: int = SAMPLES) -> list[bytes]:
    """``count`` random records written with ``writer``, in single-object encoding."""
    with seeded(writer.source):
        return [single_object(writer, datum) for datum in generate_many(writer.raw, count)]


def _same_type(a: Any, b: Any) -> bool:
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


def check_reads_old_data(codec: AvroCodec, writer: SchemaVersion) -> None:
    """``codec`` (the reader) decodes records written with ``writer`` without loss.

    Every field of the reader is present; fields whose type did not change carry
    exactly what the writer wrote.
    """
    reader = codec.schema(writer.name)
    reader_fields = [f["name"] for f in reader.parsed["fields"]]
    unchanged = [
        rf["name"] for rf in reader.parsed["fields"] for wf in writer.parsed["fields"]
        if rf["name"] == wf["name"] and _same_type(rf["type"], wf["type"])
    ]
    for data in old_records(writer):
        written = cast(dict[str, Any], schemaless_reader(
            io.BytesIO(data[HEADER_LEN:]), writer.io, None,
            return_record_name=True, return_record_name_override=True))
        decoded = codec.decode(writer.name, data)
        assert sorted(decoded) == sorted(reader_fields)  # (resolution appends new fields)
        assert {f: decoded[f] for f in unchanged} == {f: written[f] for f in unchanged}


def _archived_versions() -> Mapping[str, dict[int, SchemaVersion]]:
    out: dict[str, dict[int, SchemaVersion]] = defaultdict(dict)
    for v in schemas.history():
        stem = PurePosixPath(v.source).stem
        if stem.isdigit():
            out[v.name][int(stem)] = v
    return out


def archive_problems(current: Mapping[str, SchemaVersion],
                     history: Sequence[SchemaVersion]) -> list[str]:
    """What a developer must do so that every published schema version is archived."""
    problems: list[str] = []
    versions: dict[str, dict[int, SchemaVersion]] = defaultdict(dict)
    for v in history:
        path = PurePosixPath(v.source)
        if path.parent.name != v.name:
            problems.append(f"{v.source} holds {v.name}: move it to history/{v.name}/")
        if not path.stem.isdigit():
            problems.append(f"{v.source}: archived versions are named 1.avsc, 2.avsc, ...")
            continue
        versions[v.name][int(path.stem)] = v
    for name, by_number in sorted(versions.items()):
        if sorted(by_number) != list(range(1, len(by_number) + 1)):
            problems.append(f"history/{name}/ has versions {sorted(by_number)}: "
                            f"number them 1..{len(by_number)}, never reuse or skip a number")
        if name not in current:
            problems.append(f"history/{name}/ has no current schema: records already on Kafka "
                            "must stay readable, so a published record type is never removed")
    for name, cur in sorted(current.items()):
        by_number = versions.get(name, {})
        newest = max(by_number, default=0)
        if newest and to_parsing_canonical_form(by_number[newest].parsed) == \
                to_parsing_canonical_form(cur.parsed):
            continue
        problems.append(
            f"{cur.source} ({name}) is not archived: archive the new version of {name} as "
            f"history/{name}/{newest + 1}.avsc (an exact copy of {cur.source}) once this "
            f"test passes for it, so that the next change is checked against it")
    return problems


# -- the archive -------------------------------------------------------------------


def test_every_current_schema_is_archived_as_its_newest_version() -> None:
    assert archive_problems(schemas.current(), schemas.history()) == []


def test_every_archived_version_has_its_own_fingerprint() -> None:
    seen: dict[bytes, str] = {}
    duplicates = []
    for v in schemas.history():
        if v.fingerprint in seen:
            duplicates.append(f"{v.source} is the same schema as {seen[v.fingerprint]} (in "
                              "parsing canonical form): a change of docs, defaults or "
                              "custom attributes needs no new version; delete the newer copy")
        seen.setdefault(v.fingerprint, v.source)
    assert duplicates == []
    assert len(seen) == len(schemas.history()) > 0


def test_a_changed_schema_without_an_archived_copy_is_reported() -> None:
    tick = schemas.current()[schemas.TICK]
    raw = copy.deepcopy(tick.raw)
    raw["fields"].append({"name": "catch_up", "type": "boolean", "default": False})
    changed = {**schemas.current(), schemas.TICK: schema_version(raw, tick.source)}
    newest = max(_archived_versions()[schemas.TICK])

    problems = archive_problems(changed, schemas.history())

    assert len(problems) == 1
    assert (f"archive the new version of signalbox.Tick as "
            f"history/signalbox.Tick/{newest + 1}.avsc") in problems[0]


def test_a_new_record_type_must_be_archived_as_version_1() -> None:
    new = schema_version({"type": "record", "name": "Refund", "namespace": "signalbox",
                          "fields": [{"name": "refund_id", "type": "string"}]},
                         "avro/refund.avsc")
    problems = archive_problems({**schemas.current(), new.name: new}, schemas.history())
    assert len(problems) == 1
    assert "archive the new version of signalbox.Refund as history/signalbox.Refund/1.avsc" \
        in problems[0]


def test_a_doc_only_change_needs_no_new_version() -> None:
    tick = schemas.current()[schemas.TICK]
    raw = copy.deepcopy(tick.raw)
    raw["doc"] = "Reworded."
    raw["fields"][0]["doc"] = "Reworded too."
    changed = {**schemas.current(), schemas.TICK: schema_version(raw, tick.source)}
    assert archive_problems(changed, schemas.history()) == []


def test_misplaced_misnumbered_and_orphaned_archive_files_are_reported() -> None:
    tick = schemas.current()[schemas.TICK]
    event = schemas.current()[schemas.EVENT]
    history = [
        *schemas.history(),
        SchemaVersion(tick.name, "avro/history/signalbox.Tick/3.avsc", tick.raw, tick.parsed,
                      b"\x00" * 8),
        SchemaVersion(event.name, "avro/history/signalbox.Tick/latest.avsc", event.raw,
                      event.parsed, b"\x01" * 8),
    ]
    current = {n: v for n, v in schemas.current().items() if n != schemas.LEDGER_ENTRY}

    problems = "\n".join(archive_problems(current, history))

    assert "holds signalbox.Event: move it to history/signalbox.Event/" in problems
    assert "latest.avsc: archived versions are named 1.avsc, 2.avsc" in problems
    assert "history/signalbox.Tick/ has versions" in problems
    assert "history/signalbox.LedgerEntry/ has no current schema" in problems


# -- evolution: the current schemas read every archived writer version ----------------


@pytest.mark.parametrize("writer", schemas.history(),
                         ids=lambda v: v.source.removeprefix("avro/history/"))
def test_current_schemas_read_data_written_with_every_archived_version(
        writer: SchemaVersion) -> None:
    check_reads_old_data(AvroCodec(), writer)


def test_old_records_are_deterministic_and_exercise_every_payload_branch() -> None:
    newest = _archived_versions()[schemas.EVENT]
    writer = newest[max(newest)]
    first, again = old_records(writer), old_records(writer)
    assert first == again
    payload = next(f for f in writer.parsed["fields"] if f["name"] == "payload")
    decoded = [AvroCodec().decode(schemas.EVENT, data)["payload"][0] for data in first]
    assert set(decoded) == {branch["name"] for branch in payload["type"]}


@pytest.mark.parametrize("name", sorted(schemas.current()))
def test_the_check_fails_for_a_reader_that_adds_a_required_field(name: str) -> None:
    by_number = _archived_versions()[name]
    writer = by_number[max(by_number)]
    raw = copy.deepcopy(schemas.current()[name].raw)
    raw["fields"].append({"name": "tenant_id", "type": "string"})
    stricter = AvroCodec(current={name: schema_version(raw)}, archived=(writer,))

    with pytest.raises(DecodeError) as err:
        check_reads_old_data(stricter, writer)

    assert writer.source in err.value.reason
    assert "No default value for field tenant_id" in err.value.reason


def test_the_check_passes_for_a_reader_that_adds_a_field_with_a_default() -> None:
    by_number = _archived_versions()[schemas.EVENT]
    writer = by_number[max(by_number)]
    raw = copy.deepcopy(schemas.current()[schemas.EVENT].raw)
    raw["fields"].append({"name": "tenant_id", "type": "string", "default": "main"})
    evolved = AvroCodec(current={schemas.EVENT: schema_version(raw)}, archived=(writer,))

    check_reads_old_data(evolved, writer)
    assert evolved.decode(schemas.EVENT, old_records(writer, 1)[0])["tenant_id"] == "main"


def test_without_the_archived_writer_old_data_is_unreadable() -> None:
    by_number = _archived_versions()[schemas.EVENT]
    writer = by_number[max(by_number)]
    raw = copy.deepcopy(schemas.current()[schemas.EVENT].raw)
    raw["fields"].append({"name": "tenant_id", "type": "string", "default": "main"})
    forgetful = AvroCodec(current={schemas.EVENT: schema_version(raw)}, archived=())

    with pytest.raises(DecodeError, match="unknown writer schema fingerprint"):
        forgetful.decode(schemas.EVENT, old_records(writer, 1)[0])


# -- event types ---------------------------------------------------------------------


def test_event_types_are_every_payload_branch_with_type_and_topic() -> None:
    payload = next(f for f in schemas.current()[schemas.EVENT].raw["fields"]
                   if f["name"] == "payload")
    branches = {f"{b['namespace']}.{b['name']}": b for b in payload["type"]}
    for record, branch in branches.items():
        assert branch.get("signalbox.type"), f"{record} has no signalbox.type"
        assert branch.get("signalbox.topic") in (EVENTS_BILLING, EVENTS_USAGE), \
            f"{record}: signalbox.topic must be {EVENTS_BILLING} or {EVENTS_USAGE}"

    types = schemas.event_types()

    assert len(types) == len(branches), "two payload branches share a signalbox.type"
    for name, t in types.items():
        branch = branches[t.record]
        assert (name, t.name, t.topic, t.doc) == (
            branch["signalbox.type"], branch["signalbox.type"], branch["signalbox.topic"],
            branch.get("doc", ""))
        assert t.fields == tuple(branch["fields"])
