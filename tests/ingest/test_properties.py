"""Everything ingest accepts, the evaluator can process (issue 9): a property test.

Events are generated from the Avro schema, mostly plausible, with hostile values mixed
in (huge and negative numbers, years 0 and 10000, odd time forms, control characters,
unknown zones and currencies, long ids). Whatever ``validate_batch`` accepts must
encode and decode with the project's codec, evaluate with the pure engine and the
default automations (a story of several events for one customer, the state stored and
read back between them), and the commands it emits must encode too.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from signalbox.common import schemas
from signalbox.common.action_command import command_to_record
from signalbox.common.codec import AvroCodec
from signalbox.common.settings import Settings
from signalbox.evaluator.engine import CustomerState, Event, Tick, evaluate, next_due
from signalbox.evaluator.engine_records import (
    event_from_record,
    state_from_record,
    state_to_record,
)
from signalbox.evaluator.main import file_definitions
from signalbox.ingest.avro_json import resolve
from signalbox.ingest.keys import INTERNAL_TYPES
from signalbox.ingest.validation import InvalidEvents, validate_batch

CODEC = AvroCodec()
COUNTS: Counter[str] = Counter()  # events refused and accepted, commands: for the report
AUTOMATIONS = file_definitions(Settings.from_env({})).build()  # the default file and teams
PRODUCER_TYPES = sorted(set(schemas.event_types()) - INTERNAL_TYPES)
HOSTILE_TEXT = st.one_of(
    st.text(max_size=40), st.text(min_size=250, max_size=300),
    st.sampled_from(["", " ", "a\r\nb", "\x00", "\u2028", "Mars/Base", "EURO", "12345",
                     "not-an-email", "a@x.com, b@y.com", "+49 151 12345678"]))
PLAUSIBLE_TEXT: Mapping[str, st.SearchStrategy[str]] = {
    "email": st.sampled_from(["ada@example.com", "b.c+tag@mail.example.org"]),
    "phone": st.sampled_from(["+4915112345678", "+14155552671", "+442071838750"]),
    "timezone": st.sampled_from(["Europe/Berlin", "UTC", "America/New_York", "Asia/Kolkata"]),
    "currency": st.sampled_from(["EUR", "USD", "JPY", "XTS"]),
    "product": st.sampled_from(["pro", "basic"]),
}
WORDS = st.text(st.characters(exclude_categories=["Cc", "Cs", "Zl", "Zp"]), min_size=1,
                max_size=12)
NOW_MS = 1_795_000_000_000
PLAUSIBLE_TIMES = st.one_of(
    st.integers(NOW_MS - 10**10, NOW_MS + 10**10),
    st.datetimes(min_value=datetime(1970, 1, 2), max_value=datetime(9999, 12, 30)).map(
        lambda d: d.isoformat(timespec="milliseconds") + "Z"))
TIMES = st.one_of(
    st.sampled_from([0, -1, 253_402_300_799_999, 253_402_300_800_000, 10**15, 2**62]),
    st.integers(253_402_300_800_000, 2**63 - 1), st.integers(-(2**63), -1),
    st.sampled_from(["0000-01-01T00:00:00Z", "10000-01-01T00:00:00Z", "9999-12-31T23:59:59-01:00",
                     "1969-12-31T23:59:59.999Z"]),
    st.datetimes().map(lambda d: d.isoformat() + "Z"),
    st.builds("{:04d}-{:02d}-{:02d}T{:02d}:{:02d}:{:02d}{}".format,
              st.integers(0, 10_000), st.integers(0, 13), st.integers(0, 32),
              st.integers(0, 24), st.integers(0, 60), st.integers(0, 60),
              st.sampled_from(["Z", "+14:00", "-12:00", "+14:60", " Z", "", "+23:59"])),
)


def mixed(plausible: st.SearchStrategy[Any], hostile: st.SearchStrategy[Any]
          ) -> st.SearchStrategy[Any]:
    """Plausible about 7 times in 8: most events then have one hostile value or none, so
    each check is met alone, not always hidden behind another one's refusal."""
    return st.integers(0, 7).flatmap(lambda roll: hostile if roll == 0 else plausible)


def integers(name: str, kind: str) -> st.SearchStrategy[int]:
    bits = 31 if kind == "int" else 63
    likely = {"nps": (0, 10), "exp_month": (1, 12), "exp_year": (2000, 2100)}.get(name, (0, 10**6))
    return mixed(st.integers(*likely), st.integers(-(2**bits), 2**bits - 1))


def value(name: str, schema: Any) -> st.SearchStrategy[Any]:
    """A JSON value for one field: mostly plausible, sometimes hostile."""
    schema = resolve(schema)
    if isinstance(schema, list):
        branches = [value(name, b) for b in schema if b != "null"]
        return st.one_of(st.none(), *branches) if "null" in schema else st.one_of(*branches)
    if isinstance(schema, dict):
        if schema.get("logicalType") == "timestamp-millis":
            return mixed(PLAUSIBLE_TIMES, TIMES)
        kind = schema["type"]
        if kind == "enum":
            return mixed(st.sampled_from(schema["symbols"]), HOSTILE_TEXT)
        if kind == "map":
            return st.dictionaries(st.text(max_size=10), value(name, schema["values"]),
                                   max_size=3)
        if kind == "array":
            return st.lists(value(name, schema["items"]), max_size=3)
        if kind == "record":
            return record(schema["fields"])
        schema = kind
    if schema == "string":
        plausible = PLAUSIBLE_TEXT.get(name, WORDS)
        return mixed(plausible, HOSTILE_TEXT)
    if schema in ("int", "long"):
        return integers(name, schema)
    if schema in ("float", "double"):
        return st.floats(allow_nan=False, allow_infinity=False)
    if schema == "boolean":
        return st.booleans()
    return st.none()


def record(fields: Any) -> st.SearchStrategy[dict[str, Any]]:
    """An object with every required field and any of the optional ones."""
    required = {f["name"]: value(f["name"], f["type"])
                for f in fields if "default" not in f}
    optional = {f["name"]: value(f["name"], f["type"])
                for f in fields if "default" in f}
    return st.fixed_dictionaries(required, optional=optional)


@st.composite
def events(draw: st.DrawFn, customer_id: str) -> dict[str, Any]:
    event_type = schemas.event_types()[draw(st.sampled_from(PRODUCER_TYPES))]
    envelope = {f["name"]: f for f in schemas.current()[schemas.EVENT].raw["fields"]}
    ids = st.uuids().map(str)
    out: dict[str, Any] = {
        "event_id": draw(mixed(ids, HOSTILE_TEXT)),
        "type": event_type.name,
        "customer_id": customer_id,
        "occurred_at": draw(value("occurred_at", envelope["occurred_at"]["type"])),
        "data": draw(record(event_type.fields)),
    }
    for name in ("customer", "attributes"):
        if draw(st.booleans()):
            out[name] = draw(value(name, envelope[name]["type"]))
    return out


@st.composite
def stories(draw: st.DrawFn) -> list[dict[str, Any]]:
    """A few events of one customer (the id itself may be hostile)."""
    customer_id = draw(st.one_of(st.just("cus_1"), st.just("cus_1"), HOSTILE_TEXT))
    return draw(st.lists(events(customer_id), min_size=1, max_size=6))


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(stories())
def test_what_ingest_accepts_the_evaluator_processes(story: list[dict[str, Any]]) -> None:
    state = None
    for i, item in enumerate(story):
        try:
            [accepted] = validate_batch(item, received_at=NOW_MS + i)
        except InvalidEvents:
            COUNTS["refused"] += 1
            continue
        COUNTS["accepted"] += 1
        decoded = CODEC.decode(schemas.EVENT, CODEC.encode(schemas.EVENT, accepted.record))
        state = processed(state, event_from_record(decoded))
        due = next_due(state, AUTOMATIONS) if state is not None else None
        if due is not None:  # the time triggers the event armed (reminders, expiries)
            state = processed(state, Tick(partition=0, at=due, interval_ms=60_000))


def processed(state: CustomerState | None, item: Event | Tick) -> CustomerState | None:
    """Evaluate as the evaluator does: commands encoded, the state stored and read back."""
    decision = evaluate(state, item, AUTOMATIONS)
    for command in decision.commands:
        CODEC.decode(schemas.ACTION_COMMAND,
                     CODEC.encode(schemas.ACTION_COMMAND, command_to_record(command)))
    COUNTS["commands"] += len(decision.commands)
    if decision.state is None:
        return None
    stored = CODEC.encode(schemas.CUSTOMER_STATE, state_to_record(decision.state))
    return state_from_record(CODEC.decode(schemas.CUSTOMER_STATE, stored))


def teardown_module() -> None:
    print(f"\nproperty run: {COUNTS['accepted']} events accepted and processed, "
          f"{COUNTS['refused']} refused, {COUNTS['commands']} commands emitted")
