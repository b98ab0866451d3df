"""docs/automations.md lists exactly the triggers the engine validates."""

from pathlib import Path

from signalbox.common import schemas
from signalbox.evaluator.engine.triggers import CATALOGUE
from signalbox.evaluator.reference import replace_section, triggers_markdown

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
