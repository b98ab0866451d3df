"""docker-compose.yml, checked without a Docker engine (none runs here): valid for the
Compose Specification's JSON schema, and wired as the services, the image and the
monitoring files expect.

``compose-spec.schema.json`` is the specification's schema (compose-spec/compose-spec,
Apache-2.0) as the npm package ``dclint`` 3.1.0 ships it (``schemas/compose.schema.json``).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from signalbox.common.settings import Settings
from signalbox.dispatcher.providers import parse as parse_dispatcher_config
from signalbox.testing.broker import REPO
from tests.deploy.settings_read import unread

SCHEMA = Path(__file__).with_name("compose-spec.schema.json")
SIGNALBOX = ("ingest", "evaluator", "dispatcher", "scheduler")
DEFAULT_PORTS = Settings()  # the port each service listens on, unless its env says otherwise


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return dict(yaml.safe_load((REPO / "docker-compose.yml").read_text()))


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, Any]:
    return dict(compose["services"])


def port_of(name: str) -> int:
    return int(getattr(DEFAULT_PORTS, name).port)


def mounts(service: dict[str, Any]) -> dict[str, str]:
    """Container path -> source (a named volume, or a bind mount's host path)."""
    out = {}
    for m in service.get("volumes", []):
        source, target = m.split(":")[:2]
        out[target] = source
    return out


def test_valid_for_the_compose_specification(compose: dict[str, Any]) -> None:
    validator = jsonschema.Draft7Validator(json.loads(SCHEMA.read_text()))
    assert [f"{'.'.join(map(str, e.path))}: {e.message}"
            for e in validator.iter_errors(compose)] == []
    broken = {**compose, "services": {**compose["services"], "ingest": {
        **compose["services"]["ingest"], "healthcheck": {"tst": ["CMD", "true"]}}}}
    assert not validator.is_valid(broken)  # the schema is strict where it matters


def test_health_checks_ask_for_readiness(services: dict[str, Any]) -> None:
    for name in SIGNALBOX:
        test = services[name]["healthcheck"]["test"]
        assert test[-1] == f"http://127.0.0.1:{port_of(name)}/readyz", name


def test_state_outbox_and_keys_are_on_volumes_the_image_lets_signalbox_write(
        compose: dict[str, Any], services: dict[str, Any]) -> None:
    """Each path a service writes is a named volume, and the image creates that directory
    owned by the signalbox user (a new named volume takes the directory's ownership;
    without it the volume is root's and the service cannot write)."""
    dockerfile = (REPO / "Dockerfile").read_text().replace("\\\n", " ")
    owned = {d for line in re.findall(r"install -d -o 10001 -g 10001 ([^&\n]+)", dockerfile)
             for d in line.split()}
    evaluator = services["evaluator"]["environment"]
    dispatcher = services["dispatcher"]
    config = mounts(dispatcher)[dispatcher["environment"]["SIGNALBOX_DISPATCHER_CONFIG"]]
    outbox = parse_dispatcher_config(yaml.safe_load((REPO / config).read_text()), config,
                                     {}).outbox_dir
    keys = Path(services["ingest"]["environment"]["INGEST_KEYS_FILE"]).parent.as_posix()
    for name, path in (("evaluator", evaluator["EVALUATOR_DATA_DIR"]),
                       ("dispatcher", outbox), ("ingest", keys)):
        volume = mounts(services[name]).get(path)
        assert volume in compose["volumes"], f"{name}: {path} is not on a named volume"
        assert path in owned, f"the image does not create {path} for the signalbox user"


def test_the_admin_api_needs_the_token_and_ports_stay_on_loopback(
        services: dict[str, Any]) -> None:
    token = services["evaluator"]["environment"]["SIGNALBOX_ADMIN_TOKEN"]
    assert re.fullmatch(r"\$\{SIGNALBOX_ADMIN_TOKEN:\?.+\}", token), token  # required, no default
    published = [p for s in services.values() for p in s.get("ports", [])]
    assert published and all(p.startswith("127.0.0.1:") for p in published), published


def test_every_environment_variable_set_is_one_signalbox_reads(
        compose: dict[str, Any], services: dict[str, Any]) -> None:
    names = set(compose["x-signalbox-env"])
    for name in SIGNALBOX:
        env = services[name]["environment"]
        names |= set(env)
    assert unread(names) == []


def test_prometheus_scrapes_every_service_and_loads_the_rules(services: dict[str, Any]) -> None:
    prometheus = mounts(services["prometheus"])
    config_file = prometheus["/etc/prometheus/prometheus.yml"]
    config = yaml.safe_load((REPO / config_file).read_text())
    targets = {job["job_name"]: job["static_configs"][0]["targets"]
               for job in config["scrape_configs"]}
    assert targets == {name: [f"{name}:{port_of(name)}"] for name in SIGNALBOX}
    [rule_glob] = config["rule_files"]
    rules_dir = prometheus[str(Path(rule_glob).parent)]
    assert sorted((REPO / rules_dir).glob(Path(rule_glob).name)), rule_glob
    binds = [s for s in prometheus.values() if s.startswith("./")]
    assert binds and all((REPO / s).exists() for s in binds), binds


def test_grafana_gets_the_datasource_and_the_dashboard(services: dict[str, Any]) -> None:
    grafana = services["grafana"]
    assert grafana["profiles"] == ["grafana"]
    files = mounts(grafana)
    provisioning = REPO / files["/etc/grafana/provisioning"]
    [provider] = yaml.safe_load((provisioning / "dashboards" / "signalbox.yml").read_text())[
        "providers"]
    dashboard = files[f"{provider['options']['path']}/signalbox.json"]
    assert json.loads((REPO / dashboard).read_text())["panels"]
    [source] = yaml.safe_load((provisioning / "datasources" / "prometheus.yml").read_text())[
        "datasources"]
    assert source["url"] == "http://prometheus:9090"
    assert "127.0.0.1:9090:9090" in services["prometheus"]["ports"]
