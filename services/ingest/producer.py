"""Where accepted events go: the :class:`EventProducer` interface and its Kafka implementation.

The HTTP layer only needs "send these, tell me when all are acknowledged" and
"are you ready"; keeping that behind a Protocol keeps aiokafka at the edge.
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Protocol

import structlog
from aiokafka import AIOKafkaProducer
from aiokafka.client import AIOKafkaClient
from aiokafka.errors import KafkaError

from signalbox.common.errors import SignalboxError
from signalbox.common.kafka import aiokafka_options
from signalbox.common.settings import KafkaSettings

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Message:
    """One encoded record for one physical topic."""

    topic: str
    key: bytes
    value: bytes
    headers: tuple[tuple[str, bytes], ...] = ()


class ProduceError(SignalboxError, RuntimeError):
    """Kafka did not acknowledge every message; the caller should retry the whole batch."""

    what = "Kafka write"

    def __init__(self, reason: str, kind: str) -> None:
        super().__init__(reason)
        self.kind = kind


class EventProducer(Protocol):
    async def send_all(self, messages: Sequence[Message]) -> None:
        """Return once every message is acknowledged; raise :class:`ProduceError` if not."""

    async def check(self, topics: Collection[str]) -> str | None:
        """``None`` when messages to ``topics`` can be sent now, else a short reason."""


class KafkaEventProducer:
    """An idempotent ``acks=all`` AIOKafkaProducer with a bound on how long a send may take.

    Idempotence keeps aiokafka's own retries from duplicating or reordering a
    customer's events within a partition; the time bound turns a broker outage
    into a prompt 503 instead of a hung request.
    """

    def __init__(
        self,
        kafka: KafkaSettings,
        *,
        client_id: str = "signalbox-ingest",
        request_timeout_ms: int = 10_000,
        send_timeout_s: float = 15.0,
        check_timeout_s: float = 5.0,
        max_request_size: int = 1_048_576,
    ) -> None:
        self._producer = AIOKafkaProducer(
            **aiokafka_options(kafka),
            client_id=client_id,
            acks="all",
            enable_idempotence=True,
            linger_ms=2,
            request_timeout_ms=request_timeout_ms,
            max_request_size=max_request_size,
        )
        self._send_timeout_s = send_timeout_s
        self._check_timeout_s = check_timeout_s
        self._started = False

    async def start(self) -> None:
        await self._producer.start()
        self._started = True

    @property
    def client(self) -> AIOKafkaClient:
        """The producer's cluster client (what :class:`BrokerWatch` probes with)."""
        return self._producer.client

    async def stop(self) -> None:
        """Flush what is buffered, then close the connections (safe to call twice)."""
        self._started = False
        await self._producer.stop()

    async def send_all(self, messages: Sequence[Message]) -> None:
        if not self._started:
            raise ProduceError("the Kafka producer is not running", "NotStarted")
        try:
            async with asyncio.timeout(self._send_timeout_s):
                pending = []
                for m in messages:
                    ack = await self._producer.send(m.topic, m.value, key=m.key,
                                                    headers=list(m.headers) or None)
                    ack.add_done_callback(_retrieve)  # no "never retrieved" noise if we bail
                    pending.append(ack)
                await asyncio.gather(*pending)
        except TimeoutError:
            raise ProduceError(f"Kafka did not acknowledge within {self._send_timeout_s}s",
                               "Timeout") from None
        except KafkaError as exc:
            raise ProduceError(f"Kafka refused the batch: {type(exc).__name__}: {exc}",
                               type(exc).__name__) from exc

    async def check(self, topics: Collection[str]) -> str | None:
        if not self._started:
            return "the Kafka producer is not running"
        try:
            async with asyncio.timeout(self._check_timeout_s):
                metadata = await self._producer.client.fetch_all_metadata()
        except (TimeoutError, KafkaError) as exc:
            return f"Kafka did not answer a metadata request: {type(exc).__name__}: {exc}"
        missing = sorted(set(topics) - metadata.topics())
        return f"topics missing on the cluster: {', '.join(missing)}" if missing else None


def _retrieve(ack: asyncio.Future[object]) -> None:
    if not ack.cancelled():
        ack.exception()
