"""Templates are checked when an automation is applied (issue 10, item 4).

A template an automation names must exist for each channel it is sent on and each
locale variant the recipient may get, and read only variables its trigger provides;
otherwise every send would fail at the dispatcher and land in the DLQ.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from signalbox.common import schemas
from signalbox.dispatcher.templates import TemplateStore
from signalbox.evaluator.definitions import Change, Stored, checked, from_file
from signalbox.evaluator.engine import CATALOGUE, AutomationError
from signalbox.evaluator.engine.template_variables import provided
from signalbox.evaluator.main import default_automations_path
from signalbox.evaluator.template_check import TemplateCheck, sent_templates

EVENT_TYPES = schemas.event_types()
TEAMS = {"finance": "finance@example.com"}


def problems(actions: str, trigger: str = "payment.failed",
             templates: TemplateCheck | None = None) -> list[str]:
    text = (f"format: signalbox/automations@2\nautomations:\n  - id: a1\n"
            f"    trigger: {{type: {trigger}}}\n    actions: {actions}\n")
    try:
        checked(text, EVENT_TYPES, TEAMS, "rules.yaml", templates or TemplateCheck())
    except AutomationError as exc:
        assert exc.source == "rules.yaml"
        return exc.errors
    return []


def write(root: Path, files: dict[str, str]) -> TemplateCheck:
    for name, body in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(body, "utf-8")
    return TemplateCheck([root])


def test_a_template_that_does_not_exist_is_refused_with_where_what_and_why() -> None:
    [error] = problems("[{type: email, to: customer, template: welcome}]", "customer.signed_up")
    assert error == ("automation a1: actions[0] (email to the customer): template 'welcome': "
                     "email/welcome.subject: not found (looked for email/welcome.subject.j2) "
                     "in the built-in templates; every locale falls back to it, so the "
                     "message could not be sent")
    [sms] = problems("[{type: sms, to: customer, template: welcome}]", "customer.signed_up")
    assert "sms/welcome.txt: not found (looked for sms/welcome.txt.j2)" in sms


def test_a_variable_the_trigger_does_not_provide_is_refused() -> None:
    # the cases: payment_failed_alert on a refund, the SMS payment_failed on a signup
    errors = problems("[{type: alert, team: finance, via: email, "
                      "template: payment_failed_alert}]", "payment.refunded")
    assert errors and all("'failed_count'" in e and "a payment.refunded trigger does not "
                          "provide it" in e for e in errors)
    assert errors[0].startswith("automation a1: actions[0] (alert to team finance via email): "
                                "template 'payment_failed_alert': "
                                "email/payment_failed_alert.subject uses 'failed_count'")
    [sms] = problems("[{type: sms, to: customer, template: payment_failed}]",
                     "customer.signed_up")
    assert "sms/payment_failed.txt uses 'amount_minor', 'currency', 'product'" in sms
    assert problems("[{type: alert, team: finance, template: payment_failed_alert}]") == []


def test_held_actions_of_an_approval_are_checked_with_their_path() -> None:
    [error] = problems("[{type: approval, actions: [{type: crm, operation: add_tag, "
                       "params: {tag: x}}, {type: email, template: nope}]}]")
    assert error.startswith("automation a1: actions[0].actions[1] (email to the customer): "
                            "template 'nope'")


def test_every_locale_variant_a_customer_may_get_is_checked(tmp_path: Path) -> None:
    check = write(tmp_path, {
        "email/hello.subject.j2": "Hello {{ customer_name }}",
        "email/hello.txt.j2": "Your plan: {{ plan }}",
        "email/hello.de.txt.j2": "Ihr Tarif: {{ plan }} ({{ tarif }})",
        "email/hello.de-AT.subject.j2": "Servus {{ customer_name }}",
    })
    [error] = problems("[{type: email, to: customer, template: hello}]", "customer.signed_up",
                       check)
    assert "email/hello.txt for locale de uses 'tarif'" in error
    # internal mail is rendered without a locale: only the unlocalised files are used
    assert problems("[{type: email, to: [ops@example.com], template: hello}]",
                    "customer.signed_up", check) == []


def test_a_template_only_in_some_locales_is_refused(tmp_path: Path) -> None:
    check = write(tmp_path, {"email/hallo.de.subject.j2": "Hallo",
                             "email/hallo.de.txt.j2": "Hallo"})
    [error] = problems("[{type: email, template: hallo}]", "customer.signed_up", check)
    assert "email/hallo.subject: not found (looked for email/hallo.subject.j2) in " \
           f"SIGNALBOX_TEMPLATES_DIR ({tmp_path}) or the built-in templates" in error


def test_included_templates_and_syntax_errors(tmp_path: Path) -> None:
    check = write(tmp_path, {
        "email/inc.subject.j2": "Hi",
        "email/inc.txt.j2": "Hi\n{% include 'email/_footer.txt.j2' %}",
        "email/_footer.txt.j2": "{{ footer_text }}",
        "email/bad.subject.j2": "Hi {{ customer_name",
        "email/bad.txt.j2": "Hi",
    })
    [included] = problems("[{type: email, template: inc}]", "customer.signed_up", check)
    assert "email/inc.txt uses 'footer_text'" in included
    [syntax] = problems("[{type: email, template: bad}]", "customer.signed_up", check)
    assert "email/bad.subject: syntax error at line 1" in syntax


def test_attributes_and_action_variables(tmp_path: Path) -> None:
    check = write(tmp_path, {"sms/attr.txt.j2": "{{ attr_plan_tier }}",
                             "sms/team.txt.j2": "for {{ team }}"})
    assert problems("[{type: sms, template: attr}]", "payment.failed", check) == []
    [timed] = problems("[{type: sms, template: attr}]", "no_login", check)
    assert "'attr_plan_tier', but a no_login trigger does not provide it; time triggers " \
           "carry no event attributes" in timed
    text = ("format: signalbox/automations@2\nteams: {ops: {phone: '+4930123456'}}\n"
            "automations:\n  - id: a1\n"
            "    trigger: {type: no_login}\n    actions: [{type: alert, team: ops, via: sms, "
            "template: team}]\n")
    checked(text, EVENT_TYPES, {}, "x.yaml", check)
    [plain] = problems("[{type: sms, template: team}]", "no_login", check)
    assert "uses 'team'" in plain


def test_the_topic_path_refuses_a_template_mistake_alone() -> None:
    """PUT and `automations apply` write to the topic; the evaluators validate each record
    through the same check (admin PUT validates it before writing)."""
    file = from_file("format: signalbox/automations@2\nautomations: []\n", "f.yaml",
                     EVENT_TYPES, TEAMS)
    bad = {"id": "welcome", "trigger": {"type": "customer.signed_up"},
           "actions": [{"type": "email", "template": "welcome"}]}
    with pytest.raises(AutomationError) as exc:
        file.with_change(Change("welcome", Stored("welcome", "automation", bad, 1, "me"))).build()
    assert "template 'welcome': email/welcome.subject: not found" in exc.value.errors[0]


def test_what_the_check_accepts_renders_in_the_dispatcher() -> None:
    """Every template the default automations send renders in the dispatcher's store with
    no more than the variables the catalogue says the trigger provides."""
    store = TemplateStore()
    automations = from_file(Path(default_automations_path()).read_text("utf-8"), "defaults",
                            EVENT_TYPES, TEAMS).build()
    rendered = 0
    for a in automations.automations:
        for sent in sent_templates(a.actions):
            values = dict.fromkeys(provided(a.trigger.type, EVENT_TYPES, sent.action,
                                            sent.channel), "1")
            if sent.channel == "email":
                assert store.email(sent.template, None, values).subject
            else:
                assert store.sms(sent.template, None, values)
            rendered += 1
    assert rendered == sum(1 for a in automations.automations for _ in sent_templates(a.actions))
    assert rendered >= 5


def test_the_shipped_example_and_defaults_pass_the_check() -> None:
    root = Path(__file__).resolve().parents[2]
    for path in (root / "examples" / "simulate" / "automations.yaml",
                 Path(default_automations_path())):
        text = path.read_text("utf-8")
        assert yaml.safe_load(text)["automations"]
        checked(text, EVENT_TYPES, TEAMS, str(path), TemplateCheck())


@pytest.mark.parametrize("trigger", sorted({*CATALOGUE, *EVENT_TYPES}))
def test_every_triggers_own_built_in_templates_pass_the_check(trigger: str) -> None:
    """What the dispatcher ships for a trigger (its own template, or the neutral fallback)
    reads only what the trigger provides, on every channel and for a team."""
    own = trigger.replace(".", "_")
    required = {"affiliate.qualified": "min_score: 1", "feature.unused": "feature: reports",
                "feature.used_minutes": "minutes: 5"}
    params = f", {required[trigger]}" if trigger in required else ""
    assert problems(f"[{{type: email, template: {own}}}, {{type: sms, template: {own}}}, "
                    f"{{type: alert, team: finance, template: {own}_alert}}]",
                    trigger + params) == []


def test_what_a_channel_adds_is_allowed_on_that_channel_only(tmp_path: Path) -> None:
    """The email channel gives every template ``unsubscribe_url`` (the catalogue's
    CHANNEL_EXTRAS); SMS gives nothing of its own."""
    check = write(tmp_path, {"email/link.subject.j2": "Hi",
                             "email/link.txt.j2": "Unsubscribe: {{ unsubscribe_url }}",
                             "sms/link.txt.j2": "{{ unsubscribe_url }}"})
    [sms] = problems("[{type: email, template: link}, {type: sms, template: link}]",
                     "customer.signed_up", check)
    assert sms.startswith("automation a1: actions[1] (sms to the customer)")
    rendered = TemplateStore([tmp_path]).email("link", None, {"customer_name": ""})
    assert rendered.text.startswith("Unsubscribe:")
