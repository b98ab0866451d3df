"""Unit tests of the pure JSON → Avro validation (no Kafka, no HTTP)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from signalbox.common import schemas
from signalbox.common.codec import AvroCodec
from signalbox.common.settings import KafkaSettings
from signalbox.ingest import (
    InvalidEvents,
    InvalidJson,
    Problem,
    convert,
    decode_json,
    event_type_catalogue,
    validate_batch,
)
from signalbox.ingest.event_docs import example
from tests.ingest.support import usage_recorded
from tests.support.events import payment_failed

RECEIVED_AT = 1_795_000_000_000
TS = {"type": "long", "logicalType": "timestamp-millis"}


def with_data(event: dict[str, Any], **data: Any) -> dict[str, Any]:
    return {**event, "data": {**event["data"], **data}}


def problems(body: Any) -> list[Problem]:
    with pytest.raises(InvalidEvents) as caught:
        validate_batch(body, RECEIVED_AT)
    return list(caught.value.problems)


def only_problem(body: Any) -> Problem:
    [problem] = problems(body)
    return problem


def convert_problem(schema: Any, value: Any) -> str:
    with pytest.raises(InvalidEvents) as caught:
        convert(schema, value)
    [problem] = caught.value.problems
    assert problem.path == "$"
    return problem.reason


# --- valid events ------------------------------------------------------------------------


def test_valid_event_round_trips_through_the_codec() -> None:
    event = payment_failed(
        source="billing",
        customer={"email": "ada@example.com", "timezone": "Europe/Berlin"},
        attributes={"plan_tier": "gold"},
        data={"payment_id": "pay_1", "invoice_id": "in_1", "product": "pro",
              "amount_minor": 4900, "currency": "EUR", "reason": "card_declined"},
    )
    [valid] = validate_batch(event, RECEIVED_AT)
    codec = AvroCodec()
    decoded = codec.decode(schemas.EVENT, codec.encode(schemas.EVENT, valid.record))

    assert valid.event_type.name == "payment.failed"
    assert (valid.event_id, valid.customer_id, valid.key) == ("evt_1", "cus_1", b"cus_1")
    assert decoded["event_id"] == "evt_1"
    assert decoded["customer_id"] == "cus_1"
    assert decoded["occurred_at"] == datetime(2026, 11, 22, 10, tzinfo=UTC)
    assert decoded["received_at"] == datetime.fromtimestamp(RECEIVED_AT / 1000, UTC)
    assert decoded["source"] == "billing"
    assert decoded["customer"] == {"email": "ada@example.com", "phone": None, "name": None,
                                   "timezone": "Europe/Berlin", "locale": None}
    assert decoded["attributes"] == {"plan_tier": "gold"}
    assert decoded["payload"] == ("signalbox.events.PaymentFailed", event["data"])


def test_defaults_fill_optional_envelope_and_payload_fields() -> None:
    [valid] = validate_batch(payment_failed(), RECEIVED_AT)
    record = valid.record
    assert record["source"] == "api"
    assert record["customer"] is None
    assert record["attributes"] == {}
    assert record["received_at"] == RECEIVED_AT
    assert record["payload"] == ("signalbox.events.PaymentFailed", {
        "payment_id": "pay_1", "invoice_id": None, "product": "pro", "amount_minor": 4900,
        "currency": "EUR", "reason": None})


def test_every_event_type_of_the_schema_is_accepted() -> None:
    samples = {
        "customer.signed_up": {"plan": "pro"},
        "payment.succeeded": {"payment_id": "p", "product": "pro", "amount_minor": 1,
                              "currency": "EUR"},
        "payment.failed": {"payment_id": "p", "product": "pro", "amount_minor": 1,
                           "currency": "EUR"},
        "invoice.issued": {"invoice_id": "in_1", "amount_minor": 1, "currency": "EUR",
                           "due_at": 1_800_000_000_000},
        "usage.recorded": {"metric": "api_calls", "quantity": 12.5},
        "user.logged_in": {"user_id": "u_1"},
    }
    # The other types: the catalogue's example of each (docs/events.md shows the same).
    samples |= {name: example(t)["data"] for name, t in schemas.event_types().items()
                if name not in samples}
    assert set(samples) == set(schemas.event_types())
    batch = [payment_failed(event_id=f"evt_{t}", type=t, data=d) for t, d in samples.items()]
    valid = validate_batch(batch, RECEIVED_AT)
    assert [v.event_type.name for v in valid] == list(samples)
    codec = AvroCodec()
    for v in valid:
        decoded = codec.decode(schemas.EVENT, codec.encode(schemas.EVENT, v.record))
        assert decoded["payload"][0] == v.event_type.record


def test_data_may_be_left_out_when_the_payload_has_no_required_field() -> None:
    event = payment_failed(type="user.logged_in")
    del event["data"]
    [valid] = validate_batch(event, RECEIVED_AT)
    assert valid.record["payload"] == ("signalbox.events.UserLoggedIn", {"user_id": None})


def test_a_single_object_and_a_batch_both_give_a_list_in_order() -> None:
    assert [v.event_id for v in validate_batch(payment_failed(), 0)] == ["evt_1"]
    batch = [payment_failed(event_id=f"evt_{i}") for i in range(3)]
    assert [v.event_id for v in validate_batch(batch, 0)] == ["evt_0", "evt_1", "evt_2"]


# --- type rules --------------------------------------------------------------------------


@pytest.mark.parametrize(("schema", "value", "expected"), [
    ("string", "x", "x"),
    ("string", "", ""),
    ("int", -(2**31), -(2**31)),
    ("int", 2**31 - 1, 2**31 - 1),
    ("long", 2**63 - 1, 2**63 - 1),
    ("long", -5, -5),
    ("double", 3, 3),
    ("double", 2.5, 2.5),
    ("float", -1.25, -1.25),
    ("boolean", False, False),
    ("null", None, None),
    (["null", "string"], None, None),
    (["null", "string"], "x", "x"),
    (["null", "string", "long"], 7, 7),
    ({"type": "map", "values": "long"}, {"a": 1, "b c": 2}, {"a": 1, "b c": 2}),
    ({"type": "array", "items": "string"}, ["a", "b"], ["a", "b"]),
    ({"type": "array", "items": "string"}, [], []),
    ({"type": "enum", "name": "Tier", "symbols": ["GOLD", "SILVER"]}, "GOLD", "GOLD"),
    ({"type": "string", "logicalType": "uuid"}, "0f8f", "0f8f"),
    (TS, 1_795_000_000_000, 1_795_000_000_000),
    (TS, "2026-11-22T10:00:00Z", 1_795_341_600_000),
    (TS, "2026-11-22T11:00:00+01:00", 1_795_341_600_000),
    (TS, "2026-11-22T10:00:00.1239Z", 1_795_341_600_123),
    (TS, "9999-12-31T23:59:59.999Z", 253_402_300_799_999),
    (TS, "1970-01-01t00:00:00z", 0),
    ("signalbox.CustomerProfile", {"email": "a@b.c"},
     {"email": "a@b.c", "phone": None, "name": None, "timezone": None, "locale": None}),
])
def test_accepted_values(schema: Any, value: Any, expected: Any) -> None:
    assert convert(schema, value) == expected


RFC = "not an RFC 3339 timestamp such as 2026-11-22T09:30:00Z"
TS_FORMS = "an RFC 3339 timestamp (2026-11-22T09:30:00Z) or epoch milliseconds"
TS_RANGE = "timestamp outside 1970-01-01T00:00:00Z..9999-12-31T23:59:59.999Z"


@pytest.mark.parametrize(("schema", "value", "reason"), [
    ("string", 1, "expected a string, got integer"),
    ("string", None, "expected a string, got null"),
    ("string", "\ud800", "string is not valid Unicode (lone surrogate)"),
    ("int", 2**31, "integer out of range for Avro int (-2147483648..2147483647)"),
    ("long", "12", "expected an integer, got string"),
    ("long", True, "expected an integer, got boolean"),
    ("long", 12.0, "expected an integer, got number"),
    ("long", 2**63, "integer out of range for Avro long "
                    "(-9223372036854775808..9223372036854775807)"),
    ("double", "1.5", "expected a number, got string"),
    ("double", False, "expected a number, got boolean"),
    ("double", float("inf"), "expected a finite number"),
    ("boolean", 1, "expected true or false, got integer"),
    ("boolean", "true", "expected true or false, got string"),
    ("null", 0, "expected null, got integer"),
    (["null", "string"], 3, "expected a string, got integer"),
    (["null", "string", "long"], True, "expected null | string | long, got boolean"),
    ({"type": "map", "values": "string"}, ["a"], "expected an object, got array"),
    ({"type": "array", "items": "string"}, {"a": 1}, "expected an array, got object"),
    ({"type": "enum", "name": "Tier", "symbols": ["GOLD", "SILVER"]}, "gold",
     "expected one of GOLD, SILVER, got 'gold'"),
    ({"type": "enum", "name": "Tier", "symbols": ["GOLD", "SILVER"]}, 1,
     "expected one of GOLD, SILVER, got integer"),
    ("bytes", "AA==", "Avro type bytes is not accepted over JSON"),
    (TS, 1.5, f"expected {TS_FORMS}, got number"),
    (TS, True, f"expected {TS_FORMS}, got boolean"),
    (TS, 2**63, f"{TS_RANGE}: '9223372036854775808'"),
    (TS, -1, f"{TS_RANGE}: '-1'"),
    (TS, "1969-12-31T23:59:59.999Z", f"{TS_RANGE}: '1969-12-31T23:59:59.999Z'"),
    (TS, "9999-12-31T23:00:00-05:00", f"{TS_RANGE}: '9999-12-31T23:00:00-05:00'"),
    (TS, "0001-01-01T00:00:00Z", f"{TS_RANGE}: '0001-01-01T00:00:00Z'"),
    (TS, "1969-12-31T23:30:00-01:00", f"{TS_RANGE}: '1969-12-31T23:30:00-01:00'"),
    (TS, "2026-11-22T09:30:00 Z", f"{RFC} (UTC offset is mandatory in RFC 3339 format): "
                                  "'2026-11-22T09:30:00 Z'"),
    (TS, "2026-11-22T09:30:00+14:60", f"{RFC} (tzminute must be in 0..59): "
                                      "'2026-11-22T09:30:00+14:60'"),
    (TS, "2026-W47-7T09:30:00Z", f"{RFC} (Datetime string not in RFC 3339 format): "
                                 "'2026-W47-7T09:30:00Z'"),
    (TS, "2026-11-22T09:30Z", f"{RFC} (RFC 3339 requires the second to be specified): "
                              "'2026-11-22T09:30Z'"),
    ({"type": "fixed", "name": "Md5", "size": 16}, "x",
     "Avro type fixed is not accepted over JSON"),
    (TS, "2026-11-22T10:00:00", f"{RFC} (UTC offset is mandatory in RFC 3339 format): "
                                "'2026-11-22T10:00:00'"),
    (TS, "2026-13-01T00:00:00Z", f"{RFC} (month must be in 1..12): '2026-13-01T00:00:00Z'"),
])
def test_refused_values(schema: Any, value: Any, reason: str) -> None:
    assert convert_problem(schema, value) == reason


def test_a_union_of_records_names_the_branch_the_value_fits() -> None:
    def record(name: str, field: str, kind: str) -> dict[str, Any]:
        return {"type": "record", "name": name, "namespace": "test",
                "fields": [{"name": field, "type": kind}]}

    union = ["null", record("Card", "last4", "string"), record("Sepa", "iban", "string")]
    assert convert(union, {"iban": "DE00"}) == ("Sepa", {"iban": "DE00"})
    assert convert(union, {"last4": "4242"}) == ("Card", {"last4": "4242"})
    assert convert_problem(union, {"bic": "X"}) == \
        "expected null | Card | Sepa, got object"


def test_array_and_map_items_are_reported_at_their_own_path() -> None:
    with pytest.raises(InvalidEvents) as caught:
        convert({"type": "array", "items": {"type": "map", "values": "long"}},
                [{"a": 1}, {"b": "x", "c d": None}], "$.data.tags")
    assert caught.value.problems == (
        Problem('$.data.tags[1].b', "expected an integer, got string"),
        Problem('$.data.tags[1]["c d"]', "expected an integer, got null"),
    )


@pytest.mark.parametrize(("field", "value", "reason"), [
    ("amount_minor", "4900", "expected an integer, got string"),
    ("amount_minor", True, "expected an integer, got boolean"),
    ("amount_minor", 49.5, "expected an integer, got number"),
    ("currency", 978, "expected a string, got integer"),
    ("invoice_id", 1, "expected a string, got integer"),
])
def test_payload_type_errors_name_the_data_path(field: str, value: Any, reason: str) -> None:
    assert only_problem(with_data(payment_failed(), **{field: value})) == \
        Problem(f"$.data.{field}", reason)


def test_nullable_payload_field_accepts_null() -> None:
    [valid] = validate_batch(with_data(payment_failed(), invoice_id=None, reason=None), 0)
    assert valid.record["payload"][1]["invoice_id"] is None


def test_double_accepts_integers_and_refuses_booleans() -> None:
    usage = usage_recorded(data={"metric": "seats", "quantity": 3})
    [valid] = validate_batch(usage, 0)
    assert valid.record["payload"][1]["quantity"] == 3
    assert only_problem(with_data(usage, quantity=True)) == \
        Problem("$.data.quantity", "expected a number, got boolean")


def test_payload_timestamps_follow_the_same_rules() -> None:
    invoice = payment_failed(type="invoice.issued", data={
        "invoice_id": "in_1", "amount_minor": 100, "currency": "EUR",
        "due_at": "2026-12-01T00:00:00+00:00"})
    [valid] = validate_batch(invoice, 0)
    assert valid.record["payload"][1]["due_at"] == 1_796_083_200_000
    assert only_problem(with_data(invoice, due_at="2026-12-01")).path == "$.data.due_at"


def test_occurred_at_as_epoch_milliseconds() -> None:
    [valid] = validate_batch(payment_failed(occurred_at=1_795_341_600_000), 0)
    assert valid.record["occurred_at"] == 1_795_341_600_000


def test_bad_occurred_at() -> None:
    bad = only_problem(payment_failed(occurred_at="22/11/2026"))
    assert bad.path == "$.occurred_at"
    assert bad.reason.startswith(RFC) and bad.reason.endswith(": '22/11/2026'")
    assert only_problem(payment_failed(occurred_at=None)).reason == \
        f"expected {TS_FORMS}, got null"


def test_attributes_must_be_strings() -> None:
    assert problems(payment_failed(attributes={"seats": 3, "my key": "ok", "x": None})) == [
        Problem("$.attributes.seats", "expected a string, got integer"),
        Problem("$.attributes.x", "expected a string, got null"),
    ]
    assert only_problem(payment_failed(attributes=["a"])) == \
        Problem("$.attributes", "expected an object, got array")


def test_customer_profile_is_checked_field_by_field() -> None:
    assert problems(payment_failed(customer={"email": 5, "emial": "a@b.c"})) == [
        Problem("$.customer.emial", "unknown field; did you mean 'email'? "
                "(known fields: email, locale, name, phone, timezone)"),
        Problem("$.customer.email", "expected a string, got integer"),
    ]
    assert only_problem(payment_failed(customer="ada@example.com")) == \
        Problem("$.customer", "expected an object, got string")


# --- required and unknown fields, event types ---------------------------------------------


def test_missing_required_fields_are_all_reported() -> None:
    event = payment_failed(data={"payment_id": "pay_1"})
    del event["event_id"], event["occurred_at"]
    assert problems(event) == [
        Problem("$.event_id", "required field missing"),
        Problem("$.occurred_at", "required field missing"),
        Problem("$.data.product", "required field missing"),
        Problem("$.data.amount_minor", "required field missing"),
        Problem("$.data.currency", "required field missing"),
    ]


def test_missing_data_reports_the_required_payload_fields() -> None:
    event = payment_failed(type="invoice.issued")
    del event["data"]
    assert [p.path for p in problems(event)] == [
        "$.data.invoice_id", "$.data.amount_minor", "$.data.currency", "$.data.due_at"]


def test_ids_must_not_be_empty() -> None:
    assert problems(payment_failed(event_id="", customer_id="")) == [
        Problem("$.event_id", "must not be empty"),
        Problem("$.customer_id", "must not be empty"),
    ]


def test_unknown_fields_are_rejected_with_a_suggestion() -> None:
    event = with_data(payment_failed(occured_at="2026-11-22T10:00:00Z"), amount=1)
    assert problems(event) == [
        Problem("$.occured_at", "unknown field; did you mean 'occurred_at'? (known fields: "
                "attributes, customer, customer_id, data, event_id, occurred_at, source, type)"),
        Problem("$.data.amount", "unknown field; did you mean 'amount_minor'? (known fields: "
                "amount_minor, currency, invoice_id, payment_id, product, reason)"),
    ]


def test_received_at_and_payload_are_not_accepted_from_the_producer() -> None:
    paths = [p.path for p in problems(payment_failed(received_at=1, payload={}))]
    assert paths == ["$.received_at", "$.payload"]


def test_unknown_event_type_lists_the_known_types() -> None:
    known = ", ".join(sorted(schemas.event_types()))
    assert only_problem(payment_failed(type="payment.faild")) == Problem(
        "$.type", f"unknown event type 'payment.faild'; did you mean 'payment.failed'? "
                  f"(known types: {known})")
    assert only_problem(payment_failed(type="refund.issued")) == Problem(
        "$.type", f"unknown event type 'refund.issued' (known types: {known})")
    assert only_problem(payment_failed(type=7)).reason.startswith("unknown event type a integer")


def test_missing_event_type() -> None:
    event = payment_failed()
    del event["type"]
    assert only_problem(event) == Problem("$.type", "required field missing")


def test_data_must_be_an_object() -> None:
    assert only_problem(payment_failed(data=[1])) == \
        Problem("$.data", "expected an object, got array")


# --- batches -----------------------------------------------------------------------------


def test_batch_reports_every_problem_with_its_index() -> None:
    batch = [
        payment_failed(event_id="evt_0"),
        with_data(payment_failed(event_id="evt_1"), amount_minor="12"),
        "evt_2",
        payment_failed(event_id="evt_3", attributes={"k": 1}) | {"customer_id": None},
    ]
    assert problems(batch) == [
        Problem("$[1].data.amount_minor", "expected an integer, got string"),
        Problem("$[2]", "expected an event object, got string"),
        Problem("$[3].customer_id", "expected a string, got null"),
        Problem("$[3].attributes.k", "expected a string, got integer"),
    ]


@pytest.mark.parametrize(("body", "reason"), [
    ([], "empty batch: send at least one event"),
    ("evt_1", "expected an event object or an array of them, got string"),
    (None, "expected an event object or an array of them, got null"),
])
def test_bodies_that_are_not_events(body: Any, reason: str) -> None:
    assert only_problem(body) == Problem("$", reason)


# --- JSON --------------------------------------------------------------------------------


def test_decode_json_reads_objects_and_arrays() -> None:
    assert decode_json(b'[{"a": 1}, {"b": [true, null]}]') == [{"a": 1}, {"b": [True, None]}]


@pytest.mark.parametrize(("body", "reason"), [
    (b'{"event_id": ', "invalid JSON: Expecting value: line 1 column 14 (char 13)"),
    (b"", "invalid JSON: Expecting value: line 1 column 1 (char 0)"),
    (b'{"quantity": NaN}', "invalid JSON: NaN is not valid JSON"),
    (b'{"a": 1, "a": 2}', "invalid JSON: duplicate key 'a' in an object"),
    (b'{"a": "\xff"}', "body is not UTF-8 text: invalid start byte at byte 7"),
])
def test_decode_json_refuses(body: bytes, reason: str) -> None:
    with pytest.raises(InvalidJson) as caught:
        decode_json(body)
    assert caught.value.problem == Problem("$", reason)


# --- catalogue ---------------------------------------------------------------------------


def test_event_type_catalogue_is_derived_from_the_schema() -> None:
    catalogue = event_type_catalogue(KafkaSettings())
    by_type = {t["type"]: t for t in catalogue["event_types"]}
    assert set(by_type) == set(schemas.event_types())
    failed = by_type["payment.failed"]
    assert failed["topic"] == "events.billing"
    assert failed["doc"] == "A payment attempt failed."
    fields = {f["name"]: f for f in failed["fields"]}
    assert fields["amount_minor"] == {"name": "amount_minor", "type": "long", "required": True,
                                      "doc": "Amount in the currency's minor unit (cents)."}
    assert fields["invoice_id"] == {
        "name": "invoice_id", "type": "null | string", "required": False, "default": None,
        "doc": "Checked: at most 256 characters, no control characters."}
    assert by_type["usage.recorded"]["topic"] == "events.usage"
    due_at = next(f for f in by_type["invoice.issued"]["fields"] if f["name"] == "due_at")
    assert due_at["type"] == \
        "timestamp (RFC 3339 with offset, or epoch milliseconds; years 1970..9999)"
    envelope = {f["name"]: f for f in catalogue["envelope"]}
    assert set(envelope) == {"event_id", "customer_id", "occurred_at", "source", "customer",
                             "attributes", "type", "data"}
    assert envelope["attributes"]["type"] == "map<string>"
    assert envelope["customer"]["type"] == "null | signalbox.CustomerProfile"
    assert envelope["source"]["default"] == "api"
