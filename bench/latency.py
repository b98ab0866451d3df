"""End to end latency: an event POSTed to ingest until its email is accepted by SMTP.

    python -m bench.latency [--rate 1000] [--seconds 60] [--batch 50] [--failed-every 40]
                            [--customers 5000] [--workers 1] [--store memory://] [--drain 120]

Starts ingest, evaluator (``--workers`` processes) and dispatcher as real processes
on one broker (``KAFKA_BOOTSTRAP_SERVERS``, default 127.0.0.1:19092, a topic prefix
of its own, deleted afterwards) around an aiosmtpd sink in this process, then POSTs
``--rate`` events/s for ``--seconds`` in paced batches. Every ``--failed-every``-th
event is a failed payment for *pro*: the default automations answer it with one
customer email and one finance alert, both naming the payment ("Payment reference"
/ "Payment:" in the default templates), which is how a mail is matched to its
event. The rest are payments and logins that only update state (``bench.events``).

Reports the achieved event rate, the email rate asked of the dispatcher, the
POST → SMTP-accepted latency (p50/p95/p99/max) of the customer emails and of all
emails, and the events whose mails never arrived within ``--drain`` seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import re
import statistics
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field, replace
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default
from pathlib import Path
from typing import Any, cast

import httpx
import structlog
from aiosmtpd.controller import Controller

from bench.children import Children, all_ready
from bench.evaluator import delete_topics
from bench.events import mix
from signalbox.common.settings import EVALUATOR_STORES, Settings
from signalbox.common.topics import apply, catalogue, wait_for_broker
from signalbox.testing import free_port, service_env

PAYMENT = re.compile(r"\b(\S+-pay-(\d+))\b")


@dataclass
class Sink:
    """The SMTP server's side: when each message was accepted, and its bytes."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    received: list[tuple[float, bytes]] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        at = time.perf_counter()
        with self.lock:
            self.received.append((at, bytes(envelope.original_content or envelope.content)))
        return "250 OK"

    def count(self) -> int:
        with self.lock:
            return len(self.received)


@dataclass(frozen=True)
class Mail:
    at: float
    event: int  # the number of the failed payment's event
    internal: bool  # the finance alert (Auto-Submitted), not the customer's email


def parse(at: float, raw: bytes) -> Mail | None:
    msg = message_from_bytes(raw, policy=default)
    body = msg.get_body(preferencelist=("plain",))
    text = "" if body is None else str(cast(EmailMessage, body).get_content())
    found = PAYMENT.search(text)
    if found is None:
        return None
    return Mail(at, int(found.group(2)), msg["Auto-Submitted"] is not None)


@dataclass
class Load:
    """What the load generator sent: when each event's request went out."""

    posted: dict[int, float] = field(default_factory=dict)
    failed_requests: int = 0
    first: float = 0.0
    last: float = 0.0


async def generate(url: str, rate: float, seconds: float, batch: int, customers: int,
                   failed_every: int, run: str) -> Load:
    """POST ``rate`` events/s for ``seconds``: one batch every ``batch / rate`` s, on time
    even when responses are slow (at most 64 requests in flight)."""
    load = Load()
    interval, total = batch / rate, int(rate * seconds)
    slots = asyncio.Semaphore(64)

    async def post(client: httpx.AsyncClient, first: int, events: list[dict[str, object]]) -> None:
        async with slots:
            at = time.perf_counter()
            for i in range(first, first + len(events)):
                load.posted[i] = at
            try:
                response = await client.post(url, json=events)
                ok = response.status_code == 202
            except httpx.HTTPError:
                ok = False
            load.last = time.perf_counter()
            if not ok:
                load.failed_requests += 1
                for i in range(first, first + len(events)):
                    del load.posted[i]

    async with httpx.AsyncClient(timeout=30) as client, asyncio.TaskGroup() as tasks:
        load.first = start = time.perf_counter()
        for n, first in enumerate(range(0, total, batch)):
            await asyncio.sleep(max(0.0, start + n * interval - time.perf_counter()))
            events = mix(min(batch, total - first), customers, failed_every, first, run)
            tasks.create_task(post(client, first, events))
    return load


def percentiles(values: list[float]) -> str:
    if len(values) < 2:
        return f"{len(values)} mail(s): too few for percentiles"
    q = statistics.quantiles(values, n=100, method="inclusive")
    ms = [v * 1000 for v in (q[49], q[94], q[98], max(values))]
    return (f"p50 {ms[0]:,.0f} ms, p95 {ms[1]:,.0f} ms, p99 {ms[2]:,.0f} ms, "
            f"max {ms[3]:,.0f} ms ({len(values):,} mails)")


def report(load: Load, mails: list[Mail], unmatched: int, failed_every: int,
           args: argparse.Namespace) -> None:
    sent = len(load.posted)
    expected = sorted(i for i in load.posted if i % failed_every == 0)
    duration = load.last - load.first
    print(f"\nbench.latency: {args.rate:,.0f} events/s asked for {args.seconds:.0f} s in batches "
          f"of {args.batch}, 1 failed payment in {failed_every}, {args.customers:,} customers, "
          f"{args.workers} evaluator worker(s), store {args.store}")
    print(f"  events accepted: {sent:,} at {sent / duration:,.0f} events/s achieved "
          f"(first POST to last response, {duration:.1f} s; {load.failed_requests} "
          f"request(s) refused or failed)")
    mail_rate = 2 * args.rate / failed_every
    print(f"  emails asked of the dispatcher: {mail_rate:,.1f}/s "
          f"({mail_rate / 2:,.1f} customer emails/s + as many finance alerts)")
    for name, internal in (("customer emails", False), ("finance alerts", True)):
        got = {m.event: m.at - load.posted[m.event] for m in mails
               if m.internal == internal and m.event in load.posted}
        missing = [i for i in expected if i not in got]
        print(f"  POST → SMTP accepted, {name}: {percentiles(list(got.values()))}")
        print(f"    never arrived ({args.drain:.0f} s drain): {len(missing):,} of {len(expected):,}"
              + (f", e.g. events {missing[:5]}" if missing else ""))
    every = [m.at - load.posted[m.event] for m in mails if m.event in load.posted]
    print(f"  POST → SMTP accepted, all emails: {percentiles(every)}"
          + (f"; {unmatched} mail(s) named no event of this run" if unmatched else ""))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rate", type=float, default=1000.0, help="events/s")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--batch", type=int, default=50, help="events per POST (at most 500)")
    parser.add_argument("--failed-every", type=int, default=40,
                        help="one failed payment (two emails) in this many events")
    parser.add_argument("--customers", type=int, default=5_000)
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--workers", type=int, default=1, help="evaluator processes")
    parser.add_argument("--store", default="memory://", choices=EVALUATOR_STORES,
                        help="the evaluator's EVALUATOR_STORE (default memory://)")
    parser.add_argument("--drain", type=float, default=120.0,
                        help="seconds to wait for the last mails after the load")
    parser.add_argument("--logs", type=Path, default=None,
                        help="keep the services' logs here (default: a temporary directory)")
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    env = {"KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:19092", **os.environ}
    base = Settings.from_env(env)
    settings = replace(base, kafka=replace(base.kafka, partitions=args.partitions,
                                           topic_prefix=f"bench{uuid.uuid4().hex[:8]}."))
    wait_for_broker(settings.kafka, timeout_s=15)
    sink = Sink()
    smtp = Controller(sink, hostname="127.0.0.1", port=free_port())
    run = f"lat{uuid.uuid4().hex[:6]}"
    with tempfile.TemporaryDirectory(prefix="bench-latency-") as tmp:
        logs = args.logs or Path(tmp)
        logs.mkdir(parents=True, exist_ok=True)
        try:
            apply(settings.kafka, catalogue(settings.kafka).values())
            smtp.start()
            with Children(logs) as children:
                ports = {"ingest": free_port(), "dispatcher": free_port()}
                common = service_env(settings, LOG_LEVEL="warning", EVALUATOR_STORE=args.store,
                                     SMTP_PORT=str(smtp.port),
                                     INGEST_PORT=str(ports["ingest"]),
                                     DISPATCHER_PORT=str(ports["dispatcher"]))
                children.start("ingest", ["-m", "signalbox", "ingest"], common)
                children.start("dispatcher", ["-m", "signalbox", "dispatcher"], common)
                for i in range(args.workers):
                    ports[f"evaluator-{i}"] = free_port()
                    children.start(f"evaluator-{i}", ["-m", "signalbox", "evaluator"], {
                        **common, "EVALUATOR_PORT": str(ports[f"evaluator-{i}"]),
                        "EVALUATOR_ADMIN_PORT": str(free_port()),
                        "SIGNALBOX_INSTANCE_ID": f"bench-{i}",
                        "EVALUATOR_DATA_DIR": str(logs / f"evaluator-{i}")})
                urls = [f"http://127.0.0.1:{p}/readyz" for p in ports.values()]
                deadline = time.monotonic() + 120
                while not all_ready(urls):
                    children.check()
                    if time.monotonic() > deadline:
                        raise TimeoutError("the services were not ready within 120 s")
                    time.sleep(0.25)
                load = asyncio.run(generate(
                    f"http://127.0.0.1:{ports['ingest']}/v1/events", args.rate, args.seconds,
                    args.batch, args.customers, args.failed_every, run))
                expected = 2 * sum(1 for i in load.posted if i % args.failed_every == 0)
                deadline = time.monotonic() + args.drain
                while sink.count() < expected and time.monotonic() < deadline:
                    children.check()
                    time.sleep(0.25)
        finally:
            smtp.stop()
            delete_topics(settings.kafka)
    parsed = [parse(at, raw) for at, raw in sink.received]
    mails = [m for m in parsed if m is not None]
    report(load, mails, len(parsed) - len(mails), args.failed_every, args)


if __name__ == "__main__":
    main()
