"""docs/operations.md's metrics catalogue is the registry: same names, types and labels.

Every module of the package that defines a ``signalbox_`` metric is imported (found
by reading the sources, so a metric added anywhere is seen), then the default
registry's families are compared with the table.
"""

from __future__ import annotations

import importlib
import re
from pathlib import Path

from prometheus_client import REGISTRY

from signalbox.testing.broker import REPO

DOC = REPO / "docs" / "operations.md"
SOURCES = REPO / "services"
_DEFINES = re.compile(r"\b(?:Counter|Gauge|Histogram|Summary|Info)\(\s*\"signalbox_")
_ROW = re.compile(r"^\| `(signalbox_[a-z0-9_]+)` \| (\w+) \|([^|]*)\|")


def _modules_defining_metrics() -> list[str]:
    found = []
    for path in sorted(SOURCES.rglob("*.py")):
        if _DEFINES.search(path.read_text("utf-8")):
            parts = path.relative_to(SOURCES).with_suffix("").parts
            found.append(".".join(("signalbox", *parts)))
    return found


def _registry() -> dict[str, tuple[str, tuple[str, ...]]]:
    """Exposed name -> (type, label names) of every signalbox_ metric."""
    for module in _modules_defining_metrics():
        importlib.import_module(module)
    out = {}
    collectors = REGISTRY._collector_to_names  # the metric objects, with their label names
    for collector in collectors:
        labels = tuple(getattr(collector, "_labelnames", ()))
        for family in collector.collect():
            if not family.name.startswith("signalbox_"):
                continue
            name = f"{family.name}_total" if family.type == "counter" else family.name
            out[name] = (family.type, labels)
    return out


def _documented() -> dict[str, tuple[str, tuple[str, ...]]]:
    section = DOC.read_text("utf-8").split("### Catalogue", 1)[1].split("\n### ", 1)[0]
    out = {}
    for line in section.splitlines():
        row = _ROW.match(line)
        if row:
            name, kind, labels = row.groups()
            assert name not in out, f"{name} has two rows in {DOC.name}"
            out[name] = (kind, tuple(re.findall(r"`([a-z_]+)`", labels)))
    return out


def test_every_metric_has_a_row_and_every_row_a_metric() -> None:
    registry, documented = _registry(), _documented()
    assert len(registry) >= 30, sorted(registry)  # the import above found the modules
    assert sorted(set(registry) - set(documented)) == [], "metrics without a catalogue row"
    assert sorted(set(documented) - set(registry)) == [], "catalogue rows without a metric"
    wrong = {name: (documented[name], registry[name]) for name in registry
             if documented[name] != registry[name]}
    assert wrong == {}, "rows whose (type, labels) differ from the metric's"


def test_names_follow_the_prometheus_conventions() -> None:
    for name, (kind, _) in _registry().items():
        assert name.startswith("signalbox_"), name
        assert (kind == "counter") == name.endswith("_total"), name
        assert not name.endswith("_tick_seconds"), f"{name}: a time is a _timestamp_seconds"
        if kind == "histogram":
            assert name.endswith(("_seconds", "_records")), f"{name}: the unit in the name"


def test_the_catalogue_reads_the_source_tree() -> None:
    """The scan that feeds the registry test finds every service's metrics module."""
    modules = _modules_defining_metrics()
    for service in ("common", "ingest", "evaluator", "dispatcher", "scheduler"):
        assert f"signalbox.{service}.metrics" in modules, modules
    assert Path(DOC).is_file()
