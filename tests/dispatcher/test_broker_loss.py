"""A dispatcher whose broker dies: not ready within seconds, a quiet log, and back after.

The shared test broker must never stop, so this test starts a broker of its own
(:mod:`tests.support.private_broker`) and kills it.
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

import httpx
import pytest

from signalbox.common.settings import KafkaSettings, Settings
from signalbox.common.topics import apply, catalogue
from signalbox.testing import service_env
from signalbox.testing.action_commands import command
from signalbox.testing.smtp import SmtpSink
from tests.dispatcher.records import send
from tests.dispatcher.test_worker import start_dispatcher
from tests.support.metrics import scrape, value
from tests.support.private_broker import PrivateBroker, until

pytestmark = pytest.mark.kafka


def test_readiness_follows_the_broker_and_the_log_stays_quiet(
    broker: PrivateBroker, dsettings: Settings, smtp: SmtpSink, tmp_path: Path
) -> None:
    settings = replace(dsettings, kafka=replace(
        dsettings.kafka, bootstrap_servers=broker.bootstrap))
    apply(KafkaSettings(bootstrap_servers=broker.bootstrap), catalogue(settings.kafka).values())
    env = service_env(settings, SMTP_PORT=str(smtp.port), DISPATCHER_BACKOFF_SECONDS="0.05")
    proc = start_dispatcher(env, tmp_path)
    try:
        ready = proc.url("/readyz")
        broker.kill()
        lines_before = len(proc.log_path.read_text().splitlines())
        noticed = until(ready, 503, 15)
        body = httpx.get(ready, timeout=1).json()
        up_during = value(scrape(proc.url("/metrics")), "signalbox_broker_up")
        time.sleep(20)  # an outage of some length: what does it cost in log lines?
        outage_lines = len(proc.log_path.read_text().splitlines()) - lines_before
        broker.script("start")
        back = until(ready, 200, 60)
        up_after = value(scrape(proc.url("/metrics")), "signalbox_broker_up")
        send(settings, command(70))
        smtp.wait_for(1, 60)
    finally:
        assert proc.stop() == 0, proc.tail()
    print(f"\nnot ready {noticed:.1f}s after the broker was killed ({body['failing']}); "
          f"{outage_lines} log lines in ~{noticed + 20:.0f}s of outage; "
          f"ready {back:.1f}s after the broker was started again")
    assert noticed < 5, f"readiness took {noticed:.1f}s to notice"
    assert "no answer from the broker" in body["failing"]["kafka"]
    assert (up_during, up_after) == (0, 1)
    assert outage_lines < 60, proc.tail(80)
