"""Shared fixtures. Integration tests run against a real Kafka broker:

* ``KAFKA_BOOTSTRAP_SERVERS`` set: that cluster is used as it is;
* otherwise the project's broker (tools/kafka/kafka.sh) is started on port
  19092 with its own data dir, and stopped at the end if this session started it;
* ``SIGNALBOX_TEST_KAFKA=testcontainers``: a testcontainers Kafka, where a Docker
  engine runs.

The project's test broker also has a SASL_PLAINTEXT listener on port 19094 (PLAIN and
SCRAM-SHA-256, user ``signalbox``) for the ``sasl_settings`` tests; they are skipped
on a broker given from outside.

Tests of the optional registry mode use ``SCHEMA_REGISTRY_URL`` when set, otherwise
Apicurio Registry (tools/registry/registry.sh) on port 18085.

Each test gets its own topic prefix, so tests never see each other's records.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import uuid
from collections.abc import Callable, Iterator
from dataclasses import replace

import pytest
from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

from signalbox.common.settings import KafkaSettings, LoggingSettings, SchedulerSettings, Settings
from signalbox.common.topics import apply, catalogue, wait_for_broker
from signalbox.testing.broker import (
    REPO,
    SASL_PASSWORD,
    SASL_USER,
    TEST_KAFKA_PORT,
    TEST_KAFKA_SASL_PORT,
    kafka_script,
)
from signalbox.testing.fakes.twilio import FakeTwilio
from signalbox.testing.smtp import SmtpSink

#: The ``broker`` fixture: a broker of a test's own, to kill.
pytest_plugins = ["tests.support.private_broker"]

#: Fixtures that reach a broker or a registry, and the marker a test using one gets
#: (through any fixture that depends on it): `make unit` deselects both markers.
NEEDS_MARKER = {"kafka_bootstrap": "kafka", "broker": "kafka", "schema_registry_url": "registry"}


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects by marker
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark each test by the fixtures it uses, so a marker cannot be forgotten."""
    for item in items:
        used = getattr(item, "fixturenames", ())
        for fixture, marker in NEEDS_MARKER.items():
            if fixture in used:
                item.add_marker(marker)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """No service process outlives the session: a leftover is killed and named."""
    from signalbox.testing.processes import kill_leftovers

    left = kill_leftovers()
    if left:
        session.config.get_terminal_writer().line(
            f"killed service processes a test left running: {', '.join(left)}", red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


TEST_REGISTRY_PORT = os.environ.get("SIGNALBOX_TEST_REGISTRY_PORT", "18085")


def _registry_script(command: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "REGISTRY_PORT": TEST_REGISTRY_PORT,
           "REGISTRY_HOME_DIR": str(REPO / ".run" / "registry-test")}
    return subprocess.run([str(REPO / "tools" / "registry" / "registry.sh"), command], env=env,
                          text=True, capture_output=True, check=False)


#: What the pytest-xdist controller started, to stop when the run ends.
_CONTROLLER_STARTED: list[Callable[[], object]] = []


def pytest_configure(config: pytest.Config) -> None:
    """Under pytest-xdist (``-n``), the controller starts the test broker and registry once,
    before the workers exist. Each worker then finds them running and leaves them alone,
    instead of two workers racing to start one broker and the first to finish stopping
    it under the other."""
    if hasattr(config, "workerinput") or not getattr(config.option, "numprocesses", None):
        return
    if not _selects_marker(config, "kafka", "registry"):
        return  # `make unit` on two workers: nothing selected needs a broker or a JVM
    if not os.environ.get("KAFKA_BOOTSTRAP_SERVERS") \
            and os.environ.get("SIGNALBOX_TEST_KAFKA") != "testcontainers" \
            and kafka_script("status").returncode != 0:
        started = kafka_script("start")
        if started.returncode != 0:
            raise pytest.UsageError(f"could not start the test broker:\n{started.stderr}")
        if not os.environ.get("SIGNALBOX_KEEP_KAFKA"):
            _CONTROLLER_STARTED.append(lambda: kafka_script("stop"))
    if not os.environ.get("SCHEMA_REGISTRY_URL") and _registry_script("status").returncode != 0:
        started = _registry_script("start")
        if started.returncode != 0:
            raise pytest.UsageError(f"could not start the test schema registry:\n"
                                    f"{started.stderr}")
        _CONTROLLER_STARTED.append(lambda: _registry_script("stop"))


def _selects_marker(config: pytest.Config, *markers: str) -> bool:
    """Whether ``-m`` lets a test with any of ``markers`` run (no ``-m``: it does)."""
    from _pytest.mark.expression import Expression  # pytest's own -m parser

    given = config.option.markexpr
    if not given:
        return True
    expression = Expression.compile(given)
    # a test may carry several of the markers: try every combination of them
    for n in range(1, 2 ** len(markers)):
        carried = {marker for i, marker in enumerate(markers) if n >> i & 1}
        if expression.evaluate(lambda name, /, **_: name in carried):  # noqa: B023 (called here)
            return True
    return False


def pytest_unconfigure(config: pytest.Config) -> None:
    while _CONTROLLER_STARTED:
        _CONTROLLER_STARTED.pop()()


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
    already = kafka_script("status").returncode == 0
    started = kafka_script("start")
    if started.returncode != 0:
        pytest.fail(f"could not start the test broker:\n{started.stderr}")
    bootstrap = f"127.0.0.1:{TEST_KAFKA_PORT}"
    wait_for_broker(KafkaSettings(bootstrap_servers=bootstrap))
    yield bootstrap
    if not already and not os.environ.get("SIGNALBOX_KEEP_KAFKA"):
        kafka_script("stop")


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


@pytest.fixture(scope="session")
def kafka_sasl_bootstrap(kafka_bootstrap: str) -> str:
    """The test broker's SASL_PLAINTEXT listener (PLAIN and SCRAM-SHA-256)."""
    if os.environ.get("KAFKA_BOOTSTRAP_SERVERS") or \
            os.environ.get("SIGNALBOX_TEST_KAFKA") == "testcontainers":
        pytest.skip("SASL tests need the project's test broker and its SASL listener")
    try:
        socket.create_connection(("127.0.0.1", int(TEST_KAFKA_SASL_PORT)), timeout=5).close()
    except OSError:
        pytest.fail(f"the test broker has no SASL listener on {TEST_KAFKA_SASL_PORT}: it was "
                    f"started before it had one. Stop and wipe it: KAFKA_PORT={TEST_KAFKA_PORT} "
                    f"KAFKA_HOME_DIR=.run/kafka-test tools/kafka/kafka.sh stop; "
                    f"rm -rf .run/kafka-test")
    return f"127.0.0.1:{TEST_KAFKA_SASL_PORT}"


def _test_settings(kafka: KafkaSettings) -> Settings:
    """Settings for one test: ``kafka``'s cluster and security, and a topic prefix of its own."""
    return replace(
        Settings.from_env({}),
        kafka=replace(kafka, topic_prefix=f"t{uuid.uuid4().hex[:10]}.", partitions=2,
                      replication_factor=1),
        logging=LoggingSettings(format="console"),
        scheduler=SchedulerSettings(tick_interval_s=1.0),
    )


@pytest.fixture
def offline_settings() -> Settings:
    """Settings for a test that needs no broker: the bootstrap names a port nothing
    listens on, so a test that reaches Kafka after all fails at once."""
    return _test_settings(KafkaSettings(bootstrap_servers="127.0.0.1:9"))


@pytest.fixture
def settings(kafka_bootstrap: str) -> Iterator[Settings]:
    """Settings for one test: its own topic prefix and topics, deleted afterwards."""
    s = _test_settings(KafkaSettings(bootstrap_servers=kafka_bootstrap))
    apply(s.kafka, catalogue(s.kafka).values())
    yield s
    _delete_prefixed(kafka_bootstrap, s.kafka.topic_prefix)


@pytest.fixture
def sasl_settings(kafka_bootstrap: str, kafka_sasl_bootstrap: str) -> Iterator[Settings]:
    """Like ``settings``, over SASL_PLAINTEXT with mechanism PLAIN, and with no topics yet.

    Topics are deleted afterwards over the plaintext listener of the same broker.
    """
    s = _test_settings(KafkaSettings(
        bootstrap_servers=kafka_sasl_bootstrap, security_protocol="SASL_PLAINTEXT",
        sasl_mechanism="PLAIN", sasl_username=SASL_USER, sasl_password=SASL_PASSWORD))
    yield s
    _delete_prefixed(kafka_bootstrap, s.kafka.topic_prefix)


def _delete_prefixed(bootstrap: str, prefix: str) -> None:
    """Remove every topic of one test, including those Faust or a test created itself."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    names = [t for t in admin.list_topics(timeout=10).topics if t.startswith(prefix)]
    if names:
        for fut in admin.delete_topics(names, operation_timeout=30).values():
            with contextlib.suppress(KafkaException):
                fut.result()


@pytest.fixture
def smtp() -> Iterator[SmtpSink]:
    """A real SMTP server (aiosmtpd) on a free port that keeps what it receives."""
    with SmtpSink() as sink:
        yield sink


@pytest.fixture
def twilio() -> Iterator[FakeTwilio]:
    """A fake Twilio Messages API on a free port (the SMS channel's provider)."""
    with FakeTwilio() as fake:
        yield fake
