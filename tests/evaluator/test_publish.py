"""``signalbox automations apply|list`` as operators run them, against the real broker."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from signalbox.common.settings import Settings
from tests.support.processes import service_env

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


def signalbox(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "signalbox", "automations", *args],
                          env=service_env(settings, LOG_LEVEL="warning"), text=True,
                          capture_output=True, timeout=120, check=False)


def test_apply_writes_what_changed_prunes_and_list_shows_it(
        settings: Settings, tmp_path: Path) -> None:
    path = tmp_path / "automations.yaml"
    path.write_text(FILE)
    first = signalbox(settings, "apply", str(path), "--by", "ci")
    assert first.returncode == 0, first.stderr
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
    assert listed.returncode == 0, listed.stderr
    rows = [line.split("\t") for line in listed.stdout.splitlines()[1:]]
    assert [r[:4] for r in rows if r[0] == "welcome"] == [
        ["welcome", "2", "true", "customer.signed_up"]]
    assert not any(r[0] == "pf-pro" for r in rows)


def test_an_invalid_file_writes_nothing(settings: Settings, tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(FILE.replace("customer.signed_up", "customer.exploded"))
    result = signalbox(settings, "apply", str(path))
    assert result.returncode == 2
    assert "automations[1] (id=welcome): trigger.type" in result.stderr
    assert "customer.exploded" in result.stderr
    listed = signalbox(settings, "list")
    assert listed.stdout.splitlines()[1:] == []
