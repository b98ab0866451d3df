"""Helpers for tests and benchmarks of signalbox (as ``structlog.testing`` is for structlog).

Shipped with the package so that tests/ and bench/ share one copy; production code
never imports this package. This module needs only signalbox's own dependencies; its
submodules are the real parts tests and benchmarks run against:

* :mod:`.processes`: the services as processes; :mod:`.pipeline`: all four around one
  SMTP sink; :mod:`.broker`: the project's test broker (tools/kafka/kafka.sh, from a
  checkout);
* :mod:`.smtp` and :mod:`.fakes`: an SMTP sink and fake providers (Twilio, HubSpot,
  REST, webhook receivers, FTP, SFTP). They need the ``dev`` extra (aiosmtpd,
  pyftpdlib, trustme);
* :mod:`.action_commands`: ActionCommand records as the evaluator writes them;
* :mod:`.evaluator_output`: an evaluator output that acknowledges at once (no broker).

Helpers only tests use (Kafka readers, metrics scrapes, a private broker) stay in
tests/support.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import socket
import time
from collections.abc import Awaitable, Callable, Collection, Sequence
from typing import Generic, TypeVar

import httpx

from signalbox.common.clock import FixedClock
from signalbox.common.settings import Settings
from signalbox.ingest.producer import Message, ProduceError

T = TypeVar("T")


class ManualClock(FixedClock):
    """A clock that moves only when told to: tests drive quiet hours, caps and breakers."""

    def advance(self, seconds: float) -> None:
        self._now_ms += int(seconds * 1000)
        self._mono += seconds

    def set(self, now_ms: int) -> None:
        self._mono += max(0, now_ms - self._now_ms) / 1000
        self._now_ms = now_ms


class InMemoryEventProducer:
    """An :class:`~signalbox.ingest.producer.EventProducer` that keeps what it is sent:
    ingest's HTTP layer (auth, validation, limits) tested without a broker."""

    def __init__(self, failure: ProduceError | None = None, problem: str | None = None) -> None:
        #: Every acknowledged message, in order.
        self.sent: list[Message] = []
        #: Raised by :meth:`send_all` instead of acknowledging (a broker refusing).
        self.failure = failure
        #: What :meth:`check` answers (``None``: ready).
        self.problem = problem

    async def send_all(self, messages: Sequence[Message]) -> None:
        if self.failure is not None:
            raise self.failure
        self.sent.extend(messages)

    async def check(self, topics: Collection[str]) -> str | None:
        return self.problem


class _Polling(Generic[T]):
    """When a poll of :func:`eventually` or :func:`eventually_sync` ends: the one rule
    both follow, so that only the waiting differs between them."""

    def __init__(self, done: Callable[[T], bool], within_s: float) -> None:
        self.done = done
        self.deadline = time.monotonic() + within_s

    def over(self, result: T) -> bool:
        """``result`` is the answer: it is done, or the time is up (the caller asserts)."""
        return self.done(result) or time.monotonic() > self.deadline


async def eventually(probe: Callable[[], Awaitable[T]], done: Callable[[T], bool] = bool,
                     *, within_s: float = 10.0, every_s: float = 0.1) -> T:
    """The first result of ``probe()`` that is ``done``, or the last one after ``within_s``.

    For state another task or process reaches in its own time (a topic in every broker's
    metadata, a keys file re-read): the caller asserts on what is returned, so a timeout
    fails showing what was last seen rather than a bare "timed out".
    """
    polling = _Polling(done, within_s)
    # Polling is the point (ASYNC110): what is awaited has no event to wait on.
    while not polling.over(result := await probe()):  # noqa: ASYNC110
        await asyncio.sleep(every_s)
    return result


def eventually_sync(probe: Callable[[], T], done: Callable[[T], bool] = bool,
                    *, within_s: float = 10.0, every_s: float = 0.1) -> T:
    """:func:`eventually` for synchronous code (a test driving service processes over
    HTTP, a thread of its own): same rule and answer, blocking between probes."""
    polling = _Polling(done, within_s)
    while not polling.over(result := probe()):
        time.sleep(every_s)
    return result


def http_answer(url: str, timeout_s: float = 2.0) -> tuple[int | None, str]:
    """``GET url``'s status and body, or ``None`` and why there was no answer (refused
    while the server starts, timed out): a probe for :func:`eventually_sync`."""
    try:
        response = httpx.get(url, timeout=timeout_s)
    except httpx.HTTPError as exc:
        return None, repr(exc)
    return response.status_code, response.text


def free_port() -> int:
    """A port for a server a test starts later.

    Chosen below the kernel's ephemeral range (32768-60999 by default): a port
    from ``bind(0)`` can be taken by any outgoing connection (a Kafka client,
    say) before the service binds it.
    """
    for _ in range(200):
        port = random.randrange(20_000, 32_000)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port between 20000 and 32000")


def service_env(settings: Settings, **extra: str) -> dict[str, str]:
    """Environment variables that reproduce ``settings`` in a child process."""
    k = settings.kafka
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": k.bootstrap_servers,
        "SIGNALBOX_TOPIC_PREFIX": k.topic_prefix,
        "SIGNALBOX_PARTITIONS": str(k.partitions),
        "SIGNALBOX_REPLICATION_FACTOR": str(k.replication_factor),
        "KAFKA_SECURITY_PROTOCOL": k.security_protocol,
        "KAFKA_SASL_MECHANISM": k.sasl_mechanism,
        "KAFKA_SASL_USERNAME": k.sasl_username,
        "KAFKA_SASL_PASSWORD": k.sasl_password,
        "KAFKA_SSL_CA_FILE": k.ssl_ca_file,
        "KAFKA_SSL_CERT_FILE": k.ssl_cert_file,
        "KAFKA_SSL_KEY_FILE": k.ssl_key_file,
        "LOG_FORMAT": "json",
        "TICK_INTERVAL_SECONDS": str(settings.scheduler.tick_interval_s),
        "SCHEMA_REGISTRY_URL": settings.registry.url,
        # Services bind to loopback; pipeline tests post without keys unless extra says so.
        "INGEST_AUTH": "none",
    }
    env.update(extra)
    return env


class InMemoryRegistry:
    """The two calls of a Confluent-compatible schema registry that signalbox makes,
    in memory: the transport of a :class:`~signalbox.common.registry.ConfluentRegistry`
    (``transport=registry.transport()``) for tests with no registry process (a JVM).

    ``fail_with`` answers every request with that HTTP status instead (a registry
    refusing or failing)."""

    def __init__(self) -> None:
        self.schemas: dict[int, str] = {}
        self.fail_with: int | None = None

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self._answer)

    def _answer(self, request: httpx.Request) -> httpx.Response:
        if self.fail_with is not None:
            return httpx.Response(self.fail_with, text="failing as told")
        # …/subjects/<record name>/versions and …/schemas/ids/<id>
        *_, first, second, last = ["", "", *request.url.path.rstrip("/").split("/")]
        if request.method == "POST" and (first, last) == ("subjects", "versions"):
            schema = str(json.loads(request.content)["schema"])
            known = [i for i, s in self.schemas.items() if s == schema]
            schema_id = known[0] if known else len(self.schemas) + 1
            self.schemas[schema_id] = schema
            return httpx.Response(200, json={"id": schema_id})
        if request.method == "GET" and (first, second) == ("schemas", "ids") and last.isdigit():
            found = self.schemas.get(int(last))
            if found is None:
                return httpx.Response(404, json={"error_code": 40403,
                                                 "message": "Schema not found"})
            return httpx.Response(200, json={"schema": found})
        return httpx.Response(404, json={"error_code": 404, "message": "no such route"})
