"""The dispatcher's metrics on a running process: series from start-up, build and broker,
consumer lag for the partitions it owns, and event-to-outcome latency from the header."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from confluent_kafka import Producer

from signalbox.common.metrics import RECEIVED_AT_HEADER
from signalbox.common.settings import Settings
from signalbox.common.topics import ACTIONS_COMMANDS, ACTIONS_RETRY
from signalbox.testing import service_env
from signalbox.testing.action_commands import command
from signalbox.testing.smtp import SmtpSink
from tests.dispatcher.test_worker import start_dispatcher
from tests.support.metrics import labelled, scrape, until, value

pytestmark = pytest.mark.kafka
E2E = "signalbox_dispatcher_event_to_outcome_seconds"


def test_metrics_of_a_running_dispatcher(dsettings: Settings, smtp: SmtpSink,
                                         tmp_path: Path) -> None:
    k, group = dsettings.kafka, dsettings.kafka.dispatcher_group_id
    proc = start_dispatcher(service_env(dsettings, SMTP_PORT=str(smtp.port)), tmp_path)
    try:
        url = proc.url("/metrics")
        before = scrape(url)
        # Series exist before any command: every configured channel and outcome at zero.
        for outcome in ("delivered", "suppressed", "failed", "in_doubt"):
            assert value(before, "signalbox_dispatcher_outcomes_total",
                         channel="email", outcome=outcome) == 0
            assert value(before, f"{E2E}_count", channel="email", outcome=outcome) == 0
        assert value(before, "signalbox_dispatcher_deferred_total", channel="email",
                     reason="circuit_open") == 0
        [build] = labelled(before, "signalbox_build_info")
        assert build["service"] == "dispatcher" and build["version"] and build["commit"]
        assert value(before, "signalbox_broker_up") == 1

        # Lag: one series per partition it owns, of commands and every retry tier.
        owned = until(url, lambda s: len(labelled(s, "signalbox_consumer_lag_records"))
                      == k.partitions * (1 + len(ACTIONS_RETRY)))
        assert {(x["group"], x["topic"]) for x in labelled(
            owned, "signalbox_consumer_lag_records")} == {
            (group, k.topic(t)) for t in (ACTIONS_COMMANDS, *ACTIONS_RETRY)}

        # A command caused by an event received 2 s ago: delivered, measured from then.
        received = int(time.time() * 1000) - 2000
        _, payload = command(1)
        producer = Producer({"bootstrap.servers": k.bootstrap_servers})
        producer.produce(k.topic(ACTIONS_COMMANDS), key=b"cus-1", value=payload, partition=0,
                         headers=[(RECEIVED_AT_HEADER, str(received).encode())])
        assert producer.flush(30) == 0
        smtp.wait_for(1, 60)
        after = until(url, lambda s: value(s, f"{E2E}_count", channel="email",
                                           outcome="delivered") == 1)
        seconds = value(after, f"{E2E}_sum", channel="email", outcome="delivered")
        assert seconds is not None and 2.0 <= seconds < 60, seconds
        assert value(after, f"{E2E}_bucket", channel="email", outcome="delivered",
                     le="1.0") == 0
        # Its offset committed, the partition's lag is 0 again (the collector runs every 10 s).
        lag0 = {"group": group, "topic": k.topic(ACTIONS_COMMANDS), "partition": "0"}
        until(url, lambda s: value(s, "signalbox_consumer_lag_records", **lag0) == 0, 30)
    finally:
        assert proc.stop() == 0, proc.tail()
    print(f"\nevent-to-outcome of a command received 2 s before it was written: {seconds:.2f} s")
