"""The committed event catalogue is generated from the schema and its examples are valid."""

from pathlib import Path

import pytest

from signalbox.common import schemas
from signalbox.ingest.catalogue import example, markdown
from signalbox.ingest.validation import validate_batch

DOC = Path(__file__).resolve().parents[2] / "docs" / "events.md"


def test_committed_catalogue_is_current() -> None:
    assert DOC.read_text("utf-8") == markdown(), (
        "docs/events.md is stale: run `.venv/bin/signalbox events catalogue > docs/events.md`")


@pytest.mark.parametrize("name", sorted(schemas.event_types()))
def test_every_type_has_a_section_and_a_valid_example(name: str) -> None:
    assert f"\n### {name}\n" in markdown()
    [accepted] = validate_batch(example(schemas.event_types()[name]), received_at=0)
    assert accepted.event_type.name == name
    assert accepted.customer_id == "cus_42"
