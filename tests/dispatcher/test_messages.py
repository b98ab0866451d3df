"""Messages as a customer reads them (issue 10, item 5): money, dates and times in their
locale and zone, ``Date`` = the send time, the unsubscribe link in the body, a message
for every trigger (or the neutral one by the documented rule)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Literal

import pytest

from signalbox.common import schemas
from signalbox.common.action_command import (
    ChannelCommand,
    Command,
    EmailCommand,
    SmsCommand,
    TriggerInfo,
)
from signalbox.common.settings import SmtpSettings
from signalbox.dispatcher.channels.email import EmailChannel
from signalbox.dispatcher.channels.sms import SmsChannel
from signalbox.dispatcher.formatting import datetime_ as datetime_filter
from signalbox.dispatcher.formatting import money, reader, reading_as
from signalbox.dispatcher.providers import SmsProvider
from signalbox.dispatcher.templates import (
    NEUTRAL,
    NEUTRAL_ALERT,
    TemplateProblem,
    TemplateStore,
    trigger_template,
)
from signalbox.evaluator.engine import (
    AlertAction,
    Automation,
    AutomationSet,
    EmailAction,
    SmsAction,
    Trigger,
)
from signalbox.evaluator.template_check import TemplateCheck
from signalbox.testing import ManualClock
from signalbox.testing.fakes.twilio import FakeTwilio
from signalbox.testing.smtp import SmtpSink
from tests.dispatcher.trigger_samples import AT, template_variables, triggers

SECRET = "unsubscribe-secret"
SENT_AT = 1_796_400_000_000  # 2026-12-04T16:00:00Z, days after the events of the samples
#: Triggers with no message of their own: they get the neutral one (see templates.py).
NEUTRAL_TRIGGERS = {"approval.decided", "custom_field.changed", "feature.used",
                    "health.changed", "score.adjusted", "score.milestone", "usage.recorded",
                    "user.logged_in"}


def command(trigger: str, channel: str = "email",
            audience: Literal["customer", "internal"] = "customer",
            locale: str | None = "en-US", timezone: str | None = "America/New_York",
            template: str | None = None, to: str = "ada@example.com",
            **variables: str) -> Command:
    message = EmailCommand((to,), audience, template or trigger_template(trigger),
                           locale if audience == "customer" else None,
                           {**template_variables(trigger), **variables})
    action: ChannelCommand = (SmsCommand(**vars(message)) if channel == "sms" else message)
    return Command(
        command_id=f"cmd-{trigger}-{channel}", automation_id="auto-1", automation_version=1,
        action_index=0, customer_id="cus-1", issued_at=AT,
        trigger=TriggerInfo(trigger, f"evt-{trigger}"), action=action,
        customer_timezone=timezone)


@pytest.mark.parametrize(("locale", "amount", "currency", "expected"), [
    ("de-DE", "4900", "EUR", "49,00\xa0€"),
    ("en-US", "4900", "USD", "$49.00"),
    ("en-US", "4900", "EUR", "€49.00"),
    ("ja-JP", "4900", "JPY", "￥4,900"),  # no minor unit: 4900 yen
    ("de-AT", "-123456", "EUR", "-€\xa01.234,56"),
    ("xx-YY", "4900", "EUR", "€49.00"),  # unknown locale: the default
    ("de-DE", "4900", "", "49,00"),  # no currency known (past_due): a number
])
def test_money_in_the_readers_notation(locale: str, amount: str, currency: str,
                                       expected: str) -> None:
    with reading_as(reader(locale, None)):
        assert money(amount, currency) == expected


@pytest.mark.parametrize(("locale", "zone", "expected"), [
    ("en-US", "America/New_York", "Dec 2, 2026, 10:00\u202fAM EST"),
    ("de-DE", "Europe/Berlin", "02.12.2026, 16:00 MEZ"),
    ("en-US", "Not/AZone", "Dec 2, 2026, 3:00\u202fPM UTC"),  # unknown zone: UTC
    (None, None, "Dec 2, 2026, 3:00\u202fPM UTC"),
])
def test_times_where_the_reader_lives(locale: str | None, zone: str | None,
                                      expected: str) -> None:
    with reading_as(reader(locale, zone)):
        assert datetime_filter(str(AT)) == expected
        assert datetime_filter("") == ""  # an optional time the event left out


def test_a_value_that_is_not_a_number_names_the_filter() -> None:
    store = TemplateStore()
    with pytest.raises(TemplateProblem, match=r"template inline: .*money: expected a number"):
        store.inline("{{ x | money('EUR') }}", {"x": "lots"}, "inline")
    with pytest.raises(TemplateProblem, match=r"datetime: cannot format '9{17}': out of range"):
        store.inline("{{ x | datetime }}", {"x": "9" * 17}, "inline")  # past year 9999


@pytest.fixture
async def channel(smtp: SmtpSink) -> AsyncIterator[EmailChannel]:
    ch = EmailChannel(SmtpSettings(port=smtp.port, timeout_s=2), TemplateStore(),
                      "https://sb.example.com/", SECRET, clock=ManualClock(SENT_AT))
    yield ch
    await ch.aclose()


async def test_customer_mail_reads_in_their_locale_and_zone(smtp: SmtpSink,
                                                            channel: EmailChannel) -> None:
    await channel.send(command("appointment.booked", title="Billing review",
                               starts_at=str(AT + 86_400_000)))
    await channel.send(command("payment.failed", locale="de-DE", timezone="Europe/Berlin"))
    booked, failed = smtp.messages
    # 2026-12-03T15:00Z is 10:00 in New York
    assert booked.subject == "Confirmed: Billing review on Dec 3, 2026, 10:00 AM EST"
    assert ('Your appointment "Billing review" is booked for Dec 3, 2026, 10:00\u202fAM EST.'
            in booked.text())
    assert "booked for Dec 3, 2026, 10:00\u202fAM EST." in booked.html()
    assert "UTC" not in booked.text()
    # German files where the defaults have them (de-DE reaches de), German notation always
    assert failed.subject == "Ada, Ihre Zahlung für pro ist fehlgeschlagen"
    assert "Hallo Ada,\n\nwir konnten Ihre Zahlung über 49,00\xa0€ für pro nicht einziehen" \
        in failed.text().replace("\r\n", "\n")
    assert "49,00\xa0€" in failed.html() and "49.0 EUR" not in failed.text()


async def test_date_is_the_send_time_not_the_events(smtp: SmtpSink,
                                                    channel: EmailChannel) -> None:
    await channel.send(command("invoice.overdue"))
    [mail] = smtp.messages
    assert parsedate_to_datetime(mail.message["Date"]).timestamp() * 1000 == SENT_AT


async def test_every_customer_mail_shows_the_unsubscribe_link_in_its_body(
        tmp_path: Path, smtp: SmtpSink, channel: EmailChannel) -> None:
    (tmp_path / "email").mkdir()  # an operator's template that never shows the link
    for part, source in (("subject", "Hi"), ("txt", "Plain text."),
                         ("html", "<html><body><p>HTML.</p></body></html>")):
        (tmp_path / "email" / f"own.{part}.j2").write_text(source)
    own = EmailChannel(SmtpSettings(port=smtp.port, timeout_s=2), TemplateStore([tmp_path]),
                       "https://sb.example.com/", SECRET, clock=ManualClock(SENT_AT))
    await channel.send(command("payment.failed"))
    await own.send(command("payment.failed", template="own"))
    await own.aclose()
    for mail in smtp.messages:
        link = mail.message["List-Unsubscribe"].strip("<>")
        assert link.startswith("https://sb.example.com/v1/unsubscribe/")
        assert link in mail.text()
        assert f'href="{link}"' in mail.html()
    added = smtp.messages[1]
    assert added.text().replace("\r\n", "\n").startswith(
        "Plain text.\n\n--\nTo stop receiving these emails: ")
    assert added.html().index("unsubscribe</a>") < added.html().index("</body>")


async def test_team_mail_is_in_utc_without_unsubscribe(smtp: SmtpSink,
                                                       channel: EmailChannel) -> None:
    await channel.send(command("past_due", audience="internal", template="past_due_alert"))
    [mail] = smtp.messages
    assert "Since:      Nov 18, 2026, 3:00\u202fPM UTC" in mail.text()
    assert "Past due:   49.00" in mail.text()
    assert mail.message["List-Unsubscribe"] is None and "unsubscribe" not in mail.text()


async def test_sms_in_the_customers_zone_with_plain_spaces() -> None:
    with FakeTwilio() as twilio:
        sms = SmsChannel(SmsProvider(account_sid=twilio.account_sid,
                                     auth_token=twilio.auth_token, from_number="+14155550100",
                                     base_url=twilio.url, timeout_s=2.0), TemplateStore())
        await sms.send(command("appointment.reminder", channel="sms", to="+14155552671"))
        await sms.aclose()
        [text] = twilio.messages
    assert text.body == "Reminder: Billing review on Dec 3, 2026, 10:00 AM EST (ref ap-1)."


def test_the_neutral_fallback_only_for_a_triggers_own_name(tmp_path: Path) -> None:
    store = TemplateStore()
    variables = template_variables("custom_field.changed")
    mail = store.email("custom_field_changed", None, variables, "custom_field.changed")
    assert mail.subject == "An update about your account"
    assert store.resolve("email", "custom_field_changed", None,
                         "custom_field.changed") == NEUTRAL
    assert store.resolve("sms", "custom_field_changed_alert", None,
                         "custom_field.changed") == NEUTRAL_ALERT
    with pytest.raises(TemplateProblem, match=r"email/welcome\.subject: not found"):
        store.email("welcome", None, variables, "custom_field.changed")  # a typo stays one
    with pytest.raises(TemplateProblem, match=r"email/custom_field_changed\.subject"):
        store.email("custom_field_changed", None, variables, "")  # no trigger, no fallback
    (tmp_path / "email").mkdir()  # an operator's own message for the trigger wins
    (tmp_path / "email" / "custom_field_changed.subject.j2").write_text("{{ field }} changed")
    (tmp_path / "email" / "custom_field_changed.txt.j2").write_text("Now: {{ value }}")
    own = TemplateStore([tmp_path]).email("custom_field_changed", None, variables,
                                          "custom_field.changed")
    assert (own.subject, own.html) == (f"{variables['field']} changed", None)


@pytest.mark.parametrize("trigger", triggers())
def test_every_trigger_has_a_message_that_renders(trigger: str) -> None:
    store = TemplateStore()
    name = trigger_template(trigger)
    who = reader("en-US", "America/New_York")
    assert (store.resolve("email", name, None, trigger) == NEUTRAL) == \
        (trigger in NEUTRAL_TRIGGERS)
    for optional_empty in (False, True):  # optional fields given, and left out
        variables = template_variables(trigger, optional_empty)
        mail = store.email(name, None, variables, trigger, who)
        text = store.sms(name, None, variables, trigger, who)
        alert = store.email(f"{name}_alert", None, variables, trigger)
        for rendered in (mail.subject, mail.text, mail.html or "", text, alert.text):
            assert rendered.strip() and "{{" not in rendered and " EUR" not in rendered
        assert mail.html is not None and mail.text.startswith("Hello Ada,")


def test_every_shipped_template_passes_the_automation_check() -> None:
    """What apply, PUT, the file at start-up and simulate run (evaluator.template_check):
    each trigger's own message to the customer and its alert, by email and SMS."""
    def sends(trigger: str) -> Automation:
        name = trigger_template(trigger)
        return Automation(f"on-{name}", 1, trigger, True, Trigger(trigger), (
            EmailAction(name), SmsAction(name), AlertAction("ops", f"{name}_alert"),
            AlertAction("ops", f"{name}_alert", via="sms")))

    every = AutomationSet(tuple(sends(t) for t in triggers()))
    assert TemplateCheck().problems(every, schemas.event_types()) == []
