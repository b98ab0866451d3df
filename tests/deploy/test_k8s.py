"""deploy/k8s as kustomize renders it (no cluster here): every built-in object valid for
Kubernetes with ``kubernetes-validate --strict``, every custom resource strictly valid
for its operator's CRD (the cloudcoil models generated from them), and the properties
an operator relies on checked on the rendered objects."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from cloudcoil.models.keda import v1alpha1 as keda
from cloudcoil.models.prometheus_operator import v1 as prometheus_operator

from signalbox.dispatcher.providers import parse as parse_dispatcher_config
from signalbox.testing.broker import REPO
from tests.deploy.settings_read import unread

K8S = REPO / "deploy" / "k8s"
KUBERNETES = "1.32.0"  # the oldest version still supported upstream when this was written
CRDS: dict[tuple[str, str], Any] = {
    ("monitoring.coreos.com/v1", "ServiceMonitor"): prometheus_operator.ServiceMonitor,
    ("monitoring.coreos.com/v1", "PrometheusRule"): prometheus_operator.PrometheusRule,
    ("keda.sh/v1alpha1", "ScaledObject"): keda.ScaledObject,
}
Doc = dict[str, Any]


def render(path: Path) -> list[Doc]:
    done = subprocess.run([str(REPO / "tools" / "k8s" / "kustomize.sh"), str(path)],
                          capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr
    return [d for d in yaml.safe_load_all(done.stdout) if d]


@pytest.fixture(scope="module")
def default() -> list[Doc]:
    return render(K8S)


@pytest.fixture(scope="module")
def with_components(tmp_path_factory: pytest.TempPathFactory) -> list[Doc]:
    """An overlay as an operator writes one: the base and both optional components."""
    overlay = tmp_path_factory.mktemp("overlay")
    base = os.path.relpath(K8S, overlay)  # kustomize takes relative paths only
    (overlay / "kustomization.yaml").write_text(yaml.safe_dump({
        "resources": [base],
        "components": [f"{base}/components/prometheus-operator", f"{base}/components/keda"]}))
    return render(overlay)


def find(docs: list[Doc], kind: str, name: str) -> Doc:
    [doc] = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    return doc


def workloads(docs: list[Doc]) -> Iterator[Doc]:
    yield from (d for d in docs if d["kind"] in ("Deployment", "StatefulSet", "Job"))


def strict_problems(docs: list[Doc]) -> list[str]:
    """What kubernetes-validate --strict (or, for a custom resource, its CRD) rejects."""
    problems = []
    for d in docs:
        where = f"{d['kind']}/{d['metadata']['name']}"
        model = CRDS.get((d["apiVersion"], d["kind"]))
        if model is not None:
            # The models ignore unknown fields: what they drop is what the CRD lacks.
            dumped = model.model_validate(d).model_dump(mode="json", by_alias=True,
                                                        exclude_unset=True)
            if dumped != d:
                problems.append(f"{where}: fields its CRD does not have")
            continue
        try:
            kubernetes_validate.validate(d, KUBERNETES, strict=True)
        except kubernetes_validate.ValidationError as exc:
            problems.append(f"{where}: {exc.message} at {'.'.join(map(str, exc.path))}")
        except kubernetes_validate.SchemaNotFoundError:
            problems.append(f"{where}: no schema for {d['apiVersion']} {d['kind']}")
    return problems


def test_default_and_components_are_strictly_valid(default: list[Doc],
                                                   with_components: list[Doc]) -> None:
    assert strict_problems(default) == []
    assert strict_problems(with_components) == []
    assert {d["kind"] for d in with_components} - {d["kind"] for d in default} == {
        "ServiceMonitor", "PrometheusRule", "ScaledObject"}


def test_the_validation_catches_what_it_should() -> None:
    """A misspelt field fails both checks (strict means something here)."""
    deployment = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "x"},
                  "spec": {"selector": {}, "template": {"spec": {"containers": [
                      {"name": "x", "imagePullPolicy": "IfNotPresent", "imagee": "x"}]}}}}
    monitor = {"apiVersion": "monitoring.coreos.com/v1", "kind": "ServiceMonitor",
               "metadata": {"name": "x"},
               "spec": {"selector": {}, "endpoints": [{"port": "ops", "pathh": "/metrics"}]}}
    assert len(strict_problems([deployment, monitor])) == 2


def test_no_secret_or_placeholder_is_applied_by_default(default: list[Doc]) -> None:
    assert [d["metadata"]["name"] for d in default if d["kind"] == "Secret"] == []
    assert "REPLACE_ME" not in yaml.safe_dump_all(default)
    examples = [d for f in sorted((K8S / "examples").glob("*.yaml"))
                for d in yaml.safe_load_all(f.read_text()) if d]
    assert strict_problems(examples) == []
    secrets = {d["metadata"]["name"] for d in examples if d["kind"] == "Secret"}
    # Every Secret a workload names is documented by an example.
    named = {ref["secretRef"]["name"] for w in workloads(default)
             for c in w["spec"]["template"]["spec"]["containers"] for ref in c.get("envFrom", [])
             if "secretRef" in ref}
    named |= {e["valueFrom"]["secretKeyRef"]["name"] for w in workloads(default)
              for c in w["spec"]["template"]["spec"]["containers"] for e in c.get("env", [])
              if "secretKeyRef" in e.get("valueFrom", {})}
    named |= {v["secret"]["secretName"] for w in workloads(default)
              for v in w["spec"]["template"]["spec"].get("volumes", []) if "secret" in v}
    assert named <= secrets, named - secrets


def test_every_environment_variable_set_is_one_signalbox_reads(default: list[Doc]) -> None:
    names = set(find(default, "ConfigMap", "signalbox-config")["data"])
    names |= {e["name"] for w in workloads(default)
              for c in w["spec"]["template"]["spec"]["containers"] for e in c.get("env", [])}
    assert unread(names) == []


def test_the_evaluator_keeps_state_on_a_volume_per_pod(default: list[Doc]) -> None:
    evaluator = find(default, "StatefulSet", "evaluator")
    [claim] = evaluator["spec"]["volumeClaimTemplates"]
    [container] = evaluator["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    assert mounts[env["EVALUATOR_DATA_DIR"]] == claim["metadata"]["name"]
    assert env["EVALUATOR_STORE"] == "rocksdb://"


def test_every_path_the_code_writes_is_a_writable_volume(default: list[Doc]) -> None:
    """Root filesystems are read-only: /tmp, the evaluator's data and the dispatcher's
    outbox (from its config file, read by the dispatcher's own parser) are volumes."""
    config = find(default, "ConfigMap", "signalbox-dispatcher")["data"]["dispatcher.yaml"]
    outbox = parse_dispatcher_config(yaml.safe_load(config), "dispatcher.yaml", {}).outbox_dir
    for w in workloads(default):
        spec = w["spec"]["template"]["spec"]
        [container] = spec["containers"]
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
        writable = {v["name"] for v in spec.get("volumes", []) if "emptyDir" in v}
        writable |= {c["metadata"]["name"] for c in w["spec"].get("volumeClaimTemplates", [])}
        mounted = {m["mountPath"] for m in container["volumeMounts"] if m["name"] in writable
                   and not m.get("readOnly")}
        assert "/tmp" in mounted
        if w["metadata"]["name"] == "dispatcher":
            env = {e["name"]: e.get("value") for e in container["env"]}
            assert Path(env["SIGNALBOX_DISPATCHER_CONFIG"]).parent.as_posix() in {
                m["mountPath"] for m in container["volumeMounts"]}
            assert outbox in mounted


def _selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    ok = all(labels.get(k) == v for k, v in selector.get("matchLabels", {}).items())
    for e in selector.get("matchExpressions", []):
        assert e["operator"] == "In"
        ok = ok and labels.get(e["key"]) in e["values"]
    return ok


def _pod_labels(docs: list[Doc], name: str) -> dict[str, str]:
    [w] = [w for w in workloads(docs) if w["metadata"]["name"] == name]
    return dict(w["spec"]["template"]["metadata"]["labels"])


def test_disruption_budgets_keep_one_pod_at_a_time(default: list[Doc]) -> None:
    budgets = [d for d in default if d["kind"] == "PodDisruptionBudget"]
    for name in ("ingest", "evaluator", "dispatcher"):
        [budget] = [b for b in budgets
                    if _selects(b["spec"]["selector"], _pod_labels(default, name))]
        assert budget["spec"]["maxUnavailable"] == 1


def test_network_policies_admit_exactly_the_served_ports(default: list[Doc]) -> None:
    policies = [d for d in default if d["kind"] == "NetworkPolicy"]
    assert any(p["spec"]["podSelector"] == {} and "ingress" not in p["spec"]
               for p in policies), "no default deny"

    def admitted(name: str) -> dict[int, list[Any]]:
        """Port -> the peers (``from``) allowed to reach it on ``name``'s pods."""
        out: dict[int, list[Any]] = {}
        for p in policies:
            if _selects(p["spec"]["podSelector"], _pod_labels(default, name)):
                for rule in p["spec"].get("ingress", []):
                    for port in rule["ports"]:
                        out.setdefault(port["port"], []).append(rule.get("from", "anyone"))
        return out

    for w in workloads(default):
        if w["kind"] == "Job":
            continue
        ports = {p["containerPort"] for c in w["spec"]["template"]["spec"]["containers"]
                 for p in c.get("ports", [])}
        assert ports <= set(admitted(w["metadata"]["name"])), w["metadata"]["name"]
    assert "anyone" in admitted("ingest")[8080]
    assert "anyone" in admitted("dispatcher")[8082]  # unsubscribe links, Twilio's webhook
    assert admitted("evaluator")[8084] == [[{"podSelector": {}}]]  # admin: namespace only
    assert "anyone" not in admitted("evaluator")[8081]


def test_the_dispatcher_has_a_service_for_its_public_endpoints(default: list[Doc]) -> None:
    service = find(default, "Service", "dispatcher")
    assert _selects({"matchLabels": service["spec"]["selector"]},
                    _pod_labels(default, "dispatcher"))
    [port] = service["spec"]["ports"]
    dispatcher = find(default, "Deployment", "dispatcher")
    [container] = dispatcher["spec"]["template"]["spec"]["containers"]
    served = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert served[port["targetPort"]] == 8082  # DISPATCHER_PORT: /v1/unsubscribe, /v1/sms
    ingress = next(d for d in yaml.safe_load_all((K8S / "examples" / "ingress.yaml").read_text()))
    paths = {p["path"]: p["backend"]["service"] for r in ingress["spec"]["rules"]
             for p in r["http"]["paths"]}
    assert paths["/v1/unsubscribe"] == {"name": "dispatcher", "port": {"name": port["name"]}}
    assert paths["/v1/sms/inbound"]["name"] == "dispatcher"
    assert not any(re.search(r"metrics|healthz|readyz|automations|approvals", p) for p in paths)


def test_schema_registry_credentials_reach_every_service(default: list[Doc]) -> None:
    for w in workloads(default):
        if w["kind"] == "Job":
            continue
        [container] = w["spec"]["template"]["spec"]["containers"]
        refs = {r["secretRef"]["name"]: r["secretRef"].get("optional") for r in
                container["envFrom"] if "secretRef" in r}
        assert refs.get("signalbox-schema-registry") is True, w["metadata"]["name"]
    assert "SCHEMA_REGISTRY_URL" in (K8S / "config.yaml").read_text()


def test_the_prometheus_rule_is_the_rules_file(with_components: list[Doc]) -> None:
    check = subprocess.run([sys.executable, str(REPO / "tools" / "k8s" / "prometheusrule.py"),
                            "--check"], capture_output=True, text=True, check=False)
    assert check.returncode == 0, check.stderr
    rules = yaml.safe_load((REPO / "deploy" / "prometheus" / "rules" /
                            "signalbox.rules.yml").read_text())
    rule = find(with_components, "PrometheusRule", "signalbox")
    assert rule["spec"]["groups"] == rules["groups"]
    monitor = find(with_components, "ServiceMonitor", "signalbox")
    services = [d for d in with_components if d["kind"] == "Service"]
    scraped = {s["metadata"]["name"] for s in services
               if _selects(monitor["spec"]["selector"], s["metadata"]["labels"])
               and {p["name"] for p in s["spec"]["ports"]}
               & {e["port"] for e in monitor["spec"]["endpoints"]}}
    # Job names are Service names: what the rules' up{job=~...} matches.
    assert scraped == {"ingest", "evaluator", "dispatcher", "scheduler"}


def test_autoscaling_follows_lag_up_to_the_partition_count(
        with_components: list[Doc]) -> None:
    partitions = int(find(with_components, "ConfigMap", "signalbox-config")["data"][
        "SIGNALBOX_PARTITIONS"])
    scaled = {d["metadata"]["name"]: d for d in with_components if d["kind"] == "ScaledObject"}
    assert set(scaled) == {"evaluator", "dispatcher"}
    for name, obj in scaled.items():
        target = obj["spec"]["scaleTargetRef"]
        workload = find(with_components, target["kind"], target["name"])
        assert "replicas" not in workload["spec"], "kubectl apply would reset the autoscaler"
        assert obj["spec"]["maxReplicaCount"] == partitions
        [trigger] = obj["spec"]["triggers"]
        assert trigger["type"] == "kafka"
        assert trigger["metadata"]["consumerGroup"] == f"signalbox-{name}"
        assert trigger["metadata"]["allowIdleConsumers"] == "false"
        [container] = workload["spec"]["template"]["spec"]["containers"]
        assert trigger["metadata"]["bootstrapServersFromEnv"] in find(
            with_components, "ConfigMap", "signalbox-config")["data"]
        assert {"configMapRef": {"name": "signalbox-config"}} in container["envFrom"]
