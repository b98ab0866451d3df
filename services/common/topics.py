"""The topic catalogue, and applying it to a cluster idempotently.

Nothing relies on broker auto-creation: every topic signalbox reads or writes
is declared here with its partition count and cleanup policy. Topics keyed by
customer id share one partition count so a customer's events, ticks, state and
commands stay on the same partition number.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import structlog
from confluent_kafka import KafkaError, KafkaException, TopicCollection
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

from signalbox.common.errors import SignalboxError
from signalbox.common.kafka import librdkafka_config
from signalbox.common.settings import KafkaSettings, SettingsError

log = structlog.get_logger(__name__)

DAY_MS = 86_400_000

EVENTS_BILLING = "events.billing"
EVENTS_USAGE = "events.usage"
EVENTS_DLQ = "events.dlq"
TICKS = "ticks"
AUTOMATIONS = "automations"
APPROVALS = "approvals"
ACTIONS_COMMANDS = "actions.commands"
ACTIONS_RESULTS = "actions.results"
ACTIONS_LEDGER = "actions.ledger"
ACTIONS_DLQ = "actions.dlq"
#: Which dead letters (of both DLQs) were replayed (ReplayMark), so none is replayed twice.
DLQ_REPLAYS = "dlq.replays"
#: Retry tiers of the dispatcher, by the longest wait each holds (see dispatcher.policy.retry).
ACTIONS_RETRY = tuple(f"actions.retry.{t}" for t in ("1s", "10s", "1m", "10m", "1h"))
ACTIONS_SUPPRESSIONS = "actions.suppressions"
ACTIONS_CONTACTS = "actions.contacts"
CUSTOMER_STATE_TABLE = "customer-state"


class TopicMismatch(SignalboxError, RuntimeError):
    """An existing topic differs from the catalogue in a way that breaks keying."""

    what = "topic"


class KafkaRefused(SettingsError):
    """The cluster refused the client's credentials: a configuration error, not an outage."""

    what = "Kafka credentials"


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    replication_factor: int
    config: Mapping[str, str] = field(default_factory=dict)
    doc: str = ""


def changelog_topic(kafka: KafkaSettings, table: str) -> str:
    """Faust's changelog name for a table of the evaluator app."""
    return f"{kafka.evaluator_app_id}-{table}-changelog"


def catalogue(k: KafkaSettings) -> dict[str, TopicSpec]:
    """Every topic, by physical name."""
    p, rf = k.partitions, k.replication_factor
    delete = {"cleanup.policy": "delete"}
    compact = {"cleanup.policy": "compact", "min.compaction.lag.ms": "60000"}

    def spec(logical: str, parts: int, config: Mapping[str, str], doc: str) -> TopicSpec:
        return TopicSpec(k.topic(logical), parts, rf, dict(config), doc)

    specs = [
        spec(EVENTS_BILLING, p, {**delete, "retention.ms": str(7 * DAY_MS)},
             "billing events (Event), keyed by customer"),
        spec(EVENTS_USAGE, p, {**delete, "retention.ms": str(7 * DAY_MS)},
             "product usage events (Event), keyed by customer"),
        spec(TICKS, p, {**delete, "retention.ms": str(DAY_MS)},
             "scheduler ticks (Tick), one per partition per interval"),
        spec(EVENTS_DLQ, p, {**delete, "retention.ms": str(30 * DAY_MS)},
             "input records the evaluator could not read (DeadLetter)"),
        spec(AUTOMATIONS, 1, compact,
             "automation definitions (AutomationRecord), keyed by automation id"),
        spec(APPROVALS, 1, compact,
             "approval requests and decisions (Approval), keyed by approval id"),
        spec(ACTIONS_COMMANDS, p, {**delete, "retention.ms": str(7 * DAY_MS)},
             "commands for the dispatcher (ActionCommand), keyed by customer"),
        spec(ACTIONS_RESULTS, p, {**delete, "retention.ms": str(30 * DAY_MS)},
             "one terminal outcome per command (ActionResult), keyed by customer"),
        spec(ACTIONS_LEDGER, p, compact,
             "dispatcher outcome ledger (LedgerEntry), keyed by command id, "
             "on the command's partition"),
        spec(ACTIONS_DLQ, p, {**delete, "retention.ms": str(30 * DAY_MS)},
             "commands that could not be carried out (DeadLetter)"),
        # Marks outlive their letters (30 days) by a day; compaction keeps one per letter.
        spec(DLQ_REPLAYS, 1, {"cleanup.policy": "compact,delete",
                              "retention.ms": str(31 * DAY_MS), "min.compaction.lag.ms": "60000"},
             "dead letters replayed by signalbox dlq replay (ReplayMark), keyed by "
             "dead-letter topic and position"),
        *(spec(name, p, {**delete, "retention.ms": str(7 * DAY_MS)},
               "commands waiting for their next attempt (ActionCommand, delivery state "
               "in headers), on the command's partition") for name in ACTIONS_RETRY),
        spec(ACTIONS_SUPPRESSIONS, 1, compact,
             "opt-outs (Suppression), keyed by channel and customer or address; "
             "read whole by every dispatcher"),
        spec(ACTIONS_CONTACTS, p, compact,
             "recent deliveries per customer and channel for frequency caps "
             "(ContactHistory), on the commands' partition"),
        TopicSpec(changelog_topic(k, CUSTOMER_STATE_TABLE), p, rf, compact,
                  "evaluator per-customer state (CustomerState), Faust changelog"),
        TopicSpec(f"{k.evaluator_app_id}-__assignor-__leader", 1, rf, delete,
                  "Faust leader election"),
    ]
    return {s.name: s for s in specs}


def apply(kafka: KafkaSettings, specs: Iterable[TopicSpec], timeout_s: float = 30.0) -> list[str]:
    """Create missing topics; verify partition counts of existing ones. Returns created names.

    A partition count different from the catalogue is an error, never "fixed":
    adding partitions to a keyed topic moves customers between partitions.
    """
    admin = AdminClient(librdkafka_config(kafka))
    wanted = {s.name: s for s in specs}
    existing = admin.list_topics(timeout=timeout_s).topics
    _check_partitions(wanted, {n: len(t.partitions) for n, t in existing.items()})
    missing = [s for name, s in wanted.items() if name not in existing]
    if not missing:
        return []
    futures = admin.create_topics(
        [NewTopic(s.name, s.partitions, s.replication_factor, config=dict(s.config))
         for s in missing],
        request_timeout=timeout_s,
    )
    created, raced = [], []
    for name, fut in futures.items():
        try:
            fut.result()
            created.append(name)
            log.info("topic_created", topic=name, partitions=wanted[name].partitions)
        except KafkaException as exc:
            if exc.args[0].name() != "TOPIC_ALREADY_EXISTS":
                raise
            raced.append(name)  # created meanwhile by someone else: check it like the rest
    if raced:
        _check_partitions(wanted, _partition_counts(admin, raced, timeout_s))
    return created


def _partition_counts(admin: AdminClient, names: list[str], timeout_s: float) -> dict[str, int]:
    """Partition counts of topics that exist: a topic created a moment ago (by a racing
    service) can answer UNKNOWN_TOPIC_OR_PART until the broker's metadata has it."""
    deadline = time.monotonic() + timeout_s
    while True:
        found = admin.describe_topics(TopicCollection(names), request_timeout=timeout_s)
        try:
            return {n: len(f.result().partitions) for n, f in found.items()}
        except KafkaException as exc:
            if exc.args[0].name() != "UNKNOWN_TOPIC_OR_PART" or time.monotonic() > deadline:
                raise
        time.sleep(0.2)


def _check_partitions(wanted: Mapping[str, TopicSpec], actual: Mapping[str, int]) -> None:
    mismatched = [
        f"{name}: has {actual[name]} partitions, catalogue says {spec.partitions}"
        for name, spec in wanted.items()
        if name in actual and actual[name] != spec.partitions
    ]
    if mismatched:
        raise TopicMismatch("; ".join(mismatched))


def wait_for_broker(kafka: KafkaSettings, timeout_s: float = 60.0) -> None:
    """Block until the cluster answers a metadata request, or raise TimeoutError.

    Refused SASL credentials raise :class:`KafkaRefused` at once: waiting cannot fix
    them. A timeout names the client's last connection error (e.g. a TLS handshake
    with a plaintext listener), not only "transport failure".
    """
    import time

    deadline = time.monotonic() + timeout_s
    errors: list[KafkaError] = []
    # log_level 0: librdkafka would print each failed connection raw on stderr; error_cb
    # collects them, and the timeout names the last one.
    admin = AdminClient({**librdkafka_config(kafka), "log_level": 0}, error_cb=errors.append)
    last = ""
    while time.monotonic() < deadline:
        try:
            admin.list_topics(timeout=1)
            return
        except KafkaException as exc:
            last = str(exc)
        admin.poll(0)  # serves error_cb
        for error in errors:
            if error.code() == KafkaError._AUTHENTICATION:
                raise KafkaRefused(_refusal(kafka, error))
            if error.code() != KafkaError._ALL_BROKERS_DOWN:
                last = error.str()
        errors.clear()
        time.sleep(0.5)
    raise TimeoutError(f"Kafka at {kafka.bootstrap_servers} ({kafka.security_protocol}) "
                       f"did not answer in {timeout_s}s: {last}")


def _refusal(kafka: KafkaSettings, error: KafkaError) -> str:
    who = (f"KAFKA_SASL_USERNAME={kafka.sasl_username!r} with "
           f"KAFKA_SASL_MECHANISM={kafka.sasl_mechanism}" if kafka.uses_sasl else "the client")
    return (f"Kafka at {kafka.bootstrap_servers} ({kafka.security_protocol}) refused {who}: "
            f"{error.str()}")
