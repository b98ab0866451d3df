"""Prometheus metrics of the webhook sources."""

from prometheus_client import Counter

SOURCE_EVENTS = Counter(
    "signalbox_ingest_source_events_total",
    "Verified webhooks by source, source event type and outcome (accepted: written to "
    "Kafka; unmapped: a type the mapping does not use; skipped: no rule's condition held; "
    "rejected: ingest refused what the mapping produced; unavailable: Kafka did not take it, "
    "the source retries)", ["source", "type", "outcome"])
SOURCE_AUTH_FAILURES = Counter(
    "signalbox_ingest_source_auth_failures_total",
    "Webhooks refused before reading: missing or bad signature, stale timestamp",
    ["source", "reason"])
