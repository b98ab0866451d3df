"""File and topic definitions merged into one validated set (pure)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from signalbox.common import schemas
from signalbox.evaluator.definitions import (
    AUTOMATION,
    TEAMS,
    TEAMS_KEY,
    Change,
    Definitions,
    Stored,
    apply_changes,
    from_file,
)
from signalbox.evaluator.publish import plan
from tests.support.templates import templates_check

FILE = """
format: signalbox/automations@1
teams: {finance: finance@example.com}
automations:
  - id: pf-pro
    version: 1
    trigger: {type: payment.failed, product: pro}
    actions:
      - {type: email, to: customer, template: payment_failed}
      - {type: alert, team: finance, via: email, template: payment_failed_alert}
"""

#: No automations yet, checked against the test templates too.
EMPTY = Definitions(schemas.event_types(), templates=templates_check())


def automation(aid: str, version: int = 1, **extra: Any) -> dict[str, Any]:
    return {"id": aid, "version": version, "trigger": {"type": "payment.failed"},
            "actions": [{"type": "email", "to": "customer", "template": "t"}], **extra}


def stored(aid: str, definition: dict[str, Any] | None = None, kind: str = AUTOMATION,
           ) -> Stored:
    return Stored(aid, kind, definition if definition is not None else automation(aid), 1, "me")


def file_defs() -> Definitions:
    return from_file(FILE, "a.yaml", schemas.event_types(), {}, templates_check())


def ids(defs: Definitions) -> dict[str, str]:
    return {aid: origin for aid, (origin, _) in defs.effective().items()}


def test_topic_entries_override_the_file_by_id_and_a_tombstone_brings_the_file_back() -> None:
    defs = file_defs()
    override = stored("pf-pro", automation("pf-pro", version=2))
    defs, built, rejected = apply_changes(defs, [Change("pf-pro", override),
                                                 Change("other", stored("other"))])
    assert rejected == [] and built is not None
    assert ids(defs) == {"other": "topic", "pf-pro": "topic"}
    assert {a.id: a.version for a in built.automations} == {"other": 1, "pf-pro": 2}

    defs, built, _ = apply_changes(defs, [Change("pf-pro", None)])
    assert built is not None
    assert {a.id: a.version for a in built.automations} == {"other": 1, "pf-pro": 1}
    assert ids(defs)["pf-pro"] == "file"


def test_an_invalid_record_is_rejected_whole_and_the_rest_of_the_batch_applies() -> None:
    defs = file_defs()
    bad = stored("bad", {**automation("bad"), "trigger": {"type": "payment.exploded"}})
    defs, built, rejected = apply_changes(defs, [Change("bad", bad),
                                                 Change("good", stored("good"))])
    assert built is not None and {a.id for a in built.automations} == {"good", "pf-pro"}
    [r] = rejected
    assert r.key == "bad" and "payment.exploded" in r.errors[0]
    assert "bad" not in defs.topic


def test_a_change_that_breaks_another_automation_is_rejected_and_the_set_stays() -> None:
    teams = stored(TEAMS_KEY, {"ops": "ops@example.com"}, kind=TEAMS)
    alert = automation("alerting")
    alert["actions"] = [{"type": "alert", "team": "ops", "template": "t"}]
    defs, built, rejected = apply_changes(EMPTY,
                                          [Change(TEAMS_KEY, teams),
                                           Change("alerting", stored("alerting", alert))])
    assert rejected == [] and built is not None  # the team arrived earlier in the batch
    before = built

    no_ops = stored(TEAMS_KEY, {"finance": "f@example.com"}, kind=TEAMS)
    after, built, rejected = apply_changes(defs, [Change(TEAMS_KEY, no_ops)])
    assert built is None and after == defs
    assert [r.key for r in rejected] == [TEAMS_KEY]
    assert "unknown team 'ops'" in rejected[0].errors[0]
    assert before.teams["ops"].email == "ops@example.com"


def test_a_definition_whose_id_is_not_its_key_is_rejected() -> None:
    _, built, rejected = apply_changes(EMPTY,
                                       [Change("x", stored("x", automation("y")))])
    assert built is None
    assert rejected[0].errors == ("id: the definition's id 'y' is not the key 'x'",)


def test_apply_plan_writes_only_what_changed_and_prunes_on_request() -> None:
    file = file_defs()
    topic = replace(EMPTY, topic={
        "pf-pro": stored("pf-pro", dict(file.file_automations["pf-pro"])),
        "stale": stored("stale")})
    p = plan(topic, file, prune=False, by="ci", at=5)
    assert p.unchanged == ("pf-pro",) and p.created == (TEAMS_KEY,) and p.delete == ()
    assert [s.id for s in p.put] == [TEAMS_KEY]

    changed = {**file.file_automations["pf-pro"], "version": 2}
    file2 = Definitions(file.event_types, file_automations={"pf-pro": changed})
    p = plan(topic, file2, prune=True, by="ci", at=5)
    assert p.updated == ("pf-pro",) and p.delete == ("stale",)
    assert p.put[0].definition["version"] == 2 and p.put[0].updated_by == "ci"
