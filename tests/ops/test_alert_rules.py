"""The alert rules are valid, unit-tested with promtool, and each has a runbook section."""

from __future__ import annotations

import re
from collections import defaultdict

from tests.ops.promtools import (
    OPERATIONS,
    RULE_TESTS,
    RULES,
    alert_rules,
    promtool,
    rule_test_cases,
)


def test_rules_file_is_valid_for_promtool() -> None:
    done = promtool("check", "rules", str(RULES))
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"SUCCESS: {len(alert_rules())} rules found" in done.stdout


def test_promtool_unit_tests_of_the_rules_pass() -> None:
    assert RULE_TESTS, "no promtool test files in deploy/prometheus/tests"
    done = promtool("test", "rules", *(str(p) for p in RULE_TESTS))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "FAILED" not in done.stdout


def test_every_alert_has_a_firing_case_and_a_silent_case() -> None:
    """A case with exp_alerts proves it fires (labels and annotations checked); one without
    proves the conditions around it do not page."""
    firing: dict[str, list[str]] = defaultdict(list)
    silent: dict[str, list[str]] = defaultdict(list)
    for name, case in rule_test_cases():
        (firing if case.get("exp_alerts") else silent)[case["alertname"]].append(name)
    names = [rule["alert"] for rule in alert_rules()]
    assert not [n for n in names if not firing[n]], "alerts never seen firing in a test"
    assert not [n for n in names if not silent[n]], "alerts never checked to stay silent"
    assert set(firing) | set(silent) <= set(names), "test cases for alerts that do not exist"


def _anchor(heading: str) -> str:
    """The anchor a Markdown renderer (GitHub's rules) gives a heading."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_every_alert_names_its_runbook_section_in_operations_md() -> None:
    """...and the summary table at the top of the runbooks lists the rules as they are."""
    text = OPERATIONS.read_text()
    anchors = {_anchor(m) for m in re.findall(r"^#+ (.+)$", text, re.M)}
    table = re.findall(r"^\| \[(\w+)\]\(#(\w+)\) \| (\w+) \|", text, re.M)
    assert table == [(r["alert"], r["alert"].lower(), r["labels"]["severity"])
                     for r in alert_rules()], "the alert table differs from the rules"
    for rule in alert_rules():
        annotations = rule["annotations"]
        assert {"summary", "description", "runbook"} <= set(annotations), rule["alert"]
        assert rule["labels"]["severity"] in {"critical", "warning"}, rule["alert"]
        path, _, anchor = annotations["runbook"].partition("#")
        assert path == "docs/operations.md" and anchor == rule["alert"].lower(), rule["alert"]
        assert anchor in anchors, f"docs/operations.md has no section '{rule['alert']}'"
