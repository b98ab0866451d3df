"""Prometheus metrics of ingest."""

from prometheus_client import Counter, Histogram

ACCEPTED = Counter("signalbox_ingest_events_accepted_total",
                   "Events acknowledged by Kafka and answered 202", ["type"])
REJECTED = Counter("signalbox_ingest_requests_rejected_total",
                   "Requests answered with an error", ["status", "reason"])
PRODUCE_FAILURES = Counter("signalbox_ingest_produce_failures_total",
                           "Batches Kafka did not fully acknowledge (answered 503)", ["error"])
LATENCY = Histogram("signalbox_ingest_request_seconds", "Time to answer POST /v1/events",
                    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
                             2.5, 5.0, 15.0))
