"""The automation file format: valid files load; invalid ones are rejected whole."""

from __future__ import annotations

from pathlib import Path

import pytest

from signalbox.common import schemas
from signalbox.evaluator.engine import (
    AlertAction,
    ApprovalAction,
    AutomationError,
    Comparison,
    CrmAction,
    EmailAction,
    ExportAction,
    ScoreAction,
    SmsAction,
    Team,
    WebhookAction,
    load_automations,
    parse_automations,
)
from signalbox.evaluator.engine.triggers import known_triggers
from signalbox.evaluator.main import default_automations_path

TYPES = schemas.event_types()
TEMPLATES = Path(__file__).parents[2] / "services" / "defaults" / "templates"


def errors_of(text: str, teams: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(AutomationError) as info:
        parse_automations(text, TYPES, teams, source="rules.yaml")
    assert str(info.value).startswith("rules.yaml: ")
    return info.value.errors


def one(automation_yaml: str, teams: str = "") -> list[str]:
    """Errors of a file with one automation (indented under ``automations:``)."""
    return errors_of(f"format: signalbox/automations@2\n{teams}automations:\n{automation_yaml}")


def test_the_shipped_default_file_loads_and_its_templates_exist() -> None:
    loaded = load_automations(default_automations_path(), TYPES, {"finance": "f@example.com"})
    by_id = {a.id: a for a in loaded.automations}
    pro = by_id["payment-failed-pro"]
    assert pro.trigger.filters == {"product": ("pro",)}
    assert pro.actions == (
        EmailAction(template="payment_failed"),
        AlertAction(team="finance", template="payment_failed_alert"),
    )
    assert by_id["past-due-dunning"].trigger.params == {"days": (14, 30)}
    for automation in loaded.automations:
        for action in automation.actions:
            if isinstance(action, EmailAction | AlertAction):
                assert (TEMPLATES / "email" / f"{action.template}.subject.j2").is_file()
                assert (TEMPLATES / "email" / f"{action.template}.txt.j2").is_file()
            if isinstance(action, SmsAction):
                assert (TEMPLATES / "sms" / f"{action.template}.txt.j2").is_file()


def test_format_1_files_are_still_read() -> None:
    loaded = parse_automations("""
format: signalbox/automations@1
automations:
  - {id: a, trigger: {type: payment.failed, product: pro}, actions: [{type: email, template: x}]}
""", TYPES)
    assert loaded.automations[0].trigger.filters == {"product": ("pro",)}


def test_teams_in_the_file_extend_the_configured_directory() -> None:
    loaded = parse_automations(
        "format: signalbox/automations@2\n"
        "teams: {sales: s@example.com, ops: {email: o@example.com, phone: '+4930123456',"
        " webhook: ops-hook}}\nautomations: []\n",
        TYPES, {"finance": "f@example.com"})
    assert loaded.teams == {"finance": Team("f@example.com"), "sales": Team("s@example.com"),
                            "ops": Team("o@example.com", "+4930123456", "ops-hook")}


def test_every_problem_is_reported_with_its_place() -> None:
    errors = errors_of("""
format: signalbox/automations@2
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
        + ", ".join(known_triggers(TYPES)) + ")",
        "automations[1] (id=ok-1): actions: expected a non-empty list",
        "automations[2] (id=ok-2): trigger.product: expected a string or a list of strings, "
        "got 3",
        "automations[2] (id=ok-2): actions[0].team: unknown team 'nobody' (known: -)",
        "automations[2] (id=ok-2): actions[1].type: unknown action 'fax' (known: adjust_score, "
        "alert, approval, crm, email, export, sms, webhook)",
        "automations[2] (id=ok-2): actions[2].to: expected 'customer' or email address(es), "
        "got ['not-an-address']",
        "automations[2] (id=ok-2): actions[3].template: expected a template name",
        "automations[3] (id=ok-2): unknown field(s) colour",
    ]


def test_trigger_parameters_are_checked_and_defaulted() -> None:
    loaded = parse_automations("""
format: signalbox/automations@2
automations:
  - {id: a, trigger: {type: past_due}, actions: [{type: email, template: x}]}
  - {id: b, trigger: {type: usage.threshold_met, metric: api_calls, levels: [100, 50]},
     actions: [{type: email, template: x}]}
  - {id: c, trigger: {type: feedback.submitted, rating: [unhappy, not_happy]},
     actions: [{type: email, template: x}]}
  - {id: d, trigger: {type: payment.failed, min_failures: 3}, actions: [{type: email, template: x}]}
""", TYPES)
    a, b, c, d = loaded.automations
    assert a.trigger.params == {"days": (14, 30)} and a.trigger.is_time
    assert b.trigger.params == {"metric": "api_calls", "levels": (50, 100)}
    assert c.trigger.filters == {"rating": ("unhappy", "not_happy")}
    assert d.trigger.params == {"min_failures": 3}
    assert [x.id for x in loaded.timed] == ["a"]
    assert one("""  - id: x
    trigger: {type: past_due, days: [14, 0], hours: 3}
    actions: [{type: email, template: x}]
  - id: y
    trigger: {type: feature.used_minutes}
    actions: [{type: email, template: x}]
  - id: z
    trigger: {type: invoice.issued, amount_minor: "5"}
    actions: [{type: email, template: x}]
""") == [
        "automations[0] (id=x): trigger.days: expected a whole number from 1 to 3650, got 0",
        "automations[0] (id=x): trigger.hours: unknown parameter for past_due (known: days)",
        "automations[1] (id=y): trigger.minutes: required for feature.used_minutes",
        "automations[2] (id=z): trigger.amount_minor: unknown parameter for invoice.issued "
        "(known: currency, invoice_id, product)",
    ]


def test_conditions_parse_and_errors_name_the_field() -> None:
    loaded = parse_automations("""
format: signalbox/automations@2
automations:
  - id: a
    trigger: {type: invoice.issued}
    conditions:
      products: pro
      tags: {any: [vip], none: [churned]}
      active_subscription: true
      where:
        - {field: amount_minor, op: ">=", value: 10000}
        - {field: attributes.country, op: in, value: [DE, AT]}
      exempt: {customers: [cus_1]}
    actions: [{type: email, template: x}]
""", TYPES)
    c = loaded.automations[0].conditions
    assert (c.products, c.tags_any, c.tags_none, c.active_subscription, c.exempt_customers) == \
        (("pro",), ("vip",), ("churned",), True, ("cus_1",))
    assert c.where == (Comparison("amount_minor", ">=", 10000),
                       Comparison("attributes.country", "in", ("DE", "AT")))
    assert one("""  - id: a
    trigger: {type: invoice.issued}
    conditions:
      colour: red
      active_subscription: maybe
      where: [{field: state.mood, op: "~", value: 1}, {field: x}]
    actions: [{type: email, template: x}]
""") == [
        "automations[0] (id=a): conditions: unknown condition(s) colour (known: products, "
        "plans, tags, segments, active_subscription, where, exempt)",
        "automations[0] (id=a): conditions.active_subscription: expected true or false, "
        "got 'maybe'",
        "automations[0] (id=a): conditions.where[0].field: unknown state field 'state.mood' "
        "(known: state.score, state.balance_minor, state.past_due_minor, state.health, "
        "state.account_status, state.active_subscriptions, state.open_invoices, "
        "state.failed_payments, state.tags)",
        "automations[0] (id=a): conditions.where[0].op: unknown operator '~' (known: ==, !=, "
        "<, <=, >, >=, in, not_in)",
        "automations[0] (id=a): conditions.where[1]: expected a mapping with field, op and value",
    ]


def test_every_action_type_parses() -> None:
    loaded = parse_automations("""
format: signalbox/automations@2
teams: {ops: {email: o@example.com, phone: "+4930123456", webhook: ops-hook}}
automations:
  - id: a
    critical: true
    trigger: {type: past_due}
    actions:
      - {type: sms, to: customer, template: t}
      - {type: alert, team: ops, via: sms, template: t}
      - {type: alert, team: ops, via: webhook, event: customer.past_due}
      - {type: crm, operation: move_stage, params: {pipeline: collections, stage: late}}
      - {type: webhook, endpoint: billing-hook, event: customer.past_due}
      - {type: export, target: finance-sftp, format: jsonl, fields: [customer_id, days]}
      - {type: adjust_score, delta: -50}
      - type: approval
        team: ops
        summary: Suspend the account
        actions:
          - {type: crm, operation: add_tag, params: {tag: suspended}}
""", TYPES)
    a = loaded.automations[0]
    assert a.critical
    assert a.actions == (
        SmsAction("t"),
        AlertAction("ops", "t", "sms"),
        AlertAction("ops", "customer.past_due", "webhook"),
        CrmAction("move_stage", {"pipeline": "collections", "stage": "late"}),
        WebhookAction("billing-hook", "customer.past_due"),
        ExportAction("finance-sftp", "jsonl", ("customer_id", "days"), "{{ command_id }}.jsonl"),
        ScoreAction(-50),
        ApprovalAction((CrmAction("add_tag", {"tag": "suspended"}),), "ops",
                       "Suspend the account"),
    )


def test_action_errors() -> None:
    assert one("""  - id: a
    trigger: {type: past_due}
    actions:
      - {type: alert, team: finance, via: sms, template: t}
      - {type: crm, operation: add_tag, params: {colour: red}}
      - {type: crm, operation: fly}
      - {type: export, target: t, format: xml, fields: []}
      - {type: adjust_score, delta: 0}
      - {type: approval, actions: [{type: approval, actions: []}]}
      - {type: sms, to: ["0301234"], template: t}
      - {type: email, template: t, subject: hi}
""", "teams: {finance: f@example.com}\n") == [
        "automations[0] (id=a): actions[0].via: team 'finance' has no phone",
        "automations[0] (id=a): actions[1].params: add_tag needs tag; missing tag; "
        "unknown colour",
        "automations[0] (id=a): actions[2].operation: unknown operation 'fly' (known: add_tag, "
        "remove_tag, move_stage, create_task, create_opportunity, update_field, add_note)",
        "automations[0] (id=a): actions[3].format: expected csv or jsonl, got 'xml'",
        "automations[0] (id=a): actions[3].fields: expected a list of distinct variable "
        "names, got []",
        "automations[0] (id=a): actions[4].delta: expected a non-zero whole number, got 0",
        "automations[0] (id=a): actions[5].actions[0].type: an approval cannot hold "
        "'approval' actions",
        "automations[0] (id=a): actions[6].to: expected 'customer' or E.164 number(s), "
        "got ['0301234']",
        "automations[0] (id=a): actions[7]: unknown field(s) subject for a email action",
    ]


def test_format_and_shape_errors() -> None:
    assert errors_of("automations: []") == [
        "format: expected 'signalbox/automations@1' or 'signalbox/automations@2', got None"]
    assert errors_of("- a list") == ["expected a mapping with 'format' and 'automations'"]
    assert errors_of("format: signalbox/automations@2\nautomations: {}") == [
        "automations: expected a list"]
    assert errors_of("format: [unclosed")[0].startswith("not valid YAML: ")
    assert errors_of("format: signalbox/automations@2\nteams: {x: {phone: '123'}}\n"
                     "automations: []") == [
        "teams.x.phone: expected an E.164 number like +4930123456, got '123'"]


def test_duplicate_ids_are_rejected() -> None:
    errors = errors_of("""
format: signalbox/automations@2
automations:
  - {id: a, trigger: {type: payment.failed}, actions: [{type: email, template: x}]}
  - {id: a, trigger: {type: payment.failed}, actions: [{type: email, template: y}]}
""")
    assert errors == ["automations[1] (id=a): id: duplicate id 'a'"]


def test_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(AutomationError, match="cannot read"):
        load_automations(tmp_path / "missing.yaml", TYPES)
