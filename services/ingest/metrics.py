"""Prometheus metrics of ingest."""

from collections.abc import Iterable

from prometheus_client import Counter, Histogram

from signalbox.common.metrics import initialise

ACCEPTED = Counter("signalbox_ingest_events_accepted_total",
                   "Events acknowledged by Kafka and answered 202", ["type"])
REJECTED = Counter("signalbox_ingest_requests_rejected_total",
                   "Requests answered with an error", ["status", "reason"])
PRODUCE_FAILURES = Counter("signalbox_ingest_produce_failures_total",
                           "Batches Kafka did not fully acknowledge (answered 503)", ["error"])
LATENCY = Histogram("signalbox_ingest_request_seconds", "Time to answer POST /v1/events",
                    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
                             2.5, 5.0, 15.0))

#: (status, reason) of every refusal ingest answers (:func:`signalbox.ingest.answers.error`).
#: Kept complete by tests/ingest/test_metrics.py, which reads the answers in the sources.
REJECTIONS = (("400", "invalid_json"), ("400", "invalid_event"),
              ("400", "unreadable_source_event"), ("401", "unauthorized"),
              ("403", "forbidden_event_type"), ("404", "unknown_source"),
              ("404", "source_not_configured"), ("413", "body_too_large"),
              ("413", "batch_too_large"), ("413", "event_too_large"),
              ("415", "unsupported_media_type"), ("503", "kafka_unavailable"))


def initialise_series(event_types: Iterable[str]) -> None:
    """The labelled counters' series at zero, so rate() has a series before the first
    request (Kafka's error kinds are open-ended: only the time-out is known in advance)."""
    initialise(ACCEPTED, sorted(event_types))
    for status, reason in REJECTIONS:
        REJECTED.labels(status=status, reason=reason)
    PRODUCE_FAILURES.labels(error="Timeout")
