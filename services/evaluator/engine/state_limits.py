"""How large one customer's state may grow, and what goes first when it would grow
further. Pure.

A customer's state is one record on the state changelog, so it must stay far below
the broker's ``max.message.bytes`` whatever a producer sends: a long-lived customer
or a hostile producer can otherwise add ever new attribute names, tags, invoices,
usage metrics... until the record no longer fits (the shell then dead-letters it,
``StateTooLarge``: the last line of defence, not the bound). So every collection has
a cap, generous enough that real customers never reach it, and every string the
engine stores from an event that ingest does not already bound (ids and names are at
most 256 characters there) is clipped.

When a collection is over its cap, its oldest entries go first; "oldest" is defined
from what each collection holds (see :data:`CAPS`), with the key breaking ties, so the
same input always leaves the same state. :func:`bound` says how many entries it
dropped per collection; the engine puts that in its decision and the shell counts it
(``signalbox_evaluator_state_entries_dropped_total{collection}``).
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Mapping
from itertools import islice
from typing import Any, TypeVar

from signalbox.evaluator.engine.model import CustomerState

#: Longest key or short text kept from an event (product, metric, feature, tag,
#: attribute name, title, status, plan, locale): ingest's limit for ids and names.
MAX_KEY_CHARS = 256
#: Longest attribute value: attributes also carry lists (``segments``, ``tags``).
MAX_VALUE_CHARS = 1024

#: Attributes and custom fields (least recently set first): real accounts carry tens.
MAX_ATTRIBUTES = 100
#: Tags (least recently added first): segmentation labels, tens per customer.
MAX_TAGS = 100
#: Open invoices (earliest due first): paid ones leave the state; hundreds open
#: means a billing system that never reports payments.
MAX_INVOICES = 100
#: Subscriptions and agreements (ended ones first, then the longest known).
MAX_SUBSCRIPTIONS = 50
#: Usage metrics with a billing period (the oldest period first).
MAX_USAGE = 50
#: Features with usage time (least recently used first).
MAX_FEATURES = 100
#: Products with a failed-payment streak (least recently failed first).
MAX_FAILED_PAYMENTS = 50
#: Booked appointments not yet started (booked longest ago first).
MAX_APPOINTMENTS = 100
#: Open tasks (added longest ago first).
MAX_TASKS = 100
#: Approvals waiting for a decision (requested longest ago first); each holds its
#: commands, the largest entries of a state.
MAX_APPROVALS = 20
#: Once-ever automations that fired (first fired first); bounded by the automations
#: an operator ever defined, capped all the same.
MAX_FIRED = 100
#: Score milestones reached (lowest first); bounded by the automations' milestones.
MAX_MILESTONES = 100

#: Collection name (the metric's label) → its cap.
CAPS: Mapping[str, int] = {
    "attributes": MAX_ATTRIBUTES,
    "tags": MAX_TAGS,
    "invoices": MAX_INVOICES,
    "subscriptions": MAX_SUBSCRIPTIONS,
    "usage": MAX_USAGE,
    "features": MAX_FEATURES,
    "failed_payments": MAX_FAILED_PAYMENTS,
    "appointments": MAX_APPOINTMENTS,
    "tasks": MAX_TASKS,
    "approvals": MAX_APPROVALS,
    "fired": MAX_FIRED,
    "milestones": MAX_MILESTONES,
}

K = TypeVar("K")
V = TypeVar("V")


def clip(text: str, limit: int = MAX_KEY_CHARS) -> str:
    """``text`` cut to ``limit`` characters (a longer key still finds its entry: the
    same cut applies wherever the engine stores or looks one up)."""
    return text if len(text) <= limit else text[:limit]


def key_text(value: Any) -> str:
    """An event field used as a key or short text in the state, clipped."""
    return clip(str(value))


def set_last(mapping: Mapping[str, V], key: str, value: V | None) -> dict[str, V]:
    """A copy with ``key`` set at the end (the most recent), or removed for ``None``:
    the order of collections whose entries carry no time of their own."""
    out = dict(mapping)
    out.pop(key, None)
    if value is not None:
        out[key] = value
    return out


def _first_dropped(mapping: Mapping[str, V], n: int) -> dict[str, V]:
    return dict(islice(mapping.items(), n, None))


def _oldest_dropped(mapping: Mapping[str, V], n: int,
                    age: Callable[[str, V], Any]) -> dict[str, V]:
    """Without the ``n`` entries of lowest ``age`` (which ends with the key: no ties);
    the others keep their order."""
    gone = {k for _, k in heapq.nsmallest(n, ((age(k, v), k) for k, v in mapping.items()))}
    return {k: v for k, v in mapping.items() if k not in gone}


def _features(s: CustomerState, n: int) -> dict[str, Any]:
    last = s.feature_last_used
    kept = _oldest_dropped(s.feature_seconds, n, lambda k, _: (last.get(k, 0), k))
    return {"feature_seconds": kept,
            "feature_last_used": {k: v for k, v in last.items() if k in kept}}


_Trim = Callable[[CustomerState, int], dict[str, Any]]
_TRIMS: tuple[tuple[str, Callable[[CustomerState], int], _Trim], ...] = (
    ("attributes", lambda s: len(s.attributes),
     lambda s, n: {"attributes": _first_dropped(s.attributes, n)}),
    ("tags", lambda s: len(s.tags), lambda s, n: {"tags": s.tags[n:]}),
    ("invoices", lambda s: len(s.invoices),
     lambda s, n: {"invoices": _oldest_dropped(
         s.invoices, n, lambda k, v: (v.due_at, v.known_at, k))}),
    ("subscriptions", lambda s: len(s.subscriptions),
     lambda s, n: {"subscriptions": _oldest_dropped(
         s.subscriptions, n, lambda k, v: (v.active, v.known_at, k))}),
    ("usage", lambda s: len(s.usage),
     lambda s, n: {"usage": _oldest_dropped(
         s.usage, n, lambda k, v: (v.period_start, v.period_end, k))}),
    ("features", lambda s: len(s.feature_seconds), _features),
    ("failed_payments", lambda s: len(s.failed_payments),
     lambda s, n: {"failed_payments": _first_dropped(s.failed_payments, n)}),
    ("appointments", lambda s: len(s.appointments),
     lambda s, n: {"appointments": _oldest_dropped(
         s.appointments, n, lambda k, v: (v.known_at, v.starts_at, k))}),
    ("tasks", lambda s: len(s.tasks),
     lambda s, n: {"tasks": _oldest_dropped(s.tasks, n, lambda k, v: (v.known_at, k))}),
    ("approvals", lambda s: len(s.approvals),
     lambda s, n: {"approvals": _oldest_dropped(
         s.approvals, n, lambda k, v: (v.requested_at, k))}),
    ("fired", lambda s: len(s.fired), lambda s, n: {"fired": s.fired[n:]}),
    ("milestones", lambda s: len(s.milestones),
     lambda s, n: {"milestones": tuple(sorted(s.milestones))[n:]}),
)


def bound(state: CustomerState) -> tuple[CustomerState, dict[str, int]]:
    """``state`` with every collection within its cap, and how many entries each lost
    (only collections that lost some). The same state when nothing is over."""
    if (len(state.attributes) <= MAX_ATTRIBUTES and len(state.tags) <= MAX_TAGS
            and len(state.invoices) <= MAX_INVOICES
            and len(state.subscriptions) <= MAX_SUBSCRIPTIONS and len(state.usage) <= MAX_USAGE
            and len(state.feature_seconds) <= MAX_FEATURES
            and len(state.failed_payments) <= MAX_FAILED_PAYMENTS
            and len(state.appointments) <= MAX_APPOINTMENTS and len(state.tasks) <= MAX_TASKS
            and len(state.approvals) <= MAX_APPROVALS and len(state.fired) <= MAX_FIRED
            and len(state.milestones) <= MAX_MILESTONES):
        return state, {}  # the hot path (once per input): no loop, no lambdas
    changes: dict[str, Any] = {}
    dropped: dict[str, int] = {}
    for name, size, trim in _TRIMS:
        over = size(state) - CAPS[name]
        if over > 0:
            changes.update(trim(state, over))
            dropped[name] = over
    return (state.evolve(**changes) if changes else state), dropped
