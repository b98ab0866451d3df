"""The Avro codec: every record type round-trips; bad bytes and bad records fail clearly."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from fastavro.schema import to_parsing_canonical_form
from fastavro.utils import generate_many

from signalbox.common import schemas
from signalbox.common.clock import epoch_ms, now_ms
from signalbox.common.codec import HEADER_LEN, AvroCodec, DecodeError, EncodeError, union_branch
from signalbox.common.deadletter import dead_letter
from signalbox.ingest.event_docs import example
from signalbox.ingest.validation import validate_batch
from tests.common.spec import MAGIC, header_fingerprint, rabin64

CODEC = AvroCodec()
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def at(ms: int) -> datetime:
    """The datetime a ``timestamp-millis`` of ``ms`` decodes to."""
    return EPOCH + timedelta(milliseconds=ms)


T0 = 1_795_000_000_123  # 2026-11-18T11:06:40.123Z

#: A payload for every branch of Event.payload, every field given.
PAYLOADS: dict[str, dict[str, Any]] = {
    "signalbox.events.CustomerSignedUp": {"plan": "pro"},
    "signalbox.events.PaymentSucceeded": {
        "payment_id": "pay_1", "invoice_id": "inv_1", "product": "pro",
        "amount_minor": 4_900, "currency": "EUR", "kind": "one_time"},
    "signalbox.events.PaymentFailed": {
        "payment_id": "pay_2", "invoice_id": None, "product": "pro",
        "amount_minor": 2**40, "currency": "EUR", "reason": "card_declined"},
    "signalbox.events.InvoiceIssued": {
        "invoice_id": "inv_2", "amount_minor": -150, "currency": "SEK",
        "due_at": at(T0 + 14 * 86_400_000), "product": "pro"},
    "signalbox.events.UsageRecorded": {"metric": "api_calls", "quantity": 12.5},
    "signalbox.events.UserLoggedIn": {"user_id": "usr_ü"},
}


def _decoded(name: str, record: Any) -> dict[str, Any]:
    """``record`` as the codec decodes it (timestamps as datetimes, unions as branches)."""
    return dict(CODEC.decode(name, CODEC.encode(name, record)))


def _catalogue_payloads() -> dict[str, dict[str, Any]]:
    """A payload for every other branch: the event catalogue's example, through ingest."""
    out = {}
    for t in schemas.event_types().values():
        if t.record not in PAYLOADS:
            [valid] = validate_batch(example(t), received_at=T0)
            out[t.record] = dict(_decoded(schemas.EVENT, valid.record)["payload"][1])
    return out


def _generated(name: str) -> dict[str, Any]:
    """A random record of a type with no hand-written sample (seeded: the same every run)."""
    random.seed(name)
    [record] = generate_many(schemas.current()[name].raw, 1)
    return _decoded(name, record)


def event(payload: tuple[str, dict[str, Any]]) -> dict[str, Any]:
    return {
        "event_id": "evt_1", "customer_id": "cus_1", "occurred_at": at(T0),
        "received_at": at(T0 + 1), "source": "billing",
        "customer": {"email": "a@example.com", "phone": "+4915112345678", "name": "Ada",
                     "timezone": "Europe/Berlin", "locale": "de-DE"},
        "attributes": {"tier": "gold", "": ""},
        "payload": payload,
    }


#: One record of every other top-level type, every field given, as it decodes.
RECORDS: dict[str, dict[str, Any]] = {
    schemas.TICK: {"tick_id": "1:1795000020000", "partition": 1, "at": at(1_795_000_020_000),
                   "interval_ms": 60_000, "emitted_by": "scheduler-0"},
    schemas.ACTION_COMMAND: {
        "command_id": "9f86d081884c7d65", "automation_id": "payment-failed-pro",
        "automation_version": 3, "action_index": 0, "customer_id": "cus_1",
        "issued_at": at(T0),
        "trigger": {"type": "payment.failed", "occurrence": "evt_1",
                    "facts": {"failed_payments": "2"}},
        "action": ("signalbox.actions.EmailAction", {
            "to": ["a@example.com", "b@example.com"], "audience": "customer",
            "template": "payment_failed", "locale": "de-DE",
            "variables": {"amount": "49.00 EUR"}}),
        "customer_timezone": "Europe/Berlin", "critical": True,
    },
    schemas.ACTION_RESULT: {
        "command_id": "9f86d081884c7d65", "customer_id": "cus_1",
        "automation_id": "payment-failed-pro", "channel": "email", "status": "in_doubt",
        "detail": "crashed after attempting", "attempts": 1, "completed_at": at(T0 + 5),
        "provider_ref": "4Fq2x1"},
    schemas.LEDGER_ENTRY: {"command_id": "9f86d081884c7d65", "state": "attempting",
                           "attempt": 2, "at": at(T0 + 3), "detail": ""},
    schemas.DEAD_LETTER: {
        "service": "evaluator", "source_topic": "events.billing", "partition": 3,
        "offset": 2**40, "key": b"cus_1", "value": b"\xc3\x01\x00\xff", "error_type":
        "DecodeError", "reason": "unknown writer schema fingerprint", "failed_at": at(T0)},
}


#: The hand-written edge-value samples, before the generated ones fill the gaps.
HAND_PAYLOADS, HAND_RECORDS = frozenset(PAYLOADS), frozenset(RECORDS)
PAYLOADS.update(_catalogue_payloads())
RECORDS.update({n: _generated(n) for n in schemas.current() if n not in RECORDS
                and n != schemas.EVENT})


def test_every_record_type_and_payload_branch_has_a_sample() -> None:
    # Generated samples fill the gaps; a hand-written one for a type that no longer
    # exists would silently stop being exercised.
    assert HAND_PAYLOADS.issubset(t.record for t in schemas.event_types().values())
    assert HAND_RECORDS.issubset(schemas.current())
    assert set(PAYLOADS) == {t.record for t in schemas.event_types().values()}
    assert {*RECORDS, schemas.EVENT} == set(schemas.current())

# -- round trips ---------------------------------------------------------------------


@pytest.mark.parametrize("branch", sorted(PAYLOADS))
def test_event_round_trips_with_every_payload_branch(branch: str) -> None:
    record = event((branch, PAYLOADS[branch]))
    decoded = CODEC.decode(schemas.EVENT, CODEC.encode(schemas.EVENT, record))
    assert decoded == record
    assert union_branch(decoded["payload"], "unused") == (branch, PAYLOADS[branch])


@pytest.mark.parametrize("name", sorted(RECORDS))
def test_every_record_type_round_trips(name: str) -> None:
    assert CODEC.decode(name, CODEC.encode(name, RECORDS[name])) == RECORDS[name]


def test_fields_left_out_decode_as_their_defaults() -> None:
    minimal = {"event_id": "evt_1", "customer_id": "cus_1", "occurred_at": T0,
               "received_at": T0, "payload": ("signalbox.events.PaymentFailed", {
                   "payment_id": "pay_1", "product": "pro", "amount_minor": 1,
                   "currency": "EUR"})}
    decoded = CODEC.decode(schemas.EVENT, CODEC.encode(schemas.EVENT, minimal))
    assert (decoded["source"], decoded["customer"], decoded["attributes"]) == ("api", None, {})
    assert decoded["payload"][1]["invoice_id"] is None
    assert decoded["payload"][1]["reason"] is None


def test_union_branch_names_the_branch_of_a_decoded_union() -> None:
    decoded = CODEC.decode(schemas.ACTION_COMMAND,
                           CODEC.encode(schemas.ACTION_COMMAND, RECORDS[schemas.ACTION_COMMAND]))
    assert isinstance(decoded["action"], tuple)  # several branches: fastavro names the branch
    assert union_branch(decoded["action"], "unused") == RECORDS[schemas.ACTION_COMMAND]["action"]
    tick = CODEC.decode(schemas.TICK, CODEC.encode(schemas.TICK, RECORDS[schemas.TICK]))
    assert union_branch(dict(tick), "signalbox.Only") == ("signalbox.Only", dict(tick))


def test_dead_letter_helper_makes_an_encodable_record_that_keeps_the_bytes() -> None:
    original = b"\x00not avro\xff"
    before = now_ms()
    record = dead_letter(service="dispatcher", topic="t.actions.commands", partition=0,
                         offset=7, key=None, value=original, error_type="DecodeError",
                         reason="not Avro")
    decoded = CODEC.decode(schemas.DEAD_LETTER, CODEC.encode(schemas.DEAD_LETTER, record))
    assert (decoded["key"], decoded["value"], decoded["offset"]) == (None, original, 7)
    assert before <= epoch_ms(decoded["failed_at"]) <= now_ms()
    given = dead_letter(service="s", topic="t", partition=0, offset=0, key=b"k", value=None,
                        error_type="E", reason="r", failed_at=T0)
    assert given["failed_at"] == T0


@pytest.mark.parametrize("ms", [
    0, 1, 999, -1, -999, T0, 2**45, 253_402_300_799_999, -62_135_596_800_000,
    1_795_000_000_001, 1_795_000_000_999,
])
def test_timestamps_decode_exactly_to_the_millisecond(ms: int) -> None:
    tick = {**RECORDS[schemas.TICK], "at": ms}
    decoded = CODEC.decode(schemas.TICK, CODEC.encode(schemas.TICK, tick))["at"]
    assert decoded.tzinfo is not None and decoded.utcoffset() == timedelta(0)
    assert epoch_ms(decoded) == ms
    assert decoded == at(ms)


def test_an_aware_datetime_in_another_zone_is_the_same_instant() -> None:
    berlin = at(T0).astimezone(timezone(timedelta(hours=1)))
    tick = {**RECORDS[schemas.TICK], "at": berlin}
    assert epoch_ms(CODEC.decode(schemas.TICK, CODEC.encode(schemas.TICK, tick))["at"]) == T0


# -- the header, per the Avro specification -------------------------------------------


@pytest.mark.parametrize(("canonical", "signed"), [
    # share/test/data/schema-tests.txt of the Apache Avro project (signed 64-bit values)
    ('"null"', 7195948357588979594),
    ('"boolean"', -6970731678124411036),
    ('"int"', 8247732601305521295),
    ('{"name":"foo","type":"fixed","size":15}', 1756455273707447556),
    ('{"name":"foo","type":"record","fields":[{"name":"f1","type":"boolean"}]}',
     7843277075252814651),
])
def test_the_spec_fingerprint_matches_the_avro_project_test_vectors(
        canonical: str, signed: int) -> None:
    assert rabin64(canonical.encode()) == signed & 0xFFFF_FFFF_FFFF_FFFF


def test_header_is_c301_and_the_little_endian_crc64_of_the_canonical_form() -> None:
    # The archived Tick version 1 never changes. Its parsing canonical form, written by
    # hand from the spec: full names, only name/type/fields in that order, logicalType,
    # doc and default stripped.
    tick_v1 = next(v for v in schemas.history()
                   if v.source == "avro/history/signalbox.Tick/1.avsc")
    canonical = (
        '{"name":"signalbox.Tick","type":"record","fields":['
        '{"name":"tick_id","type":"string"},{"name":"partition","type":"int"},'
        '{"name":"at","type":"long"},{"name":"interval_ms","type":"long"},'
        '{"name":"emitted_by","type":"string"}]}'
    )
    codec = AvroCodec(current={schemas.TICK: tick_v1}, archived=())
    data = codec.encode(schemas.TICK, {"tick_id": "0:0", "partition": 0, "at": 0,
                                       "interval_ms": 1, "emitted_by": ""})
    assert data == b"\xc3\x01" + header_fingerprint(canonical) + b"\x060:0\x00\x00\x02\x00"
    assert data[:HEADER_LEN] == bytes.fromhex("c3015914f0580fc58c6b")


def test_every_schema_fingerprint_is_the_spec_fingerprint() -> None:
    versions = [*schemas.current().values(), *schemas.history()]
    for v in versions:
        assert v.fingerprint == header_fingerprint(to_parsing_canonical_form(v.parsed)), v.source
    for name, record in RECORDS.items():
        assert CODEC.encode(name, record)[:HEADER_LEN] == MAGIC + CODEC.schema(name).fingerprint


# -- bytes that are not a record of the expected type ---------------------------------


def _tick() -> bytes:
    return CODEC.encode(schemas.TICK, RECORDS[schemas.TICK])


@pytest.mark.parametrize(("data", "reason"), [
    (None, "empty value (tombstone) where a record was expected"),
    (b"", "empty value (0 bytes) where a record was expected"),
    (b'{"tick_id": "1:0"}', "not Avro single-object encoding (expected header c301, got '7b22')"),
    (b"\x00\x00\x00\x00\x05" + b"\x02" * 20,  # a Confluent-framed record
     "Confluent wire format (magic byte 00) but no schema registry is configured "
     "(SCHEMA_REGISTRY_URL)"),
    (b"\xc3", "not Avro single-object encoding (expected header c301, got 'c3')"),
    (b"\xc3\x01\x59\x14\xf0", "truncated header: 5 bytes of the 10 needed"),
    (MAGIC + bytes.fromhex("0123456789abcdef") + b"\x00",
     "unknown writer schema fingerprint 0123456789abcdef"),
    (_tick() + b"\x00", "1 trailing bytes after the signalbox.Tick"),
])
def test_unreadable_bytes_raise_a_decode_error_with_the_reason(
        data: bytes | None, reason: str) -> None:
    with pytest.raises(DecodeError) as err:
        CODEC.decode(schemas.TICK, data)
    assert err.value.reason == reason
    assert str(err.value) == reason
    assert isinstance(err.value, ValueError)


def test_a_record_of_another_type_is_rejected() -> None:
    with pytest.raises(DecodeError) as err:
        CODEC.decode(schemas.EVENT, _tick())
    assert err.value.reason == "expected a signalbox.Event record, got a signalbox.Tick record"


def test_every_truncation_of_a_datum_is_rejected() -> None:
    data = CODEC.encode(schemas.EVENT, event(("signalbox.events.PaymentFailed",
                                              PAYLOADS["signalbox.events.PaymentFailed"])))
    for end in range(HEADER_LEN, len(data)):
        with pytest.raises(DecodeError) as err:
            CODEC.decode(schemas.EVENT, data[:end])
        assert err.value.reason.startswith("corrupt signalbox.Event datum: "), end


def test_a_union_index_out_of_range_is_rejected() -> None:
    # event_id "a", customer_id "b", both timestamps 0, source "", then the customer
    # union's branch index 63 (zigzag 0x7e) of a two-branch union
    body = b"\x02a\x02b\x00\x00\x00\x7e"
    with pytest.raises(DecodeError, match=r"^corrupt signalbox\.Event datum: "):
        CODEC.decode(schemas.EVENT, MAGIC + CODEC.schema(schemas.EVENT).fingerprint + body)


# -- records that do not fit their schema ---------------------------------------------


def _with(name: str, **changes: Any) -> dict[str, Any]:
    return {**RECORDS[name], **changes}


def _without(name: str, field: str) -> dict[str, Any]:
    return {k: v for k, v in RECORDS[name].items() if k != field}


@pytest.mark.parametrize(("name", "record", "says"), [
    (schemas.TICK, _without(schemas.TICK, "partition"), "partition"),
    (schemas.TICK, _with(schemas.TICK, tick_id=5), "tick_id"),
    (schemas.TICK, _with(schemas.TICK, partition="1"), "partition"),
    (schemas.TICK, _with(schemas.TICK, partition=2**31), "partition is <2147483648>"),
    (schemas.TICK, _with(schemas.TICK, partition=-(2**31) - 1), "partition"),
    (schemas.TICK, _with(schemas.TICK, interval_ms=2**63), "interval_ms"),
    (schemas.TICK, _with(schemas.TICK, partition=1.5), "partition is <1.5>"),
    (schemas.TICK, _with(schemas.TICK, partition=True), "partition is <True>"),
    (schemas.TICK, _with(schemas.TICK, at="2026-11-22T10:00:00Z"), "at"),
    (schemas.TICK, _with(schemas.TICK, catch_up=True), "more fields than the schema"),
    (schemas.LEDGER_ENTRY, _with(schemas.LEDGER_ENTRY, state="sent"), "state"),
    (schemas.DEAD_LETTER, _with(schemas.DEAD_LETTER, key="cus_1"), "key"),
    (schemas.CUSTOMER_STATE, _with(schemas.CUSTOMER_STATE, failed_payments={"pro": "2"}),
     "failed_payments"),
    (schemas.EVENT, event(("signalbox.events.Refunded", {})), "payload"),
    (schemas.EVENT, event(("signalbox.events.UsageRecorded", {"metric": "x"})),
     "UsageRecorded.quantity"),
])
def test_a_record_that_does_not_fit_raises_encode_error(
        name: str, record: dict[str, Any], says: str) -> None:
    with pytest.raises(EncodeError) as err:
        CODEC.encode(name, record)
    assert str(err.value).startswith(f"{name}: ")
    assert says in str(err.value)


def test_the_largest_values_that_fit_are_accepted() -> None:
    tick = _with(schemas.TICK, partition=2**31 - 1, interval_ms=2**63 - 1)
    decoded = CODEC.decode(schemas.TICK, CODEC.encode(schemas.TICK, tick))
    assert (decoded["partition"], decoded["interval_ms"]) == (2**31 - 1, 2**63 - 1)
    tick = _with(schemas.TICK, partition=-(2**31), interval_ms=-(2**63))
    decoded = CODEC.decode(schemas.TICK, CODEC.encode(schemas.TICK, tick))
    assert (decoded["partition"], decoded["interval_ms"]) == (-(2**31), -(2**63))


def test_an_unknown_record_name_is_a_key_error() -> None:
    with pytest.raises(KeyError, match=r"no Avro schema named 'signalbox\.Refund'"):
        CODEC.encode("signalbox.Refund", {})
    with pytest.raises(KeyError, match=r"no Avro schema named 'signalbox\.Refund'"):
        CODEC.decode("signalbox.Refund", _tick())

