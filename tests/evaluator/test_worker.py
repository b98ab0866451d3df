"""The evaluator as a real Faust worker process against a real broker."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from signalbox.common import schemas
from signalbox.common.action_command import MessageCommand, command_from_record
from signalbox.common.codec import AvroCodec
from signalbox.common.settings import Settings
from signalbox.common.topics import (
    ACTIONS_COMMANDS,
    AUTOMATIONS,
    EVENTS_BILLING,
    EVENTS_DLQ,
)
from signalbox.evaluator.definitions import AUTOMATION, Stored, record_from_stored
from signalbox.evaluator.main import file_definitions
from signalbox.testing import free_port, service_env
from signalbox.testing.processes import ServiceProcess
from tests.support.events import payment_failed_record
from tests.support.kafka import consume, drain, produce
from tests.support.metrics import labelled, until, value

pytestmark = pytest.mark.kafka
codec = AvroCodec()


@contextmanager
def running_evaluator(settings: Settings, tmp_path: Path) -> Iterator[ServiceProcess]:
    port = free_port()
    env = service_env(settings, EVALUATOR_PORT=str(port), EVALUATOR_ADMIN_PORT=str(free_port()),
                      EVALUATOR_DATA_DIR=str(tmp_path / "evaluator"))
    proc = ServiceProcess("evaluator", env, tmp_path, port).start()
    try:
        proc.wait_ready()
        yield proc
    finally:
        code = proc.stop()
        assert code == 0, f"evaluator did not shut down cleanly ({code}):\n{proc.tail()}"


@pytest.fixture
def evaluator(settings: Settings, tmp_path: Path) -> Iterator[ServiceProcess]:
    with running_evaluator(settings, tmp_path) as proc:
        yield proc


def test_poison_record_is_dead_lettered_and_processing_continues(
    settings: Settings, evaluator: ServiceProcess
) -> None:
    k = settings.kafka
    bootstrap, events = k.bootstrap_servers, k.topic(EVENTS_BILLING)
    produce(bootstrap, events, [
        (b"cus-1", b"garbage that is not avro"),
        (b"cus-1", payment_failed_record("e-1", "cus-1")),
        (b"someone-else", payment_failed_record("e-2", "cus-2")),  # key is not the customer id
    ], partition=0)
    letters = consume(bootstrap, k.topic(EVENTS_DLQ), 2)
    decoded = [codec.decode(schemas.DEAD_LETTER, r.value) for r in letters]
    assert {d["error_type"] for d in decoded} == {"DecodeError", "InputRejected"}
    garbage = next(d for d in decoded if d["error_type"] == "DecodeError")
    assert garbage["value"] == b"garbage that is not avro"  # the original bytes
    assert garbage["source_topic"] == events and garbage["offset"] == 0
    assert "single-object" in garbage["reason"]
    # The good record between the two bad ones was processed: customer email + finance alert.
    commands = consume(bootstrap, k.topic(ACTIONS_COMMANDS), 2)
    actions = [command_from_record(codec.decode(schemas.ACTION_COMMAND, r.value)).action
               for r in commands]
    assert {(a.channel, a.template) for a in actions if isinstance(a, MessageCommand)} == {
        ("email", "payment_failed"), ("email", "payment_failed_alert")}
    assert all(r.key == b"cus-1" for r in commands)
    assert evaluator.proc is not None and evaluator.proc.poll() is None


def test_redelivered_event_issues_no_new_command(
    settings: Settings, evaluator: ServiceProcess
) -> None:
    k = settings.kafka
    record = payment_failed_record("e-9", "cus-9")
    produce(k.bootstrap_servers, k.topic(EVENTS_BILLING), [(b"cus-9", record)] * 3)
    produce(k.bootstrap_servers, k.topic(EVENTS_BILLING),
            [(b"cus-9", payment_failed_record("e-10", "cus-9", product="basic"))])
    consume(k.bootstrap_servers, k.topic(ACTIONS_COMMANDS), 2)
    commands = drain(k.bootstrap_servers, k.topic(ACTIONS_COMMANDS))
    assert len(commands) == 2  # one event, two actions; the copies and 'basic' add nothing


def test_ops_endpoints(evaluator: ServiceProcess) -> None:
    import httpx

    assert httpx.get(evaluator.url("/healthz")).json() == {"status": "ok"}
    ready = httpx.get(evaluator.url("/readyz"))
    assert ready.status_code == 200 and ready.json() == {"status": "ready", "failing": {}}
    metrics = httpx.get(evaluator.url("/metrics"))
    assert metrics.status_code == 200
    assert metrics.headers["content-type"].startswith("text/plain; version=")
    enabled = sum(a.enabled for a in file_definitions(Settings.from_env({})).build().automations)
    assert f"signalbox_evaluator_automations {enabled:.1f}" in metrics.text


def test_the_automations_topic_is_read_before_the_first_event(
    settings: Settings, tmp_path: Path
) -> None:
    """The topic disables the file's automation before the worker starts: no event is
    ever evaluated against the file alone."""
    k = settings.kafka
    file_automation = file_definitions(settings).file_automations["payment-failed-pro"]
    disabled = Stored("payment-failed-pro", AUTOMATION, {**file_automation, "enabled": False},
                      1_790_000_000_000, "test")
    produce(k.bootstrap_servers, k.topic(AUTOMATIONS), [
        (b"payment-failed-pro", codec.encode(schemas.AUTOMATION_RECORD,
                                             record_from_stored(disabled)))])
    produce(k.bootstrap_servers, k.topic(EVENTS_BILLING),
            [(b"cus-1", payment_failed_record("e-1", "cus-1"))])
    with running_evaluator(settings, tmp_path) as proc:
        import httpx

        enabled = sum(a.enabled for a in file_definitions(settings).build().automations)
        metrics = httpx.get(proc.url("/metrics")).text
        assert f"signalbox_evaluator_automations {enabled - 1:.1f}" in metrics
        counted = until(proc.url("/metrics"),
                        lambda samples: bool(labelled(samples, "signalbox_evaluator_inputs_total")))
        assert value(counted, "signalbox_evaluator_inputs_total", kind="event",
                     type="payment.failed") == 1
        assert drain(k.bootstrap_servers, k.topic(ACTIONS_COMMANDS), settle=2) == []


def invoice_issued(event_id: str, customer: str, invoice_id: str) -> bytes:
    return codec.encode(schemas.EVENT, {
        "event_id": event_id, "customer_id": customer, "occurred_at": 1_790_000_000_000,
        "received_at": 1_790_000_000_100, "source": "test",
        "payload": ("signalbox.events.InvoiceIssued", {
            "invoice_id": invoice_id, "amount_minor": 4900, "currency": "EUR",
            "due_at": 1_791_000_000_000}),
    })


def test_a_state_over_the_changelogs_limit_is_dead_lettered_and_the_worker_goes_on(
    settings: Settings, evaluator: ServiceProcess
) -> None:
    """Two events written past ingest (invoice ids of 600,000 characters: ingest allows
    256, the engine clips texts and caps collections but keeps ids as they come) make one
    customer's state larger than the broker takes: the state is dead-lettered (cut to
    fit, with its digest), the worker does not crash and the next customer's event is
    processed."""
    k = settings.kafka
    bootstrap = k.bootstrap_servers
    produce(bootstrap, k.topic(EVENTS_BILLING), [
        (b"cus-big", invoice_issued("big-1", "cus-big", "x" * 600_000)),
        (b"cus-big", invoice_issued("big-2", "cus-big", "y" * 600_000)),
    ], partition=0)
    [letter] = [codec.decode(schemas.DEAD_LETTER, r.value)
                for r in consume(bootstrap, k.topic(EVENTS_DLQ), 1)]
    assert letter["error_type"] == "StateTooLarge" and letter["key"] == b"cus-big"
    assert "over the changelog's max.message.bytes" in letter["reason"]
    assert "truncated" in letter["reason"] and "sha256" in letter["reason"]
    produce(bootstrap, k.topic(EVENTS_BILLING), [(b"cus-2", payment_failed_record("e-2", "cus-2"))],
            partition=0)
    assert len(consume(bootstrap, k.topic(ACTIONS_COMMANDS), 2)) == 2
    assert evaluator.proc is not None and evaluator.proc.poll() is None
