"""The alert rules, their promtool tests and the dashboard, as the ops tests read them.

Prometheus and promtool come from Debian's ``prometheus`` package, unpacked into
the cache by tools/prometheus/prometheus.sh (which ``make test`` runs first; a test
session on its own runs it too, idempotently).
"""

from __future__ import annotations

import functools
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from signalbox.testing.broker import REPO

RULES = REPO / "deploy" / "prometheus" / "rules" / "signalbox.rules.yml"
RULE_TESTS = sorted((REPO / "deploy" / "prometheus" / "tests").glob("*.test.yml"))
DASHBOARD = REPO / "deploy" / "grafana" / "signalbox.json"
OPERATIONS = REPO / "docs" / "operations.md"


@functools.cache
def prometheus_bin() -> Path:
    """The directory holding ``prometheus`` and ``promtool`` (installed on first use)."""
    done = subprocess.run([str(REPO / "tools" / "prometheus" / "prometheus.sh"), "bin"],
                          text=True, capture_output=True, check=False,
                          stdin=subprocess.DEVNULL)
    if done.returncode != 0:
        raise RuntimeError(f"tools/prometheus/prometheus.sh bin failed:\n{done.stderr}")
    return Path(done.stdout.strip())


def promtool(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(prometheus_bin() / "promtool"), *args], cwd=cwd, text=True,
                          capture_output=True, check=False, timeout=120)


def alert_rules() -> list[dict[str, Any]]:
    """Every alerting rule of the rules file, in file order."""
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"] if "alert" in rule]


def rule_test_cases() -> Iterator[tuple[str, dict[str, Any]]]:
    """(test group name, alert_rule_test case) over every promtool test file."""
    for path in RULE_TESTS:
        for group in yaml.safe_load(path.read_text())["tests"]:
            for case in group.get("alert_rule_test", []):
                yield group.get("name", path.name), case


def dashboard_queries() -> list[tuple[str, str]]:
    """(panel title, PromQL expression) of every target of every dashboard panel."""
    def panels(items: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        for panel in items:
            yield panel
            yield from panels(panel.get("panels", []))

    board = json.loads(DASHBOARD.read_text())
    return [(panel.get("title", "?"), target["expr"])
            for panel in panels(board["panels"]) for target in panel.get("targets", [])]
