"""Consumer lag from the broker's committed and end offsets, for owned partitions only."""

from __future__ import annotations

import asyncio

import pytest
from aiokafka import TopicPartition
from confluent_kafka import Consumer
from confluent_kafka import TopicPartition as CTopicPartition
from prometheus_client import REGISTRY

from signalbox.common.lag import LagCollector, lag_of
from signalbox.common.settings import KafkaSettings, Settings
from signalbox.common.topics import ACTIONS_COMMANDS
from signalbox.testing import free_port
from tests.support.kafka import produce

LAG = "signalbox_consumer_lag_records"


def test_lag_counts_from_the_committed_offset_or_from_the_beginning() -> None:
    a, b, c = (TopicPartition("t", p) for p in range(3))
    assert lag_of({a: 2, b: -1}, {a: 5, b: 7, c: 4}, {b: 3, c: 1}) == {a: 3, b: 4, c: 3}
    assert lag_of({a: 9}, {a: 5}, {}) == {a: 0}  # a committed offset past a truncated end


def _commit(bootstrap: str, group: str, topic: str, partition: int, offset: int) -> None:
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group,
                  "enable.auto.commit": False})
    try:
        c.commit(offsets=[CTopicPartition(topic, partition, offset)], asynchronous=False)
    finally:
        c.close()


@pytest.mark.kafka
async def test_exported_for_owned_partitions_and_dropped_when_revoked(
        settings: Settings) -> None:
    bootstrap = settings.kafka.bootstrap_servers
    topic, group = settings.kafka.topic(ACTIONS_COMMANDS), settings.kafka.topic("lag-group")
    produce(bootstrap, topic, [(b"k", b"v")] * 5, partition=0)
    produce(bootstrap, topic, [(b"k", b"v")] * 3, partition=1)
    _commit(bootstrap, group, topic, 0, 2)  # partition 1: nothing committed yet
    owned = {TopicPartition(topic, 0), TopicPartition(topic, 1)}
    collector = LagCollector(settings.kafka, group, lambda: owned)

    def lag(partition: int) -> float | None:
        return REGISTRY.get_sample_value(LAG, {"group": group, "topic": topic,
                                               "partition": str(partition)})

    await collector.start()
    try:
        assert await collector.collect_once() == {TopicPartition(topic, 0): 3,
                                                  TopicPartition(topic, 1): 3}
        assert (lag(0), lag(1)) == (3, 3)
        _commit(bootstrap, group, topic, 1, 3)
        produce(bootstrap, topic, [(b"k", b"v")] * 4, partition=0)
        await collector.collect_once()
        assert (lag(0), lag(1)) == (7, 0)
        owned.discard(TopicPartition(topic, 0))  # revoked: its series goes
        await collector.collect_once()
        assert (lag(0), lag(1)) == (None, 0)
    finally:
        await collector.stop()
    assert lag(1) is None  # a stopped process exports no lag


async def test_a_broker_unreachable_at_start_neither_raises_nor_exports() -> None:
    """The collector runs beside the service: no broker means no lag, not a crash."""
    nobody = KafkaSettings(bootstrap_servers=f"127.0.0.1:{free_port()}")
    collector = LagCollector(nobody, "g", lambda: [TopicPartition("t", 0)],
                             interval_s=0.2, timeout_s=0.3)
    stop = asyncio.Event()
    running = asyncio.create_task(collector.run(stop))
    await asyncio.sleep(1.5)  # the thing under test: five intervals with no broker...
    assert not running.done()  # ...and still trying
    stop.set()
    await asyncio.wait_for(running, 10)  # ends, without raising
    assert REGISTRY.get_sample_value(LAG, {"group": "g", "topic": "t", "partition": "0"}) \
        is None
