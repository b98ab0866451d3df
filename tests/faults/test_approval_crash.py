"""A decision recorded just before its process dies: recorded once, applied once.

The admin API records a decision on the approvals topic, then writes its
``approval.decided`` event. The crash point between the two is reproduced exactly:
the decision record is on the broker, its event is not, and the evaluator that ran
the admin API is killed with SIGKILL. Its replacement must release what was approved
(one mail per held command), drop what was rejected, and settle every approval.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from signalbox.common import schemas
from signalbox.common.clock import now_ms
from signalbox.common.codec import AvroCodec
from signalbox.common.settings import Settings
from signalbox.common.topics import APPROVALS, EVENTS_BILLING
from signalbox.evaluator.approvals import merge
from signalbox.testing import eventually_sync, free_port
from tests.faults.conftest import Rig, report
from tests.faults.load import payment_failures
from tests.faults.tally import tally
from tests.support.kafka import drain, produce

pytestmark = pytest.mark.kafka
codec = AvroCodec()
AUTOMATIONS = """
format: signalbox/automations@2
automations:
  - id: hold-dunning
    trigger: {type: payment.failed}
    actions:
      - type: approval
        summary: Email the customer about the failed payment
        actions:
          - {type: email, template: payment_failed}
"""


def approvals(settings: Settings, count: int, settled: bool = False,
              timeout: float = 90.0) -> dict[str, dict[str, Any]]:
    """Customer id → its approval as every reader sees it, once ``count`` are known
    (``settled``: and settled)."""
    k = settings.kafka

    def known() -> dict[str, dict[str, Any]]:
        seen: dict[str, Any] = {}
        for r in drain(k.bootstrap_servers, k.topic(APPROVALS), settle=0.5):
            aid = r.key.decode() if r.key else ""
            seen[aid] = merge(seen.get(aid), codec.decode(schemas.APPROVAL, r.value))
        return {a["customer_id"]: dict(a) for a in seen.values()}

    def enough(by_customer: dict[str, dict[str, Any]]) -> bool:
        return len(by_customer) >= count and (not settled or all(
            a["settled_at"] is not None for a in by_customer.values()))

    by_customer = eventually_sync(known, enough, within_s=timeout, every_s=0.5)
    assert enough(by_customer), f"approvals after {timeout}s: {by_customer}"
    return by_customer


def test_decisions_recorded_before_a_kill_are_applied_once(
        settings: Settings, rig: Rig, tmp_path: Path) -> None:
    automations = tmp_path / "automations.yaml"
    automations.write_text(AUTOMATIONS)
    admin = free_port()
    env = {"SIGNALBOX_AUTOMATIONS_FILE": str(automations), "EVALUATOR_ADMIN_PORT": str(admin)}
    dispatcher, evaluator = rig.dispatcher("a"), rig.evaluator("a", data="0", **env)
    dispatcher.wait_ready()
    evaluator.wait_ready()
    k = settings.kafka
    now = now_ms()  # an approval expires, 7 days after it was opened: events of today
    produce(k.bootstrap_servers, k.topic(EVENTS_BILLING), [
        (customer.encode(), codec.encode(schemas.EVENT, {
            **codec.decode(schemas.EVENT, value), "occurred_at": now, "received_at": now}))
        for customer, value in payment_failures(customers=3, per_customer=1).events])
    held = approvals(settings, 3)
    assert {a["status"] for a in held.values()} == {"pending"}

    # cus-0: decided through the admin API as usual (both writes happen).
    r = httpx.post(f"http://127.0.0.1:{admin}/v1/approvals/{held['cus-0']['approval_id']}"
                   "/approve", headers={"X-Signalbox-Actor": "ada"}, timeout=30)
    assert r.status_code == 200, r.text
    # cus-1 approved, cus-2 rejected: the decisions are recorded, their events are not
    # (the admin API's first write, then SIGKILL).
    for customer, decision in (("cus-1", "approved"), ("cus-2", "rejected")):
        record = {**held[customer], "status": decision, "decided_by": "ada",
                  "decided_at": now_ms(), "reason": None}
        produce(k.bootstrap_servers, k.topic(APPROVALS), [
            (record["approval_id"].encode(), codec.encode(schemas.APPROVAL, record))])
    evaluator.kill()
    fault = time.monotonic()
    again = rig.evaluator("b", data="0", **env)
    again.wait_ready()

    expected = set(held["cus-0"]["command_ids"]) | set(held["cus-1"]["command_ids"])
    counted = tally(settings, expected, rig.smtp)
    report(counted.line("evaluator kill -9 after 2 decisions recorded without their "
                        "events", fault))
    counted.check()
    settled = approvals(settings, 3, settled=True)
    assert {c: (a["status"], a["released"]) for c, a in settled.items()} == {
        "cus-0": ("approved", True), "cus-1": ("approved", True),
        "cus-2": ("rejected", False)}
    metrics = httpx.get(again.url("/metrics"), timeout=10).text
    resent = [line for line in metrics.splitlines()
              if line.startswith("signalbox_evaluator_approval_decisions_resent_total ")]
    assert resent and float(resent[0].split()[1]) >= 2, resent  # cus-1, cus-2 (cus-0 maybe)
    assert again.stop() == 0, again.tail()
    assert dispatcher.stop() == 0, dispatcher.tail()
