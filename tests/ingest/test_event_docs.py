"""The committed event catalogue is generated from the schema and its examples are valid."""

import re
from pathlib import Path

import pytest

from signalbox.common import schemas
from signalbox.ingest.event_docs import example, markdown
from signalbox.ingest.keys import INTERNAL_TYPES
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


def _placeholders(name: str) -> set[str]:
    return {name, name.replace("_", "-"), f"{name[:-3]}_1" if name.endswith("_id") else name}


@pytest.mark.parametrize("name", sorted(schemas.event_types()))
def test_every_example_comes_from_the_schema_and_is_no_placeholder(name: str) -> None:
    """Examples are written into the schema per field (``signalbox.example``), so none is
    derived from the field's name (``"brand": "brand"``, ``"exp_year": 3``)."""
    fields = schemas.event_types()[name].fields
    missing = [f["name"] for f in fields if "signalbox.example" not in f]
    assert missing == [], f"{name}: give {missing} a signalbox.example in event.avsc"
    data = example(schemas.event_types()[name])["data"]
    for field, value in data.items():
        assert not (isinstance(value, str) and value in _placeholders(field)), (name, field)
        if field.endswith("_year"):
            assert 1000 <= value <= 9999, (name, field)
    starts = [v for k, v in data.items() if k.endswith("_start")]
    ends = [v for k, v in data.items() if k.endswith("_end")]
    assert all(s < e for s, e in zip(starts, ends, strict=True)), name


def test_data_is_documented_as_optional_as_ingest_treats_it() -> None:
    assert "| `data` | object | no |" in markdown()
    [accepted] = validate_batch({"event_id": "e1", "type": "user.logged_in",
                                 "customer_id": "cus_42", "occurred_at": "2026-11-22T09:30:00Z"},
                                received_at=0)
    assert accepted.event_type.name == "user.logged_in"


def test_the_readme_lists_every_event_type_under_its_topic() -> None:
    readme = (DOC.parents[1] / "README.md").read_text("utf-8")
    start = readme.index("Event types today (")
    paragraph = " ".join(readme[start:readme.index("\n\n", start)].split())
    types = schemas.event_types()
    assert paragraph.startswith(f"Event types today ({len(types)};")
    listed: dict[str, str] = {}
    for topic, names in re.findall(r"topic `([^`]+)`: ([^;]+)", paragraph):
        listed.update(dict.fromkeys(re.findall(r"`([a-z_]+\.[a-z_]+)`", names), topic))
    public = {n: t.topic for n, t in types.items() if n not in INTERNAL_TYPES}
    assert listed == public
    internal = paragraph.rsplit("; and ", 1)[1]
    assert set(re.findall(r"`([a-z_]+\.[a-z_]+)`", internal)) == set(INTERNAL_TYPES)
