"""A broker of a test's own, to kill: the shared test broker must never stop.

tools/kafka/kafka.sh on free ports with its own data directory.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import pytest

from signalbox.testing import eventually_sync, free_port, http_answer
from signalbox.testing.broker import REPO


class PrivateBroker:
    def __init__(self, home: Path) -> None:
        self.home = home
        self.port = free_port()
        while not _free(self.port + 1):  # the controller listens on port + 1
            self.port = free_port()
        self.env = {**os.environ, "KAFKA_PORT": str(self.port), "KAFKA_HOME_DIR": str(home),
                    "KAFKA_HEAP": "256m"}
        self.env.pop("KAFKA_SASL_PORT", None)

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def script(self, command: str) -> None:
        done = subprocess.run([str(REPO / "tools" / "kafka" / "kafka.sh"), command],
                              env=self.env, capture_output=True, text=True, check=False)
        assert done.returncode == 0, f"kafka.sh {command}: {done.stderr}"

    def kill(self) -> None:
        """SIGKILL: the broker is gone at once, as in a crash or a lost machine.

        kafka.pid holds the shell that started the JVM: the JVM (its child) goes first.
        """
        shell = int((self.home / "kafka.pid").read_text())
        children = subprocess.run(["ps", "-o", "pid=", "--ppid", str(shell)],
                                  capture_output=True, text=True, check=False).stdout.split()
        for pid in [*map(int, children), shell]:
            os.kill(pid, signal.SIGKILL)
            assert not eventually_sync(partial(_alive, pid), lambda alive: not alive,
                                       every_s=0.05), f"pid {pid} outlived SIGKILL by 10 s"


def _free(port: int) -> bool:
    import socket

    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _alive(pid: int) -> bool:
    """Running (a zombie, dead but not yet reaped by its parent, counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError):  # gone before, or while, it was read
        return False


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[PrivateBroker]:
    b = PrivateBroker(tmp_path / "kafka")
    b.script("start")
    try:
        yield b
    finally:
        b.script("stop")


def until(url: str, status: int, timeout: float) -> float:
    """Seconds until ``url`` answers ``status`` (fails after ``timeout``)."""
    started = time.monotonic()
    answer = eventually_sync(lambda: http_answer(url, timeout_s=1),
                             lambda now: now[0] == status, within_s=timeout)
    assert answer[0] == status, f"{url} did not answer {status} within {timeout}s: {answer}"
    return time.monotonic() - started
