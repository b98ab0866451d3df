"""Logging (structlog, JSON lines) and the shared Prometheus helpers.

Library loggers (aiokafka, faust, aiohttp) go through the same processors, so
an operator sees one JSON stream per service; repeated identical warnings and
errors are limited (:class:`RepeatLimiter`). Correlation ids (event, customer,
automation, command) are bound with :func:`structlog.contextvars.bound_contextvars`.
"""

from __future__ import annotations

import logging
import logging.config
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, MutableMapping
from typing import Any

import structlog

_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING,
           "error": logging.ERROR}


class RepeatLimiter:
    """The same warning or error at most ``burst`` times a window, in every service's log.

    During an outage a client library or a retry loop may log the same line thousands
    of times a second; that buries everything else and costs real CPU. Lines are the
    same when all their fields but the timestamp are (so per-command lines, which name
    the command, are never merged). The first ``burst`` of each window pass; the rest
    are dropped and counted, and the first to pass in a later window says how many
    were dropped since (``repeats_dropped``). Info and debug lines pass as they are.

    One instance serves as a structlog processor (``__call__``, for signalbox's own
    events) and as a :class:`logging.Filter` (``filter``, for library loggers such as
    aiokafka's, whose records a formatter may not drop). Thread-safe.
    """

    def __init__(self, burst: int = 3, window_s: float = 10.0, max_keys: int = 1000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.burst, self.window_s, self.max_keys = burst, window_s, max_keys
        self._clock = clock
        self._seen: OrderedDict[str, list[float]] = OrderedDict()  # [start, passed, dropped]
        self._lock = threading.Lock()

    def admit(self, key: str) -> int | None:
        """None to drop this line; otherwise how many like it were dropped before it."""
        now = self._clock()
        with self._lock:
            entry = self._seen.get(key)
            if entry is None or now - entry[0] >= self.window_s:
                self._seen[key] = [now, 1, 0]
                self._seen.move_to_end(key)
                while len(self._seen) > self.max_keys:
                    self._seen.popitem(last=False)
                return int(entry[2]) if entry else 0
            if entry[1] < self.burst:
                entry[1] += 1
                return 0
            entry[2] += 1
            return None

    def __call__(self, _: Any, method: str,
                 event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
        if str(event.get("level") or method).lower() not in _LIMITED:
            return event
        key = repr(sorted((k, repr(v)) for k, v in event.items()
                          if k != "timestamp" and not k.startswith("_")))
        dropped = self.admit(key)
        if dropped is None:
            raise structlog.DropEvent
        if dropped:
            event["repeats_dropped"] = dropped
        return event

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, dict) or record.levelno < logging.WARNING:
            return True  # structlog's own events went through __call__ already
        error = record.exc_info[1] if record.exc_info else None
        dropped = self.admit(f"{record.name}|{record.levelno}|{record.getMessage()}|{error!r}")
        if dropped is None:
            return False
        if dropped:
            record.msg, record.args = f"{record.getMessage()} (repeats_dropped={dropped})", ()
        return True


_LIMITED = frozenset({"warning", "error", "critical", "exception"})
#: The process's limiter: the structlog chain and the stdlib handler share its counts.
REPEATS = RepeatLimiter()


def _shared_processors(service: str) -> list[Any]:
    def add_service(_: Any, __: str, event: dict[str, Any]) -> dict[str, Any]:
        event.setdefault("service", service)
        return event

    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        add_service,
    ]


def logging_dict_config(service: str, level: str = "info", fmt: str = "json") -> dict[str, Any]:
    """A :func:`logging.config.dictConfig` routing stdlib logging through structlog."""
    renderer: Any = (
        structlog.processors.JSONRenderer(sort_keys=False)
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "structlog": {
                "()": structlog.stdlib.ProcessorFormatter,
                "processors": [
                    structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                    structlog.processors.format_exc_info,
                    renderer,
                ],
                "foreign_pre_chain": _shared_processors(service),
            }
        },
        "filters": {"repeats": {"()": lambda: REPEATS}},
        "handlers": {
            "stderr": {"class": "logging.StreamHandler", "formatter": "structlog",
                       "filters": ["repeats"], "stream": "ext://sys.stderr"}
        },
        "root": {"handlers": ["stderr"], "level": _LEVELS.get(level, logging.INFO)},
        "loggers": {
            # Chatty at INFO; their warnings and errors still come through.
            "aiokafka": {"level": "WARNING"},
            "faust": {"level": "WARNING"},
            "mode": {"level": "WARNING"},
            "aiohttp.access": {"level": "WARNING"},
        },
    }


def configure_logging(service: str, level: str = "info", fmt: str = "json") -> None:
    """Configure structlog and stdlib logging for one service process."""
    logging.config.dictConfig(logging_dict_config(service, level, fmt))
    structlog.configure(
        processors=[
            *_shared_processors(service),
            REPEATS,
            structlog.processors.StackInfoRenderer(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    sys.excepthook = _log_uncaught


def _log_uncaught(exc_type: Any, exc: BaseException, tb: Any) -> None:
    structlog.get_logger("signalbox").critical(
        "uncaught_exception", exc_info=(exc_type, exc, tb)
    )
