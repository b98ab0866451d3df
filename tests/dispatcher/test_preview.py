"""``signalbox templates render``: the message as it would be sent, offline (issue 10)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from signalbox.cli import main

BERLIN_ADA = {"email": "ada@example.com", "name": "Ada", "locale": "de-DE",
              "timezone": "Europe/Berlin"}
NEW_YORK_NORA = {"email": "nora@example.com", "phone": "+12125550123", "name": "Nora",
                 "locale": "en-US", "timezone": "America/New_York"}


def event(type_: str, customer: dict[str, str], at: str, **data: object) -> dict[str, object]:
    return {"event_id": f"evt-{type_}", "type": type_, "customer_id": "cus-1",
            "occurred_at": at, "customer": customer, "data": data}


def render(tmp_path: Path, capsys: pytest.CaptureFixture[str], automation: str,
           *events: dict[str, object], extra: tuple[str, ...] = ()) -> tuple[int, str, str]:
    path = tmp_path / "event.json"
    path.write_text(json.dumps(events[0], indent=2) if len(events) == 1 else
                    "\n".join(json.dumps(e) for e in events))
    code = main(["templates", "render", "--automation", automation, "--event", str(path),
                 *extra])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(autouse=True)
def unsubscribe_links(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SIGNALBOX_PUBLIC_URL", "https://sb.example.com")
    monkeypatch.setenv("SIGNALBOX_UNSUBSCRIBE_SECRET", "preview-secret")
    monkeypatch.setenv("SIGNALBOX_TEAMS", "finance=finance@example.com")
    monkeypatch.delenv("SIGNALBOX_AUTOMATIONS_FILE", raising=False)
    monkeypatch.delenv("SIGNALBOX_TEMPLATES_DIR", raising=False)


def test_previews_the_shipped_automation_as_sent(tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    failed = event("payment.failed", BERLIN_ADA, "2026-11-22T09:30:00Z", payment_id="pay-1",
                   product="pro", amount_minor=4900, currency="EUR", reason="card_declined")
    code, out, err = render(tmp_path, capsys, "payment-failed-pro", failed,
                            extra=("--now", "2026-11-22T10:00:00Z"))
    assert (code, err) == (0, "")
    customer, alert = out.split("=== email 2 of 2: ")
    assert "Subject: Ada, Ihre Zahlung für pro ist fehlgeschlagen" in customer  # de-DE
    assert "Date: Sun, 22 Nov 2026 10:00:00 +0000" in customer  # --now, not occurred_at
    link = customer.split("List-Unsubscribe: <", 1)[1].split(">", 1)[0]
    assert link.startswith("https://sb.example.com/v1/unsubscribe/")
    text, html = customer.split("--- text/plain\n", 1)[1].split("--- text/html\n")
    assert "Ihre Zahlung über 49,00\xa0€ für pro" in text and link in text
    assert "49,00\xa0€" in html and f'href="{link}"' in html
    assert "To: finance@example.com" in alert and "Amount:    €49.00" in alert
    assert "List-Unsubscribe" not in alert


def test_a_time_trigger_is_ticked_until_it_fires(tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    booked = event("appointment.booked", NEW_YORK_NORA, "2026-11-20T12:00:00Z",
                   appointment_id="ap-9", starts_at="2026-11-25T15:00:00Z",
                   title="Onboarding call")
    code, out, _ = render(tmp_path, capsys, "appointment-reminder", booked)
    assert code == 0
    assert out.count("=== ") == 2  # the first reminder only: a day before, email and SMS
    assert "appointment.reminder at 2026-11-24T15:00:00Z" in out
    assert "Subject: Reminder: Onboarding call on Nov 25, 2026, 10:00 AM EST" in out
    sms = out.split("=== sms 2 of 2: ", 1)[1]
    assert "To: +12125550123\n\nReminder: Onboarding call on Nov 25, 2026, 10:00 AM EST" in sms
    code, out, _ = render(tmp_path, capsys, "appointment-reminder", booked,
                          extra=("--until", "2026-11-26T00:00:00Z"))
    assert out.count("=== ") == 4  # both reminders


def test_problems_are_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    signup = event("customer.signed_up", BERLIN_ADA, "2026-11-22T09:30:00Z", plan="pro")
    code, _, err = render(tmp_path, capsys, "no-such", signup)
    assert code == 2 and "no automation 'no-such' (ids: appointment-reminder, " in err
    code, _, err = render(tmp_path, capsys, "payment-failed-pro", signup)
    assert code == 1 and "'payment-failed-pro' sends no email or SMS for these events" in err
    (tmp_path / "sms").mkdir()  # passes every check but fails when it renders
    (tmp_path / "sms" / "hello.txt.j2").write_text("Welcome to {{ plan | money('EUR') }}")
    (tmp_path / "a.yaml").write_text(
        "format: signalbox/automations@2\nautomations:\n"
        "  - {id: hello, version: 1, name: Hello, trigger: {type: customer.signed_up},\n"
        "     actions: [{type: sms, to: customer, template: hello}]}\n")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("SIGNALBOX_TEMPLATES_DIR", str(tmp_path))
        code, _, err = render(tmp_path, capsys, "hello", signup,
                              extra=("--automations", str(tmp_path / "a.yaml")))
    assert code == 1
    assert "template sms/hello.txt: ValueError: money: expected a number, got 'pro'" in err
