"""Shared fixtures. Integration tests run against a real Kafka broker:

* ``KAFKA_BOOTSTRAP_SERVERS`` set: that cluster is used as it is;
* otherwise the project's broker (tools/kafka/kafka.sh) is started on port
  19092 with its own data dir, and stopped at the end if this session started it;
* ``SIGNALBOX_TEST_KAFKA=testcontainers``: a testcontainers Kafka, where a Docker
  engine runs.

Tests of the optional registry mode use ``SCHEMA_REGISTRY_URL`` when set, otherwise
Apicurio Registry (tools/registry/registry.sh) on port 18085.

Each test gets its own topic prefix, so tests never see each other's records.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

from signalbox.common.settings import KafkaSettings, Settings
from signalbox.common.topics import apply, catalogue, wait_for_broker

REPO = Path(__file__).resolve().parent.parent
TEST_KAFKA_PORT = os.environ.get("SIGNALBOX_TEST_KAFKA_PORT", "19092")
TEST_REGISTRY_PORT = os.environ.get("SIGNALBOX_TEST_REGISTRY_PORT", "18085")


def _tool(script: str, command: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(REPO / "tools" / script), command], env={**os.environ, **env},
                          text=True, capture_output=True, check=False)


def _kafka_script(command: str) -> subprocess.CompletedProcess[str]:
    return _tool("kafka/kafka.sh", command, KAFKA_PORT=TEST_KAFKA_PORT,
                 KAFKA_HOME_DIR=str(REPO / ".run" / "kafka-test"))


def _registry_script(command: str) -> subprocess.CompletedProcess[str]:
    return _tool("registry/registry.sh", command, REGISTRY_PORT=TEST_REGISTRY_PORT,
                 REGISTRY_HOME_DIR=str(REPO / ".run" / "registry-test"))


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    given = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if given:
        wait_for_broker(KafkaSettings(bootstrap_servers=given))
        yield given
        return
    if os.environ.get("SIGNALBOX_TEST_KAFKA") == "testcontainers":
        from testcontainers.kafka import KafkaContainer

        with KafkaContainer().with_kraft() as container:
            yield container.get_bootstrap_server()
        return
    already = _kafka_script("status").returncode == 0
    started = _kafka_script("start")
    if started.returncode != 0:
        pytest.fail(f"could not start the test broker:\n{started.stderr}")
    bootstrap = f"127.0.0.1:{TEST_KAFKA_PORT}"
    wait_for_broker(KafkaSettings(bootstrap_servers=bootstrap))
    yield bootstrap
    if not already and not os.environ.get("SIGNALBOX_KEEP_KAFKA"):
        _kafka_script("stop")


@pytest.fixture(scope="session")
def schema_registry_url() -> Iterator[str]:
    """A Confluent-compatible registry: ``SCHEMA_REGISTRY_URL``, or Apicurio started here."""
    given = os.environ.get("SCHEMA_REGISTRY_URL")
    if given:
        yield given
        return
    already = _registry_script("status").returncode == 0
    started = _registry_script("start")
    if started.returncode != 0:
        pytest.fail(f"could not start the test schema registry:\n{started.stderr}")
    yield f"http://127.0.0.1:{TEST_REGISTRY_PORT}/apis/ccompat/v7"
    if not already:
        _registry_script("stop")


@pytest.fixture
def settings(kafka_bootstrap: str) -> Iterator[Settings]:
    """Settings for one test: its own topic prefix and topics, deleted afterwards."""
    prefix = f"t{uuid.uuid4().hex[:10]}."
    base = Settings.from_env({})
    s = replace(
        base,
        kafka=KafkaSettings(bootstrap_servers=kafka_bootstrap, topic_prefix=prefix,
                            partitions=2, replication_factor=1),
        log_format="console",
        tick_interval_s=1.0,
    )
    apply(s.kafka, catalogue(s).values())
    yield s
    _delete_prefixed(kafka_bootstrap, prefix)


def _delete_prefixed(bootstrap: str, prefix: str) -> None:
    """Remove every topic of one test, including those Faust or a test created itself."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    names = [t for t in admin.list_topics(timeout=10).topics if t.startswith(prefix)]
    if names:
        for fut in admin.delete_topics(names, operation_timeout=30).values():
            with contextlib.suppress(KafkaException):
                fut.result()
