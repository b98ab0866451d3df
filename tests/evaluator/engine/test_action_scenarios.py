"""Actions and conditions as stories: channels, CRM, exports, approvals, who matches."""

from __future__ import annotations

from typing import Any

from signalbox.evaluator.engine import (
    CrmCommand,
    EmailCommand,
    ExportCommand,
    Profile,
    SmsCommand,
    WebhookCommand,
    approval_id,
    command_id,
)
from tests.evaluator.engine.story import FAILED, Story, automation, brief, day, message, variables

TEAMS = """
teams:
  finance: finance@example.com
  ops: {email: ops@example.com, phone: "+4930123456", webhook: ops-hook}
"""


def test_scenario_every_channel_of_an_automation_in_order_with_deterministic_ids() -> None:
    story = Story(TEAMS + """
automations:
  - id: everything
    version: 3
    critical: true
    trigger: {type: payment.failed}
    actions:
      - {type: email, template: payment_failed}
      - {type: sms, template: payment_failed}
      - {type: alert, team: ops, via: sms, template: payment_failed_alert}
      - {type: alert, team: ops, via: webhook, event: payment.failed}
      - {type: crm, operation: add_tag, params: {tag: dunning}}
      - {type: crm, operation: move_stage, params: {pipeline: collections, stage: new}}
      - {type: webhook, endpoint: billing-hook, event: customer.payment_failed}
      - {type: export, target: finance-sftp, format: csv,
         fields: [customer_id, payment_id, amount_minor, currency]}
""")
    commands = story.event("payment.failed", day(1), event_id="evt-9", **FAILED)
    assert [c.action_index for c in commands] == list(range(8))
    assert [c.command_id for c in commands] == [
        command_id("everything", 3, "cus-1", "evt-9", i) for i in range(8)]
    assert all(c.critical and c.customer_timezone == "Europe/Berlin" for c in commands)
    email, sms, team_sms, team_hook, tag, stage, hook, export = (c.action for c in commands)
    assert isinstance(email, EmailCommand) and email.to == ("ada@example.com",)
    assert email.locale == "en-GB" and email.audience == "customer"
    assert isinstance(sms, SmsCommand) and sms.to == ("+4915112345678",)
    assert sms.audience == "customer"
    assert isinstance(team_sms, SmsCommand) and team_sms.to == ("+4930123456",)
    assert team_sms.audience == "internal"
    assert isinstance(team_hook, WebhookCommand) and team_hook.endpoint == "ops-hook"
    assert isinstance(tag, CrmCommand) and tag.params == {"tag": "dunning"}
    assert isinstance(stage, CrmCommand) and stage.operation == "move_stage"
    assert isinstance(hook, WebhookCommand)
    assert (hook.endpoint, hook.event) == ("billing-hook", "customer.payment_failed")
    assert hook.variables["amount_minor"] == "4900"
    assert isinstance(export, ExportCommand)
    assert export.record == {"customer_id": "cus-1", "payment_id": "p", "amount_minor": "4900",
                             "currency": "EUR"}
    assert export.filename == "{{ command_id }}.csv"
    assert story.state is not None and story.state.tags == ("dunning",)


def test_scenario_customer_without_phone_still_gets_a_command_to_settle() -> None:
    story = Story.of(automation("text", "{type: payment.failed}",
                                "{type: sms, template: payment_failed}"),
                     profile=Profile(email="a@example.com"))
    [sms] = story.event("payment.failed", day(1), **FAILED)
    assert sms.action.channel == "sms" and message(sms).to == ()  # dispatcher: suppressed


APPROVAL = TEAMS + """
automations:
  - id: suspend
    trigger: {type: payment.failed, min_failures: 2}
    actions:
      - {type: email, template: payment_failed}
      - type: approval
        team: finance
        actions:
          - {type: crm, operation: add_tag, params: {tag: suspended}}
          - {type: email, template: account_suspended}
"""


def test_scenario_approval_holds_actions_until_approved() -> None:
    story = Story(APPROVAL)
    story.event("payment.failed", day(1), **FAILED)
    commands = story.event("payment.failed", day(2), event_id="evt-f2", **FAILED)
    assert brief(commands) == [("suspend", "payment_failed", day(2))]  # the rest waits
    [request] = story.approvals
    assert request.approval_id == approval_id("suspend", 1, "cus-1", "evt-f2", 1)
    assert request.customer_id == "cus-1" and request.team == "finance"
    assert request.requested_at == day(2)
    assert request.trigger.type == "payment.failed"
    assert request.summary == ("suspend: crm add_tag (tag=suspended); email "
                               "'account_suspended' to ada@example.com")
    assert request.command_ids == (command_id("suspend", 1, "cus-1", "evt-f2", 1),
                                   command_id("suspend", 1, "cus-1", "evt-f2", 2))
    assert story.state is not None and list(story.state.approvals) == [request.approval_id]
    assert story.state.tags == ()  # held: no effect yet
    released = story.event("approval.decided", day(3), approval_id=request.approval_id,
                           decision="approved", decided_by="bob", reason=None)
    assert [c.command_id for c in released] == list(request.command_ids)
    state = story.state
    assert state is not None and state.tags == ("suspended",)  # now, not before
    assert released[0].issued_at == day(2)  # as decided on day 2, held until approved
    assert state.approvals == {}
    again = story.event("approval.decided", day(4), approval_id=request.approval_id,
                        decision="approved", decided_by="bob", reason=None)
    assert again == []  # a second decision changes nothing


def test_scenario_an_approval_rejected_sends_nothing() -> None:
    story = Story(APPROVAL)
    story.event("payment.failed", day(1), **FAILED)
    story.event("payment.failed", day(2), **FAILED)
    [request] = story.approvals
    rejected = story.event("approval.decided", day(3), approval_id=request.approval_id,
                           decision="rejected", decided_by="bob", reason="VIP")
    assert rejected == []
    assert story.state is not None and story.state.approvals == {}
    assert story.state.tags == ()  # the held add_tag did not happen either
    assert story.event("approval.decided", day(4), approval_id=request.approval_id,
                       decision="approved", decided_by="eve", reason=None) == []


def test_scenario_approval_decided_can_itself_trigger_automations() -> None:
    story = Story.of(automation("audit", "{type: approval.decided, decision: rejected}",
                                "{type: crm, operation: add_note,"
                                ' params: {body: "Rejected by {{ decided_by }}"}}'))
    [note] = story.event("approval.decided", day(1), approval_id="apr-x", decision="rejected",
                         decided_by="bob", reason=None)
    assert variables(note)["decided_by"] == "bob"


def test_scenario_conditions_tags_segments_plans_and_exemptions() -> None:
    story = Story("""
automations:
  - id: offer
    trigger: {type: system.notification}
    conditions:
      plans: [gold]
      segments: [smb]
      tags: {none: [churned]}
      exempt: {customers: [cus-vip]}
    actions: [{type: email, template: offer}]
""")
    note: dict[str, Any] = {"code": "quota", "message": "m", "severity": "info"}
    story.event("customer.signed_up", day(0), plan="gold")
    assert story.event("system.notification", day(1), **note) == []  # no segment yet
    assert len(story.event("system.notification", day(2), attributes={"segments": "smb,eu"},
                           **note)) == 1
    story.event("system.notification", day(3), attributes={"tags": "churned"}, **note)
    assert story.event("system.notification", day(4), **note) == []
    vip = Story(story_body(story), customer="cus-vip")
    vip.event("customer.signed_up", day(0), plan="gold", attributes={"segments": "smb"})
    assert vip.event("system.notification", day(1), **note) == []


def story_body(story: Story) -> str:
    return """
automations:
  - id: offer
    trigger: {type: system.notification}
    conditions: {plans: [gold], segments: [smb], exempt: {customers: [cus-vip]}}
    actions: [{type: email, template: offer}]
"""


def test_scenario_active_subscription_and_product_conditions() -> None:
    story = Story.of(automation("nudge", "{type: user.logged_in}", "{type: email, template: nudge}",
                                conditions="{active_subscription: true, products: [pro]}"),
                     automation("win-back", "{type: user.logged_in}",
                                "{type: email, template: win_back}",
                                conditions="{active_subscription: false}"))
    assert brief(story.event("user.logged_in", day(1), user_id=None)) == [
        ("win-back", "win_back", day(1))]
    story.event("subscription.started", day(2), subscription_id="s", product="pro",
                kind="subscription", ends_at=None, trial_ends_at=None)
    assert brief(story.event("user.logged_in", day(3), user_id=None)) == [
        ("nudge", "nudge", day(3))]
    story.event("subscription.cancelled", day(4), subscription_id="s", product="pro",
                kind="subscription", ends_at=None, cancelled_by="customer", reason=None)
    assert brief(story.event("user.logged_in", day(5), user_id=None)) == [
        ("win-back", "win_back", day(5))]


def test_scenario_state_comparisons() -> None:
    story = Story.of(automation("loyal-refund", "{type: payment.refunded}",
                                "{type: alert, team: finance, template: refund_review}",
                                conditions='{where: [{field: state.score, op: ">=", value: 100},'
                                ' {field: amount_minor, op: "<", value: 10000},'
                                " {field: currency, op: in, value: [EUR, USD]}]}"))
    refund: dict[str, Any] = {"payment_id": "p", "refund_id": "r", "product": None, "reason": None}
    assert story.event("payment.refunded", day(1), amount_minor=500, currency="EUR",
                       **refund) == []
    story.event("score.adjusted", day(2), delta=150, reason=None)
    assert len(story.event("payment.refunded", day(3), amount_minor=500, currency="EUR",
                           **refund)) == 1
    assert story.event("payment.refunded", day(4), amount_minor=50000, currency="EUR",
                       **refund) == []
    assert story.event("payment.refunded", day(5), amount_minor=500, currency="GBP",
                       **refund) == []


def test_scenario_disabled_automation_does_nothing() -> None:
    story = Story("""
automations:
  - id: switched-off
    enabled: false
    trigger: {type: payment.failed}
    actions: [{type: email, template: x}]
  - id: timer-off
    enabled: false
    trigger: {type: no_login, days: 1}
    actions: [{type: email, template: x}]
""")
    assert story.event("payment.failed", day(1), **FAILED) == []
    assert story.advance(day(30)) == []
