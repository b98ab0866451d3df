"""``make run`` / ``make stop`` (tools/run.sh, tools/stop.sh) on the real services.

One run against the test broker, with its own run directory, ports and topic
prefix: a second run reports the first and leaves it alone; stop ends the first
run's loop and every service it started.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from signalbox.common.settings import Settings
from signalbox.testing import eventually_sync, free_port, service_env
from signalbox.testing.broker import REPO

pytestmark = pytest.mark.kafka


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _wait_for(path: Path, text: str, proc: subprocess.Popen[bytes], timeout: float) -> None:
    """Until make run writes ``text`` (fails if it exits first, or after ``timeout``)."""
    out = eventually_sync(lambda: path.read_text(errors="replace"),
                          lambda out: text in out or proc.poll() is not None,
                          within_s=timeout, every_s=0.5)
    assert text in out, f"no {text!r} from make run in {timeout}s:\n{out[-4000:]}"


@pytest.fixture
def run_env(settings: Settings, tmp_path: Path) -> dict[str, str]:
    env = service_env(settings, SIGNALBOX_RUN_DIR=str(tmp_path / "run"),
                      SIGNALBOX_STOP_KAFKA="0", TICK_INTERVAL_SECONDS="2")
    for name in ("INGEST_PORT", "EVALUATOR_PORT", "EVALUATOR_ADMIN_PORT", "DISPATCHER_PORT",
                 "SCHEDULER_PORT", "SMTP_PORT"):
        env[name] = str(free_port())
    return env


@pytest.fixture
def first_run(run_env: dict[str, str], tmp_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    out = tmp_path / "first.out"
    with out.open("wb") as sink:
        proc = subprocess.Popen([str(REPO / "tools" / "run.sh")], env=run_env, stdout=sink,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True)
    try:
        _wait_for(out, "== running (pid", proc, timeout=150)
        yield proc
    finally:
        if proc.poll() is None:  # the test failed before stop: end the run and its services
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(60)


def test_second_run_leaves_the_first_alone_and_stop_ends_it(
        first_run: subprocess.Popen[bytes], run_env: dict[str, str], tmp_path: Path) -> None:
    run_dir = Path(run_env["SIGNALBOX_RUN_DIR"])
    first = (tmp_path / "first.out").read_text()
    assert "new emails after the retry: 0" in first, first
    services = {f.stem: int(f.read_text()) for f in (run_dir / "pids").glob("*.pid")}
    assert set(services) == {"smtp-capture", "evaluator", "dispatcher", "scheduler", "ingest"}

    second = subprocess.run([str(REPO / "tools" / "run.sh")], env=run_env, capture_output=True,
                            text=True, timeout=30, check=False)
    assert second.returncode == 1, second
    assert f"make run is already running (pid {first_run.pid})" in second.stderr, second.stderr
    assert "stopping services" not in second.stdout + second.stderr
    # Waiting for nothing to happen: had the second run signalled the first or its
    # services, they would be gone within this second.
    time.sleep(1)
    assert first_run.poll() is None
    assert all(_alive(pid) for pid in services.values()), services

    stop = subprocess.run([str(REPO / "tools" / "stop.sh")], env=run_env, capture_output=True,
                          text=True, timeout=120, check=False)
    assert stop.returncode == 0, stop
    assert f"stopping make run (pid {first_run.pid})" in stop.stdout
    assert first_run.wait(5) != 0  # ended by a signal, not by the demo finishing
    assert "stopping services" in (tmp_path / "first.out").read_text()
    assert not [name for name, pid in services.items() if _alive(pid)]
    assert not list((run_dir / "pids").glob("*.pid"))
    assert not (run_dir / "run.pid").exists()
    # Nothing it started holds its lock: the next make run may start at once.
    free = subprocess.run(["flock", "-n", str(run_dir / "run.lock"), "true"], check=False)
    assert free.returncode == 0
