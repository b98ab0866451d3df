"""Ingest's refusal counters exist from start-up for every refusal it can answer."""

from __future__ import annotations

import re

from prometheus_client import REGISTRY

from signalbox.common import schemas
from signalbox.ingest.metrics import REJECTIONS, initialise_series
from signalbox.testing.broker import REPO

_ANSWER = re.compile(r"(?:\b|_)error\(\s*(\d{3}),\s*\"([a-z_]+)\"")


def test_every_refusal_in_the_sources_has_its_series_from_start_up() -> None:
    answered = {m.groups() for path in (REPO / "services" / "ingest").rglob("*.py")
                for m in _ANSWER.finditer(path.read_text("utf-8"))}
    assert len(answered) >= 10, answered  # the pattern still finds the answers
    assert answered <= set(REJECTIONS), sorted(answered - set(REJECTIONS))
    initialise_series(schemas.event_types())
    for status, reason in REJECTIONS:
        assert REGISTRY.get_sample_value("signalbox_ingest_requests_rejected_total",
                                         {"status": status, "reason": reason}) is not None
    for type_ in schemas.event_types():
        assert REGISTRY.get_sample_value("signalbox_ingest_events_accepted_total",
                                         {"type": type_}) is not None
