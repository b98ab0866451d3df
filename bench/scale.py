"""The evaluator at N customers: start to ready, RSS per customer, one tick with K due.

    python -m bench.scale [--customers 100000] [--due 1000] [--store both|memory|rocksdb]

For each store, on a topic prefix of its own:

1. starts the real ``signalbox evaluator`` on empty topics (the baseline RSS), stops it;
2. writes N customers' states straight into the state changelog
   (``<app id>-customer-state-changelog``), encoded with the services' codec from
   ``records.state_to_record`` of states the engine built (with the timer summary
   the evaluator stores in front of each state), each on the partition the
   services' producers would give its key (murmur2, as aiokafka's default
   partitioner); every customer has a past-due streak and an active subscription,
   K of them reaching 14 days at the tick time, the others later;
3. starts the evaluator again: (a) seconds from start to ``/readyz``, (b) RSS per
   customer above the baseline (``VmRSS`` from /proc; ``VmHWM`` is the peak), and
   the timers the worker says it indexed;
4. (c) writes one tick per partition to the ticks topic, as the scheduler does, and
   times the first and last command on ``actions.commands`` (their broker
   timestamps) from the tick write;
5. stops it cleanly and starts it on the same data dir (restart to ready; with
   RocksDB the local state is warm), then kills it (SIGKILL) and starts it again.

Reading the figures: after SIGKILL the old member stays in the consumer group until
the broker expires its session (Faust's ``broker_session_timeout``, 60 s by default),
so (e) includes that wait. The synthetic states differ only in their ids, so RocksDB
compresses them far better than real ones: its disk and block-cache figures are low.

Prints figures; not a test. Topics, consumer group and data dirs are removed at the
end (``--keep`` keeps the data dirs). Uses KAFKA_BOOTSTRAP_SERVERS (or the project's
test broker) and SCHEMA_REGISTRY_URL if set, as the services do.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import httpx
from aiokafka.partitioner import DefaultPartitioner
from confluent_kafka import (
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    Producer,
    TopicPartition,
)
from confluent_kafka.admin import (  # type: ignore[attr-defined]  # re-exported, no __all__
    AdminClient,
    NewTopic,
)

from bench.pipeline import broker
from signalbox.common import schemas
from signalbox.common.codec import AvroCodec
from signalbox.common.kafka import librdkafka_config
from signalbox.common.registry import codec_for
from signalbox.common.settings import KafkaSettings, Settings
from signalbox.common.topics import (
    ACTIONS_COMMANDS,
    CUSTOMER_STATE_TABLE,
    TICKS,
    apply,
    catalogue,
    changelog_topic,
)
from signalbox.evaluator.engine import AutomationSet, CustomerState, Event, Profile, Tick
from signalbox.evaluator.engine import evaluate as engine_evaluate
from signalbox.evaluator.engine.model import DAY_MS, MINUTE_MS
from signalbox.evaluator.engine_records import state_to_record
from signalbox.evaluator.main import file_definitions
from signalbox.evaluator.partition_timers import due_of, timers_digest
from signalbox.scheduler.ticks import tick_records
from signalbox.testing import free_port, service_env
from signalbox.testing.processes import ServiceProcess

T0 = 1_790_000_000_000  # when the due customers' past-due streak started
STREAK_DAYS = 14  # the default past-due-dunning automation's first threshold
TICK_AT = T0 + STREAK_DAYS * DAY_MS  # the due customers are due exactly then
INTERVAL_MS = MINUTE_MS
ID_WIDTH = 9  # customer ids "cus-000000042": one length, so a template's id is replaced


def customer_id(i: int) -> str:
    return f"cus-{i:0{ID_WIDTH}d}"


PLACEHOLDER = "cus-" + "X" * ID_WIDTH


def past_due_state(cid: str, since: int, automations: AutomationSet) -> CustomerState:
    """A customer with an active subscription whose past-due streak began at ``since``,
    built by the engine from the events that make one."""
    profile = Profile(email=f"{cid}@example.com", name="Bench Customer")
    state: CustomerState | None = None
    steps: tuple[tuple[str, dict[str, Any]], ...] = (
        ("subscription.started", {"subscription_id": f"sub-{cid}", "product": "pro",
                                  "kind": "subscription", "ends_at": None,
                                  "trial_ends_at": None}),
        ("balance.updated", {"balance_minor": 9900, "past_due_minor": 4900,
                             "currency": "EUR"}),
    )
    for n, (kind, data) in enumerate(steps):
        at = since - 60_000 + n * 60_000
        state = engine_evaluate(state, Event(f"{cid}-{n}", cid, kind, at, data, profile,
                                             received_at=at), automations).state
    assert state is not None and state.past_due_since == since, "not a past-due streak"
    return state


@dataclass(frozen=True)
class Population:
    """Encoded templates: a due state and a later one, with the id as a placeholder."""

    due: bytes
    later: bytes
    commands_per_due: int

    @classmethod
    def build(cls, codec: AvroCodec, automations: AutomationSet) -> Population:
        def encoded(state: CustomerState) -> bytes:
            # with the timer summary at the front, as the evaluator writes every state
            raw = codec.encode(schemas.CUSTOMER_STATE, state_to_record(
                state, due_of(state, automations), timers_digest(automations)))
            assert raw.count(PLACEHOLDER.encode()) >= 1
            return raw

        due = past_due_state(PLACEHOLDER, T0, automations)
        later = past_due_state(PLACEHOLDER, T0 + 7 * DAY_MS, automations)
        fired = engine_evaluate(due, Tick(0, TICK_AT, INTERVAL_MS), automations).commands
        not_yet = engine_evaluate(later, Tick(0, TICK_AT, INTERVAL_MS), automations).commands
        assert fired and not not_yet, "the templates do not split due/not due at the tick"
        return cls(encoded(due), encoded(later), len(fired))


def synthesise(s: Settings, population: Population, customers: int, due: int) -> float:
    """Write every customer's state to the changelog; returns the seconds it took."""
    k = s.kafka
    topic = changelog_topic(s.kafka, CUSTOMER_STATE_TABLE)
    producer = Producer({**librdkafka_config(k), "partitioner": "murmur2_random",
                         "linger.ms": 50, "batch.size": 1_000_000,
                         "queue.buffering.max.messages": 500_000, "acks": "all"})
    check_partitioner(producer, k)
    placeholder = PLACEHOLDER.encode()
    step = max(1, customers // due) if due else customers + 1
    started = time.perf_counter()
    for i in range(customers):
        cid = customer_id(i).encode()
        template = population.due if i % step == 0 and i // step < due else population.later
        value = template.replace(placeholder, cid)
        while True:
            try:
                producer.produce(topic, value=value, key=cid)
                break
            except BufferError:
                producer.poll(0.05)
        if i % 10_000 == 0:
            producer.poll(0)
    if producer.flush(300) != 0:
        raise SystemExit("the broker did not acknowledge every state")
    return time.perf_counter() - started


def check_partitioner(producer: Producer, k: KafkaSettings) -> None:
    """librdkafka's murmur2 must put a key where aiokafka's default partitioner (the
    services' producers) puts it; checked on real deliveries to a scratch topic."""
    scratch = k.topic("bench.partitioner")
    admin = AdminClient(librdkafka_config(k))
    for fut in admin.create_topics([NewTopic(scratch, k.partitions, 1)]).values():
        fut.result()
    seen: dict[bytes | None, int | None] = {}

    def delivered(err: KafkaError | None, msg: Message) -> None:
        if err is None:
            seen[msg.key()] = msg.partition()

    keys = [customer_id(n).encode() for n in range(64)]
    for key in keys:
        while True:
            try:
                producer.produce(scratch, key=key, value=b"", on_delivery=delivered)
                break
            except KafkaException:  # metadata of the new topic not there yet
                time.sleep(0.2)
    producer.flush(30)
    everyone = list(range(k.partitions))
    expected = {key: DefaultPartitioner()(key, everyone, everyone) for key in keys}
    if seen != expected:
        raise SystemExit(f"librdkafka murmur2 and aiokafka disagree on partitions: {seen}")


def rss_kib(pid: int) -> tuple[int, int]:
    """(VmRSS, VmHWM) of a process, KiB."""
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text()
                  .splitlines() if ":" in line)
    return int(fields["VmRSS"].split()[0]), int(fields["VmHWM"].split()[0])


class Evaluator:
    """The real ``signalbox evaluator`` process, one store and data dir."""

    def __init__(self, s: Settings, store: str, data_dir: Path, log_dir: Path) -> None:
        self.port = free_port()
        self.env = service_env(s, EVALUATOR_PORT=str(self.port),
                               EVALUATOR_ADMIN_PORT=str(free_port()), EVALUATOR_STORE=store,
                               EVALUATOR_DATA_DIR=str(data_dir), LOG_LEVEL="info")
        self.log_dir = log_dir
        self.proc: ServiceProcess | None = None

    def start_until_ready(self, timeout: float) -> float:
        """Start; seconds until ``/readyz`` answered 200 (polled every 50 ms)."""
        self.proc = ServiceProcess("evaluator", self.env, self.log_dir, self.port)
        started = time.monotonic()
        self.proc.start()
        assert self.proc.proc is not None
        with httpx.Client(timeout=2) as client:
            while time.monotonic() - started < timeout:
                if self.proc.proc.poll() is not None:
                    raise SystemExit(f"evaluator exited:\n{self.proc.tail()}")
                with contextlib.suppress(httpx.HTTPError):
                    if client.get(self.proc.url("/readyz")).status_code == 200:
                        return time.monotonic() - started
                time.sleep(0.05)
        raise SystemExit(f"evaluator not ready in {timeout}s:\n{self.proc.tail()}")

    @property
    def pid(self) -> int:
        assert self.proc is not None and self.proc.proc is not None
        return self.proc.proc.pid

    def indexed(self) -> str:
        """The timers the worker last said it indexed, in how long, and how many states
        it scanned and decoded for that (its log), or '?'."""
        assert self.proc is not None
        found = "?"
        for line in self.proc.log_path.read_text(errors="replace").splitlines():
            if '"timers_indexed"' in line:
                with contextlib.suppress(ValueError, KeyError):
                    entry = json.loads(line)
                    found = f"{entry['timers']:,} in {entry['seconds']:.1f}s" + "".join(
                        f", {name} {entry[name]:,}" for name in ("scanned", "decoded")
                        if name in entry)
        return found

    def stop(self) -> float:
        assert self.proc is not None
        started = time.monotonic()
        code = self.proc.stop(timeout=120)
        if code != 0:
            raise SystemExit(f"evaluator exited {code} on SIGTERM:\n{self.proc.tail()}")
        return time.monotonic() - started

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.kill()


def tick(s: Settings, codec: AvroCodec, expected: int, timeout: float) -> tuple[float, float]:
    """Write the tick on every partition; seconds from the write to the first and the
    last of ``expected`` commands (their broker timestamps)."""
    k = s.kafka
    topic = k.topic(ACTIONS_COMMANDS)
    consumer = Consumer({**librdkafka_config(k), "group.id": f"bench-{uuid.uuid4().hex}",
                         "enable.auto.commit": False, "isolation.level": "read_committed"})
    consumer.assign([TopicPartition(topic, p, 0) for p in range(k.partitions)])
    producer = Producer({**librdkafka_config(k), "acks": "all", "linger.ms": 0})
    records = tick_records(TICK_AT, k.partitions, INTERVAL_MS, "bench.scale")
    written = time.time()
    for record in records:
        producer.produce(k.topic(TICKS), key=str(record["partition"]).encode(),
                         value=codec.encode(schemas.TICK, record),
                         partition=record["partition"])
    producer.flush(30)
    stamps: list[int] = []
    try:
        while len(stamps) < expected and time.time() - written < timeout:
            for m in consumer.consume(1000, 0.5):
                stamp = m.timestamp()[1]
                if m.error() is None and stamp is not None:
                    stamps.append(stamp)
    finally:
        consumer.close()
    if len(stamps) < expected:
        raise SystemExit(f"only {len(stamps)} of {expected} commands in {timeout}s")
    return min(stamps) / 1000 - written, max(stamps) / 1000 - written


def delete_prefixed(bootstrap_config: dict[str, str | int | float | bool], prefix: str,
                    group: str) -> None:
    admin = AdminClient(bootstrap_config)
    names = [t for t in admin.list_topics(timeout=10).topics if t.startswith(prefix)]
    futures = [*admin.delete_topics(names, operation_timeout=60).values()] if names else []
    futures += list(admin.delete_consumer_groups([group], request_timeout=30).values())
    for fut in futures:
        with contextlib.suppress(KafkaException):
            fut.result()


@contextlib.contextmanager
def topics(bootstrap: str, partitions: int) -> Iterator[Settings]:
    """Settings on a fresh topic prefix, its catalogue applied; removed afterwards."""
    base = Settings.from_env()
    s = replace(base, kafka=replace(base.kafka, bootstrap_servers=bootstrap,
                                    topic_prefix=f"scale{uuid.uuid4().hex[:8]}.",
                                    partitions=partitions))
    apply(s.kafka, catalogue(s.kafka).values())
    try:
        yield s
    finally:
        delete_prefixed(librdkafka_config(s.kafka), s.kafka.topic_prefix, s.kafka.evaluator_app_id)


def run(store: str, args: argparse.Namespace, bootstrap: str) -> None:
    n, due = args.customers, args.due
    timeout = 120 + n / 1_000
    name = store.split(":")[0]
    with topics(bootstrap, args.partitions) as s, \
            tempfile.TemporaryDirectory(prefix=f"scale-{name}-") as tmp:
        work = Path(tmp)
        codec = codec_for(s.registry)
        population = Population.build(codec, file_definitions(s).build())
        ev = Evaluator(s, store, work / "data", work)
        empty = ev.start_until_ready(timeout)
        base_rss, _ = rss_kib(ev.pid)
        ev.stop()
        wrote = synthesise(s, population, n, due)
        print(f"[{name}] {n:,} customers ({due:,} due) written to the changelog in "
              f"{wrote:.1f}s ({n / wrote:,.0f}/s); empty start to ready {empty:.1f}s, "
              f"RSS {base_rss / 1024:.0f} MiB", flush=True)

        ready = ev.start_until_ready(timeout)
        rss, hwm = rss_kib(ev.pid)
        per = (rss - base_rss) * 1024 / n
        print(f"[{name}] (a) start to ready {ready:.1f}s (state from the changelog; timers "
              f"indexed {ev.indexed()}); (b) RSS {rss / 1024:.0f} MiB, peak {hwm / 1024:.0f} "
              f"MiB, {per:,.0f} B per customer above the empty worker", flush=True)
        first, last = tick(s, codec, due * population.commands_per_due, timeout)
        print(f"[{name}] (c) tick, {due:,} due among {n:,}: first command {first * 1000:.0f} "
              f"ms, last {last * 1000:.0f} ms after the tick write "
              f"({due * population.commands_per_due:,} commands)", flush=True)

        stopping = ev.stop()
        again = ev.start_until_ready(timeout)
        rss, _ = rss_kib(ev.pid)
        print(f"[{name}] (d) clean stop {stopping:.1f}s, restart on the same data dir to ready "
              f"{again:.1f}s (timers indexed {ev.indexed()}), RSS {rss / 1024:.0f} MiB",
              flush=True)
        ev.kill()
        after_kill = ev.start_until_ready(timeout)
        print(f"[{name}] (e) after SIGKILL, restart to ready {after_kill:.1f}s (timers "
              f"indexed {ev.indexed()})", flush=True)
        ev.stop()
        if args.keep:
            kept = Path(tempfile.mkdtemp(prefix=f"scale-{name}-kept-"))
            shutil.copytree(work, kept, dirs_exist_ok=True)
            print(f"[{name}] data dir and logs kept in {kept}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--due", type=int, default=1_000)
    parser.add_argument("--store", choices=("both", "memory", "rocksdb"), default="both")
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--keep", action="store_true", help="keep data dirs and logs")
    args = parser.parse_args()
    if not 0 < args.due <= args.customers:
        parser.error("--due must be between 1 and --customers")
    stores = ("memory://", "rocksdb://") if args.store == "both" else (f"{args.store}://",)
    bootstrap = broker()
    KafkaSettings(bootstrap_servers=bootstrap)  # fail early on a malformed address
    for store in stores:
        run(store, args, bootstrap)


if __name__ == "__main__":
    main()
