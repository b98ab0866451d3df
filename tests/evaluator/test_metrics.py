"""The evaluator's metrics on running workers: per-partition gauges and lag only for the
partitions a worker owns (a rebalance takes the others away), build info, and /metrics
on the admin port behind its token."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx
import pytest

from signalbox.common import schemas
from signalbox.common.codec import AvroCodec
from signalbox.common.settings import Settings
from signalbox.common.topics import EVENTS_BILLING, EVENTS_USAGE, TICKS
from signalbox.testing import free_port, service_env
from signalbox.testing.processes import ServiceProcess
from tests.support.kafka import produce
from tests.support.metrics import Samples, labelled, scrape, until, value

pytestmark = pytest.mark.kafka
TOKEN = "metrics-test-token"


@contextmanager
def worker(settings: Settings, tmp_path: Path, name: str) -> Iterator[tuple[ServiceProcess,
                                                                             int]]:
    port, admin = free_port(), free_port()
    (tmp_path / name).mkdir()
    env = service_env(settings, EVALUATOR_PORT=str(port), EVALUATOR_ADMIN_PORT=str(admin),
                      EVALUATOR_DATA_DIR=str(tmp_path / name / "data"),
                      SIGNALBOX_ADMIN_TOKEN=TOKEN, SIGNALBOX_INSTANCE_ID=name)
    proc = ServiceProcess("evaluator", env, tmp_path / name, port).start()
    try:
        proc.wait_ready()
        yield proc, admin
    finally:
        assert proc.stop() == 0, proc.tail()


def tick(settings: Settings, partition: int) -> None:
    at = int(time.time() * 1000)
    value = AvroCodec().encode(schemas.TICK, {"tick_id": f"{partition}:{at}",
                                              "partition": partition, "at": at,
                                              "interval_ms": 1000})
    produce(settings.kafka.bootstrap_servers, settings.kafka.topic(TICKS),
            [(str(partition).encode(), value)], partition=partition)


def partitions(samples: Samples, name: str) -> set[str]:
    return {x["partition"] for x in labelled(samples, name)}


def test_a_worker_exports_only_the_partitions_it_owns(settings: Settings,
                                                      tmp_path: Path) -> None:
    k = settings.kafka
    inputs = {k.topic(t) for t in (EVENTS_BILLING, EVENTS_USAGE, TICKS)}
    every = {str(p) for p in range(k.partitions)}
    with ExitStack() as stack:
        for p in range(k.partitions):  # before the worker: lag 1 until it commits
            tick(settings, p)
        a, a_admin = stack.enter_context(worker(settings, tmp_path, "a"))
        alone = until(a.url("/metrics"), lambda s: partitions(
            s, "signalbox_evaluator_last_tick_timestamp_seconds") == every and len(
            labelled(s, "signalbox_consumer_lag_records")) == len(inputs) * len(every), 60)
        assert partitions(alone, "signalbox_evaluator_timers") == every
        # The ticks read and committed by the Faust consumer: lag 0 from committed offsets
        # (were the group's commits not found, each ticks partition would stay at 1).
        ticks_lag = {"group": settings.kafka.evaluator_app_id, "topic": k.topic(TICKS)}
        until(a.url("/metrics"), lambda s: all(
            value(s, "signalbox_consumer_lag_records", partition=p, **ticks_lag) == 0
            for p in every), 30)
        assert {(x["group"], x["topic"]) for x in labelled(
            alone, "signalbox_consumer_lag_records")} == {
            (settings.kafka.evaluator_app_id, t) for t in inputs}
        [build] = labelled(alone, "signalbox_build_info")
        assert build["service"] == "evaluator"
        # Series of counters exist before their first event: per event type, per automation.
        assert value(alone, "signalbox_evaluator_inputs_total", kind="event",
                     type="payment.failed") == 0
        assert value(alone, "signalbox_evaluator_commands_total",
                     automation="payment-failed-pro") == 0

        # The admin port serves the same registry, behind the admin token.
        admin = f"http://127.0.0.1:{a_admin}/metrics"
        assert httpx.get(admin, timeout=5).status_code == 401
        assert ("signalbox_evaluator_timers", frozenset({("partition", "0")})) in scrape(
            admin, headers={"Authorization": f"Bearer {TOKEN}"})

        # A second worker joins: each now exports its own partitions only.
        b, _ = stack.enter_context(worker(settings, tmp_path, "b"))
        started = time.monotonic()

        def split(s: Samples) -> bool:
            return len(partitions(s, "signalbox_evaluator_timers")) == 1

        a.wait_ready()
        owned_a = until(a.url("/metrics"), split, 60)
        owned_b = until(b.url("/metrics"), split, 60)
        mine = partitions(owned_a, "signalbox_evaluator_timers")
        theirs = partitions(owned_b, "signalbox_evaluator_timers")
        assert mine | theirs == every and not mine & theirs
        for s, own in ((owned_a, mine), (owned_b, theirs)):
            assert partitions(s, "signalbox_evaluator_last_tick_timestamp_seconds") <= own
        until(a.url("/metrics"), lambda s: partitions(
            s, "signalbox_consumer_lag_records") == mine, 30)
        until(b.url("/metrics"), lambda s: partitions(
            s, "signalbox_consumer_lag_records") == theirs, 30)
        print(f"\nafter the second worker joined, each exported only its own partitions "
              f"within {time.monotonic() - started:.1f} s (a: {sorted(mine)}, "
              f"b: {sorted(theirs)})")
