"""Prometheus metrics of the dispatcher."""

from collections.abc import Iterable

from prometheus_client import Counter, Gauge, Histogram

from signalbox.common.metrics import initialise

OUTCOMES = Counter("signalbox_dispatcher_outcomes_total", "Terminal outcomes",
                   ["channel", "outcome"])
DUPLICATES = Counter("signalbox_dispatcher_duplicate_commands_total",
                     "Commands seen again after their outcome was recorded")
ATTEMPTS = Counter("signalbox_dispatcher_attempts_total", "Delivery attempts",
                   ["channel", "result"])
SEND_SECONDS = Histogram("signalbox_dispatcher_send_seconds", "Time of one delivery attempt",
                         ["channel"])
UNREADABLE = Counter("signalbox_dispatcher_unreadable_commands_total",
                     "Command records that could not be decoded (dead-lettered)")
TRUNCATED_DEAD_LETTERS = Counter(
    "signalbox_dispatcher_truncated_dead_letters_total",
    "Dead letters whose payload was cut to fit actions.dlq (digest and size kept)")
ASSIGNED = Gauge("signalbox_dispatcher_assigned_partitions", "Partitions owned by this process")
RETRIES = Counter("signalbox_dispatcher_retries_total",
                  "Commands moved to a retry tier (transient failure, deferral, hop)", ["channel"])
DEFERRED = Counter("signalbox_dispatcher_deferred_total",
                   "Commands deferred without an attempt (quiet hours, open circuit, busy)",
                   ["channel", "reason"])
BREAKER_OPENED = Counter("signalbox_dispatcher_breaker_opened_total",
                         "Circuit breakers opened", ["channel"])
IN_FLIGHT = Gauge("signalbox_dispatcher_in_flight_commands", "Commands being handled now")
#: Minutes matter for SMS and email, hours for commands held by retries or quiet hours.
EVENT_TO_OUTCOME = Histogram(
    "signalbox_dispatcher_event_to_outcome_seconds",
    "From ingest receiving an event to the dispatcher deciding the outcome of a command it "
    "caused (ingest's and the dispatcher's wall clocks; tick-driven commands not included)",
    ["channel", "outcome"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 1800.0, 3600.0,
             21600.0, 86400.0))

#: Label values the worker uses (kept beside the metrics so the series exist from start-up).
ATTEMPT_RESULTS = ("delivered", "transient", "permanent", "in_doubt", "timeout", "error")
DEFER_REASONS = ("quiet_hours", "circuit_open", "busy", "stopping")
OUTCOME_NAMES = ("delivered", "suppressed", "failed", "in_doubt")


def initialise_series(channels: Iterable[str]) -> None:
    """Every channel's series at zero, so rate() has a series before the first event."""
    names = sorted(channels)
    initialise(OUTCOMES, names, OUTCOME_NAMES)
    initialise(EVENT_TO_OUTCOME, names, OUTCOME_NAMES)
    initialise(ATTEMPTS, names, ATTEMPT_RESULTS)
    initialise(SEND_SECONDS, names)
    initialise(RETRIES, names)
    initialise(DEFERRED, names, DEFER_REASONS)
    initialise(BREAKER_OPENED, names)
