"""Values that have the right Avro type but that nobody downstream can use are refused
at the edge, each with its path and reason (issue 9, finding 6)."""

from __future__ import annotations

from typing import Any

import pytest

from signalbox.ingest.validation import InvalidEvents, validate_batch
from tests.support.events import payment_failed


def refusal(event: Any) -> list[tuple[str, str]]:
    with pytest.raises(InvalidEvents) as caught:
        validate_batch(event, received_at=0)
    return [(p.path, p.reason) for p in caught.value.problems]


def card(**data: Any) -> dict[str, Any]:
    return payment_failed(type="card.updated",
                          data={"card_id": "card_1", "exp_month": 11, "exp_year": 2028, **data})


def feedback(nps: Any) -> dict[str, Any]:
    return payment_failed(type="feedback.submitted",
                          data={"feedback_id": "fb_1", "rating": "happy", "nps": nps})


@pytest.mark.parametrize(("email", "why"), [
    ("not-an-email", "must have an @-sign"),
    ("a@x.com, attacker@evil.example", "invalid characters"),
    ("a@x.com\r\nBcc: attacker@evil.example", "invalid characters"),
    ("Ada <ada@example.com>", "display name"),
    ("ada@localhost", "not valid"),
])
def test_email_is_one_address(email: str, why: str) -> None:
    [(path, reason)] = refusal(payment_failed(customer={"email": email}))
    assert path == "$.customer.email"
    assert reason.startswith("not one email address") and why in reason


@pytest.mark.parametrize(("phone", "why"), [
    ("12345", "not a valid phone number in E.164 form"),
    ("+1415555267", "not a valid phone number"),
    ("+49 151 12345678", "send the number in E.164 form: '+4915112345678'"),
    ("+4915112345678\n", "E.164"),
])
def test_phone_is_e164(phone: str, why: str) -> None:
    [(path, reason)] = refusal(payment_failed(customer={"phone": phone}))
    assert path == "$.customer.phone" and why in reason


def test_time_zone_is_iana() -> None:
    assert refusal(payment_failed(customer={"timezone": "Mars/Base"})) == [
        ("$.customer.timezone", "not an IANA time zone (e.g. Europe/Berlin): 'Mars/Base'")]
    assert refusal(payment_failed(customer={"timezone": "../../etc/passwd"}))


@pytest.mark.parametrize("currency", ["EURO", "eur", "XYZ", ""])
def test_currency_is_iso_4217(currency: str) -> None:
    event = payment_failed()
    event["data"]["currency"] = currency
    [(path, reason)] = refusal(event)
    assert path == "$.data.currency"
    assert reason.startswith("not an ISO 4217 currency code")


@pytest.mark.parametrize(("event", "path", "reason"), [
    (feedback(11), "$.data.nps", "must be between 0 and 10, got 11"),
    (feedback(-1), "$.data.nps", "must be between 0 and 10, got -1"),
    (card(exp_month=-5), "$.data.exp_month", "must be between 1 and 12, got -5"),
    (card(exp_month=13), "$.data.exp_month", "must be between 1 and 12, got 13"),
    (card(exp_year=99999), "$.data.exp_year", "must be between 1000 and 9999, got 99999"),
    (card(exp_year=27), "$.data.exp_year", "must be between 1000 and 9999, got 27"),
])
def test_documented_ranges(event: dict[str, Any], path: str, reason: str) -> None:
    assert refusal(event) == [(path, reason)]


def test_ids_are_bounded_and_single_line() -> None:
    [(path, reason)] = refusal(payment_failed(event_id="e" * 500_000))
    assert (path, reason) == ("$.event_id", "id longer than 256 characters (500000)")
    [(path, reason)] = refusal(payment_failed(customer_id="cus\n1"))
    assert path == "$.customer_id" and "control character" in reason
    event = payment_failed()
    event["data"]["payment_id"] = "p" * 257
    assert refusal(event) == [("$.data.payment_id", "id longer than 256 characters (257)")]


def test_valid_values_pass() -> None:
    events = [
        payment_failed(event_id="e1", customer={
            "email": "ada@example.com", "phone": "+4915112345678", "timezone": "Europe/Berlin",
            "name": "Ada Lovelace"}),
        feedback(0) | {"event_id": "e2"}, feedback(10) | {"event_id": "e3"},
        card(exp_month=1, exp_year=9999) | {"event_id": "e4"},
        payment_failed(event_id="e5", occurred_at="2026-11-22T09:30:00.5+14:00"),
    ]
    events[0]["data"]["currency"] = "JPY"
    assert len(validate_batch(events, received_at=0)) == 5


def test_a_duplicate_event_id_in_one_batch_is_refused() -> None:
    """The same id for two customers: the second would be dropped downstream as a retry."""
    batch = [payment_failed(event_id="evt_1", customer_id="cus_a"),
             payment_failed(event_id="evt_2"),
             payment_failed(event_id="evt_1", customer_id="cus_b")]
    assert refusal(batch) == [
        ("$[2].event_id", "duplicate event_id 'evt_1' in this batch (also at $[0])")]
