"""A real Prometheus on loopback, scraping services started by a test."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import yaml

from signalbox.testing import eventually_sync, free_port, http_answer
from signalbox.testing.broker import REPO
from tests.ops.promtools import RULES, prometheus_bin

COMPOSE_CONFIG = REPO / "deploy" / "prometheus" / "prometheus.yml"

#: A vector selector: a metric name, then its matchers if any. Function names and
#: keywords never start with these prefixes.
_SELECTOR = re.compile(r"\b(signalbox_\w+|up)\b(\{[^}]*\})?")
_MATCHER = re.compile(r'(\w+)\s*(=~|!~|!=|=)\s*"([^"]*)"')


def selectors(expr: str) -> list[tuple[str, list[tuple[str, str, str]]]]:
    """(metric name, [(label, operator, value)]) of every vector selector in ``expr``."""
    return [(m.group(1), _MATCHER.findall(m.group(2) or ""))
            for m in _SELECTOR.finditer(expr)]


def live_config(ports: Mapping[str, int], interval_s: int = 1) -> dict[str, Any]:
    """The compose Prometheus config (same jobs, same rules) aimed at services on loopback."""
    config: dict[str, Any] = yaml.safe_load(COMPOSE_CONFIG.read_text())
    config["global"].update(scrape_interval=f"{interval_s}s", evaluation_interval=f"{interval_s}s")
    config["rule_files"] = [str(RULES)]
    for job in config["scrape_configs"]:
        job["static_configs"] = [{"targets": [f"127.0.0.1:{ports[job['job_name']]}"]}]
    return config


class Prometheus:
    def __init__(self, url: str) -> None:
        self.url = url
        self._http = httpx.Client(base_url=url, timeout=10)

    def api(self, path: str, **params: str) -> Any:
        """The ``data`` of an API answer; an error answer raises with Prometheus's reason."""
        response = self._http.get(f"/api/v1/{path}", params=params)
        body = response.json()
        if response.status_code != 200 or body.get("status") != "success":
            raise AssertionError(f"{path} {params}: {response.status_code} "
                                 f"{body.get('errorType')}: {body.get('error')}")
        return body["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        data = self.api("query", query=expr)
        assert data["resultType"] in ("vector", "scalar"), (expr, data["resultType"])
        return data["result"] if data["resultType"] == "vector" else [{"value": data["result"]}]

    def close(self) -> None:
        self._http.close()


@contextmanager
def prometheus(ports: Mapping[str, int], workdir: Path) -> Iterator[Prometheus]:
    """Debian's prometheus binary on a free loopback port, scraping ``ports`` every second."""
    workdir.mkdir(parents=True, exist_ok=True)
    config = workdir / "prometheus.yml"
    config.write_text(yaml.safe_dump(live_config(ports)))
    port = free_port()
    log_path = workdir / "prometheus.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [str(prometheus_bin() / "prometheus"), f"--config.file={config}",
             f"--storage.tsdb.path={workdir / 'data'}", f"--web.listen-address=127.0.0.1:{port}",
             "--log.level=warn"],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    server = Prometheus(f"http://127.0.0.1:{port}")
    try:
        def ready() -> tuple[int | None, str]:
            if proc.poll() is not None:
                raise AssertionError(f"prometheus exited with {proc.returncode}:\n"
                                     f"{log_path.read_text()[-3000:]}")
            return http_answer(f"{server.url}/-/ready")

        status, last = eventually_sync(ready, lambda answer: answer[0] == 200, within_s=30,
                                       every_s=0.2)
        assert status == 200, f"prometheus not ready in 30 s: {last}"
        yield server
    finally:
        server.close()
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
