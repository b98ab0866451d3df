"""Tick arithmetic (pure) and the scheduler against a real broker."""

from __future__ import annotations

import asyncio
import gc
import warnings
from pathlib import Path

import pytest
from aiokafka.errors import KafkaConnectionError

from signalbox.common import schemas
from signalbox.common.codec import AvroCodec
from signalbox.common.settings import KafkaSettings, SchedulerSettings, Settings
from signalbox.common.topics import TICKS
from signalbox.scheduler.main import Scheduler
from signalbox.scheduler.ticks import aligned, next_due, tick_records
from signalbox.testing import free_port, service_env
from signalbox.testing.processes import ServiceProcess
from tests.support.kafka import consume, drain

codec = AvroCodec()


def test_alignment() -> None:
    assert aligned(125_999, 60_000) == 120_000
    assert aligned(120_000, 60_000) == 120_000
    assert next_due(120_000, 60_000) == 180_000
    assert next_due(179_999, 60_000) == 180_000


def test_one_record_per_partition_with_deterministic_ids() -> None:
    records = tick_records(120_000, 3, 60_000, "a")
    assert [r["partition"] for r in records] == [0, 1, 2]
    assert [r["tick_id"] for r in records] == ["0:120000", "1:120000", "2:120000"]
    # Another replica emits the same ticks (only the debugging field differs).
    other = tick_records(120_000, 3, 60_000, "b")
    assert [{**r, "emitted_by": ""} for r in records] == [{**r, "emitted_by": ""} for r in other]
    for r in records:
        decoded = codec.decode(schemas.TICK, codec.encode(schemas.TICK, r))
        assert decoded["tick_id"] == r["tick_id"]


@pytest.mark.kafka
def test_scheduler_process_ticks_every_partition_and_stops_cleanly(
    settings: Settings, tmp_path: Path
) -> None:
    port = free_port()
    env = service_env(settings, SCHEDULER_PORT=str(port), TICK_INTERVAL_SECONDS="0.5")
    proc = ServiceProcess("scheduler", env, tmp_path, port).start()
    try:
        proc.wait_ready()
        k = settings.kafka
        first = consume(k.bootstrap_servers, k.topic(TICKS), 2 * k.partitions, timeout=30)
    finally:
        assert proc.stop() == 0, proc.tail()
    ticks = [codec.decode(schemas.TICK, r.value) for r in first]
    for record, tick in zip(first, ticks, strict=True):
        assert record.partition == tick["partition"]  # each worker wakes only its customers
        assert record.key == str(tick["partition"]).encode()
        assert tick["interval_ms"] == 500
        at_ms = int(tick["at"].timestamp() * 1000)
        assert at_ms % 500 == 0
    everything = drain(settings.kafka.bootstrap_servers, settings.kafka.topic(TICKS), settle=1)
    ids = [codec.decode(schemas.TICK, r.value)["tick_id"] for r in everything]
    assert len(ids) == len(set(ids))  # no tick emitted twice by one scheduler


async def test_a_broker_unreachable_at_start_leaves_no_producer_open() -> None:
    """The scheduler stops; its producer is closed with it, not left to the garbage
    collector (an unclosed AIOKafkaProducer)."""
    nobody = KafkaSettings(bootstrap_servers=f"127.0.0.1:{free_port()}")
    scheduler = Scheduler(nobody, SchedulerSettings(), "test", AvroCodec())
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        with pytest.raises(KafkaConnectionError):
            await scheduler.run(asyncio.Event())
        gc.collect()
    assert [w for w in seen if issubclass(w.category, ResourceWarning)] == []
