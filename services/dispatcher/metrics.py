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
ASSIGNED = Gauge("signalbox_dispatcher_assigned_partitions", "Partitions owned by this process")
