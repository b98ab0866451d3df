"""Run signalbox services as real processes, the way operators run them."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

from signalbox.testing import eventually_sync, http_answer

#: Every service process a test started, so the session can make sure none outlives it.
STARTED: list[ServiceProcess] = []


def kill_leftovers() -> list[str]:
    """Kill service processes still running (a test that lost track of one); their names."""
    left = [p for p in STARTED if p.proc is not None and p.proc.poll() is None]
    for p in left:
        p.kill()
    STARTED.clear()
    return [f"{p.name} ({p.log_path})" for p in left]


class ServiceProcess:
    def __init__(self, name: str, env: dict[str, str], log_dir: Path, port: int) -> None:
        self.name, self.env, self.port = name, env, port
        self.log_path = log_dir / f"{name}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> ServiceProcess:
        # The child gets its own copy of the descriptor: ours is closed at once, not
        # left to the garbage collector (a ResourceWarning per process otherwise).
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen([sys.executable, "-m", "signalbox", self.name],
                                         env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL)
        STARTED.append(self)
        return self

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def wait_ready(self, timeout: float = 90.0) -> None:
        def ready() -> tuple[int | None, str]:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise AssertionError(f"{self.name} exited with {self.proc.returncode}:\n"
                                     f"{self.tail()}")
            return http_answer(self.url("/readyz"))

        status, last = eventually_sync(ready, lambda answer: answer[0] == 200,
                                       within_s=timeout, every_s=0.25)
        assert status == 200, f"{self.name} not ready in {timeout}s ({last}):\n{self.tail()}"

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM and wait: the exit code of a clean shutdown."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError(f"{self.name} ignored SIGTERM for {timeout}s:\n"
                                     f"{self.tail()}") from None
        return self.proc.returncode

    def kill(self) -> None:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""
