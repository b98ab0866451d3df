"""HTTP in, email out: all four services as processes, a real broker, a real SMTP server."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import httpx
import pytest

from signalbox.common import schemas
from signalbox.common.codec import AvroCodec
from signalbox.common.settings import RegistrySettings, Settings
from signalbox.common.topics import ACTIONS_RESULTS, EVENTS_BILLING
from signalbox.testing.pipeline import pipeline
from tests.support.events import payment_failed
from tests.support.kafka import consume, drain
from tests.support.metrics import labelled, scrape, until, value

pytestmark = pytest.mark.kafka
codec = AvroCodec()


def test_payment_failed_event_becomes_customer_email_and_finance_alert(
    settings: Settings, tmp_path: Path
) -> None:
    with pipeline(settings, tmp_path) as p:
        batch = [payment_failed("evt-1", "cus-ada", contact=True, reason="card_declined"),
                 payment_failed("evt-2", "cus-bob", "basic", contact=True)]
        response = httpx.post(p.ingest_url, json=batch, timeout=30)
        assert response.status_code == 202, response.text
        assert response.json() == {"accepted": ["evt-1", "evt-2"]}

        mails = p.smtp.wait_for(2)
        by_rcpt = {m.rcpt_tos: m for m in mails}
        customer = by_rcpt[("cus-ada@example.com",)]
        alert = by_rcpt[("finance@example.com",)]
        assert customer.subject == "Ada Lovelace, your payment for pro did not go through"
        assert "€49.00" in customer.text() and "card_declined" in customer.text()
        assert customer.message.get_body(preferencelist=("html",)) is not None
        assert alert.subject == "[signalbox] Payment failed: cus-ada (pro, attempt 1)"
        assert "cus-ada@example.com" in alert.text()

        # The same event again (a producer retry) and an unrelated product: no new mail.
        again = httpx.post(p.ingest_url, json=payment_failed("evt-1", "cus-ada", contact=True),
                           timeout=30)
        assert again.status_code == 202
        k = settings.kafka
        results = [codec.decode(schemas.ACTION_RESULT, r.value)
                   for r in consume(k.bootstrap_servers, k.topic(ACTIONS_RESULTS), 2)]
        assert sorted(r["status"] for r in results) == ["delivered", "delivered"]
        consume(k.bootstrap_servers, k.topic(EVENTS_BILLING), 3)  # the retry reached Kafka
        assert len(drain(k.bootstrap_servers, k.topic(ACTIONS_RESULTS), settle=4)) == 2
        assert len(p.smtp.messages) == 2

        # Both outcomes measured from ingest's received_at (carried by the commands);
        # every service says which build it runs.
        delivered = {"channel": "email", "outcome": "delivered"}
        e2e = "signalbox_dispatcher_event_to_outcome_seconds"
        seen = until(p.services["dispatcher"].url("/metrics"),
                     lambda s: value(s, f"{e2e}_count", **delivered) == 2)
        mean = (value(seen, f"{e2e}_sum", **delivered) or 0) / 2
        assert 0 < mean < 30, mean
        print(f"\nevent received -> email delivered: {mean:.2f} s on average (2 commands)")
        for name, proc in p.services.items():
            [build] = labelled(scrape(proc.url("/metrics")), "signalbox_build_info")
            assert build["service"] == name

        exits = p.stop()
    assert exits == {"ingest": 0, "evaluator": 0, "dispatcher": 0, "scheduler": 0}


def test_invalid_request_writes_nothing_and_explains_why(
    settings: Settings, tmp_path: Path
) -> None:
    with pipeline(settings, tmp_path) as p:
        bad = payment_failed("evt-3", "cus-ada", contact=True)
        bad["data"] = {**bad["data"], "amount_minor": "49.00"}
        response = httpx.post(p.ingest_url, json=[
            payment_failed("evt-4", "cus-ada", contact=True), bad], timeout=30)
        assert response.status_code == 400
        [error] = response.json()["errors"]
        assert error["path"] == "$[1].data.amount_minor"
        k = settings.kafka
        assert drain(k.bootstrap_servers, k.topic(EVENTS_BILLING), settle=2) == []
        assert p.smtp.messages == []
        p.stop()


@pytest.mark.registry
def test_the_pipeline_in_schema_registry_mode(
    settings: Settings, schema_registry_url: str, tmp_path: Path
) -> None:
    """With SCHEMA_REGISTRY_URL every service writes the Confluent wire format."""
    registry_settings = replace(settings, registry=RegistrySettings(schema_registry_url))
    with pipeline(registry_settings, tmp_path) as p:
        response = httpx.post(p.ingest_url, json=payment_failed("evt-r1", "cus-reg", contact=True),
                              timeout=30)
        assert response.status_code == 202, response.text
        assert len(p.smtp.wait_for(2)) == 2
        k = settings.kafka
        [event] = consume(k.bootstrap_servers, k.topic(EVENTS_BILLING), 1)
        results = consume(k.bootstrap_servers, k.topic(ACTIONS_RESULTS), 2)
        assert event.value is not None and event.value[0] == 0  # magic byte 0 + schema id
        assert all(r.value is not None and r.value[0] == 0 for r in results)
        assert p.stop() == {"ingest": 0, "evaluator": 0, "dispatcher": 0, "scheduler": 0}
