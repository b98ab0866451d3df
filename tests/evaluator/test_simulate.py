"""``signalbox simulate``: the engine over a JSONL file with a virtual clock."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from signalbox.cli import main
from signalbox.evaluator.simulate import SimulationInputError, parse_duration, parse_time

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "simulate"
AUTOMATIONS, EVENTS = EXAMPLES / "automations.yaml", EXAMPLES / "events.jsonl"


def simulate(tmp_path: Path, *extra: str, events: Path = EVENTS) -> tuple[int, str]:
    out = tmp_path / f"out{len(list(tmp_path.iterdir()))}.jsonl"
    code = main(["simulate", "--automations", str(AUTOMATIONS), "--events", str(events),
                 "--out", str(out), *extra])
    return code, out.read_text("utf-8") if out.exists() else ""


def test_the_example_story(tmp_path: Path) -> None:
    code, text = simulate(tmp_path, "--until", "2026-02-15T00:00:00Z")
    assert code == 0
    fired = [(c["automation_id"], c["issued_at"], tuple(c["action"]["to"]))
             for c in map(json.loads, text.splitlines())]
    assert fired == [
        ("payment-failed", "2026-01-03T08:00:00.000Z", ("ada@example.com",)),
        # last login 2 Jan 10:00 + 7 days, on the due time, not on a tick's time
        ("no-login-week", "2026-01-09T10:00:00.000Z", ("ada@example.com",)),
        # past due since 3 Jan 08:00 with an active subscription: day 14, then day 30
        ("past-due-dunning", "2026-01-17T08:00:00.000Z", ("ada@example.com",)),
        ("past-due-dunning", "2026-01-17T08:00:00.000Z", ("finance@example.com",)),
        ("past-due-dunning", "2026-02-02T08:00:00.000Z", ("ada@example.com",)),
        ("past-due-dunning", "2026-02-02T08:00:00.000Z", ("finance@example.com",)),
    ]


def test_output_is_the_same_byte_for_byte_whatever_the_tick(tmp_path: Path) -> None:
    outputs = {simulate(tmp_path, "--until", "2026-02-15T00:00:00Z", "--tick", tick)[1]
               for tick in ("15m", "1h", "1d", "7d", "1h")}
    assert len(outputs) == 1 and outputs.pop()


def test_without_until_time_stops_at_the_last_event(tmp_path: Path) -> None:
    code, text = simulate(tmp_path)
    assert code == 0
    assert [json.loads(line)["automation_id"] for line in text.splitlines()] == ["payment-failed"]


def test_bad_events_are_reported_with_line_and_path(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    events = tmp_path / "bad.jsonl"
    events.write_text(EVENTS.read_text("utf-8") + '{"event_id": "x", "type": "payment.failed", '
                      '"customer_id": "c", "occurred_at": "2026-01-05T00:00:00Z", '
                      '"data": {"product": "pro"}}\nnot json\n', "utf-8")
    code, text = simulate(tmp_path, events=events)
    assert code == 2 and text == ""
    err = capsys.readouterr().err
    assert f"{events}:6: $.data.payment_id: required field missing" in err
    assert f"{events}:7: " in err


def test_options_are_checked() -> None:
    assert parse_duration("15m") == 900_000 and parse_duration("1d") == 86_400_000
    assert parse_time("2026-01-01T00:00:00Z") == 1_767_225_600_000
    for bad in ("0h", "1w", "soon"):
        with pytest.raises(SimulationInputError):
            parse_duration(bad)
    with pytest.raises(SimulationInputError, match="no UTC offset"):
        parse_time("2026-01-01T00:00:00")
