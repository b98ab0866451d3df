"""Evaluator and scheduler whose broker dies: not ready within seconds (and
``signalbox_broker_up`` 0), ready after."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import replace
from pathlib import Path

import httpx
import pytest

from signalbox.common.settings import KafkaSettings, Settings
from signalbox.common.topics import apply, catalogue
from signalbox.testing import free_port, service_env
from signalbox.testing.processes import ServiceProcess
from tests.support.metrics import scrape, value
from tests.support.private_broker import PrivateBroker, until

pytestmark = pytest.mark.kafka


@contextmanager
def running(name: str, env: dict[str, str], tmp_path: Path,
            port: int) -> Iterator[ServiceProcess]:
    (tmp_path / name).mkdir()
    proc = ServiceProcess(name, env, tmp_path / name, port).start()
    try:
        proc.wait_ready()
        yield proc
    finally:
        assert proc.stop() == 0, proc.tail()


def test_evaluator_and_scheduler_readiness_follow_the_broker(
        broker: PrivateBroker, settings: Settings, tmp_path: Path) -> None:
    own = replace(settings, kafka=replace(settings.kafka, bootstrap_servers=broker.bootstrap))
    apply(KafkaSettings(bootstrap_servers=broker.bootstrap), catalogue(own.kafka).values())
    evaluator_port, scheduler_port = free_port(), free_port()
    env = service_env(own, EVALUATOR_PORT=str(evaluator_port),
                      EVALUATOR_ADMIN_PORT=str(free_port()), SCHEDULER_PORT=str(scheduler_port),
                      EVALUATOR_DATA_DIR=str(tmp_path / "data"))
    with ExitStack() as stack:
        services = [stack.enter_context(running(name, env, tmp_path, port))
                    for name, port in (("evaluator", evaluator_port),
                                       ("scheduler", scheduler_port))]
        broker.kill()
        for proc in services:
            assert until(proc.url("/readyz"), 503, 15) < 10
            failing = httpx.get(proc.url("/readyz"), timeout=2).json()["failing"]
            assert any("no answer from the broker" in reason for reason in failing.values()), \
                failing
            assert value(scrape(proc.url("/metrics")), "signalbox_broker_up") == 0
        broker.script("start")
        for proc in services:
            until(proc.url("/readyz"), 200, 90)
            assert value(scrape(proc.url("/metrics")), "signalbox_broker_up") == 1

