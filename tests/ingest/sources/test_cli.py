"""``signalbox sources test``, and ``signalbox sources replay`` against a real broker."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from signalbox.cli import main
from signalbox.common import schemas
from signalbox.common.codec import AvroCodec
from signalbox.common.settings import Settings
from signalbox.common.topics import EVENTS_BILLING
from signalbox.testing import service_env
from tests.ingest.sources.support import FIXTURES, fixture
from tests.support.kafka import drain

PAYMENT_FAILED = str(FIXTURES / "stripe" / "invoice.payment_failed.json")


def test_sources_test_prints_the_events(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sources", "test", "--mapping", "stripe", "--payload", PAYMENT_FAILED]) == 0
    [event] = json.loads(capsys.readouterr().out)
    assert event["type"] == "payment.failed" and event["data"]["product"] == "prod_Pro"


def test_sources_test_names_every_problem_of_a_mapping(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    broken = tmp_path / "acme.yaml"
    broken.write_text("format: signalbox/source-mapping@1\nsource: acme\nversion: 1\n"
                      "auth: {scheme: basic, secrets_env: ACME}\ntype: kind\nevent_id: id\n"
                      "events:\n  paid:\n    - type: invoice.paid\n      customer_id: c\n"
                      "      occurred_at: t\n      data: {invoice_id: i, amount: a}\n")
    assert main(["sources", "test", "--mapping", str(broken), "--payload", PAYMENT_FAILED]) == 2
    err = capsys.readouterr().err
    assert f"{broken}: events.paid[0].data.amount: unknown field of invoice.paid" in err
    assert f"{broken}: events.paid[0].data.amount_minor: required field of invoice.paid" in err


def test_sources_test_says_what_ingest_would_refuse(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    event = fixture("stripe", "invoice.payment_failed")
    event["data"]["object"]["currency"] = "xyz"
    payload = tmp_path / "event.json"
    payload.write_text(json.dumps(event))
    assert main(["sources", "test", "--mapping", "stripe", "--payload", str(payload)]) == 1
    assert "ingest would refuse it (400): $[0].data.currency: not an ISO 4217" in \
        capsys.readouterr().err


@pytest.mark.kafka
def test_replay_produces_history_oldest_first_and_again_with_the_same_ids(
        settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    for name, value in service_env(settings).items():
        monkeypatch.setenv(name, value)
    paid, failed, finalized = (fixture("stripe", n) for n in
                               ("invoice.paid", "invoice.payment_failed", "invoice.finalized"))
    export = {"object": "list", "data": [paid, failed], "has_more": False, "url": "/v1/events"}
    unmapped = fixture("stripe", "plan.created")
    lines = [json.dumps(export), json.dumps(finalized), json.dumps(unmapped)]
    history = tmp_path / "events.jsonl"
    history.write_text("\n".join(lines) + "\n")

    assert main(["sources", "replay", "--source", "stripe", "--file", str(history)]) == 0
    assert "3 events produced (3 mapped, 1 unmapped)" in capsys.readouterr().err
    assert main(["sources", "replay", "--source", "stripe", "--file", str(history)]) == 0

    k = settings.kafka
    records = drain(k.bootstrap_servers, k.topic(EVENTS_BILLING), settle=2)
    codec = AvroCodec()
    ids = [codec.decode(schemas.EVENT, r.value)["event_id"]
           for r in sorted(records, key=lambda r: (r.partition, r.offset))]
    once = [finalized["id"], failed["id"], paid["id"]]  # by Stripe's `created`, oldest first
    assert ids == once + once  # the second run: the same ids, deduplicated downstream


def test_ingest_refuses_to_start_with_a_broken_mapping(tmp_path: Path) -> None:
    """Checked before anything else (no broker is reachable here): exit 2 with the places."""
    (tmp_path / "acme.yaml").write_text(
        "format: signalbox/source-mapping@1\nsource: acme\nversion: 1\n"
        "auth: {scheme: basic, secrets_env: ACME}\ntype: kind\nevent_id: id\n"
        "events:\n  x:\n    - {type: payment.faild}\n")
    env = {**os.environ, "SIGNALBOX_SOURCES_DIR": str(tmp_path), "INGEST_AUTH": "none",
           "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1"}
    done = subprocess.run([sys.executable, "-m", "signalbox", "ingest"], env=env, timeout=60,
                          capture_output=True, text=True, check=False)
    assert done.returncode == 2
    assert f"{tmp_path / 'acme.yaml'}: events.x[0].type: unknown signalbox event type " \
           "'payment.faild'; did you mean 'payment.failed'?" in done.stderr
