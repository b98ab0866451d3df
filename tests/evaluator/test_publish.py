"""``signalbox automations apply|list`` as operators run them, against the real broker."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from signalbox.common.settings import Settings
from signalbox.testing import service_env
from tests.support.templates import TEMPLATES_DIR

pytestmark = pytest.mark.kafka

FILE = """
format: signalbox/automations@1
teams: {finance: finance@example.com}
automations:
  - id: pf-pro
    trigger: {type: payment.failed, product: pro}
    actions: [{type: alert, team: finance, template: payment_failed_alert}]
  - id: welcome
    trigger: {type: customer.signed_up}
    actions: [{type: email, to: customer, template: welcome}]
"""


def signalbox(settings: Settings, *args: str, **env: str
              ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "signalbox", "automations", *args],
                          env=service_env(settings, LOG_LEVEL="info", LOG_FORMAT="json",
                                          SIGNALBOX_TEMPLATES_DIR=TEMPLATES_DIR, **env),
                          text=True, capture_output=True, timeout=120, check=False)


def topic_rows(listed: subprocess.CompletedProcess[str]) -> list[list[str]]:
    """``list`` rows of topic entries (the evaluators' file rows left out)."""
    assert listed.returncode == 0, listed.stderr
    header, *lines = listed.stdout.splitlines()
    assert header.split("\t")[:5] == ["id", "version", "enabled", "trigger", "source"]
    return [r for r in (line.split("\t") for line in lines)
            if len(r) > 4 and r[4].startswith("topic")]


def test_apply_writes_what_changed_prunes_and_list_shows_it(
        settings: Settings, tmp_path: Path) -> None:
    path = tmp_path / "automations.yaml"
    path.write_text(FILE)
    first = signalbox(settings, "apply", str(path), "--by", "ci")
    assert first.returncode == 0, first.stderr
    assert first.stderr == ""  # output for a person: no JSON log lines, no info
    assert first.stdout.splitlines()[:3] == ["created\tpf-pro", "created\twelcome",
                                             "created\t_teams"]

    path.write_text(FILE.split("  - id: pf-pro")[0] + """  - id: welcome
    version: 2
    trigger: {type: customer.signed_up}
    actions: [{type: email, to: customer, template: welcome}]
""")
    second = signalbox(settings, "apply", str(path), "--prune")
    assert second.returncode == 0, second.stderr
    assert "updated\twelcome" in second.stdout and "deleted\tpf-pro" in second.stdout
    assert "unchanged\t_teams" in second.stdout

    listed = signalbox(settings, "list")
    assert listed.stderr == ""
    assert [r[:5] for r in topic_rows(listed)] == [
        ["welcome", "2", "true", "customer.signed_up", "topic"]]


def test_an_invalid_file_writes_nothing(settings: Settings, tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(FILE.replace("customer.signed_up", "customer.exploded"))
    result = signalbox(settings, "apply", str(path))
    assert result.returncode == 2
    assert "automations[1] (id=welcome): trigger.type" in result.stderr
    assert "customer.exploded" in result.stderr
    assert topic_rows(signalbox(settings, "list")) == []


def test_list_shows_the_effective_set_like_the_admin_api(
        settings: Settings, tmp_path: Path) -> None:
    """The evaluators' file and the topic's entries, each with its source; a topic entry
    with a file automation's id overrides it."""
    own = tmp_path / "evaluators.yaml"
    own.write_text(FILE.replace("id: welcome", "id: own-welcome"))
    path = tmp_path / "automations.yaml"
    path.write_text(FILE.split("  - id: pf-pro")[0] + """  - id: pf-pro
    version: 3
    trigger: {type: payment.failed, product: pro}
    actions: [{type: alert, team: finance, template: payment_failed_alert}]
""")
    env = {"SIGNALBOX_AUTOMATIONS_FILE": str(own)}
    assert signalbox(settings, "apply", str(path), **env).returncode == 0
    listed = signalbox(settings, "list", **env)
    assert listed.returncode == 0 and listed.stderr == "", listed.stderr
    rows = {r[0]: r for r in (line.split("\t") for line in listed.stdout.splitlines()[1:])}
    assert rows["own-welcome"][4] == f"file {own}"
    assert rows["pf-pro"][1] == "3" and rows["pf-pro"][4] == "topic (overrides the file)"

    as_json = signalbox(settings, "list", "--json", **env)
    body = json.loads(as_json.stdout)
    assert {a["id"]: a["origin"] for a in body["automations"]} == {
        "own-welcome": "file", "pf-pro": "topic"}
    assert body["teams"] == {"finance": "finance@example.com"} and body["rejected"] == []


def test_dry_run_prints_the_diff_and_writes_nothing(settings: Settings, tmp_path: Path) -> None:
    path = tmp_path / "automations.yaml"
    path.write_text(FILE)
    assert signalbox(settings, "apply", str(path)).returncode == 0
    path.write_text(FILE.split("  - id: pf-pro")[0] + """  - id: welcome
    version: 2
    trigger: {type: customer.signed_up}
    actions: [{type: email, to: customer, template: welcome}]
""")
    dry = signalbox(settings, "apply", str(path), "--prune", "--dry-run")
    assert dry.returncode == 0 and dry.stderr == "", dry.stderr
    out = dry.stdout
    assert f"--- topic/welcome\n+++ {path}/welcome\n" in out
    assert "\n+version: 2\n" in out  # the first had none: version 1 by default
    assert "--- topic/pf-pro\n+++ /dev/null\n" in out and "-id: pf-pro\n" in out
    assert "would update\twelcome" in out and "would delete\tpf-pro" in out
    assert out.rstrip().endswith("nothing written")
    assert sorted(r[0] for r in topic_rows(signalbox(settings, "list"))) == ["pf-pro", "welcome"]
