"""The command contract against the Avro schema it stands for (issue 13, item 2).

Both directions, for ``signalbox.ActionCommand``, its trigger and every branch of its
``action`` union: each schema field has a dataclass field of the same name with a
compatible type and optionality, and each dataclass field is in the schema. Then a round
trip through the real codec per branch, and the records the dispatcher refuses.
"""

from __future__ import annotations

import json
import types
from collections.abc import Iterator, Mapping
from dataclasses import MISSING, Field, fields, is_dataclass, replace
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints

import pytest

from signalbox.common import schemas
from signalbox.common.action_command import (
    MAX_ID_CHARS,
    ChannelCommand,
    Command,
    CommandError,
    CrmCommand,
    EmailCommand,
    ExportCommand,
    SmsCommand,
    TriggerInfo,
    WebhookCommand,
    command_from_json,
    command_from_record,
    command_to_json,
    command_to_record,
)
from signalbox.common.codec import AvroCodec
from tests.common.spec import single_object

CODEC = AvroCodec()
RAW = CODEC.schema(schemas.ACTION_COMMAND).raw
BRANCHES: tuple[type[Any], ...] = get_args(ChannelCommand)


def _named(schema: Any, namespace: str, out: dict[str, dict[str, Any]]) -> None:
    """Every named type (record, enum) in ``schema``, by full name."""
    if isinstance(schema, list):
        for s in schema:
            _named(s, namespace, out)
        return
    if not isinstance(schema, dict):
        return
    if schema.get("type") in ("record", "enum"):
        namespace = schema.get("namespace", namespace)
        out[f"{namespace}.{schema['name']}"] = schema
        for f in schema.get("fields", ()):
            _named(f["type"], namespace, out)
    for key in ("items", "values"):
        if key in schema:
            _named(schema[key], namespace, out)


NAMED: dict[str, dict[str, Any]] = {}
_named(RAW, "", NAMED)

#: Each dataclass of the contract and the record of the schema it stands for.
CONTRACT: list[tuple[str, type[Any]]] = [
    (schemas.ACTION_COMMAND, Command),
    ("signalbox.TriggerInfo", TriggerInfo),
    *((cls.branch, cls) for cls in BRANCHES),
]
_BY_RECORD = dict(CONTRACT)

_SCALARS: dict[str, type] = {"string": str, "int": int, "long": int, "boolean": bool}


def _resolve(avro: Any) -> Any:
    return NAMED.get(avro, avro) if isinstance(avro, str) else avro


def _mismatch(avro: Any, hint: Any, where: str) -> Iterator[str]:
    """Why ``hint`` (a resolved type hint) cannot hold what ``avro`` holds; nothing if it can."""
    avro = _resolve(avro)
    members = get_args(hint) if get_origin(hint) in (Union, types.UnionType) else (hint,)
    if isinstance(avro, list):  # a union: nullable, or the action's records
        nullable = "null" in avro
        if nullable != (type(None) in members):
            yield f"{where}: schema nullable={nullable}, dataclass {hint}"
        rest = [a for a in avro if a != "null"]
        kinds = [m for m in members if m is not type(None)]
        if len(rest) == 1 and len(kinds) == 1:
            yield from _mismatch(rest[0], kinds[0], where)
            return
        names = {f"{_resolve(a)['namespace']}.{_resolve(a)['name']}" for a in rest}
        by_branch = {getattr(k, "branch", None): k for k in kinds}
        if names != set(by_branch):
            yield (f"{where}: union branches {sorted(names)}, "
                   f"dataclasses {sorted(map(str, by_branch))}")
        return
    if isinstance(avro, str):
        if hint is not _SCALARS.get(avro):
            yield f"{where}: schema {avro}, dataclass {hint}"
        return
    kind = avro["type"]
    if kind == "long" and avro.get("logicalType") == "timestamp-millis":
        if hint is not int:
            yield f"{where}: timestamp-millis is epoch ms (int), dataclass {hint}"
    elif kind == "enum":
        if hint is not str and (get_origin(hint) is not Literal
                                or set(get_args(hint)) != set(avro["symbols"])):
            yield f"{where}: enum {avro['symbols']}, dataclass {hint}"
    elif kind == "map":
        if get_origin(hint) is not Mapping or get_args(hint)[0] is not str:
            yield f"{where}: map, dataclass {hint}"
        else:
            yield from _mismatch(avro["values"], get_args(hint)[1], f"{where}[value]")
    elif kind == "array":
        if get_origin(hint) is not tuple or get_args(hint)[1:] != (Ellipsis,):
            yield f"{where}: array, dataclass {hint} (expected tuple[..., ...])"
        else:
            yield from _mismatch(avro["items"], get_args(hint)[0], f"{where}[item]")
    elif kind == "record":
        name = f"{avro.get('namespace', 'signalbox')}.{avro['name']}"
        if _BY_RECORD.get(name) is not hint:
            yield f"{where}: record {name}, dataclass {hint}"
    else:
        yield f"{where}: schema type {kind} has no rule in this test"


def _default(f: Field[Any]) -> Any:
    if f.default is not MISSING:
        return f.default
    if f.default_factory is not MISSING:
        return f.default_factory()
    return MISSING


@pytest.mark.parametrize(("record", "cls"), CONTRACT, ids=[r for r, _ in CONTRACT])
def test_every_schema_field_is_a_dataclass_field_of_a_compatible_type(
        record: str, cls: type[Any]) -> None:
    assert is_dataclass(cls)
    hints = get_type_hints(cls)
    ours = {f.name: f for f in fields(cls)}
    problems: list[str] = []
    for schema_field in NAMED[record]["fields"]:
        name = schema_field["name"]
        where = f"{cls.__name__}.{name}"
        if name not in ours:
            problems.append(f"{where}: in the schema, not in the dataclass")
            continue
        problems.extend(_mismatch(schema_field["type"], hints[name], where))
        default = _default(ours[name])  # a default in code must be the one old records get
        if default is not MISSING and schema_field.get("default", MISSING) != default:
            problems.append(f"{where}: dataclass default {default!r}, schema default "
                            f"{schema_field.get('default', 'none')!r}")
    assert problems == []


@pytest.mark.parametrize(("record", "cls"), CONTRACT, ids=[r for r, _ in CONTRACT])
def test_every_dataclass_field_is_in_the_schema(record: str, cls: type[Any]) -> None:
    in_schema = {f["name"] for f in NAMED[record]["fields"]}
    assert [f.name for f in fields(cls) if f.name not in in_schema] == []


def test_each_union_branch_is_one_action_class_of_its_channel() -> None:
    (action,) = (f for f in RAW["fields"] if f["name"] == "action")
    branches = [f"{b['namespace']}.{b['name']}" for b in action["type"]]
    assert sorted(branches) == sorted(cls.branch for cls in BRANCHES)
    assert {cls.branch: cls.channel for cls in BRANCHES} == schemas.CHANNEL_BY_ACTION


def test_the_checker_sees_a_mismatch() -> None:
    """The rules above are not vacuous: wrong types and optionality are reported."""
    assert list(_mismatch("string", int, "x")) == ["x: schema string, dataclass <class 'int'>"]
    assert list(_mismatch(["null", "string"], str, "x"))
    assert list(_mismatch({"type": "map", "values": "string"}, dict[str, str], "x"))
    assert list(_mismatch({"type": "array", "items": "string"}, list[str], "x"))
    assert list(_mismatch({"type": "enum", "name": "E", "symbols": ["a", "b"]},
                          Literal["a"], "x"))


TRIGGER = TriggerInfo("payment.failed", "evt-1", {"amount_minor": "4900"})
VARIABLES = {"customer_name": "Ada", "amount_minor": "4900", "currency": "EUR"}
ACTIONS: list[ChannelCommand] = [
    EmailCommand(("ada@example.com",), "customer", "payment_failed", "de-DE", VARIABLES),
    SmsCommand(("+14155552671", "+14155552672"), "internal", "alert", None, {}),
    WebhookCommand("erp", "customer.past_due", VARIABLES),
    CrmCommand("add_tag", {"tag": "dunning"}, VARIABLES, connection="hubspot"),
    ExportCommand("dwh", "jsonl", "{{ command_id }}.jsonl", {"customer": "cus-1"}),
]


def _command(action: ChannelCommand, **changes: Any) -> Command:
    base = Command("0" * 32, "payment-failed", 3, 1, "cus-1", 1_790_000_000_000, TRIGGER,
                   action, customer_timezone="Europe/Berlin", critical=True)
    return replace(base, **changes)


@pytest.mark.parametrize("action", ACTIONS, ids=lambda a: a.channel)
def test_a_command_of_each_branch_round_trips_through_the_avro_codec(
        action: ChannelCommand) -> None:
    command = _command(action)
    record = command_to_record(command)
    wire = CODEC.encode(schemas.ACTION_COMMAND, record)
    assert CODEC.encode(schemas.ACTION_COMMAND, record, validate=False) == wire
    assert command_from_record(CODEC.decode(schemas.ACTION_COMMAND, wire)) == command
    assert command_from_record(
        CODEC.decode(schemas.ACTION_COMMAND, wire, plain_times=True)) == command
    assert command.channel == action.channel
    as_json = json.loads(json.dumps(command_to_json(command)))
    assert command_from_json(as_json) == command


def test_a_version_1_record_holds_a_bare_email_action() -> None:
    """Version 1 of the schema had a one-branch union: fastavro gives the record itself."""
    (v1,) = (w for w in CODEC.versions(schemas.ACTION_COMMAND) if w.source.endswith("/1.avsc"))
    record = command_to_record(_command(ACTIONS[0]))
    old = {k: v for k, v in record.items() if k not in ("customer_timezone", "critical")}
    wire = single_object(v1, {**old, "action": record["action"][1]})
    decoded = CODEC.decode(schemas.ACTION_COMMAND, wire)
    assert command_from_record(decoded) == _command(ACTIONS[0], customer_timezone=None,
                                                    critical=False)


@pytest.mark.parametrize("name", ["command_id", "customer_id", "automation_id"])
def test_an_id_longer_than_the_bound_is_refused_with_its_field(name: str) -> None:
    at_bound = command_to_record(_command(ACTIONS[0], **{name: "x" * MAX_ID_CHARS}))
    assert getattr(command_from_record(at_bound), name) == "x" * MAX_ID_CHARS
    over = CODEC.decode(schemas.ACTION_COMMAND, CODEC.encode(schemas.ACTION_COMMAND, {
        **at_bound, name: "x" * (MAX_ID_CHARS + 1)}))
    with pytest.raises(CommandError) as refused:
        command_from_record(over)
    assert refused.value.where == name
    assert refused.value.what == "command"
    assert str(refused.value) == f"{name} of 257 characters; at most 256 are accepted"


def test_an_unknown_action_branch_is_refused() -> None:
    record = {**command_to_record(_command(ACTIONS[2])),
              "action": ("signalbox.actions.PigeonAction", {"loft": "north"})}
    with pytest.raises(CommandError, match="unknown action branch") as refused:
        command_from_record(record)
    assert refused.value.where == "action"
