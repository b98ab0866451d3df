"""Reading a live service's /metrics in tests (the Prometheus text format, parsed)."""

from __future__ import annotations

from collections.abc import Callable

import httpx
from prometheus_client.parser import text_string_to_metric_families

from signalbox.testing import eventually_sync

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(url: str, headers: dict[str, str] | None = None) -> Samples:
    """Every sample at ``url``: (sample name, labels) -> value."""
    text = httpx.get(url, timeout=5, headers=headers).raise_for_status().text
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


def labelled(samples: Samples, name: str) -> list[dict[str, str]]:
    """The label sets of ``name``'s samples."""
    return [dict(labels) for (n, labels) in samples if n == name]


def until(url: str, holds: Callable[[Samples], bool], timeout: float = 30.0) -> Samples:
    """Scrape ``url`` until ``holds`` is true of its samples (fails after ``timeout``)."""
    samples = eventually_sync(lambda: scrape(url), holds, within_s=timeout, every_s=0.25)
    assert holds(samples), (f"{url}: condition not met in {timeout}s; last scrape: "
                            f"{sorted(k for k in samples if k[0].startswith('signalbox_'))}")
    return samples
