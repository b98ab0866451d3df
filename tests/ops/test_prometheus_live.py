"""Debian's Prometheus scraping a live pipeline: every alert expression and every dashboard
query is valid PromQL over the services' real metrics, and a healthy pipeline pages no one."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from signalbox.common.settings import Settings
from signalbox.testing import eventually_sync
from signalbox.testing.pipeline import pipeline
from tests.ops.live import Prometheus, prometheus, selectors
from tests.ops.promtools import alert_rules, dashboard_queries
from tests.ops.test_dashboard import promql_of
from tests.support.events import payment_failed

pytestmark = pytest.mark.kafka


def wait_until(what: str, problems: Callable[[], list[str]], timeout: float) -> None:
    """Poll ``problems`` until it returns none; fail with the last ones after ``timeout``."""
    left = eventually_sync(problems, lambda now: not now, within_s=timeout, every_s=1)
    assert not left, f"{what} after {timeout:.0f}s:\n" + "\n".join(left)


def missing_selectors(prom: Prometheus, expr: str) -> list[str]:
    """Selectors of ``expr`` naming a metric, a label or an exact label value the live
    services do not export. (Regular-expression matchers need only their label: a
    ``status=~"5.."`` has no series until something fails.)"""
    out, shown = [], " ".join(expr.split())[:120]
    for name, matchers in selectors(expr):
        exact = ",".join(f'{label}{op}"{value}"' for label, op, value in matchers
                         if op == "=")
        found = prom.query(f"{name}{{{exact}}}")
        if not found:
            out.append(f"{name}{{{exact}}} has no series (in: {shown})")
            continue
        labels = set().union(*(s["metric"] for s in found))
        absent = {label for label, _, _ in matchers} - labels
        if absent:
            out.append(f"{name} has no label {sorted(absent)} (in: {shown})")
    return out


def test_alerts_and_dashboard_queries_over_a_live_pipeline(settings: Settings,
                                                           tmp_path: Path) -> None:
    with pipeline(settings, tmp_path) as p:
        ports = {name: proc.port for name, proc in p.services.items()}
        with prometheus(ports, tmp_path / "prometheus") as prom:
            # Traffic: two events that become emails, one request ingest refuses.
            accepted = httpx.post(p.ingest_url, timeout=30, json=[
                payment_failed("evt-1", "cus-ada", contact=True),
                payment_failed("evt-2", "cus-bob", "basic", contact=True)])
            assert accepted.status_code == 202, accepted.text
            bad = payment_failed("evt-3", "cus-ada", contact=True)
            bad["data"] = {**bad["data"], "amount_minor": "49.00"}
            assert httpx.post(p.ingest_url, json=bad, timeout=30).status_code == 400
            p.smtp.wait_for(2)

            def targets_down() -> list[str]:
                active = prom.api("targets")["activeTargets"]
                return [f"{t['labels']['job']}: {t['health']} {t['lastError']}"
                        for t in active if t["health"] != "up"] + \
                    ([] if len(active) == 4 else [f"{len(active)} targets, not 4"])

            wait_until("targets not up", targets_down, 20)
            # Delivered outcomes scraped, and the lag collectors' first figures.
            wait_until("the pipeline's traffic not scraped", lambda: [
                q for q in ('sum(signalbox_dispatcher_outcomes_total{outcome="delivered"}) >= 2',
                            "signalbox_consumer_lag_records")
                if not prom.query(q)], 30)

            rules = [(rule["alert"], rule["expr"]) for rule in alert_rules()]
            for _, expr in rules:
                prom.query(expr)  # valid PromQL: an error answer raises with the reason
            wait_until("alert selectors without live series", lambda: [
                f"{alert}: {problem}" for alert, expr in rules
                for problem in missing_selectors(prom, expr)], 15)

            queries = [(title, promql_of(q)) for title, q in dashboard_queries()]
            wait_until("dashboard queries returning no series", lambda: [
                f"{title}: {q}" for title, q in queries if not prom.query(q)], 15)

            loaded = [r for g in prom.api("rules")["groups"] for r in g["rules"]]
            assert sorted(r["name"] for r in loaded) == sorted(a for a, _ in rules)
            assert [r["name"] for r in loaded if r["health"] != "ok"] == []
            firing = [a["labels"]["alertname"] for a in prom.api("alerts")["alerts"]
                      if a["state"] == "firing"]
            assert firing == [], "a healthy pipeline raised alerts"
        exits = p.stop()
    assert set(exits.values()) == {0}
