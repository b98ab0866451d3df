"""What a value must mean, beyond its Avro type, by field name. Pure.

The Avro schema says ``email`` is a string; the evaluator and the dispatcher need it
to be one address they can send to. So ingest checks meaning at the edge, with the
libraries that define each format rather than patterns written here:
``email-validator`` (syntax only, no DNS), ``phonenumbers`` (E.164), ``zoneinfo``
(IANA zones), ``iso4217`` (the ISO 4217 table as its maintenance agency publishes it;
the standard library has no currency list), and the documented numeric ranges. Each
rule also says its JSON Schema, so the OpenAPI description states what is checked.

Rules apply by field name wherever the field is (envelope, profile or payload).
"""

from __future__ import annotations

import unicodedata
import zoneinfo
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cache, lru_cache
from typing import Any

import email_validator
import iso4217
import phonenumbers

from signalbox.ingest.avro_json import clip

#: Longest id (event_id, customer_id, any ``*_id``): ids become Kafka keys, command ids
#: and state keys, so they stay small whatever the producer sends.
MAX_ID_CHARS = 256
MAX_NAME_CHARS = 256


@dataclass(frozen=True)
class Rule:
    """A check (``None`` when the value is fine, else the reason) and its JSON Schema."""

    check: Callable[[Any], str | None]
    schema: Mapping[str, Any] = field(default_factory=dict)
    doc: str = ""


_NO_CONTROL = r"^[^\u0000-\u001f\u007f-\u009f\u2028\u2029]*$"


def _control(text: str) -> bool:
    return any(unicodedata.category(c) in ("Cc", "Zl", "Zp") for c in text)


def _remembered(check: Callable[[str], str | None]) -> Callable[[str], str | None]:
    """``check`` with the answers for recent short values kept: a producer sends the same
    customer's address with every event, and these checks cost 15-25 µs each."""
    cached = lru_cache(maxsize=4096)(check)

    def remembered(value: str) -> str | None:
        return cached(value) if len(value) <= 320 else check(value)
    return remembered


@_remembered
def _email(value: str) -> str | None:
    try:
        email_validator.validate_email(value, check_deliverability=False, allow_smtputf8=False)
    except email_validator.EmailNotValidError as exc:
        return f"not one email address ({exc}): {clip(value)}"
    return None


@_remembered
def _phone(value: str) -> str | None:
    try:
        number = phonenumbers.parse(value, None)
    except phonenumbers.NumberParseException:
        number = None
    if number is None or not phonenumbers.is_valid_number(number):
        return f"not a valid phone number in E.164 form (+, country code, digits): {clip(value)}"
    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    return None if e164 == value else f"send the number in E.164 form: {e164!r}, not {clip(value)}"


@cache
def time_zones() -> frozenset[str]:
    """The IANA zones ``zoneinfo`` can load here (the same the evaluator uses)."""
    return frozenset(zoneinfo.available_timezones())


def _time_zone(value: str) -> str | None:
    if value in time_zones():
        return None
    return f"not an IANA time zone (e.g. Europe/Berlin): {clip(value)}"


@cache
def currencies() -> frozenset[str]:
    return frozenset(c.code for c in iso4217.Currency)


def _currency(value: str) -> str | None:
    if value in currencies():
        return None
    return f"not an ISO 4217 currency code (e.g. EUR, USD): {clip(value)}"


def _range(low: int, high: int) -> Rule:
    def check(value: int) -> str | None:
        return None if low <= value <= high else f"must be between {low} and {high}, got {value}"
    return Rule(check, {"minimum": low, "maximum": high}, f"{low}..{high}")


def _bounded_text(limit: int, what: str) -> Rule:
    def check(value: str) -> str | None:
        if len(value) > limit:
            return f"{what} longer than {limit} characters ({len(value)})"
        if _control(value):
            return f"{what} contains a control character or line break: {clip(value)}"
        return None
    return Rule(check, {"maxLength": limit, "pattern": _NO_CONTROL},
                f"at most {limit} characters, no control characters")


_ID = _bounded_text(MAX_ID_CHARS, "id")
RULES: Mapping[str, Rule] = {
    "email": Rule(_email, {"format": "email"}, "one email address"),
    "phone": Rule(_phone, {"pattern": r"^\+[1-9][0-9]{6,14}$"}, "E.164, e.g. +4915112345678"),
    "timezone": Rule(_time_zone, {}, "IANA time zone, e.g. Europe/Berlin"),
    "currency": Rule(_currency, {"pattern": "^[A-Z]{3}$"}, "ISO 4217 code, e.g. EUR"),
    "nps": _range(0, 10),
    "exp_month": _range(1, 12),
    "exp_year": _range(1000, 9999),
    "name": _bounded_text(MAX_NAME_CHARS, "name"),
}


def rule_for(name: str) -> Rule | None:
    """The rule of a field, by its name (``*_id`` fields are bounded ids)."""
    found = RULES.get(name)
    if found is None and name.endswith("_id"):
        return _ID
    return found
