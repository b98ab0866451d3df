"""The opt-out list: who must not be contacted on which channel.

Stored in the compacted ``actions.suppressions`` topic (one partition, keyed by
``<channel>:<kind>:<subject>``), read whole at start and then followed, so an
opt-out taken by any dispatcher replica (unsubscribe link, SMS STOP) reaches all
of them. A replica is not ready until it has read the topic to its end.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable

import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from signalbox.common.clock import Clock, SystemClock
from signalbox.common.codec import AvroCodec, DecodeError
from signalbox.common.kafka import aiokafka_options
from signalbox.common.settings import KafkaSettings

log = structlog.get_logger(__name__)
SUPPRESSION = "signalbox.Suppression"
ANY_CHANNEL = "*"


def suppression_key(channel: str, kind: str, subject: str) -> str:
    return f"{channel}:{kind}:{subject}"


class Suppressions:
    """The in-memory list; :class:`KafkaSuppressions` keeps it in step with Kafka."""

    def __init__(self) -> None:
        self._reasons: dict[str, str] = {}
        self.loaded = asyncio.Event()

    def apply(self, channel: str, kind: str, subject: str, suppressed: bool,
              reason: str) -> None:
        key = suppression_key(channel, kind, subject)
        if suppressed:
            self._reasons[key] = reason or "opted out"
        else:
            self._reasons.pop(key, None)

    def reason(self, channel: str, customer_id: str, addresses: Iterable[str]) -> str | None:
        """Why this customer or one of these addresses must not get this channel, or None."""
        for ch in (channel, ANY_CHANNEL):
            found = self._reasons.get(suppression_key(ch, "customer", customer_id))
            if found is not None:
                return found
            for address in addresses:
                found = self._reasons.get(suppression_key(ch, "address", address))
                if found is not None:
                    return found
        return None

    async def record(self, channel: str, kind: str, subject: str, suppressed: bool,
                     reason: str) -> None:
        """Take (or withdraw) an opt-out: in memory only, for tests of the policy."""
        self.apply(channel, kind, subject, suppressed, reason)

    async def follow(self, stop: asyncio.Event) -> None:
        """Nothing to read for the in-memory list."""
        self.loaded.set()


class KafkaSuppressions(Suppressions):
    def __init__(self, kafka: KafkaSettings, topic: str, codec: AvroCodec,
                 clock: Clock | None = None) -> None:
        super().__init__()
        self._kafka, self._topic, self._codec = kafka, topic, codec
        self._clock: Clock = clock or SystemClock()  # the dispatcher's: one time for `at`
        self._producer: AIOKafkaProducer | None = None

    async def record(self, channel: str, kind: str, subject: str, suppressed: bool,
                     reason: str) -> None:
        """Durable (acks=all) before it returns, then applied here at once."""
        assert self._producer is not None, "KafkaSuppressions.follow is not running"
        value = self._codec.encode(SUPPRESSION, {
            "channel": channel, "kind": kind, "subject": subject, "suppressed": suppressed,
            "reason": reason, "at": self._clock.now_ms()})
        sent = await self._producer.send(
            self._topic, key=suppression_key(channel, kind, subject).encode(), value=value)
        await sent
        self.apply(channel, kind, subject, suppressed, reason)
        log.info("suppression_recorded", channel=channel, kind=kind, suppressed=suppressed,
                 reason=reason)

    async def follow(self, stop: asyncio.Event) -> None:
        """Read the topic to its end (then ``loaded`` is set) and keep following it."""
        options = aiokafka_options(self._kafka)
        self._producer = AIOKafkaProducer(**options, enable_idempotence=True, acks="all")
        consumer = AIOKafkaConsumer(**options, enable_auto_commit=False, group_id=None,
                                    isolation_level="read_committed")
        await self._producer.start()
        await consumer.start()
        try:
            tp = TopicPartition(self._topic, 0)
            consumer.assign([tp])
            await consumer.seek_to_beginning(tp)
            end = (await consumer.end_offsets([tp]))[tp]
            if end == 0:
                self.loaded.set()
            while not stop.is_set():
                batch = await consumer.getmany(tp, timeout_ms=500)
                for record in batch.get(tp, []):
                    self._apply_record(record.value)
                if not self.loaded.is_set() and await consumer.position(tp) >= end:
                    self.loaded.set()
                    log.info("suppressions_loaded", entries=len(self._reasons))
        finally:
            with contextlib.suppress(Exception):
                await consumer.stop()
            await self._producer.stop()

    def _apply_record(self, value: bytes | None) -> None:
        if value is None:
            return
        try:
            s = self._codec.decode(SUPPRESSION, value)
        except DecodeError as exc:
            log.error("suppression_unreadable", reason=exc.why)
            return
        self.apply(s["channel"], s["kind"], s["subject"], s["suppressed"], s["reason"])
