"""Events per second through the whole pipeline on this machine.

Starts ingest, evaluator, dispatcher and scheduler as processes (the way they
run in production) against a real broker and an aiosmtpd SMTP server, POSTs
``--events`` events in batches, and measures:

* ingest: events accepted per second (HTTP 202, acknowledged by Kafka);
* evaluator: events per second from the first POST until every event was processed;
* end to end: emails delivered per second until the last one reached SMTP.

A quarter of the events are failed payments for *pro* (two emails each); the rest
are logins and successful payments that only update state.

    python -m bench.pipeline [--events 4000] [--batch 200] [--partitions 4]

Uses KAFKA_BOOTSTRAP_SERVERS if set, otherwise starts the project's broker on 19092.
"""

from __future__ import annotations

import argparse
import os
import re
import tempfile
import time
import uuid
from dataclasses import replace
from pathlib import Path

import httpx

from signalbox.common.settings import KafkaSettings, Settings
from signalbox.common.topics import apply, catalogue, wait_for_broker
from signalbox.testing.broker import TEST_KAFKA_PORT, kafka_script
from signalbox.testing.pipeline import pipeline


def broker() -> str:
    given = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if given:
        return given
    started = kafka_script("start")
    if started.returncode != 0:
        raise SystemExit(f"could not start the test broker:\n{started.stderr}")
    return f"127.0.0.1:{TEST_KAFKA_PORT}"


def events(n: int) -> list[dict[str, object]]:
    out: list[dict[str, object]] = []
    for i in range(n):
        customer = f"cus-{i % 500}"
        base = {"event_id": f"bench-{i}", "customer_id": customer,
                "occurred_at": 1_790_000_000_000 + i,
                "customer": {"email": f"{customer}@example.com"}}
        if i % 4 == 0:
            out.append({**base, "type": "payment.failed", "data": {
                "payment_id": f"p{i}", "product": "pro", "amount_minor": 4900,
                "currency": "EUR"}})
        elif i % 4 == 1:
            out.append({**base, "type": "payment.succeeded", "data": {
                "payment_id": f"p{i}", "product": "pro", "amount_minor": 4900,
                "currency": "EUR"}})
        else:
            out.append({**base, "type": "user.logged_in", "data": {}})
    return out


def processed(url: str) -> float:
    text = httpx.get(url, timeout=5).text
    return sum(float(v) for v in re.findall(
        r'^signalbox_evaluator_inputs_total\{kind="event"[^}]*\} (\S+)$', text, re.M))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=4000)
    parser.add_argument("--batch", type=int, default=200)
    parser.add_argument("--partitions", type=int, default=4)
    args = parser.parse_args()
    settings = replace(Settings.from_env({}), kafka=KafkaSettings(
        broker(), f"bench{uuid.uuid4().hex[:8]}.", args.partitions, 1))
    wait_for_broker(settings.kafka)
    apply(settings.kafka, catalogue(settings.kafka).values())
    batch = events(args.events)
    expected_mails = 2 * sum(1 for e in batch if e["type"] == "payment.failed")

    with tempfile.TemporaryDirectory() as tmp, pipeline(settings, Path(tmp),
                                                        LOG_LEVEL="warning") as p:
        metrics_url = p.services["evaluator"].url("/metrics")
        with httpx.Client(timeout=60) as client:
            start = time.perf_counter()
            for i in range(0, len(batch), args.batch):
                r = client.post(p.ingest_url, json=batch[i:i + args.batch])
                r.raise_for_status()
            accepted = time.perf_counter()
        while processed(metrics_url) < args.events:
            time.sleep(0.05)
        evaluated = time.perf_counter()
        p.smtp.wait_for(expected_mails, timeout=900)
        delivered = time.perf_counter()
        p.stop()

    print(f"pipeline: {args.events:,} events in batches of {args.batch}, "
          f"{args.partitions} partitions, {expected_mails:,} emails")
    print(f"  ingest accepted:       {args.events / (accepted - start):>8,.0f} events/s")
    print(f"  evaluator processed:   {args.events / (evaluated - start):>8,.0f} events/s "
          f"(first POST to last event evaluated)")
    print(f"  emails delivered:      {expected_mails / (delivered - start):>8,.1f} emails/s "
          f"(first POST to last email at SMTP, {delivered - start:.1f} s)")


if __name__ == "__main__":
    main()
