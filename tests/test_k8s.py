"""The Kubernetes manifests agree with the code (no cluster: ``kubectl kustomize`` of the base).

Every topic the code uses has a KafkaTopic and an ACL, every consumer group an ACL, and nothing
more; every process has a Deployment with gRPC probes on the one image, a NetworkPolicy, and a
migrations Job and a Database when it has a database. The strict validation itself is checked on
objects that break it.
"""

from __future__ import annotations

import asyncio
import base64
import importlib
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from deploy.k8s.validate import K8S, Manifest, build, errors
from libs.common.kafka import dlq_topic, events_topic
from services.regulator.app import RegulatorSettings, make_app
from services.regulator.topics import INDICATORS_TOPIC, REGULATOR_TOPICS, SOURCE_SERVICES

REPO = Path(__file__).resolve().parents[1]
PROCESSES = (*SOURCE_SERVICES, "regulator")
WITH_DATABASE = tuple(p for p in PROCESSES if (REPO / "services" / p / "migrations").is_dir())
IMAGE = "jiazheng-service"
GROUP_PREFIX = "jiazheng"
READ, WRITE = frozenset({"Read", "Describe"}), frozenset({"Write", "Describe"})
READ_WRITE = READ | WRITE
IDEMPOTENT = frozenset({"IdempotentWrite"})

# (resource type, name) -> operations
Acls = dict[tuple[str, str], frozenset[str]]


@cache
def base() -> tuple[Manifest, ...]:
    return tuple(build(K8S / "base"))


def of_kind(kind: str) -> dict[str, Manifest]:
    return {m["metadata"]["name"]: m for m in base() if m["kind"] == kind}


def regulator_settings() -> RegulatorSettings:
    return RegulatorSettings(pseudonym_key=base64.b64encode(bytes(32)).decode())


@cache
def changelog_topics() -> frozenset[str]:
    """The changelog topics of the regulator's faust tables, named by faust itself (the app is
    built in a loop of its own: its gRPC server binds to the running loop)."""

    async def named() -> frozenset[str]:
        tables = make_app(regulator_settings()).tables.values()
        return frozenset(table.changelog_topic.get_topic_name() for table in tables)

    return asyncio.run(named())


def service_acls(service: str) -> Acls:
    """What a service's code reads and writes: its relay's events topic, its consumer's sources,
    dead letters and group."""
    app = importlib.import_module(f"services.{service}.app")
    acls = {("topic", t): READ for t in app.SOURCES}
    acls |= {("topic", events_topic(service)): WRITE, ("topic", dlq_topic(app.CONSUMER)): WRITE}
    return acls | {
        ("group", f"{GROUP_PREFIX}-{app.CONSUMER}"): frozenset({"Read"}),
        ("cluster", ""): IDEMPOTENT,
    }


def regulator_acls() -> Acls:
    """The faust app reads the events topics, writes the regulator topics (Subscribe reads them
    back without a group) and reads and writes its tables' changelogs."""
    written = [*REGULATOR_TOPICS.values(), INDICATORS_TOPIC, *changelog_topics()]
    acls = {("topic", t): READ for t in REGULATOR_TOPICS} | {("topic", t): READ_WRITE for t in written}
    return acls | {("group", regulator_settings().app_id()): frozenset({"Read"}), ("cluster", ""): IDEMPOTENT}


def code_topics() -> set[str]:
    services = [importlib.import_module(f"services.{s}.app") for s in SOURCE_SERVICES]
    used = {t for app in services for t in (*app.SOURCES, dlq_topic(app.CONSUMER))}
    return used | {events_topic(s) for s in SOURCE_SERVICES} | topics_of(regulator_acls())


def acls_of(user: Manifest) -> Acls:
    acls: Acls = {}
    for rule in user["spec"]["authorization"]["acls"]:
        assert rule["resource"].get("patternType", "literal") == "literal" or user is _reader()
        key = (rule["resource"]["type"], rule["resource"].get("name", ""))
        acls[key] = acls.get(key, frozenset()) | frozenset(rule["operations"])
    return acls


def _reader() -> Manifest:
    return of_kind("KafkaUser")["regulator-reader"]


def containers(workload: Manifest) -> list[dict[str, Any]]:
    return list(workload["spec"]["template"]["spec"]["containers"])


def env_secrets(workload: Manifest) -> Iterator[str]:
    for container in containers(workload):
        for var in container.get("env", []):
            if "secretKeyRef" in var.get("valueFrom", {}):
                yield var["valueFrom"]["secretKeyRef"]["name"]


def selects(policy: Manifest, process: str) -> bool:
    return bool(policy["spec"]["podSelector"].get("matchLabels", {}).get("app.kubernetes.io/name") == process)


def topics_of(acls: Acls) -> set[str]:
    return {name for kind, name in acls if kind == "topic"}


def test_every_topic_of_the_code_is_a_kafka_topic_and_no_other() -> None:
    assert set(of_kind("KafkaTopic")) == code_topics()


def test_kafka_topics_are_partitioned_for_the_regulator_tables() -> None:
    """faust's changelogs must have as many partitions as the topics their tables are keyed by."""
    assert {m["spec"]["partitions"] for m in of_kind("KafkaTopic").values()} == {6}
    assert {m["spec"]["replicas"] for m in of_kind("KafkaTopic").values()} == {3}


@pytest.mark.parametrize("service", SOURCE_SERVICES)
def test_a_service_user_may_use_exactly_its_topics_and_group(service: str) -> None:
    user = of_kind("KafkaUser")[f"jiazheng-{service}"]
    assert acls_of(user) == service_acls(service)
    assert user["spec"]["authentication"]["type"] == "scram-sha-512"


def test_the_regulator_user_may_use_exactly_its_topics_changelogs_and_group() -> None:
    assert acls_of(of_kind("KafkaUser")["jiazheng-regulator"]) == regulator_acls()


def test_the_regulator_reader_only_reads_the_regulator_topics() -> None:
    acls = acls_of(_reader())
    assert topics_of(acls) == {*REGULATOR_TOPICS.values(), INDICATORS_TOPIC}
    assert {ops for (kind, _), ops in acls.items() if kind == "topic"} == {READ}
    assert {kind for kind, _ in acls} == {"topic", "group"}
    assert all(ops == {"Read"} for (kind, _), ops in acls.items() if kind == "group")


def test_every_user_is_one_of_the_cluster() -> None:
    kafka = of_kind("Kafka")
    assert set(kafka) == {"jiazheng"}
    assert kafka["jiazheng"]["spec"]["kafka"]["authorization"]["type"] == "simple"
    for owned in [
        *of_kind("KafkaUser").values(),
        *of_kind("KafkaTopic").values(),
        *of_kind("KafkaNodePool").values(),
    ]:
        assert owned["metadata"]["labels"]["strimzi.io/cluster"] == "jiazheng"


@pytest.mark.parametrize("process", PROCESSES)
def test_every_process_has_a_deployment_of_the_image_with_grpc_probes(process: str) -> None:
    (container,) = containers(of_kind("Deployment")[process])
    assert container["image"].split(":")[0] == IMAGE
    assert container["command"] == ["python", "-m", f"services.{process}"]
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert "grpc" in container[probe]


@pytest.mark.parametrize("process", PROCESSES)
def test_every_process_logs_in_to_kafka_as_its_kafka_user(process: str) -> None:
    (container,) = containers(of_kind("Deployment")[process])
    env = {var["name"]: var for var in container.get("env", [])}
    user = env["JZ_KAFKA_SASL_USERNAME"]["value"]
    assert user in of_kind("KafkaUser")
    password = env["JZ_KAFKA_SASL_PASSWORD"]["valueFrom"]["secretKeyRef"]
    assert (password["name"], password["key"]) == (user, "password")  # the Secret Strimzi writes
    assert (user, of_kind("Kafka")["jiazheng"]["spec"]["kafka"]["listeners"][0]["authentication"]) == (
        f"jiazheng-{process}",
        {"type": "scram-sha-512"},
    )


@pytest.mark.parametrize("process", PROCESSES)
def test_every_process_has_a_network_policy(process: str) -> None:
    assert any(selects(policy, process) for policy in of_kind("NetworkPolicy").values())


@pytest.mark.parametrize("service", WITH_DATABASE)
def test_a_service_with_a_database_has_it_its_role_and_a_migrations_job(service: str) -> None:
    database = next(d for d in of_kind("Database").values() if d["spec"]["name"] == f"jz_{service}")
    roles = {r["name"]: r for r in of_kind("Cluster")["jiazheng-pg"]["spec"]["managed"]["roles"]}
    assert database["spec"]["owner"] in roles
    secret = roles[database["spec"]["owner"]]["passwordSecret"]["name"]
    jobs = [j for j in of_kind("Job").values() if containers(j)[0]["command"][-1] == f"services.{service}"]
    assert len(jobs) == 1
    for workload in (of_kind("Deployment")[service], jobs[0]):
        assert secret in set(env_secrets(workload))


def test_only_the_services_with_a_database_have_one() -> None:
    assert WITH_DATABASE == SOURCE_SERVICES
    assert {d["spec"]["name"] for d in of_kind("Database").values()} == {f"jz_{s}" for s in WITH_DATABASE}


def test_every_service_of_the_repository_is_a_process_the_manifests_run() -> None:
    assert {m.parent.name for m in (REPO / "services").glob("*/__main__.py")} == set(PROCESSES)


def test_the_image_the_manifests_run_is_the_one_make_images_builds() -> None:
    build = (REPO / "deploy" / "docker" / "build.sh").read_text()
    assert f'-f deploy/docker/Dockerfile -t "{IMAGE}:$TAG"' in build


def test_the_image_is_named_once_in_the_base_kustomization() -> None:
    kustomization = yaml.safe_load((K8S / "base" / "kustomization.yaml").read_text())
    assert [image["name"] for image in kustomization["images"]] == [IMAGE]


def test_validation_rejects_an_unknown_field_of_a_crd_and_of_kubernetes() -> None:
    topic = {"apiVersion": "kafka.strimzi.io/v1", "kind": "KafkaTopic", "metadata": {"name": "t"}}
    assert errors({**topic, "spec": {"partitions": 1}}) == []
    assert "replica" in errors({**topic, "spec": {"replica": 3}})[0]
    config_map = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}}
    assert errors(config_map) == []
    assert "dat" in errors({**config_map, "dat": {}})[0]


def test_validation_rejects_a_kind_without_a_schema() -> None:
    assert errors({"apiVersion": "example.com/v1", "kind": "Thing", "metadata": {"name": "x"}}) != []


def test_prod_always_pulls_the_image() -> None:
    """What checkov's CKV_K8S_15, skipped for the dev overlay's sake (deploy/k8s/.checkov.yaml),
    would check: production never runs a stale copy of a tag."""
    workloads = [m for m in build(K8S / "overlays" / "prod") if m["kind"] in ("Deployment", "Job")]
    pulls = {c["imagePullPolicy"] for w in workloads for c in containers(w) if IMAGE in c["image"]}
    assert pulls == {"Always"}
