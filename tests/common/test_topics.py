"""The topic catalogue, and applying it to the real test broker."""

from __future__ import annotations

import ast
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import (  # type: ignore[attr-defined]  # re-exported without __all__
    AdminClient,
    ConfigResource,
    NewTopic,
    ResourceType,
)

import signalbox
from signalbox.common import schemas, topics
from signalbox.common.settings import KafkaSettings, Settings
from signalbox.common.topics import (
    TopicMismatch,
    TopicSpec,
    apply,
    catalogue,
    changelog_topic,
)
from signalbox.testing import eventually_sync

SERVICES = Path(signalbox.__file__).resolve().parent
SETTINGS = Settings.from_env({"SIGNALBOX_TOPIC_PREFIX": "acme.", "SIGNALBOX_PARTITIONS": "6",
                              "SIGNALBOX_REPLICATION_FACTOR": "3"})


def test_catalogue_declares_every_topic_with_its_partitions_and_policy() -> None:
    p = SETTINGS.kafka.partitions
    expected = {
        "acme.events.billing": (p, "delete"),
        "acme.events.usage": (p, "delete"),
        "acme.events.dlq": (p, "delete"),
        "acme.ticks": (p, "delete"),
        "acme.automations": (1, "compact"),
        "acme.approvals": (1, "compact"),
        "acme.actions.commands": (p, "delete"),
        "acme.actions.results": (p, "delete"),
        "acme.actions.ledger": (p, "compact"),
        "acme.actions.dlq": (p, "delete"),
        "acme.dlq.replays": (1, "compact,delete"),
        **{f"acme.actions.retry.{t}": (p, "delete") for t in ("1s", "10s", "1m", "10m", "1h")},
        "acme.actions.suppressions": (1, "compact"),
        "acme.actions.contacts": (p, "compact"),
        "acme.signalbox-evaluator-customer-state-changelog": (p, "compact"),
        "acme.signalbox-evaluator-__assignor-__leader": (1, "delete"),
    }
    specs = catalogue(SETTINGS.kafka)
    assert {n: (s.partitions, s.config["cleanup.policy"]) for n, s in specs.items()} == expected
    assert all(s.name == n and s.replication_factor == 3 and s.doc for n, s in specs.items())


def test_every_topic_constant_and_event_type_topic_is_catalogued() -> None:
    specs = catalogue(SETTINGS.kafka)
    constants = {n: v for n, v in vars(topics).items() if n.isupper() and isinstance(v, str)}
    for name, value in constants.items():
        physical = (changelog_topic(SETTINGS.kafka, value) if name.endswith("_TABLE")
                    else SETTINGS.kafka.topic(value))
        assert physical in specs, f"topics.{name} ({value!r}) is not in the catalogue"
    for t in schemas.event_types().values():
        assert SETTINGS.kafka.topic(t.topic) in specs, f"{t.name} goes to {t.topic}"


def _literal_topic_names() -> dict[str, str]:
    """``<anything>.topic("literal")`` calls outside services/common, by literal."""
    found: dict[str, str] = {}
    for path in sorted(SERVICES.rglob("*.py")):
        if path.parent.name == "common":
            continue
        for node in ast.walk(ast.parse(path.read_text("utf-8"), str(path))):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and node.func.attr == "topic" and node.args
                    and isinstance(node.args[0], ast.Constant)
                    and isinstance(node.args[0].value, str)):
                found[node.args[0].value] = f"{path.relative_to(SERVICES)}:{node.lineno}"
    return found


def test_services_name_topics_only_through_the_catalogue() -> None:
    specs = catalogue(SETTINGS.kafka)
    stray = {name: where for name, where in _literal_topic_names().items()
             if SETTINGS.kafka.topic(name) not in specs}
    assert stray == {}, "declare these topics in signalbox.common.topics"


def test_the_evaluators_faust_topics_are_catalogued() -> None:
    from signalbox.common.codec import AvroCodec
    from signalbox.evaluator.faust_app import create_app
    from signalbox.evaluator.main import file_definitions
    from signalbox.evaluator.shell import EvaluatorShell

    definitions = file_definitions(SETTINGS)
    shell = EvaluatorShell(SETTINGS.kafka, SETTINGS.evaluator, SETTINGS.bind_host, AvroCodec(),
                           definitions, definitions.build())
    app = create_app(SETTINGS.kafka, SETTINGS.evaluator, shell)
    specs = catalogue(SETTINGS.kafka)
    leader = app._leader_assignor._leader_topic_name  # type: ignore[attr-defined]  # faust: private, untyped
    faust_topics = {leader: 1}
    for table in app.tables.values():
        faust_topics[table.changelog_topic_name] = table.partitions
    for agent in app.agents.values():
        faust_topics.update(dict.fromkeys(agent.channel.topics, SETTINGS.kafka.partitions))

    assert len(faust_topics) == 5  # leader, state changelog, events.billing/usage, ticks
    assert {n: specs[n].partitions for n in faust_topics if n in specs} == faust_topics


# -- against the broker ----------------------------------------------------------------


@pytest.fixture
def admin(kafka_bootstrap: str) -> AdminClient:
    return AdminClient({"bootstrap.servers": kafka_bootstrap})


@pytest.fixture
def fresh(kafka_bootstrap: str, admin: AdminClient) -> Iterator[Settings]:
    """Settings with a prefix no topic has yet, and no topics; its topics are deleted after."""
    settings = replace(Settings.from_env({}), kafka=KafkaSettings(
        bootstrap_servers=kafka_bootstrap, topic_prefix=f"t{uuid.uuid4().hex[:10]}.",
        partitions=2, replication_factor=1))
    yield settings
    for fut in admin.delete_topics(list(catalogue(settings.kafka)), request_timeout=30).values():
        try:
            fut.result()
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError.UNKNOWN_TOPIC_OR_PART:
                raise


def _visible(admin: AdminClient, names: Iterable[str], timeout_s: float = 10.0) -> None:
    """Wait until broker metadata lists every topic (it lags a successful create)."""
    wanted = set(names)
    missing = eventually_sync(
        lambda: wanted - set(admin.list_topics(timeout=timeout_s).topics),
        lambda now: not now, within_s=timeout_s, every_s=0.05)
    assert not missing, f"not in metadata after {timeout_s}s: {missing}"


def _configs(admin: AdminClient, specs: dict[str, TopicSpec]) -> dict[str, dict[str, str]]:
    """The broker's value of every config key the catalogue sets, by topic."""
    futures = admin.describe_configs([ConfigResource(ResourceType.TOPIC, n) for n in specs])
    return {res.name: {k: fut.result()[k].value for k in specs[res.name].config}
            for res, fut in futures.items()}


def test_apply_creates_the_catalogue_once(fresh: Settings, admin: AdminClient) -> None:
    specs = catalogue(fresh.kafka)

    assert sorted(apply(fresh.kafka, specs.values())) == sorted(specs)
    assert apply(fresh.kafka, specs.values()) == []
    _visible(admin, specs)

    existing = admin.list_topics(timeout=10).topics
    assert {n: len(existing[n].partitions) for n in specs} == \
        {n: s.partitions for n, s in specs.items()}
    assert _configs(admin, specs) == {n: dict(s.config) for n, s in specs.items()}


def test_apply_refuses_a_topic_with_another_partition_count(
        fresh: Settings, admin: AdminClient) -> None:
    ticks = fresh.kafka.topic(topics.TICKS)
    wanted = fresh.kafka.partitions
    admin.create_topics([NewTopic(ticks, wanted + 1, 1)])[ticks].result()
    # Metadata lags creation. A topic apply() does not see yet, it tries to create, and
    # it takes TOPIC_ALREADY_EXISTS as a concurrent apply without comparing partitions.
    _visible(admin, [ticks])
    specs = catalogue(fresh.kafka)

    with pytest.raises(TopicMismatch) as err:
        apply(fresh.kafka, specs.values())

    assert str(err.value) == \
        f"{ticks}: has {wanted + 1} partitions, catalogue says {wanted}"
    existing = admin.list_topics(timeout=10).topics
    assert [n for n in specs if n in existing] == [ticks], "apply created topics anyway"
    assert len(existing[ticks].partitions) == wanted + 1, "apply must never repartition"


def test_a_different_prefix_is_a_different_set_of_topics() -> None:
    other = replace(SETTINGS, kafka=KafkaSettings(topic_prefix="", partitions=2))
    assert set(catalogue(other.kafka)).isdisjoint(catalogue(SETTINGS.kafka))
    assert "ticks" in catalogue(other.kafka)
