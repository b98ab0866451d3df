"""Money, dates and times as the reader of a message expects them: Babel (CLDR data) in the
recipient's locale and time zone.

Commands carry every template variable as text: amounts in minor units (``"4900"``)
beside a currency, times as epoch milliseconds (``"1796223600000"``). Templates turn them
into words with these filters::

    {{ amount_minor | money(currency) }}   €49.00 (en), 49,00 € (de-DE), ¥4,900 (ja, JPY)
    {{ past_due_minor | money }}           49.00: no currency known, a plain number
    {{ starts_at | datetime }}             Dec 2, 2026, 10:00 AM EST (en-US, America/New_York)
    {{ due_at | date }}                    December 2, 2026 (the date where the reader lives)
    {{ starts_at | time }}                 10:00 AM EST
    {{ (expires_at | int - 1) | month(utc=true) }}   December 2026 (a card's last month)
    {{ before_minutes | duration("minute") }}   1 day (1440), 1 hour (60)
    {{ quantity | number }}                1,234.5

An empty value (an optional field the event left out) formats as ``""``, so
``{% if ends_at %}`` keeps working. Anything else that is not a number is a
``ValueError`` naming the filter and the value, which the template store reports as a
template problem.

Whose locale and zone: a customer message uses the customer's profile (``locale``
and ``timezone``); mail and SMS to an internal team use :data:`DEFAULT_LOCALE` in UTC,
the one time a team reads unambiguously whatever the customer's zone. A locale or zone
Babel does not know falls back (``de-XX`` to ``de``, then the default; an unknown zone to
UTC) rather than failing the message: profiles come from producers.

The filters read the reader from a context variable set around each render (see
:func:`reading_as`), so they add no name to the templates' namespace.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from decimal import Decimal, InvalidOperation
from functools import lru_cache, wraps
from typing import Any

from babel import Locale, UnknownLocaleError
from babel.dates import (
    format_date,
    format_datetime,
    format_skeleton,
    format_time,
    format_timedelta,
)
from babel.numbers import format_currency, format_decimal, get_currency_precision

from signalbox.common.action_command import Command, MessageCommand
from signalbox.dispatcher.policy.protection import zone

DEFAULT_LOCALE = "en"
_DURATION_UNITS = ("second", "minute", "hour", "day", "week")


@dataclass(frozen=True)
class Reader:
    """Whose conventions a message follows: a Babel locale and a time zone."""

    locale: Locale
    zone: tzinfo


@lru_cache(maxsize=512)
def _locale(tag: str) -> Locale:
    for candidate in (tag, tag.replace("-", "_").split("_", 1)[0]):
        try:
            return Locale.parse(candidate.replace("-", "_"))
        except (UnknownLocaleError, ValueError, TypeError):
            continue
    return Locale.parse(DEFAULT_LOCALE)


def reader(locale: str | None, timezone: str | None) -> Reader:
    """The reader for a locale tag (``de-DE``, ``pt_BR``) and an IANA zone, with fallbacks."""
    return Reader(_locale(locale or DEFAULT_LOCALE), zone(timezone, "UTC"))


def reader_of(command: Command) -> Reader:
    """Whose conventions a message follows: the customer's, or the default for a team."""
    a = command.action
    if isinstance(a, MessageCommand) and a.audience == "customer":
        return reader(a.locale, command.customer_timezone)
    return reader(None, None)


_READER: ContextVar[Reader | None] = ContextVar("signalbox_reader", default=None)


@contextmanager
def reading_as(who: Reader) -> Iterator[None]:
    """Format for ``who`` while the block renders."""
    token = _READER.set(who)
    try:
        yield
    finally:
        _READER.reset(token)


def _current() -> Reader:
    return _READER.get() or reader(None, None)


def _decimal(value: Any, name: str) -> Decimal | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise ValueError(f"{name}: expected a number, got {value!r}")
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        raise ValueError(f"{name}: expected a number, got {value!r}") from None
    if not number.is_finite():
        raise ValueError(f"{name}: expected a finite number, got {value!r}")
    return number


def money(amount_minor: Any, currency: Any = "") -> str:
    """An amount in minor units (cents) in the currency's own precision and the reader's
    notation; without a currency, the amount as a number with two decimals."""
    minor = _decimal(amount_minor, "money")
    if minor is None:
        return ""
    code = str(currency or "").strip().upper()
    r = _current()
    if not code:
        return format_decimal(minor / 100, format="#,##0.00", locale=r.locale)
    digits = get_currency_precision(code)
    return format_currency(minor.scaleb(-digits), code, locale=r.locale)


def _instant(value: Any, name: str) -> datetime | None:
    ms = _decimal(value, name)
    if ms is None:
        return None
    return datetime.fromtimestamp(int(ms) / 1000, UTC)


def _datetime_pattern(locale: Locale) -> str:
    """The locale's medium date and short time joined its way, with the zone's short name."""
    joined = str(locale.datetime_formats["medium"])
    date = locale.date_formats["medium"].pattern
    time = locale.time_formats["short"].pattern
    return joined.replace("{1}", date).replace("{0}", f"{time} z")


def datetime_(value: Any) -> str:
    """Epoch milliseconds as date, time and zone where the reader lives."""
    at = _instant(value, "datetime")
    if at is None:
        return ""
    r = _current()
    return format_datetime(at, _datetime_pattern(r.locale), tzinfo=r.zone, locale=r.locale)


def date(value: Any, style: str = "long") -> str:
    """Epoch milliseconds as the date it is where the reader lives (``long``, ``medium``,
    ``short`` or ``full``)."""
    at = _instant(value, "date")
    if at is None:
        return ""
    r = _current()
    return format_date(at.astimezone(r.zone), _style(style, "date"), locale=r.locale)


def month(value: Any, utc: bool = False) -> str:
    """Epoch milliseconds as month and year (``December 2026``), where the reader lives or,
    with ``utc``, in UTC (for months that are UTC by definition, like a card's expiry)."""
    at = _instant(value, "month")
    if at is None:
        return ""
    r = _current()
    return format_skeleton("yMMMM", at, tzinfo=UTC if utc else r.zone, locale=r.locale)


def time(value: Any) -> str:
    """Epoch milliseconds as the reader's time of day, with the zone."""
    at = _instant(value, "time")
    if at is None:
        return ""
    r = _current()
    pattern = f"{r.locale.time_formats['short'].pattern} z"
    return format_time(at, pattern, tzinfo=r.zone, locale=r.locale)


def duration(value: Any, unit: str = "second") -> str:
    """A count of ``unit`` (second, minute, hour, day, week) in words, in its largest whole
    unit, rounded as people say it: 1440 minutes is ``1 day``, 90 minutes ``2 hours``."""
    amount = _decimal(value, "duration")
    if amount is None:
        return ""
    if unit not in _DURATION_UNITS:
        raise ValueError(f"duration: unit must be one of {', '.join(_DURATION_UNITS)}, "
                         f"got {unit!r}")
    delta = timedelta(**{f"{unit}s": float(amount)})
    return format_timedelta(delta, threshold=1.0, locale=_current().locale)


def number(value: Any, decimals: int | None = None) -> str:
    """A number in the reader's notation (grouping, decimal sign); ``decimals`` fixes the
    digits after the decimal sign."""
    amount = _decimal(value, "number")
    if amount is None:
        return ""
    r = _current()
    if decimals is None:
        return format_decimal(amount, locale=r.locale)
    pattern = "#,##0" + ("." + "0" * decimals if decimals > 0 else "")
    return format_decimal(amount, format=pattern, locale=r.locale)


def _style(style: str, what: str) -> str:
    if style not in ("short", "medium", "long", "full"):
        raise ValueError(f"{what}: style must be short, medium, long or full, got {style!r}")
    return style


def _named(name: str, fn: Callable[..., str]) -> Callable[..., str]:
    """``fn`` with every failure a ``ValueError`` that names the filter (a value out of
    any calendar's or ``Decimal``'s range included)."""
    @wraps(fn)
    def filter_(*args: Any, **kwargs: Any) -> str:
        try:
            return fn(*args, **kwargs)
        except (ValueError, ArithmeticError) as exc:
            text = str(exc)
            if text.startswith(f"{name}: "):
                raise
            shown = repr(args[0])[:40] if args else ""
            raise ValueError(f"{name}: cannot format {shown}: out of range") from exc
    return filter_


#: The filters every template gets (in the sandbox: plain functions of text and numbers).
_FORMATS: dict[str, Callable[..., str]] = {
    "money": money, "datetime": datetime_, "date": date, "time": time, "month": month,
    "duration": duration, "number": number,
}
FILTERS: dict[str, Callable[..., str]] = {n: _named(n, fn) for n, fn in _FORMATS.items()}
