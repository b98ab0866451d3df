"""docs/automations.md lists exactly the triggers the engine validates and the variables
it gives templates."""

import inspect
from pathlib import Path

from signalbox.common import schemas
from signalbox.common.settings import Settings
from signalbox.evaluator.engine.triggers import CATALOGUE
from signalbox.evaluator.reference import replace_section, triggers_markdown, variables_markdown

DOC = Path(__file__).resolve().parents[2] / "docs" / "automations.md"


def test_committed_trigger_reference_is_current() -> None:
    text = DOC.read_text("utf-8")
    assert replace_section(text) == text, (
        "docs/automations.md is stale: run "
        "`.venv/bin/python -m signalbox.evaluator.reference docs/automations.md`")


def test_every_trigger_is_listed_once() -> None:
    section = triggers_markdown()
    for name in [*CATALOGUE, *schemas.event_types()]:
        assert section.count(f"| `{name}` |") == 1, name


def test_every_trigger_has_its_variables_listed_once() -> None:
    section = variables_markdown()
    for name in [*CATALOGUE, *schemas.event_types()]:
        assert section.count(f"| `{name}` |") == 1, name
    assert "`failed_count`" in section and "`unsubscribe_url`" in section


def test_the_tick_interval_is_named_as_settings_reads_it() -> None:
    text = DOC.read_text("utf-8")
    assert "TICK_INTERVAL_SECONDS" in text and "SCHEDULER_TICK_INTERVAL_S" not in text
    assert "TICK_INTERVAL_SECONDS" in inspect.getsource(Settings.from_env)
