"""The four services as processes around one SMTP sink: the pipeline operators run."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

from signalbox.common.settings import Settings
from signalbox.testing import free_port, service_env
from signalbox.testing.processes import ServiceProcess
from signalbox.testing.smtp import SmtpSink

SERVICES = ("ingest", "evaluator", "dispatcher", "scheduler")


@dataclass
class Pipeline:
    settings: Settings
    smtp: SmtpSink
    services: dict[str, ServiceProcess]

    @property
    def ingest_url(self) -> str:
        return self.services["ingest"].url("/v1/events")

    def stop(self) -> dict[str, int]:
        """SIGTERM every service; their exit codes."""
        return {name: proc.stop() for name, proc in self.services.items()}


@contextmanager
def pipeline(settings: Settings, log_dir: Path, **extra_env: str) -> Iterator[Pipeline]:
    with ExitStack() as stack:
        smtp = stack.enter_context(SmtpSink())
        ports = {name: free_port() for name in SERVICES}
        # Every port free, the evaluator's admin port included: two pipelines may run
        # side by side on one machine (the admin API's default 8084 would clash).
        env = service_env(settings, **{
            "SMTP_PORT": str(smtp.port), "EVALUATOR_DATA_DIR": str(log_dir / "evaluator"),
            "EVALUATOR_ADMIN_PORT": str(free_port()),
            **{f"{name.upper()}_PORT": str(port) for name, port in ports.items()}, **extra_env})
        procs = {name: ServiceProcess(name, env, log_dir, ports[name]) for name in SERVICES}
        for proc in procs.values():
            proc.start()
            stack.callback(proc.kill)
        for proc in procs.values():
            proc.wait_ready()
        yield Pipeline(settings, smtp, procs)
