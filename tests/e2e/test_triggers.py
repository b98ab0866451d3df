"""Triggers through the real broker and a real evaluator process.

An event trigger, a tick trigger (no login for 7 days), automations changed live
through the admin API, and an approval approved or rejected through it. Ticks are
written by the test (the scheduler's records, with the times the test chooses), so
days pass in milliseconds.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from signalbox.common import schemas
from signalbox.common.clock import epoch_ms, now_ms
from signalbox.common.codec import AvroCodec
from signalbox.common.settings import Settings
from signalbox.common.topics import (
    ACTIONS_COMMANDS,
    CUSTOMER_STATE_TABLE,
    EVENTS_BILLING,
    EVENTS_DLQ,
    EVENTS_USAGE,
    TICKS,
    changelog_topic,
)
from signalbox.evaluator.approvals import decided_event
from signalbox.testing import eventually_sync, free_port, service_env
from signalbox.testing.processes import ServiceProcess
from tests.support.events import payment_failed_record
from tests.support.kafka import Record, consume, drain, produce
from tests.support.metrics import until, value
from tests.support.templates import TEMPLATES_DIR

pytestmark = pytest.mark.kafka
codec = AvroCodec()
DAY = 86_400_000
T0 = 1_790_000_000_000  # 2026-09-21T14:13:20Z
AUTOMATIONS = """
format: signalbox/automations@2
automations:
  - id: payment-failed
    trigger: {type: payment.failed}
    actions: [{type: email, to: customer, template: payment_failed}]
  - id: inactive-7d
    trigger: {type: no_login, days: 7}
    actions: [{type: email, to: customer, template: we_miss_you}]
"""


def event(event_id: str, customer: str, payload: tuple[str, dict[str, Any]],
          at: int = T0) -> bytes:
    return codec.encode(schemas.EVENT, {
        "event_id": event_id, "customer_id": customer, "occurred_at": at, "received_at": at,
        "source": "test", "customer": {"email": f"{customer}@example.com", "name": customer},
        "payload": payload})


def logged_in(event_id: str, customer: str, at: int) -> bytes:
    return event(event_id, customer, ("signalbox.events.UserLoggedIn", {"user_id": "u1"}), at)


def tick(partition: int, at: int) -> bytes:
    return codec.encode(schemas.TICK, {"tick_id": f"{partition}:{at}", "partition": partition,
                                       "at": at, "interval_ms": 60_000, "emitted_by": "test"})


def commands(records: list[Record]) -> list[dict[str, Any]]:
    return [codec.decode(schemas.ACTION_COMMAND, r.value) for r in records]


class Evaluator:
    def __init__(self, settings: Settings, proc: ServiceProcess, admin_port: int) -> None:
        self.settings, self.proc = settings, proc
        self.admin = httpx.Client(base_url=f"http://127.0.0.1:{admin_port}", timeout=30)

    def produce(self, logical: str, records: list[tuple[bytes, bytes]],
                partition: int = 0) -> None:
        k = self.settings.kafka
        produce(k.bootstrap_servers, k.topic(logical), records, partition=partition)

    def commands(self, count: int) -> list[dict[str, Any]]:
        k = self.settings.kafka
        return commands(consume(k.bootstrap_servers, k.topic(ACTIONS_COMMANDS), count))

    def all_commands(self, settle: float = 3.0) -> list[dict[str, Any]]:
        k = self.settings.kafka
        return commands(drain(k.bootstrap_servers, k.topic(ACTIONS_COMMANDS), settle=settle))


@pytest.fixture
def evaluator(settings: Settings, tmp_path: Path) -> Iterator[Evaluator]:
    path = tmp_path / "automations.yaml"
    path.write_text(AUTOMATIONS)
    port, admin_port = free_port(), free_port()
    env = service_env(settings, EVALUATOR_PORT=str(port), EVALUATOR_ADMIN_PORT=str(admin_port),
                      EVALUATOR_DATA_DIR=str(tmp_path / "evaluator"),
                      SIGNALBOX_AUTOMATIONS_FILE=str(path),
                      SIGNALBOX_TEMPLATES_DIR=TEMPLATES_DIR)
    proc = ServiceProcess("evaluator", env, tmp_path, port).start()
    running = Evaluator(settings, proc, admin_port)
    try:
        proc.wait_ready()
        yield running
    finally:
        running.admin.close()
        # A test may have replaced the process (a restart): stop both.
        for p in dict.fromkeys((proc, running.proc)):
            code = p.stop()
            assert code == 0, f"evaluator did not shut down cleanly ({code}):\n{p.tail()}"


def test_an_event_trigger_and_an_automation_added_live(evaluator: Evaluator) -> None:
    evaluator.produce(EVENTS_BILLING, [(b"cus-1", payment_failed_record("e-1", "cus-1"))])
    [first] = evaluator.commands(1)
    assert first["automation_id"] == "payment-failed" and first["customer_id"] == "cus-1"
    assert first["trigger"]["type"] == "payment.failed"

    # A new automation through the admin API: no restart, the next login fires it.
    welcome = {"version": 1, "trigger": {"type": "user.logged_in"},
               "actions": [{"type": "email", "to": "customer", "template": "welcome_back"}]}
    r = evaluator.admin.put("/v1/automations/welcome-back", json=welcome)
    assert r.status_code == 201, r.text
    evaluator.produce(EVENTS_USAGE, [(b"cus-1", logged_in("e-2", "cus-1", T0 + 1000))])
    by_automation = {c["automation_id"]: c for c in evaluator.commands(2)}
    assert by_automation["welcome-back"]["customer_id"] == "cus-1"

    # Disabled live: the next login fires nothing.
    assert evaluator.admin.post("/v1/automations/welcome-back/disable").status_code == 200
    evaluator.produce(EVENTS_USAGE, [(b"cus-1", logged_in("e-3", "cus-1", T0 + 2000))])
    assert [c["automation_id"] for c in evaluator.all_commands()] == [
        "payment-failed", "welcome-back"]


def test_no_login_for_7_days_fires_once_at_its_due_time(evaluator: Evaluator) -> None:
    evaluator.produce(EVENTS_USAGE, [(b"cus-7", logged_in("login-1", "cus-7", T0))])
    evaluator.produce(TICKS, [(b"0", tick(0, T0 + DAY))])  # nothing due yet
    late = T0 + 7 * DAY + 3 * 3_600_000  # the tick comes hours after the due time
    evaluator.produce(TICKS, [(b"0", tick(0, late))])
    [fired] = evaluator.commands(1)
    assert fired["automation_id"] == "inactive-7d" and fired["customer_id"] == "cus-7"
    assert fired["trigger"]["type"] == "no_login"
    assert epoch_ms(fired["issued_at"]) == T0 + 7 * DAY  # when it fell due, not the tick
    evaluator.produce(TICKS, [(b"0", tick(0, late + DAY)), (b"0", tick(0, late))])
    assert len(evaluator.all_commands()) == 1

    metrics = httpx.get(evaluator.proc.url("/metrics")).text
    assert "signalbox_evaluator_timers_due_total 1.0" in metrics  # one customer woken


def test_an_approval_releases_its_actions_and_a_rejection_drops_them(
        evaluator: Evaluator) -> None:
    hold_payment_failed_emails(evaluator)
    # Now, not at T0: an approval expires (7 days after it was opened, by default).
    evaluator.produce(EVENTS_BILLING, [
        (b"cus-a", payment_failed_record("pa", "cus-a", at=now_ms())),
        (b"cus-b", payment_failed_record("pb", "cus-b", at=now_ms()))])
    pending = wait_for_pending(evaluator, 2)
    by_customer = {a["customer_id"]: a for a in pending}
    assert by_customer["cus-a"]["automation_id"] == "held"
    assert by_customer["cus-a"]["summary"]
    assert evaluator.all_commands(settle=2) == []  # held, not sent

    a, b = by_customer["cus-a"]["approval_id"], by_customer["cus-b"]["approval_id"]
    # Who decides is the actor header (the authenticated operator), never the body.
    ada, bob = {"X-Signalbox-Actor": "ada"}, {"X-Signalbox-Actor": "bob"}
    r = evaluator.admin.post(f"/v1/approvals/{a}/approve", headers=ada)
    assert r.status_code == 200 and r.json()["decided_by"] == "ada", r.text
    r = evaluator.admin.post(f"/v1/approvals/{b}/reject", json={"reason": "goodwill"},
                             headers=ada)
    assert r.status_code == 200, r.text
    assert evaluator.admin.post(f"/v1/approvals/{a}/reject", headers=bob).status_code == 409

    [released] = evaluator.commands(1)
    assert released["customer_id"] == "cus-a" and released["automation_id"] == "held"
    assert len(evaluator.all_commands()) == 1


def hold_payment_failed_emails(evaluator: Evaluator) -> None:
    """A failed payment asks for an approval before its customer email goes out."""
    held = {"version": 1, "trigger": {"type": "payment.failed"},
            "actions": [{"type": "approval", "summary": "Email about the failed payment",
                         "actions": [{"type": "email", "to": "customer",
                                      "template": "payment_failed_personal"}]}]}
    assert evaluator.admin.put("/v1/automations/held", json=held).status_code == 201
    assert evaluator.admin.post("/v1/automations/payment-failed/disable").status_code == 200
    # A decision is stamped with the wall clock, months after T0: it would settle these
    # customers' no-login due time on its way (correctly), which is not this test's point.
    assert evaluator.admin.post("/v1/automations/inactive-7d/disable").status_code == 200


def wait_for_pending(evaluator: Evaluator, count: int, timeout: float = 60) -> list[Any]:
    def pending() -> list[Any]:
        return list(evaluator.admin.get("/v1/approvals", params={"status": "pending"}
                                        ).json()["approvals"])

    found = eventually_sync(pending, lambda now: len(now) >= count, within_s=timeout,
                            every_s=0.25)
    assert len(found) >= count, f"expected {count} pending approvals, got {found}"
    return found


def test_timers_are_rebuilt_from_the_changelog_after_a_restart(
        settings: Settings, evaluator: Evaluator, tmp_path: Path) -> None:
    evaluator.produce(EVENTS_USAGE, [(b"cus-r", logged_in("login-r", "cus-r", T0))], partition=1)
    k = settings.kafka  # the state is stored: the login was processed
    consume(k.bootstrap_servers, changelog_topic(settings.kafka, CUSTOMER_STATE_TABLE), 1)
    assert evaluator.proc.stop() == 0

    restarted = ServiceProcess("evaluator", evaluator.proc.env, tmp_path / "again",
                               evaluator.proc.port)
    (tmp_path / "again").mkdir()
    evaluator.proc = restarted.start()
    restarted.wait_ready()
    evaluator.produce(TICKS, [(b"0", tick(0, T0 + 8 * DAY))], partition=0)  # not its partition
    assert evaluator.all_commands(settle=3) == []
    evaluator.produce(TICKS, [(b"1", tick(1, T0 + 8 * DAY))], partition=1)
    [fired] = evaluator.commands(1)
    assert fired["customer_id"] == "cus-r" and epoch_ms(fired["issued_at"]) == T0 + 7 * DAY
    # The tick's state write went to the customer's own changelog partition.
    changelog = consume(k.bootstrap_servers, changelog_topic(k, CUSTOMER_STATE_TABLE), 2)
    assert {(r.key, r.partition) for r in changelog} == {(b"cus-r", 1)}


def test_a_second_worker_takes_its_partitions_timers_with_it(
        settings: Settings, evaluator: Evaluator, tmp_path: Path) -> None:
    evaluator.produce(EVENTS_USAGE, [(b"cus-p0", logged_in("l0", "cus-p0", T0))], partition=0)
    evaluator.produce(EVENTS_USAGE, [(b"cus-p1", logged_in("l1", "cus-p1", T0))], partition=1)
    k = settings.kafka
    consume(k.bootstrap_servers, changelog_topic(settings.kafka, CUSTOMER_STATE_TABLE), 2)

    port = free_port()
    (tmp_path / "second").mkdir()
    env = {**evaluator.proc.env, "EVALUATOR_PORT": str(port),
           "EVALUATOR_ADMIN_PORT": str(free_port()),
           "EVALUATOR_DATA_DIR": str(tmp_path / "second" / "evaluator")}
    second = ServiceProcess("evaluator", env, tmp_path / "second", port).start()
    try:
        second.wait_ready()
        evaluator.proc.wait_ready()  # the rebalance is over on both
        evaluator.produce(TICKS, [(b"0", tick(0, T0 + 8 * DAY))], partition=0)
        evaluator.produce(TICKS, [(b"1", tick(1, T0 + 8 * DAY))], partition=1)
        fired = evaluator.commands(2)
        assert sorted(c["customer_id"] for c in fired) == ["cus-p0", "cus-p1"]
        assert len(evaluator.all_commands()) == 2
        # Each worker indexed the partitions it owns now, one each.
        owned = [last_indexed(proc.log_path) for proc in (evaluator.proc, second)]
        assert sorted(owned) == [[0], [1]], owned
    finally:
        assert second.stop() == 0, second.tail()


def last_indexed(log: Path) -> list[int]:
    lines = [json.loads(line) for line in log.read_text().splitlines()
             if '"timers_indexed"' in line]
    return list(lines[-1]["partitions"])


def test_a_new_time_automation_re_indexes_the_timers(evaluator: Evaluator) -> None:
    evaluator.produce(EVENTS_USAGE, [(b"cus-3", logged_in("login-3", "cus-3", T0))])
    wait_for_one_login(evaluator.proc)  # stored, and the customer indexed
    sooner = {"version": 1, "trigger": {"type": "no_login", "days": 3},
              "actions": [{"type": "email", "to": "customer", "template": "we_miss_you"}]}
    assert evaluator.admin.put("/v1/automations/inactive-3d", json=sooner).status_code == 201
    # Indexed at 7 days before; the re-index brings the customer forward to 3 days. (The
    # engine arms a new time automation at the waking tick's interval start, so the tick
    # comes within one interval of the due time, as regular ticks do.)
    evaluator.produce(TICKS, [(b"0", tick(0, T0 + 3 * DAY + 30_000))])
    [fired] = evaluator.commands(1)
    assert fired["automation_id"] == "inactive-3d"
    assert epoch_ms(fired["issued_at"]) == T0 + 3 * DAY


def wait_for_one_login(proc: ServiceProcess) -> None:
    """Until the evaluator counts one login (once its batch is stored)."""
    until(proc.url("/metrics"), lambda samples: value(
        samples, "signalbox_evaluator_inputs_total", kind="event", type="user.logged_in") == 1)


def test_a_restart_on_the_rocksdb_store_finds_its_timer_index_on_disk(
        settings: Settings, evaluator: Evaluator, tmp_path: Path) -> None:
    """The restarted worker finds its customers' states and timer index on its volume:
    no changelog replay of them, no scan, no decoding, and the timer fires."""
    assert evaluator.proc.stop() == 0
    env = {**evaluator.proc.env, "EVALUATOR_STORE": "rocksdb://",
           "EVALUATOR_DATA_DIR": str(tmp_path / "rocks")}
    runs = []
    for run in ("first", "second"):
        (tmp_path / run).mkdir()
        proc = ServiceProcess("evaluator", env, tmp_path / run, evaluator.proc.port).start()
        evaluator.proc = proc
        runs.append(proc)
        proc.wait_ready()
        if run == "first":
            evaluator.produce(EVENTS_USAGE, [(b"cus-r", logged_in("login-r", "cus-r", T0))],
                              partition=1)
            consume(settings.kafka.bootstrap_servers,
                    changelog_topic(settings.kafka, CUSTOMER_STATE_TABLE), 1)
            wait_for_one_login(proc)
            assert proc.stop() == 0
    indexed = [json.loads(line) for line in runs[1].log_path.read_text().splitlines()
               if '"timers_indexed"' in line]
    # The index on disk was complete: nothing scanned, nothing decoded.
    assert indexed and indexed[-1]["scanned"] == 0 and indexed[-1]["decoded"] == 0, indexed
    evaluator.produce(TICKS, [(b"1", tick(1, T0 + 8 * DAY))], partition=1)
    [fired] = evaluator.commands(1)
    assert fired["customer_id"] == "cus-r" and epoch_ms(fired["issued_at"]) == T0 + 7 * DAY


def test_a_decision_not_made_through_the_admin_api_releases_nothing(
        evaluator: Evaluator) -> None:
    """An approval.decided written straight to Kafka (a forged decision: ingest refuses the
    type, a Kafka producer could still write it) is dead-lettered; the action stays held
    until the admin API decides."""
    hold_payment_failed_emails(evaluator)
    evaluator.produce(EVENTS_BILLING,
                      [(b"cus-f", payment_failed_record("pf", "cus-f", at=now_ms()))])
    [pending] = wait_for_pending(evaluator, 1)
    forged = decided_event({"approval_id": pending["approval_id"], "customer_id": "cus-f",
                            "status": "approved", "decided_by": "mallory", "reason": None},
                           T0 + 5_000)
    evaluator.produce(EVENTS_BILLING, [(b"cus-f", codec.encode(schemas.EVENT, forged))])
    k = evaluator.settings.kafka
    [letter] = [codec.decode(schemas.DEAD_LETTER, r.value)
                for r in consume(k.bootstrap_servers, k.topic(EVENTS_DLQ), 1)]
    assert letter["error_type"] == "UnverifiedDecision"
    assert "only from the admin API" in letter["reason"]
    assert evaluator.all_commands(settle=2) == []
    still = evaluator.admin.get(f"/v1/approvals/{pending['approval_id']}").json()
    assert still["status"] == "pending"

    r = evaluator.admin.post(f"/v1/approvals/{pending['approval_id']}/approve",
                             headers={"X-Signalbox-Actor": "ada"})
    assert r.status_code == 200, r.text
    [released] = evaluator.commands(1)
    assert released["customer_id"] == "cus-f" and released["automation_id"] == "held"
