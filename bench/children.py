"""The processes a bench starts, stopped whatever happens (error, Ctrl-C, SIGTERM)."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from types import FrameType, TracebackType

import httpx


class Children:
    """``with Children(log_dir) as c: c.start(...)``: every process ends with the block.

    Children run in their own session, so a Ctrl-C reaches only the bench, which
    then stops them in order (SIGTERM, SIGKILL after ``grace`` seconds). A SIGTERM
    to the bench is turned into ``SystemExit`` so the same clean-up runs.
    """

    def __init__(self, log_dir: Path, grace: float = 20.0) -> None:
        self.log_dir, self.grace = log_dir, grace
        self.running: list[tuple[str, subprocess.Popen[bytes]]] = []

    def start(self, name: str, args: Sequence[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        """``python <args>`` with output to ``<log_dir>/<name>.log``."""
        with (self.log_dir / f"{name}.log").open("ab") as log:
            proc = subprocess.Popen([sys.executable, *args], env=env, stdout=log,
                                    stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    start_new_session=True)
        self.running.append((name, proc))
        return proc

    def check(self) -> None:
        """Raise if a child has exited on its own (its log's tail says why)."""
        for name, proc in self.running:
            if proc.poll() is not None:
                raise RuntimeError(f"{name} exited with {proc.returncode}:\n{self.tail(name)}")

    def tail(self, name: str, lines: int = 30) -> str:
        try:
            text = (self.log_dir / f"{name}.log").read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def stop_all(self) -> None:
        for _, proc in self.running:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for _, proc in self.running:
            try:
                proc.wait(self.grace)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.running.clear()

    def __enter__(self) -> Children:
        signal.signal(signal.SIGTERM, _exit_on_sigterm)
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop_all()


def all_ready(urls: Sequence[str]) -> bool:
    """Whether every ``/readyz`` URL answers 200 now."""
    try:
        return all(httpx.get(url, timeout=2).status_code == 200 for url in urls)
    except httpx.HTTPError:
        return False


def _exit_on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)
