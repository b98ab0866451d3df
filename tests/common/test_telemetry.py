"""Repeated identical warnings and errors are limited in the log (issue 9, finding 8)."""

from __future__ import annotations

import io
import json
import logging
import logging.config
from typing import Any

import pytest
import structlog

from signalbox.common.telemetry import RepeatLimiter, logging_dict_config


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def run(limiter: RepeatLimiter, event: dict[str, Any], method: str = "error"
        ) -> dict[str, Any] | None:
    try:
        return dict(limiter(None, method, {**event, "level": method}))
    except structlog.DropEvent:
        return None


def test_the_same_error_passes_burst_times_a_window_then_says_how_many_were_dropped() -> None:
    clock = Clock()
    limiter = RepeatLimiter(burst=2, window_s=10, clock=clock)
    lost = {"event": "broker_unreachable", "error": "Connection refused", "timestamp": "t"}
    passed = [run(limiter, {**lost, "timestamp": str(i)}) for i in range(1000)]
    assert sum(p is not None for p in passed) == 2
    # Another error, or the same event for another command, is not a repeat.
    assert run(limiter, {**lost, "error": "Timed out"}) is not None
    assert run(limiter, {"event": "attempt_failed", "command_id": "c1"}, "warning") is not None
    assert run(limiter, {"event": "attempt_failed", "command_id": "c2"}, "warning") is not None
    # Info lines are never limited.
    assert all(run(limiter, {"event": "command_delivered"}, "info") for _ in range(10))
    clock.now = 10.0
    again = run(limiter, lost)
    assert again is not None and again["repeats_dropped"] == 998
    second = run(limiter, lost)
    assert second is not None and "repeats_dropped" not in second
    assert run(limiter, lost) is None


def test_the_key_table_is_bounded() -> None:
    limiter = RepeatLimiter(burst=1, max_keys=10, clock=Clock())
    for i in range(100):
        run(limiter, {"event": "e", "n": i})
    assert len(limiter._seen) == 10


@pytest.fixture
def stream() -> Any:
    """The services' logging configuration, writing to a buffer; restored afterwards."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    buffer = io.StringIO()
    config = logging_dict_config("test", "info", "json")
    config["handlers"]["stderr"]["stream"] = buffer
    logging.config.dictConfig(config)
    yield buffer
    root.handlers[:] = handlers
    root.setLevel(level)


def test_a_library_logger_repeating_itself_is_limited_through_the_handler(stream: Any) -> None:
    """aiokafka logs through stdlib logging: its records are limited by the handler's filter."""
    library = logging.getLogger("aiokafka.client.test")
    for _ in range(500):
        library.error("Unable connect to node with id %s: %s", 1, "Connection refused")
    library.warning("another line")
    lines = [json.loads(x) for x in stream.getvalue().splitlines()]
    repeated = [x for x in lines if x["event"].startswith("Unable connect to node with id 1")]
    assert 1 <= len(repeated) <= 3  # the burst of the process-wide limiter (others may share it)
    assert lines[-1]["event"] == "another line"
