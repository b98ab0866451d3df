"""Service processes restarted when they exit, as deployments run them.

docker compose (``restart: unless-stopped``) and Kubernetes (a pod's restart policy)
start a service again in place when it exits: same environment, same instance id,
same data. Here a thread does that for the processes a test hands it, and records
each exit, so the test can count what a deployment would see and report the exits.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import UTC, datetime

from signalbox.testing.processes import ServiceProcess


@dataclass(frozen=True)
class Exit:
    service: str  # the process's log file name
    code: int
    seen: datetime  # when the exit was noticed (at most 0.2 s after it), before the restart
    tail: str  # its last log lines


class Restarting:
    """``with Restarting(evaluator, dispatcher) as supervisor:``; ``supervisor.exits``."""

    def __init__(self, *procs: ServiceProcess) -> None:
        self.procs = procs
        self.exits: list[Exit] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="restarting", daemon=True)

    def _watch(self) -> None:
        while not self._stop.wait(0.2):
            for proc in self.procs:
                assert proc.proc is not None
                code = proc.proc.poll()
                if code is not None:
                    self.exits.append(Exit(proc.log_path.stem, code, datetime.now(UTC),
                                           proc.tail(15)))
                    proc.start()

    def __enter__(self) -> Restarting:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def summary(self) -> str:
        if not self.exits:
            return "no service exited"
        return ", ".join(f"{e.service} exited {e.code} and was restarted" for e in self.exits)
