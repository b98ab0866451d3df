"""``simulate`` accepts exactly what ``automations apply`` accepts (issue 10, item 3).

Both read the automations file through the evaluator's one validation path, with the
teams of ``SIGNALBOX_TEAMS`` and the templates of ``SIGNALBOX_TEMPLATES_DIR``: the same
file gets the same verdict and the same errors from both, and from the evaluator at
start-up.
"""

from __future__ import annotations

import io
from dataclasses import replace
from pathlib import Path

import pytest

from signalbox.cli import main
from signalbox.common.settings import Settings
from signalbox.evaluator.engine import AutomationError
from signalbox.evaluator.main import default_automations_path, file_definitions
from signalbox.evaluator.publish import apply_command

EVENTS = Path(__file__).resolve().parents[2] / "examples" / "simulate" / "events.jsonl"
ENV = {"SIGNALBOX_TEAMS": "finance=finance@example.com,ops=ops@example.com"}


def rules(actions: str, trigger: str = "payment.failed") -> str:
    return (f"format: signalbox/automations@2\nautomations:\n  - id: r1\n"
            f"    trigger: {{type: {trigger}}}\n    actions: {actions}\n")


#: name -> (file, valid?)
FILES = {
    "defaults": (Path(default_automations_path()).read_text("utf-8"), True),
    "a team of SIGNALBOX_TEAMS": (rules("[{type: alert, team: ops, "
                                        "template: payment_failed_alert}]"), True),
    "an operator template": (rules("[{type: email, template: hello}]"), True),
    "an unknown team": (rules("[{type: alert, team: legal, "
                              "template: payment_failed_alert}]"), False),
    "a missing template": (rules("[{type: email, template: welcome}]"), False),
    "a variable the trigger lacks": (rules("[{type: email, template: payment_failed_alert}]",
                                           "payment.refunded"), False),
}


@pytest.fixture
def operator_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    templates = tmp_path / "templates" / "email"
    templates.mkdir(parents=True)
    (templates / "hello.subject.j2").write_text("Hello {{ customer_name }}")
    (templates / "hello.txt.j2").write_text("About {{ product }}")
    env = {**ENV, "SIGNALBOX_TEMPLATES_DIR": str(tmp_path / "templates")}
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    return env


def simulate(path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
             ) -> tuple[int, list[str]]:
    capsys.readouterr()
    code = main(["simulate", "--automations", str(path), "--events", str(EVENTS),
                 "--out", str(tmp_path / "out.jsonl")])
    err = capsys.readouterr().err.splitlines()
    return code, [line.removeprefix("signalbox simulate: ") for line in err
                  if code != 0]


@pytest.mark.parametrize("name", FILES)
def test_simulate_and_apply_give_the_same_verdict_and_errors(
        name: str, operator_env: dict[str, str], tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    text, valid = FILES[name]
    path = tmp_path / "automations.yaml"
    path.write_text(text)
    code, errors = simulate(path, tmp_path, capsys)
    assert code == (0 if valid else 2), errors
    settings = Settings.from_env(operator_env)
    try:
        evaluator = replace(settings.evaluator, automations_file=str(path))
        file_definitions(replace(settings, evaluator=evaluator)).build()
        started = []
    except AutomationError as exc:
        started = [f"{exc.source}: {e}" for e in exc.errors]
    assert started == errors  # the evaluator at start-up says the same
    if not valid:  # apply stops before it contacts Kafka
        assert apply_command(settings, str(path), False, "ci", out=io.StringIO()) == 2
        assert capsys.readouterr().err.splitlines() == errors


def test_simulate_runs_the_shipped_defaults_with_signalbox_teams(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("SIGNALBOX_TEAMS", "finance=billing@example.com")
    code, errors = simulate(Path(default_automations_path()), tmp_path, capsys)
    assert code == 0, errors
    assert "billing@example.com" in (tmp_path / "out.jsonl").read_text("utf-8")


@pytest.mark.kafka
def test_apply_accepts_the_valid_files(settings: Settings, operator_env: dict[str, str],
                                       tmp_path: Path) -> None:
    teams = Settings.from_env(operator_env).evaluator.teams
    configured = replace(settings, templates_dir=operator_env["SIGNALBOX_TEMPLATES_DIR"],
                         evaluator=replace(settings.evaluator, teams=teams))
    for name, (text, valid) in FILES.items():
        if valid:
            path = tmp_path / "automations.yaml"
            path.write_text(text)
            assert apply_command(configured, str(path), True, "ci", out=io.StringIO()) == 0, name
