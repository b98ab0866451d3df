"""signalbox against a SASL_PLAINTEXT listener: the test broker's second listener.

The services only get the SASL listener's address, and that listener advertises
itself, so every one of their connections authenticates. The tests read what the
services wrote through the plaintext listener of the same broker.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.errors import KafkaConnectionError

from signalbox.common import schemas
from signalbox.common.codec import AvroCodec
from signalbox.common.kafka import aiokafka_options
from signalbox.common.settings import Settings
from signalbox.common.topics import (
    ACTIONS_RESULTS,
    TICKS,
    KafkaRefused,
    apply,
    catalogue,
    wait_for_broker,
)
from signalbox.testing import free_port, service_env
from signalbox.testing.pipeline import pipeline
from signalbox.testing.processes import ServiceProcess
from tests.support.events import payment_failed
from tests.support.kafka import consume, end_offsets

pytestmark = pytest.mark.kafka
codec = AvroCodec()


def signalbox(*args: str, env: dict[str, str], timeout: float = 30) -> \
        subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "signalbox", *args], env=env, text=True,
                          capture_output=True, timeout=timeout, check=False)


def test_the_pipeline_runs_over_sasl(
        sasl_settings: Settings, kafka_bootstrap: str, tmp_path: Path) -> None:
    env = service_env(sasl_settings)
    applied = signalbox("topics", "apply", env=env)
    assert applied.returncode == 0, applied.stderr
    assert f"created {len(catalogue(sasl_settings.kafka))}:" in applied.stdout

    with pipeline(sasl_settings, tmp_path) as p:
        response = httpx.post(p.ingest_url, json=[payment_failed("evt-1", "cus-ada", contact=True)],
                              timeout=30)
        assert response.status_code == 202, response.text
        assert len(p.smtp.wait_for(2)) == 2  # customer email and finance alert
        k = sasl_settings.kafka
        results = [codec.decode(schemas.ACTION_RESULT, r.value)
                   for r in consume(kafka_bootstrap, k.topic(ACTIONS_RESULTS), 2)]
        assert [r["status"] for r in results] == ["delivered", "delivered"]
        ticks = end_offsets(kafka_bootstrap, k.topic(TICKS), k.partitions)  # the scheduler's
        assert all(ticks.values()), ticks
        exits = p.stop()
    assert exits == {"ingest": 0, "evaluator": 0, "dispatcher": 0, "scheduler": 0}
    for name, proc in p.services.items():
        assert k.sasl_password not in proc.log_path.read_text(), f"{name} logged the password"


async def test_scram_sha_256_for_both_client_libraries(
        sasl_settings: Settings, kafka_bootstrap: str) -> None:
    k = replace(sasl_settings.kafka, sasl_mechanism="SCRAM-SHA-256")
    wait_for_broker(k, timeout_s=20)
    apply(k, catalogue(k).values())  # librdkafka
    topic = k.topic(TICKS)
    producer = AIOKafkaProducer(**aiokafka_options(k), acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(topic, b"over scram", key=b"k", partition=0)
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(topic, **aiokafka_options(k), auto_offset_reset="earliest")
    await consumer.start()
    try:
        record = await asyncio.wait_for(consumer.getone(), 20)
    finally:
        await consumer.stop()
    assert record.value == b"over scram"


def test_a_wrong_password_fails_fast_and_says_why(
        sasl_settings: Settings, tmp_path: Path) -> None:
    wrong = replace(sasl_settings, kafka=replace(sasl_settings.kafka,
                                                 sasl_password="not-the-password"))
    env = service_env(wrong)
    started = time.monotonic()
    applied = signalbox("topics", "apply", env=env, timeout=20)
    assert applied.returncode == 2
    assert applied.stderr.strip().splitlines()[-1].startswith(
        f"signalbox: configuration error: Kafka at {wrong.kafka.bootstrap_servers} "
        "(SASL_PLAINTEXT) refused KAFKA_SASL_USERNAME='signalbox' with "
        "KAFKA_SASL_MECHANISM=PLAIN: ")
    assert "Authentication failed" in applied.stderr

    port = free_port()
    scheduler = ServiceProcess("scheduler", {**env, "SCHEDULER_PORT": str(port)}, tmp_path,
                               port).start()
    try:
        assert scheduler.proc is not None
        assert scheduler.proc.wait(timeout=20) == 2
    finally:
        scheduler.kill()
    assert "refused KAFKA_SASL_USERNAME='signalbox'" in scheduler.tail()
    assert time.monotonic() - started < 20
    for output in (applied.stdout, applied.stderr, scheduler.tail(1000)):
        assert "not-the-password" not in output


async def test_aiokafka_does_not_wait_on_a_wrong_password(sasl_settings: Settings) -> None:
    k = replace(sasl_settings.kafka, sasl_password="not-the-password")
    with pytest.raises(KafkaRefused):
        wait_for_broker(k, timeout_s=20)
    producer = AIOKafkaProducer(**aiokafka_options(k))
    try:
        with pytest.raises(KafkaConnectionError):
            await asyncio.wait_for(producer.start(), 10)
    finally:
        await producer.stop()
