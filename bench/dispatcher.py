"""Commands per second through the real dispatcher worker, per channel.

Writes ``--commands`` commands to ``actions.commands`` first, then starts the
worker (in this process, with its Kafka transactions, ledger and retry tiers)
against a real broker and local servers — aiosmtpd for email, the Twilio-format
server for SMS — and measures the time from start until every command has its
outcome on ``actions.results``. Scenarios:

* ``email``: every command an email;
* ``sms``: every command an SMS;
* ``email+failing-sms``: half emails, half SMS to a provider answering 503 to
  every other request (those go through the retry tiers): the email rate shows
  whether a failing channel holds the other one up.

    python -m bench.dispatcher [--commands 2000] [--partitions 4]

Uses KAFKA_BOOTSTRAP_SERVERS if set, otherwise starts the project's broker on 19092.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import time
import uuid
from collections import Counter
from dataclasses import replace
from typing import Any

from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient

from bench.pipeline import broker
from signalbox.common import schemas
from signalbox.common.settings import (
    DispatcherSettings,
    KafkaSettings,
    LoggingSettings,
    Settings,
    SmtpSettings,
)
from signalbox.common.telemetry import configure_logging
from signalbox.common.topics import ACTIONS_COMMANDS, ACTIONS_RESULTS, apply, catalogue
from signalbox.dispatcher.main import build
from signalbox.dispatcher.providers import DispatcherConfig, SmsProvider
from signalbox.testing.action_commands import codec, command
from signalbox.testing.fakes.twilio import FakeTwilio
from signalbox.testing.smtp import SmtpSink


def write_commands(s: Settings, mix: list[str], n: int) -> None:
    k = s.kafka
    p = Producer({"bootstrap.servers": k.bootstrap_servers, "linger.ms": 5})
    for i in range(n):
        channel = mix[i % len(mix)]
        customer = f"cus-{i}"
        _, value = command(i, channel=channel, customer=customer)
        p.produce(k.topic(ACTIONS_COMMANDS), key=customer.encode(), value=value)
    assert p.flush(60) == 0


def count_results(s: Settings, n: int, started: float, timeout: float) -> dict[str, Any]:
    """Read results until ``n`` arrived: when each channel's last one came, and the outcomes."""
    k = s.kafka
    c = Consumer({"bootstrap.servers": k.bootstrap_servers, "group.id": uuid.uuid4().hex,
                  "auto.offset.reset": "earliest", "isolation.level": "read_committed"})
    c.subscribe([k.topic(ACTIONS_RESULTS)])
    last: dict[str, float] = {}
    statuses: Counter[str] = Counter()
    try:
        while sum(statuses.values()) < n and time.monotonic() - started < timeout:
            for m in c.consume(500, 0.5):
                if m.error():
                    continue
                result = codec.decode(schemas.ACTION_RESULT, m.value())
                last[result["channel"]] = time.monotonic() - started
                statuses[f'{result["channel"]} {result["status"]}'] += 1
    finally:
        c.close()
    if sum(statuses.values()) < n:
        raise SystemExit(f"only {sum(statuses.values())} of {n} results in {timeout}s")
    return {"last": last, "statuses": statuses}


async def scenario(name: str, bootstrap: str, partitions: int, n: int) -> None:
    s = replace(Settings.from_env({}), kafka=KafkaSettings(
        bootstrap_servers=bootstrap, topic_prefix=f"bench{uuid.uuid4().hex[:8]}.",
        partitions=partitions), logging=LoggingSettings(level="warning"),
        dispatcher=DispatcherSettings(backoff_s=0.05, backoff_cap_s=0.5))
    apply(s.kafka, catalogue(s.kafka).values())
    mix = {"email": ["email"], "sms": ["sms"], "email+failing-sms": ["email", "sms"]}[name]
    with SmtpSink() as smtp, FakeTwilio() as twilio:
        if name == "email+failing-sms":
            for _ in range(n):
                twilio.fail_next(1, 503, skip=1)
        smtp_settings = SmtpSettings(port=smtp.port, timeout_s=10)
        s = replace(s, dispatcher=replace(s.dispatcher, smtp=smtp_settings))
        cfg = DispatcherConfig(sms=SmsProvider(
            account_sid=twilio.account_sid, auth_token=twilio.auth_token,
            from_number="+14155550100", base_url=twilio.url), policy={
                "defaults": {"concurrency": 16, "breaker": {"failures": 0}}})
        await asyncio.to_thread(write_commands, s, mix, n)
        stop = asyncio.Event()
        dispatcher = build(s, cfg)
        started = time.monotonic()
        task = asyncio.create_task(dispatcher.run(stop))
        got = await asyncio.to_thread(count_results, s, n, started, 600)
        total = time.monotonic() - started
        stop.set()
        await task
        per = ", ".join(f"{ch} done after {t:.2f}s" for ch, t in sorted(got["last"].items()))
        print(f"{name:18s} {n} commands in {total:6.2f}s = {n / total:7.1f} commands/s; {per}",
              flush=True)
        print(f"{'':18s} outcomes {dict(sorted(got['statuses'].items()))}; SMTP received "
              f"{len(smtp.messages)}, SMS sent {len(twilio.messages)}, SMS requests "
              f"{twilio.requests}", flush=True)
    admin = AdminClient({"bootstrap.servers": bootstrap})
    names = [t for t in admin.list_topics(timeout=10).topics if t.startswith(s.kafka.topic_prefix)]
    for fut in admin.delete_topics(names, operation_timeout=30).values():
        with contextlib.suppress(Exception):
            fut.result()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--commands", type=int, default=2000)
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--scenario", action="append",
                        choices=("email", "sms", "email+failing-sms"))
    args = parser.parse_args()
    configure_logging("bench", os.environ.get("LOG_LEVEL", "warning"), "console")
    bootstrap = broker()
    for name in args.scenario or ("email", "sms", "email+failing-sms"):
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(scenario(name, bootstrap, args.partitions, args.commands))


if __name__ == "__main__":
    main()
