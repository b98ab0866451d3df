"""How one event changes a customer's state. Pure: ``apply_event(state, event)``.

Facts kept for triggers: the past-due balance and its streak (see
:func:`invoices_fall_overdue` and ``docs/automations.md``, "past_due"), open invoices,
subscriptions, the card's expiry, usage per billing period, feature time, last
login, score and health band, appointments and open tasks. Texts from events are
clipped and every collection is capped (see :mod:`~signalbox.evaluator.engine.state_limits`);
attributes, tags and failed payments, which carry no time, keep the order they were
last set in, so the least recent goes first.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, TypeVar

from signalbox.evaluator.engine.model import (
    Agreement,
    Appointment,
    CustomerState,
    Event,
    OpenInvoice,
    OpenTask,
    Profile,
    UsagePeriod,
)
from signalbox.evaluator.engine.state_limits import (
    MAX_VALUE_CHARS,
    clip,
    key_text,
    set_last,
)

#: How many processed event ids a customer remembers (8-byte digests: 1 KiB), so a
#: redelivered event changes nothing and issues nothing. Kafka redelivers what came
#: after the last committed offset — a handful of a customer's events — and a
#: producer's retry comes within seconds, so 128 is a wide margin.
DEDUPE_WINDOW = 128
DIGEST_BYTES = 8

#: Health bands from the score (state may override to struggling, see health_of).
THRIVING_SCORE = 900
HEALTHY_SCORE = 300

V = TypeVar("V")


def event_digest(event_id: str) -> bytes:
    return hashlib.blake2b(event_id.encode("utf-8"), digest_size=DIGEST_BYTES).digest()


def seen(state: CustomerState, digest: bytes) -> bool:
    window = state.recent_events
    start = window.find(digest)
    while start != -1:
        if start % DIGEST_BYTES == 0:
            return True
        start = window.find(digest, start + 1)
    return False


def remember(window: bytes, digest: bytes) -> bytes:
    window += digest
    return window[-DEDUPE_WINDOW * DIGEST_BYTES:]


def health_of(state: CustomerState) -> str:
    """struggling with money trouble (past due, failed payments) or a negative score;
    otherwise thriving from 900 points, healthy from 300, else steady."""
    if state.past_due_minor > 0 or any(state.failed_payments.values()) or state.score < 0:
        return "struggling"
    if state.score >= THRIVING_SCORE:
        return "thriving"
    if state.score >= HEALTHY_SCORE:
        return "healthy"
    return "steady"


def card_expiry(exp_month: int, exp_year: int) -> int:
    """A card is valid through the last day of its expiry month: the first instant after."""
    year, month = (exp_year + 1, 1) if exp_month >= 12 else (exp_year, exp_month + 1)
    return int(datetime(year, month, 1, tzinfo=UTC).timestamp()) * 1000


def known_time(event: Event) -> int:
    """When signalbox learned of the event: ingest's stamp (its own clock, so an imported
    old event does not make history due, and a producer clock in the future cannot
    jump a customer's timers ahead); the event time where there is no stamp."""
    return event.received_at or event.occurred_at


def new_state(event: Event) -> CustomerState:
    return CustomerState(customer_id=event.customer_id, profile=Profile(),
                         first_seen_at=event.occurred_at, last_event_at=event.occurred_at)


def _with(mapping: Mapping[str, V], key: str, value: V | None) -> dict[str, V]:
    """A sorted copy with ``key`` set (or removed for ``None``)."""
    out = dict(mapping)
    if value is None:
        out.pop(key, None)
    else:
        out[key] = value
    return dict(sorted(out.items()))


def with_attributes(held: Mapping[str, str], new: Mapping[str, str]) -> Mapping[str, str]:
    """Attributes in the order they were last set (the least recent first: the first to
    go over the cap, see :mod:`~signalbox.evaluator.engine.state_limits`), names and values
    clipped."""
    if not new:
        return held
    out = dict(held)
    for name, value in new.items():
        name = clip(name)
        out.pop(name, None)
        out[name] = clip(value, MAX_VALUE_CHARS)
    return out


def with_tags_added(held: tuple[str, ...], new: Iterable[str]) -> tuple[str, ...]:
    """Tags in the order they were last added (the least recent first), clipped."""
    added = dict.fromkeys(clip(t) for t in new)
    if not added:
        return held
    return (*(t for t in held if t not in added), *added)


def _profile(profile: Profile | None) -> Profile | None:
    """Profile texts clipped (ingest checks email, phone and time zone, not locale)."""
    if profile is None or all(v is None or len(v) <= MAX_VALUE_CHARS
                              for v in vars(profile).values()):
        return profile
    return Profile(**{k: None if v is None else clip(v, MAX_VALUE_CHARS)
                      for k, v in vars(profile).items()})


def apply_event(state: CustomerState, event: Event) -> CustomerState:
    """The state after ``event`` (the dedupe window and clock included)."""
    tags = state.tags
    if "tags" in event.attributes:
        tags = with_tags_added(tags, (t.strip() for t in event.attributes["tags"].split(",")
                                      if t.strip()))
    state = state.evolve(
        profile=state.profile.merged(_profile(event.profile)),
        first_seen_at=min(state.first_seen_at, event.occurred_at),
        last_event_at=max(state.last_event_at, event.occurred_at),
        recent_events=remember(state.recent_events, event_digest(event.event_id)),
        attributes=with_attributes(state.attributes, event.attributes),
        tags=tags,
        clock=max(state.clock, known_time(event)),
    )
    handler = _HANDLERS.get(event.type)
    return prune(handler(state, event, event.data) if handler else state, state.clock)


def prune(state: CustomerState, at: int) -> CustomerState:
    """Forget what can no longer fire: appointments that have started (every reminder is
    before the start), so state does not grow with appointments nobody closed."""
    if not any(a.starts_at <= at for a in state.appointments.values()):
        return state
    return state.evolve(appointments={k: a for k, a in state.appointments.items()
                                      if a.starts_at > at})


Handler = Callable[[CustomerState, Event, Mapping[str, Any]], CustomerState]


def _signed_up(s: CustomerState, e: Event, d: Mapping[str, Any]) -> CustomerState:
    if d.get("plan"):
        return s.evolve(attributes=with_attributes(s.attributes, {"plan": str(d["plan"])}))
    return s


def _status(s: CustomerState, e: Event, d: Mapping[str, Any]) -> CustomerState:
    return s.evolve(account_status=key_text(d["status"]))


def _custom_field(s: CustomerState, e: Event, d: Mapping[str, Any]) -> CustomerState:
    value = d.get("value")
    if value is None:
        return s.evolve(attributes=set_last(s.attributes, key_text(d["field"]), None))
    return s.evolve(attributes=with_attributes(s.attributes, {str(d["field"]): str(value)}))


def _card(s: CustomerState, e: Event, d: Mapping[str, Any]) -> CustomerState:
    return s.evolve(card_expires_at=card_expiry(int(d["exp_month"]), int(d["exp_year"])),
                   card_known_at=known_time(e))


def _paid(s: CustomerState, e: Event, d: Mapping[str, Any]) -> CustomerState:
    """A payment closes the invoice it names and lowers the past-due balance by its
    amount, unless that invoice is open and not yet due (then it was never past due)."""
    amount = int(d["amount_minor"])
    failed = set_last(s.failed_payments, key_text(d.get("product", "")), None)
    invoice = s.invoices.get(str(d["invoice_id"])) if d.get("invoice_id") else None
    invoices = _with(s.invoices, str(d["invoice_id"]), None) if d.get("invoice_id") \
        else s.invoices
    fall = 0 if invoice is not None and invoice.due_at > s.clock else amount
    return _past_due(s.evolve(failed_payments=failed, invoices=invoices,
                             balance_minor=max(0, s.balance_minor - amount)),
                     max(0, s.past_due_minor - fall), e.occurred_at)


def _past_due(s: CustomerState, amount: int, at: int) -> CustomerState:
    """A positive past-due balance starts a streak; any fall restarts it; zero ends it."""
    if amount <= 0:
        return s.evolve(past_due_minor=0, past_due_since=None)
    if s.past_due_minor <= 0 or s.past_due_since is None or amount < s.past_due_minor:
        return s.evolve(past_due_minor=amount, past_due_since=at)
    return s.evolve(past_due_minor=amount)


def _overdue(invoice: OpenInvoice | None, at: int) -> int:
    """What an open invoice adds to the past-due balance at ``at``: all of it from its
    due time on, nothing before."""
    return invoice.amount_minor if invoice is not None and invoice.due_at <= at else 0


def _invoice_moved(s: CustomerState, invoice_id: str, invoice: OpenInvoice | None,
                   at: int) -> CustomerState:
    """The invoice set with ``invoice_id`` replaced (``None``: closed); the past-due
    balance moves by the change of the overdue part at the state's clock."""
    delta = _overdue(invoice, s.clock) - _overdue(s.invoices.get(invoice_id), s.clock)
    s = s.evolve(invoices=_with(s.invoices, invoice_id, invoice))
    return s if delta == 0 else _past_due(s, max(0, s.past_due_minor + delta), at)


def next_overdue(state: CustomerState) -> int | None:
    """The next time an open invoice falls overdue (after the state's clock). A plain
    loop: it runs for every input (twice as fast as ``min`` over a generator)."""
    clock, best = state.clock, None
    for invoice in state.invoices.values():
        due = invoice.due_at
        if due > clock and (best is None or due < best):
            best = due
    return best


def invoices_fall_overdue(state: CustomerState, at: int) -> CustomerState:
    """The state at ``at`` (moved forward from its clock): the open invoices due in
    between join the past-due balance, from their due time.

    The past-due balance has two sources, combined by one rule: a ``balance.updated``
    sets it outright (the billing system's figure is authoritative for everything up to
    then); from then on it moves with what signalbox sees: an open invoice falling
    overdue (at its due time, or when issued already overdue) adds its amount, an
    overdue invoice closed (``invoice.paid``) takes its amount off, a payment takes its
    amount off (unless it pays an open invoice that is not yet due). A rise keeps the
    streak; any fall restarts it while some stays past due; zero ends it.
    """
    if at <= state.clock:
        return state
    added = sum(i.amount_minor for i in state.invoices.values()
                if state.clock < i.due_at <= at)
    state = state.evolve(clock=at)
    return state if added == 0 else _past_due(state, state.past_due_minor + added, at)


def _failed(s: CustomerState, e: Event, d: Mapping[str, Any]) -> CustomerState:
    product = key_text(d.get("product", ""))
    return s.evolve(failed_payments=set_last(s.failed_payments, product,
                                            s.failed_payments.get(product, 0) + 1))


def _balance(s: CustomerState, e: Event, d: Mapping[str, Any]) -> CustomerState:
    return _past_due(s.evolve(balance_minor=int(d["balance_minor"])),
                     int(d.get("past_due_minor", 0)), e.occurred_at)


def _invoice(s: CustomerState, e: Event, d: Mapping[str, Any]) -> CustomerState:
    invoice = OpenInvoice(int(d["amount_minor"]), str(d["currency"]), int(d["due_at"]),
                          known_time(e), None if d.get("product") is None
                          else key_text(d["product"]))
    return _invoice_moved(s, str(d["invoice_id"]), invoice, e.occurred_at)


def _invoice_paid(s: CustomerState, e: Event, d: Mapping[str, Any]) -> CustomerState:
    return _invoice_moved(s, str(d["invoice_id"]), None, e.occurred_at)


def _agreement(active: bool) -> Handler:
    def handle(s: CustomerState, e: Event, d: Mapping[str, Any]) -> CustomerState:
        sid = str(d["subscription_id"])
        ends_at = d.get("ends_at")
        # cancelled stays active until it ends (subscription.ended), unless it ends now
        active_now = active and not (e.type == "subscription.cancelled" and ends_at is None)
        agreement = Agreement(key_text(d["product"]), active_now, known_time(e),
                              key_text(d.get("kind") or "subscription"),
                              None if ends_at is None else int(ends_at))
        return s.evolve(subscriptions=_with(s.subscriptions, sid, agreement))
    return handle


def _replaced(s: CustomerState, e: Event, d: Mapping[str, Any]) -> CustomerState:
    sid = d.get("subscription_id")
    current = s.subscriptions.get(str(sid)) if sid else None
    if current is None:
        return s
    return s.evolve(subscriptions=_with(s.subscriptions, str(sid),
                                          replace(current, product=key_text(d["product"]))))


def _allowance(s: CustomerState, e: Event, d: Mapping[str, Any]) -> CustomerState:
    metric, start = key_text(d["metric"]), int(d["period_start"])
    current = s.usage.get(metric)
    used = current.used if current is not None and current.period_start == start else 0.0
    period = UsagePeriod(start, int(d["period_end"]), float(d["allowance"]), used)
    return s.evolve(usage=_with(s.usage, metric, period))


def _usage(s: CustomerState, e: Event, d: Mapping[str, Any]) -> CustomerState:
    metric = key_text(d["metric"])
    current = s.usage.get(metric) or UsagePeriod(0, 0, 0.0)
    if current.period_end and e.occurred_at >= current.period_end:
        return s  # after the period the allowance covers: the next allowance.set counts it
    period = replace(current, used=current.used + float(d["quantity"]))
    return s.evolve(usage=_with(s.usage, metric, period))


def _feature(s: CustomerState, e: Event, d: Mapping[str, Any]) -> CustomerState:
    feature = key_text(d["feature"])
    seconds = s.feature_seconds.get(feature, 0) + max(0, int(d["duration_seconds"]))
    last = max(s.feature_last_used.get(feature, 0), e.occurred_at)
    return s.evolve(feature_seconds=_with(s.feature_seconds, feature, seconds),
                   feature_last_used=_with(s.feature_last_used, feature, last))


def _login(s: CustomerState, e: Event, d: Mapping[str, Any]) -> CustomerState:
    return s.evolve(last_login_at=max(s.last_login_at or 0, e.occurred_at))


def _score(s: CustomerState, e: Event, d: Mapping[str, Any]) -> CustomerState:
    return s.evolve(score=s.score + int(d["delta"]))


def _appointment(s: CustomerState, e: Event, d: Mapping[str, Any]) -> CustomerState:
    aid = str(d["appointment_id"])
    title = d.get("title")
    booked = Appointment(int(d["starts_at"]), known_time(e),
                         None if title is None else key_text(title)) \
        if e.type == "appointment.booked" else None
    return s.evolve(appointments=_with(s.appointments, aid, booked))


def _task(s: CustomerState, e: Event, d: Mapping[str, Any]) -> CustomerState:
    due = d.get("due_at")
    task = OpenTask(key_text(d["title"]), known_time(e), None if due is None else int(due)) \
        if e.type == "task.added" else None
    return s.evolve(tasks=_with(s.tasks, str(d["task_id"]), task))


_HANDLERS: Mapping[str, Handler] = {
    "customer.signed_up": _signed_up,
    "account.status_changed": _status,
    "custom_field.changed": _custom_field,
    "card.updated": _card,
    "payment.succeeded": _paid,
    "payment.failed": _failed,
    "balance.updated": _balance,
    "invoice.issued": _invoice,
    "invoice.paid": _invoice_paid,
    "subscription.started": _agreement(True),
    "subscription.renewed": _agreement(True),
    "subscription.cancelled": _agreement(True),
    "subscription.ended": _agreement(False),
    "product.replaced": _replaced,
    "allowance.set": _allowance,
    "usage.recorded": _usage,
    "feature.used": _feature,
    "user.logged_in": _login,
    "score.adjusted": _score,
    "appointment.booked": _appointment,
    "appointment.attended": _appointment,
    "appointment.cancelled": _appointment,
    "task.added": _task,
    "task.completed": _task,
}
