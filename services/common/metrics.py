"""Prometheus metrics every service exports: build, broker connectivity, consumer lag.

The services' own metrics are in ``signalbox.<service>.metrics``; the catalogue of all
of them, with units and labels, is ``docs/operations.md`` (a test keeps the two equal).
"""

from __future__ import annotations

import platform
import subprocess
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from prometheus_client import Gauge

import signalbox
from signalbox.common.env import Env

BUILD_INFO = Gauge("signalbox_build_info",
                   "Always 1; the labels say which build of which service runs",
                   ["service", "version", "python", "commit"])
BROKER_UP = Gauge("signalbox_broker_up",
                  "1 while the Kafka cluster answers this process's metadata requests "
                  "(the readiness probe's fact), 0 once it has not for the grace period")
CONSUMER_LAG = Gauge("signalbox_consumer_lag_records",
                     "Records on a partition this process owns past its group's committed "
                     "offset (end offset minus committed offset, as the broker sees them)",
                     ["group", "topic", "partition"])

#: Environment variable an image build sets to the commit it was built from.
COMMIT_ENV = "SIGNALBOX_COMMIT"


def build_commit() -> str:
    """The commit of this build: ``SIGNALBOX_COMMIT`` (set by an image build), else the
    source checkout's HEAD when running from one, else ``unknown``."""
    given = Env().text(COMMIT_ENV, "")
    if given:
        return given[:40]
    source = Path(signalbox.__file__).resolve().parent
    try:
        done = subprocess.run(["git", "-C", str(source), "rev-parse", "--short=12", "HEAD"],
                              capture_output=True, text=True, timeout=2, check=False)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    head = done.stdout.strip()
    return head if done.returncode == 0 and head else "unknown"


def publish_build_info(service: str) -> None:
    """Set ``signalbox_build_info`` for this process (once, at start-up)."""
    BUILD_INFO.labels(service, signalbox.__version__, platform.python_version(),
                      build_commit()).set(1)


def initialise(metric: Any, *label_sets: Iterable[str]) -> None:
    """Create the series of ``metric`` for every combination given, at zero, so rate()
    and increase() have a series (and alerts can fire) before the first increment.

    Each argument is the values of one label, in the metric's label order; the series
    created are their cartesian product.
    """
    combinations: list[tuple[str, ...]] = [()]
    for values in label_sets:
        combinations = [(*c, str(v)) for c in combinations for v in values]
    for combination in combinations:
        metric.labels(*combination)


def forget_partitions(metric: Any, partitions: Iterable[int], label: str = "partition"
                      ) -> None:
    """Remove the series of ``metric`` whose ``label`` is one of ``partitions`` (gauges of
    partitions this process no longer owns must not go on being exported)."""
    gone = {str(p) for p in partitions}
    names = list(metric._labelnames)
    index = names.index(label)
    for values in list(metric._metrics):
        if values[index] in gone:
            metric.remove(*values)


#: Header of a command caused by an ingested event: the event's ``received_at`` (ingest's
#: clock, Unix ms, decimal ASCII), so the dispatcher can measure event-to-outcome latency.
#: The dispatcher keeps it on a command's retry copies; records without it (tick-driven
#: commands, records written before it existed) are simply not measured.
RECEIVED_AT_HEADER = "signalbox-received-at"


def received_at_header(received_at_ms: int) -> tuple[str, bytes]:
    return RECEIVED_AT_HEADER, str(received_at_ms).encode("ascii")


def received_at_of(headers: Iterable[tuple[str, bytes | None]] | None) -> int | None:
    """The ``received_at`` a record carries, or ``None`` (absent or not a number)."""
    for name, value in headers or ():
        if name == RECEIVED_AT_HEADER and value is not None and value.isdigit() \
                and len(value) <= 15:
            return int(value)
    return None
