"""Prometheus metrics of the dispatcher."""

from prometheus_client import Counter, Gauge, Histogram

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
IN_FLIGHT = Gauge("signalbox_dispatcher_in_flight", "Commands being handled now")
