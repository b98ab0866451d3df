"""``signalbox scheduler``: emit the due tick on every partition of the ticks topic."""

from __future__ import annotations

import asyncio
import contextlib

import structlog
from aiokafka import AIOKafkaProducer

from signalbox.common import runtime, schemas
from signalbox.common.brokerwatch import BrokerWatch
from signalbox.common.clock import now_ms
from signalbox.common.codec import AvroCodec
from signalbox.common.kafka import aiokafka_options
from signalbox.common.registry import codec_for
from signalbox.common.settings import KafkaSettings, SchedulerSettings, Settings
from signalbox.common.topics import TICKS
from signalbox.scheduler.metrics import LAST_TICK, TICKS_SENT
from signalbox.scheduler.ticks import aligned, next_due, tick_records

log = structlog.get_logger(__name__)


class Scheduler:
    """Ticks every partition of the ticks topic on ``kafka`` once per interval; a tick
    names ``instance_id``, the scheduler that sent it."""

    def __init__(self, kafka: KafkaSettings, scheduler: SchedulerSettings, instance_id: str,
                 codec: AvroCodec) -> None:
        self.kafka, self.instance_id, self.codec = kafka, instance_id, codec
        self.topic = kafka.topic(TICKS)
        self.interval_ms = max(1, int(scheduler.tick_interval_s * 1000))
        self.last_sent: int | None = None
        self.broker = BrokerWatch(self.topic)

    async def ready(self) -> str | None:
        return None if self.last_sent is not None else "no tick sent yet"

    async def broker_ready(self) -> str | None:
        return self.broker.problem()

    async def emit(self, producer: AIOKafkaProducer, at: int) -> int:
        partitions = await producer.partitions_for(self.topic)
        if not partitions:
            raise RuntimeError(f"topic {self.topic} has no partitions (run signalbox topics apply)")
        futures = []
        for record in tick_records(at, len(partitions), self.interval_ms,
                                   self.instance_id):
            futures.append(await producer.send(
                self.topic, key=str(record["partition"]).encode(),
                value=self.codec.encode(schemas.TICK, record), partition=record["partition"]))
        await asyncio.gather(*futures)
        TICKS_SENT.inc(len(futures))
        LAST_TICK.set(at / 1000)
        self.last_sent = at
        return len(futures)

    async def run(self, stop: asyncio.Event) -> None:
        producer = AIOKafkaProducer(**aiokafka_options(self.kafka),
                                    acks="all", enable_idempotence=True)
        try:
            await producer.start()
        except BaseException:
            await producer.stop()  # a broker unreachable at start: closed, not collected
            raise
        watching = asyncio.create_task(self.broker.run(producer.client, stop))
        try:
            while not stop.is_set():
                at = aligned(now_ms(), self.interval_ms)
                if self.last_sent is None or at > self.last_sent:
                    sent = await self.emit(producer, at)
                    log.debug("ticks_sent", at=at, partitions=sent)
                wait_s = max(0.0, (next_due(at, self.interval_ms) - now_ms()) / 1000)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=wait_s)
        finally:
            watching.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watching
            await producer.stop()
            log.info("scheduler_stopped", last_tick=self.last_sent)


def main(settings: Settings) -> None:
    runtime.prepare("scheduler", settings)
    scheduler = Scheduler(settings.kafka, settings.scheduler, settings.instance_id,
                          codec_for(settings.registry))
    log.info("scheduler_started", interval_s=settings.scheduler.tick_interval_s,
             topic=scheduler.topic)
    runtime.run_with_ops(settings.bind_host, settings.scheduler.port,
                         {"kafka": scheduler.broker_ready, "ticks": scheduler.ready},
                         scheduler.run)
