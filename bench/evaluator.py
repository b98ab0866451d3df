"""Events per second of the evaluator worker next to its floor and its framework's limit.

    python -m bench.evaluator [--events 200000] [--customers 5000] [--partitions 4]
                              [--only bare,codec,faust,evaluator] [--workers 1,2] [--rounds 1]
                              [--store memory://] [--logs DIR] [--log-level warning]
                              [--timeout 900]

In one run, on one broker (``KAFKA_BOOTSTRAP_SERVERS``, default 127.0.0.1:19092),
each contender reads the same pre-loaded events (``bench.pipeline``'s mix) from the
start, in its own process and consumer group:

* ``bare``: the aiokafka consume → produce loop (``bench.loop``);
* ``codec``: the same loop + ``AvroCodec`` decode of each Event and encode of one record;
* ``faust``: a tuned minimal Faust agent with a Table doing the trivial stateful job
  (``bench.faust_agent``);
* ``evaluator``: the real worker, ``signalbox evaluator`` (``--store``, memory by
  default; default automations), once per ``--workers`` count (processes in one group); the commands
  it wrote are counted, as a check that it did the work.

Every contender run gets a fresh topic prefix with its own copy of the input (the
evaluator's group and changelog are named by the prefix), deleted afterwards.
Throughput excludes start-up: from the first committed progress on the input
topics to all of the input committed, read from the group's committed offsets.
The evaluator's input is written once all its workers answer ``/readyz`` and its
group is stable with all of them, so start-up and the first rebalance stay out
of the window (the loader writes far faster than a worker reads). A worker that
commits on an interval (Faust: every 2.8 s or 10,000 records) overstates the window
by up to one interval: hence 200,000 events by default, about 30 s per evaluator run
here.
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import structlog
from confluent_kafka import (
    Consumer,
    ConsumerGroupState,
    ConsumerGroupTopicPartitions,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient

from bench.children import Children, all_ready
from bench.events import Record, encode, mix, preload
from signalbox.common.kafka import librdkafka_config
from signalbox.common.registry import codec_for
from signalbox.common.settings import EVALUATOR_STORES, KafkaSettings, Settings
from signalbox.common.topics import (
    ACTIONS_COMMANDS,
    TopicSpec,
    apply,
    catalogue,
    wait_for_broker,
)
from signalbox.testing import free_port, service_env

CONTENDERS = {
    "bare": "bare aiokafka loop",
    "codec": "aiokafka loop + AvroCodec",
    "faust": "tuned Faust agent + Table",
    "evaluator": "evaluator",
}
OUT = "bench.out"


@dataclass(frozen=True)
class Run:
    contender: str
    workers: int
    round: int
    rate: float  # events/s
    seconds: float  # from the first committed progress to all committed
    commands: int | None  # records on actions.commands once all was committed (evaluator)

    @property
    def label(self) -> str:
        return label(self.contender, self.workers)


def label(contender: str, workers: int) -> str:
    if contender != "evaluator":
        return CONTENDERS[contender]
    return f"evaluator, {workers} worker{'s' if workers > 1 else ''}"


def fresh(base: Settings) -> Settings:
    """``base`` with a topic prefix of its own."""
    return replace(base, kafka=replace(base.kafka, topic_prefix=f"bench{uuid.uuid4().hex[:8]}."))


def start(children: Children, settings: Settings, contender: str, workers: int,
          log_dir: Path, extra_env: dict[str, str]) -> tuple[str, list[str]]:
    """Start the contender's process(es): the consumer group whose offsets say its
    progress, and the ``/readyz`` URLs to wait for (the evaluator's)."""
    k = settings.kafka
    env = service_env(settings, **extra_env)
    if contender == "evaluator":
        urls = []
        for i in range(workers):
            port = free_port()
            urls.append(f"http://127.0.0.1:{port}/readyz")
            children.start(f"evaluator-{i}", ["-m", "signalbox", "evaluator"], {
                **env, "EVALUATOR_PORT": str(port), "EVALUATOR_ADMIN_PORT": str(free_port()),
                "SIGNALBOX_INSTANCE_ID": f"bench-{i}",
                "EVALUATOR_DATA_DIR": str(log_dir / f"evaluator-{i}")})
        return settings.kafka.evaluator_app_id, urls
    group = k.topic(f"bench-{contender}")
    module = "bench.faust_agent" if contender == "faust" else "bench.loop"
    extra = ["--codec"] if contender == "codec" else []
    children.start(contender, ["-m", module, group, k.topic(OUT), *extra], env)
    return group, []


def wait_ready(admin: AdminClient, group: str, urls: list[str], alive: Callable[[], None],
               timeout: float) -> None:
    """Until every worker answers ``/readyz`` and the group is stable with all of them."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        alive()
        if all_ready(urls):
            info = admin.describe_consumer_groups([group])[group].result(timeout=10)
            if info.state == ConsumerGroupState.STABLE and len(info.members) == len(urls):
                return
        time.sleep(0.25)
    raise TimeoutError(f"group {group}: {len(urls)} worker(s) not ready and in the group "
                       f"after {timeout:.0f} s")


def committed(admin: AdminClient, group: str,
              ends: dict[tuple[str, int], int]) -> dict[tuple[str, int], int]:
    """Input records the group has committed per partition (at most the loaded ones)."""
    request = ConsumerGroupTopicPartitions(group, [TopicPartition(t, p) for t, p in ends])
    result = admin.list_consumer_group_offsets([request])[group].result(timeout=10)
    return {(tp.topic, tp.partition): min(max(tp.offset, 0), ends[(tp.topic, tp.partition)])
            for tp in result.topic_partitions}


def measure(admin: AdminClient, group: str, ends: dict[tuple[str, int], int],
            alive: Callable[[], None], timeout: float, prefix: str,
            stall: float = 120.0) -> tuple[float, float]:
    """(events/s, seconds) from the first committed progress to all input committed.

    Gives up after ``timeout`` seconds, or ``stall`` seconds without progress (a
    crashed agent leaves its worker running), naming the partitions behind.
    """
    total = sum(ends.values())
    deadline = time.monotonic() + timeout
    first: tuple[float, int] | None = None
    last = (time.monotonic(), 0)
    while True:
        alive()
        offsets = committed(admin, group, ends)
        done, now = sum(offsets.values()), time.perf_counter()
        if first is None and done > 0:
            first = (now, done)
        if done >= total:
            break
        if done > last[1]:
            last = (time.monotonic(), done)
        if time.monotonic() > min(deadline, last[0] + stall):
            behind = ", ".join(f"{t.removeprefix(prefix)}[{p}] {offsets[(t, p)]}/{end}"
                               for (t, p), end in sorted(ends.items()) if offsets[(t, p)] < end)
            raise TimeoutError(f"group {group}: {done:,} of {total:,} events committed, "
                               f"none for {time.monotonic() - last[0]:.0f} s; behind: {behind}")
        time.sleep(0.02)  # the bare loop finishes in a few seconds
    assert first is not None
    t0, c0 = first
    if c0 >= total:
        raise RuntimeError(f"group {group} committed all {total:,} events at once: "
                           "too few events to measure a rate (raise --events)")
    return (total - c0) / (now - t0), now - t0


def records_on(k: KafkaSettings, topic: str) -> int:
    """How many records ``topic`` holds (a fresh topic: its end offsets' sum).

    The evaluator's commands, as a check that it did the work, not only committed."""
    probe = Consumer({**librdkafka_config(k), "group.id": f"{k.topic_prefix}probe",
                      "log_level": 4})
    try:
        partitions = probe.list_topics(topic, timeout=10).topics[topic].partitions
        return sum(probe.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
                   for p in partitions)
    finally:
        probe.close()


def admin_client(k: KafkaSettings) -> AdminClient:
    return AdminClient({**librdkafka_config(k), "log_level": 4})  # no info lines on close


def delete_topics(k: KafkaSettings) -> None:
    """Delete every topic of the run's prefix (the shared broker keeps nothing of it)."""
    admin = admin_client(k)
    names = [n for n in admin.list_topics(timeout=10).topics if n.startswith(k.topic_prefix)]
    for future in admin.delete_topics(names, operation_timeout=30).values() if names else ():
        future.result()


def one_run(base: Settings, records: list[Record], contender: str, workers: int, rnd: int,
            args: argparse.Namespace) -> Run:
    settings = fresh(base)
    k = settings.kafka
    log_dir = args.logs / f"{rnd}-{contender}-{workers}"
    log_dir.mkdir(parents=True, exist_ok=True)
    specs = [*catalogue(settings.kafka).values(), TopicSpec(k.topic(OUT), k.partitions,
                                                      k.replication_factor)]
    try:
        apply(k, specs)
        admin = admin_client(k)
        with Children(log_dir) as children:
            if contender != "evaluator":
                ends = preload(k, records)
            group, urls = start(children, settings, contender, workers, log_dir,
                                {"LOG_LEVEL": args.log_level, "EVALUATOR_STORE": args.store})
            if contender == "evaluator":
                wait_ready(admin, group, urls, children.check, args.timeout)
                ends = preload(k, records)
            rate, seconds = measure(admin, group, ends, children.check, args.timeout,
                                    k.topic_prefix)
            commands = None
            if contender == "evaluator":
                commands = records_on(k, k.topic(ACTIONS_COMMANDS))
    finally:
        delete_topics(k)
    return Run(contender, workers, rnd, rate, seconds, commands)


def report(runs: list[Run], header: str) -> None:
    by_label: dict[str, list[Run]] = {}
    for r in runs:
        by_label.setdefault(r.label, []).append(r)
    median = {label: statistics.median(r.rate for r in rs) for label, rs in by_label.items()}
    bare, faust = median.get(CONTENDERS["bare"]), median.get(CONTENDERS["faust"])
    print(f"\n{header}")
    print(f"{'contender':<28}{'events/s (median)':>18}{'rounds':>24}{'vs bare':>9}{'vs faust':>10}")
    for name, rs in by_label.items():
        rounds = " ".join(f"{r.rate:,.0f}" for r in rs)
        vs_bare = f"{median[name] / bare:.1%}" if bare else "-"
        vs_faust = f"{median[name] / faust:.1%}" if faust else "-"
        print(f"{name:<28}{median[name]:>18,.0f}{rounds:>24}{vs_bare:>9}{vs_faust:>10}")
    evaluators = sorted({r.workers for r in runs if r.contender == "evaluator"})
    one = median.get(label("evaluator", 1))
    for n in evaluators:
        rate = median[label("evaluator", n)]
        ratios = [f"evaluator x{n} / tuned Faust = {rate / faust:.1%}" if faust else "",
                  f"evaluator x{n} / bare loop = {rate / bare:.1%}" if bare else "",
                  f"x{n} / x1 = {rate / one:.2f}" if one and n > 1 else ""]
        if any(ratios):
            print("  " + "; ".join(filter(None, ratios)))


def names(text: str) -> list[str]:
    chosen = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in chosen if n not in CONTENDERS]
    if unknown or not chosen:
        raise argparse.ArgumentTypeError(
            f"unknown contender(s) {', '.join(unknown) or '(none)'}; choose from "
            f"{', '.join(CONTENDERS)}")
    return chosen


def counts(text: str) -> list[int]:
    try:
        values = [int(n) for n in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected worker counts like 1,2, got {text!r}") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"worker counts must be at least 1, got {text!r}")
    return values


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--customers", type=int, default=5_000)
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--only", type=names, default=list(CONTENDERS),
                        help=f"comma-separated, from {','.join(CONTENDERS)}")
    parser.add_argument("--workers", type=counts, default=[1, 2],
                        help="evaluator processes per run, comma-separated (default 1,2)")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--logs", type=Path, default=None,
                        help="keep the processes' logs here (default: a temporary directory)")
    parser.add_argument("--store", default="memory://", choices=EVALUATOR_STORES,
                        help="the evaluator's EVALUATOR_STORE (default memory://)")
    parser.add_argument("--log-level", default="warning",
                        choices=("debug", "info", "warning", "error"),
                        help="LOG_LEVEL of the processes the bench starts")
    parser.add_argument("--timeout", type=float, default=900.0,
                        help="seconds one contender may take before the bench gives up")
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    env = {"KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:19092", **os.environ}
    base = Settings.from_env(env)
    base = replace(base, kafka=replace(base.kafka, partitions=args.partitions))
    wait_for_broker(base.kafka, timeout_s=15)
    events = mix(args.events, args.customers)
    records = encode(events, codec_for(base.registry))
    failed = sum(1 for e in events if e["type"] == "payment.failed")
    header = (f"bench.evaluator: {args.events:,} events ({failed:,} failed payments), "
              f"{args.customers:,} customers, {args.partitions} partitions, evaluator store "
              f"{args.store}, "
              f"broker {base.kafka.bootstrap_servers}, {args.rounds} round(s)")
    print(header, flush=True)
    plan = [(c, w) for c in args.only for w in (args.workers if c == "evaluator" else [1])]
    runs: list[Run] = []
    with tempfile.TemporaryDirectory(prefix="bench-evaluator-") as tmp:
        args.logs = args.logs or Path(tmp)
        try:
            for rnd in range(1, args.rounds + 1):
                for contender, workers in plan:
                    run = one_run(base, records, contender, workers, rnd, args)
                    runs.append(run)
                    done = "" if run.commands is None else f", {run.commands:,} commands"
                    print(f"  round {rnd}: {run.label:<28} {run.rate:>9,.0f} events/s "
                          f"({run.seconds:.1f} s{done})", flush=True)
        finally:
            if runs:
                report(runs, header)


if __name__ == "__main__":
    main()
