"""Processes, SMTP sink and load of the fault tests; the counts printed at the end."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from signalbox.common.settings import Settings
from signalbox.common.topics import EVENTS_BILLING
from signalbox.testing import free_port, service_env
from signalbox.testing.processes import ServiceProcess
from signalbox.testing.smtp import SmtpSink
from tests.faults.load import Load, PacedProducer

#: One line per fault test that counted, for the session's summary.
COUNTS: list[str] = []


def report(line: str) -> None:
    """Keep a test's counts for the summary at the end of the session (and print them)."""
    COUNTS.append(line)
    print(line)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if COUNTS:
        terminalreporter.section("fault counts per command id")
        for line in COUNTS:
            terminalreporter.line(line)


@dataclass
class Rig:
    """Starts evaluators and dispatchers, each a process with a log of its own, all
    around one SMTP sink. ``settings`` may point at a broker of the test's own."""

    settings: Settings
    smtp: SmtpSink
    log_dir: Path
    started: list[ServiceProcess] = field(default_factory=list)

    def _start(self, service: str, name: str, **env: str) -> ServiceProcess:
        port = free_port()
        proc = ServiceProcess(service, service_env(
            self.settings, SMTP_PORT=str(self.smtp.port), SMTP_TIMEOUT_SECONDS="10",
            **{f"{service.upper()}_PORT": str(port)}, **env), self.log_dir, port)
        proc.log_path = self.log_dir / f"{service}-{name}.log"
        self.started.append(proc.start())
        return proc

    def evaluator(self, name: str, data: str, **env: str) -> ServiceProcess:
        """An evaluator with the data directory ``data`` and static group membership as
        name ``data``, as a StatefulSet pod: restarted, it reopens the same store and
        takes its partitions back without waiting for its old session to expire."""
        return self._start("evaluator", name, **{
            "EVALUATOR_ADMIN_PORT": str(free_port()),
            "EVALUATOR_DATA_DIR": str(self.log_dir / f"evaluator-{data}"),
            "CONSUMER_GROUP_INSTANCE_ID": f"evaluator-{data}",
            "SIGNALBOX_INSTANCE_ID": f"evaluator-{data}", **env})

    def dispatcher(self, name: str) -> ServiceProcess:
        """A dispatcher as a Deployment pod: a replacement has a new instance id."""
        return self._start("dispatcher", name, SIGNALBOX_INSTANCE_ID=f"dispatcher-{name}")

    def pipeline(self) -> tuple[ServiceProcess, ServiceProcess]:
        """``(dispatcher, evaluator)``, both ready (no ingest: events are produced as
        Avro straight to events.billing; no scheduler: no ticks, no timed commands)."""
        dispatcher, evaluator = self.dispatcher("a"), self.evaluator("a", data="0")
        dispatcher.wait_ready()
        evaluator.wait_ready()
        return dispatcher, evaluator

    def produce(self, load: Load, rate: float) -> PacedProducer:
        """Start writing ``load`` to events.billing, ``rate`` events a second."""
        k = self.settings.kafka
        return PacedProducer(k.bootstrap_servers, k.topic(EVENTS_BILLING), load, rate).start()


def rig_for(settings: Settings, smtp: SmtpSink, tmp_path: Path) -> Iterator[Rig]:
    rig = Rig(settings, smtp, tmp_path)
    try:
        yield rig
    finally:
        for proc in rig.started:
            proc.kill()


@pytest.fixture
def rig(settings: Settings, smtp: SmtpSink, tmp_path: Path) -> Iterator[Rig]:
    yield from rig_for(settings, smtp, tmp_path)
