"""The automation file format: valid files load; invalid ones are rejected whole."""

from __future__ import annotations

from pathlib import Path

import pytest

from signalbox.common import schemas
from signalbox.evaluator.engine import (
    AlertAction,
    AutomationError,
    EmailAction,
    load_automations,
    parse_automations,
)
from signalbox.evaluator.main import default_automations_path

TYPES = schemas.event_types()


def errors_of(text: str, teams: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(AutomationError) as info:
        parse_automations(text, TYPES, teams, source="rules.yaml")
    assert str(info.value).startswith("rules.yaml: ")
    return info.value.errors


def test_the_shipped_default_file_loads() -> None:
    loaded = load_automations(default_automations_path(), TYPES, {"finance": "f@example.com"})
    [automation] = loaded.automations
    assert automation.id == "payment-failed-pro"
    assert automation.trigger.filters == {"product": "pro"}
    assert automation.actions == (
        EmailAction(template="payment_failed"),
        AlertAction(team="finance", template="payment_failed_alert"),
    )


def test_teams_in_the_file_extend_the_configured_directory() -> None:
    loaded = parse_automations(
        "format: signalbox/automations@1\nteams: {sales: s@example.com}\nautomations: []\n",
        TYPES, {"finance": "f@example.com"})
    assert loaded.teams == {"finance": "f@example.com", "sales": "s@example.com"}


def test_every_problem_is_reported_with_its_place() -> None:
    errors = errors_of("""
format: signalbox/automations@1
automations:
  - id: Bad Id
    trigger: {type: payment.failed}
    actions: [{type: email, template: x}]
  - id: ok-1
    version: 0
    trigger: {type: payment.exploded, colour: red}
    actions: []
  - id: ok-2
    trigger: {type: payment.failed, product: 3}
    actions:
      - {type: alert, team: nobody, template: x}
      - {type: fax, template: x}
      - {type: email, to: [not-an-address], template: x}
      - {type: email}
  - id: ok-2
    trigger: {type: payment.failed}
    actions: [{type: email, template: x}]
    colour: blue
""")
    assert errors == [
        "automations[0] (id=Bad Id): id: expected lowercase letters, digits, '.', '_' or '-'",
        "automations[1] (id=ok-1): version: expected a positive integer, got 0",
        "automations[1] (id=ok-1): trigger.type: unknown trigger 'payment.exploded' (known: "
        + ", ".join(sorted(TYPES)) + ")",
        "automations[1] (id=ok-1): actions: expected a non-empty list",
        "automations[2] (id=ok-2): trigger.product: expected a string, got 3",
        "automations[2] (id=ok-2): actions[0].team: unknown team 'nobody' (known: -)",
        "automations[2] (id=ok-2): actions[1].type: unknown action 'fax' (known: alert, email)",
        "automations[2] (id=ok-2): actions[2].to: expected 'customer' or email address(es), "
        "got ['not-an-address']",
        "automations[2] (id=ok-2): actions[3].template: expected a template name",
        "automations[3] (id=ok-2): unknown field(s) colour",
    ]


def test_format_and_shape_errors() -> None:
    assert errors_of("automations: []") == [
        "format: expected 'signalbox/automations@1', got None"]
    assert errors_of("- a list") == ["expected a mapping with 'format' and 'automations'"]
    assert errors_of("format: signalbox/automations@1\nautomations: {}") == [
        "automations: expected a list"]
    assert errors_of("format: [unclosed")[0].startswith("not valid YAML: ")


def test_duplicate_ids_are_rejected() -> None:
    errors = errors_of("""
format: signalbox/automations@1
automations:
  - {id: a, trigger: {type: payment.failed}, actions: [{type: email, template: x}]}
  - {id: a, trigger: {type: payment.failed}, actions: [{type: email, template: y}]}
""")
    assert errors == ["automations[1] (id=a): id: duplicate id 'a'"]


def test_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(AutomationError, match="cannot read"):
        load_automations(tmp_path / "missing.yaml", TYPES)
