"""Stripe in, email out: a signed invoice.payment_failed webhook through the four services
as processes, a real broker and a real SMTP server."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from signalbox.common.settings import Settings
from signalbox.common.topics import ACTIONS_RESULTS, EVENTS_BILLING
from signalbox.testing.pipeline import pipeline
from tests.ingest.sources.support import (
    STRIPE_DUNNING,
    STRIPE_SECRET,
    fixture,
    stripe_signed,
)
from tests.support.kafka import consume, drain

pytestmark = pytest.mark.kafka



def test_a_stripe_payment_failed_webhook_emails_the_customer(
        settings: Settings, tmp_path: Path) -> None:
    automations = tmp_path / "automations.yaml"
    automations.write_text(STRIPE_DUNNING)
    with pipeline(settings, tmp_path, STRIPE_WEBHOOK_SECRETS=STRIPE_SECRET,
                  SIGNALBOX_AUTOMATIONS_FILE=str(automations)) as p:
        url = p.services["ingest"].url("/v1/sources/stripe")
        body, headers = stripe_signed(fixture("stripe", "invoice.payment_failed"))
        response = httpx.post(url, content=body, headers=headers, timeout=30)
        assert response.status_code == 202, response.text

        [mail] = p.smtp.wait_for(1)
        assert mail.rcpt_tos == ("ada@example.com",)
        assert mail.subject == "Ada Lovelace, your payment for prod_Pro did not go through"
        assert "in_1Sb01B7WZ01zgkWpay#2" in mail.text()  # the payment reference

        # Stripe delivers the same event again: no second email.
        body, headers = stripe_signed(fixture("stripe", "invoice.payment_failed"))
        assert httpx.post(url, content=body, headers=headers, timeout=30).status_code == 202
        k = settings.kafka
        consume(k.bootstrap_servers, k.topic(EVENTS_BILLING), 2)  # the copy reached Kafka
        assert len(drain(k.bootstrap_servers, k.topic(ACTIONS_RESULTS), settle=4)) == 1
        assert len(p.smtp.messages) == 1
        assert p.stop() == {"ingest": 0, "evaluator": 0, "dispatcher": 0, "scheduler": 0}
