"""Logging (structlog, JSON lines) and the shared Prometheus helpers.

Library loggers (aiokafka, faust, aiohttp) go through the same processors, so
an operator sees one JSON stream per service. Correlation ids (event, customer,
automation, command) are bound with :func:`structlog.contextvars.bound_contextvars`.
"""

from __future__ import annotations

import logging
import logging.config
import sys
from typing import Any

import structlog

_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING,
           "error": logging.ERROR}


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
        "handlers": {
            "stderr": {"class": "logging.StreamHandler", "formatter": "structlog",
                       "stream": "ext://sys.stderr"}
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
