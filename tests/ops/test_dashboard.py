"""The Grafana dashboard and the compose provisioning: valid, complete, valid PromQL."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from signalbox.testing.broker import REPO
from tests.ops.promtools import DASHBOARD, dashboard_queries, promtool

GRAFANA = REPO / "deploy" / "grafana"


def promql_of(query: str) -> str:
    """A dashboard query as Prometheus sees it (Grafana fills in its interval variable)."""
    return query.replace("$__rate_interval", "1m")


def test_dashboard_panels_are_complete_and_laid_out() -> None:
    board = json.loads(DASHBOARD.read_text())
    assert board["uid"] == "signalbox"
    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids)), "panel ids repeat"
    graphs = [p for p in board["panels"] if p["type"] != "row"]
    for panel in graphs:
        assert panel["title"] and panel["description"], panel
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
        assert panel["targets"], f"{panel['title']} has no query"
        pos = panel["gridPos"]
        assert pos["x"] + pos["w"] <= 24, f"{panel['title']} is wider than the grid"
    cells = [(p["title"], x, y) for p in board["panels"] for x in range(
        p["gridPos"]["x"], p["gridPos"]["x"] + p["gridPos"]["w"]) for y in range(
        p["gridPos"]["y"], p["gridPos"]["y"] + p["gridPos"]["h"])]
    taken: dict[tuple[int, int], str] = {}
    for title, x, y in cells:
        assert (x, y) not in taken, f"{title} overlaps {taken[x, y]}"
        taken[x, y] = title
    rows = " ".join(p["title"].lower() for p in board["panels"] if p["type"] == "row")
    for topic in ("throughput", "lag", "latency", "outcomes by channel", "retries", "breakers",
                  "ticks", "timers", "dead letters"):
        assert topic in rows, f"no row about {topic}"


def test_every_dashboard_query_is_valid_promql(tmp_path: Path) -> None:
    """promtool parses each query as a recording rule's expression (offline; the live test
    in test_prometheus_live.py runs them against a pipeline)."""
    queries = dashboard_queries()
    rules = {"groups": [{"name": "dashboard", "rules": [
        {"record": f"dashboard:query_{i}", "expr": promql_of(q)} for i, (_, q) in enumerate(queries)
    ]}]}
    path = tmp_path / "dashboard.rules.yml"
    path.write_text(yaml.safe_dump(rules))
    done = promtool("check", "rules", str(path))
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"SUCCESS: {len(queries)} rules found" in done.stdout


def test_compose_provisioning_points_grafana_at_prometheus_and_the_dashboard() -> None:
    sources = yaml.safe_load((GRAFANA / "provisioning" / "datasources" / "prometheus.yml")
                             .read_text())["datasources"]
    assert [(s["type"], s["url"], s["isDefault"]) for s in sources] == \
        [("prometheus", "http://prometheus:9090", True)]
    [provider] = yaml.safe_load((GRAFANA / "provisioning" / "dashboards" / "signalbox.yml")
                                .read_text())["providers"]
    assert provider["type"] == "file"
    assert provider["options"]["path"] == "/var/lib/grafana/dashboards"


@pytest.mark.parametrize(("config", "host"), [("prometheus.yml", "{service}"),
                                             ("prometheus.local.yml", "127.0.0.1")])
def test_prometheus_configs_are_valid_and_scrape_the_four_services(config: str,
                                                                   host: str) -> None:
    """compose (services by name) and `make run` (loopback): same jobs, same rules."""
    config_path = REPO / "deploy" / "prometheus" / config
    done = promtool("check", "config", str(config_path))
    assert done.returncode == 0, done.stdout + done.stderr
    parsed = yaml.safe_load(config_path.read_text())
    targets = {job["job_name"]: job["static_configs"][0]["targets"]
               for job in parsed["scrape_configs"]}
    ports = {"ingest": 8080, "evaluator": 8081, "dispatcher": 8082, "scheduler": 8083}
    assert targets == {name: [f"{host.format(service=name)}:{port}"]
                       for name, port in ports.items()}
