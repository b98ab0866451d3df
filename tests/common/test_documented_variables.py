"""The README's configuration table is what signalbox reads: each variable once, with the
one default the table gives (issue 13: one default per setting, one place that reads).

The reads are recorded through :class:`signalbox.common.env.Env`, which every typed
getter goes through with its default, while the settings and the source catalogue are
built from an empty environment: every variable is then at its default.
"""

from __future__ import annotations

import re
import socket
from collections import Counter
from pathlib import Path

import pytest

from signalbox.common.env import Env
from signalbox.common.settings import Settings
from signalbox.ingest.sources.catalogue import load_sources

README = Path(__file__).resolve().parents[2] / "README.md"


class RecordingEnv(Env):
    """An empty environment that remembers each read and the default it was given."""

    def __init__(self) -> None:
        super().__init__({})
        self.reads: list[tuple[str, object]] = []

    def _read(self, name: str, default: object) -> str:
        self.reads.append((name, default))
        return super()._read(name, default)


def documented() -> dict[str, str | None]:
    """Each variable of the README's configuration table and its documented default:
    the backticked value in the default column (one per variable when a row names
    several), ``""`` for (none), (empty) and the like, ``None`` for the host name."""
    text = README.read_text("utf-8")
    table = text[text.index("## Configuration"):text.index("## Channels")]
    found: dict[str, str | None] = {}
    for line in table.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        names = re.findall(r"`([A-Z][A-Z0-9_]+)`", cells[0])
        if len(cells) < 3 or not names:
            continue
        values = re.findall(r"`([^`]*)`", cells[1])
        for i, name in enumerate(names):
            if cells[1] == "host name":
                found[name] = None
            elif len(values) == len(names):
                found[name] = values[i]
            else:
                found[name] = values[0] if values else ""
    return found


@pytest.fixture(scope="module")
def reads() -> list[tuple[str, object]]:
    env = RecordingEnv()
    Settings.from_env(env)
    load_sources(env)
    return env.reads


def test_the_table_lists_the_variables() -> None:
    table = documented()
    assert len(table) > 40
    assert table["DISPATCHER_BACKOFF_CAP_SECONDS"] == "30"
    assert table["LOG_FORMAT"] == "json"


def test_every_documented_variable_is_read_exactly_once(
        reads: list[tuple[str, object]]) -> None:
    counts = Counter(name for name, _ in reads)
    assert {n: counts[n] for n in documented() if counts[n] != 1} == {}


def test_every_variable_read_is_documented(reads: list[tuple[str, object]]) -> None:
    assert sorted({name for name, _ in reads} - set(documented())) == []


def test_each_default_is_the_documented_one(reads: list[tuple[str, object]]) -> None:
    table = documented()
    wrong = {}
    for name, default in reads:
        doc = table.get(name)
        expected: object = socket.gethostname() if doc is None else doc
        if isinstance(default, int | float) and not isinstance(default, bool):
            same = float(str(expected)) == default
        else:
            same = str(default) == expected
        if not same:
            wrong[name] = (default, expected)
    assert wrong == {}, "(read with, documented)"
