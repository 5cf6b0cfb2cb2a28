"""The Kubernetes manifests agree with the code (no cluster: ``kubectl kustomize`` of the base).

Every topic the code uses has a KafkaTopic and an ACL, every consumer group an ACL, and nothing
more; every process has a Deployment with gRPC probes on the one image, hardened, a NetworkPolicy,
a KafkaUser when it is a Kafka client, and a migrations Job and a Database when it has a database.
What the NetworkPolicies allow is worked out from their selectors; the gateway reaches exactly the
services it calls and is reached through its Ingress, whose host the service cards link to. The
strict validation itself is checked on objects that break it.
"""

from __future__ import annotations

import asyncio
import base64
import importlib
from collections.abc import Iterable, Iterator, Mapping
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from deploy.k8s.validate import K8S, Manifest, build, errors
from libs.common.kafka import dlq_topic, events_topic
from services.gateway.settings import GatewaySettings
from services.regulator.app import RegulatorSettings, make_app
from services.regulator.topics import INDICATORS_TOPIC, REGULATOR_TOPICS, SOURCE_SERVICES

REPO = Path(__file__).resolve().parents[1]
PROCESSES = (*SOURCE_SERVICES, "regulator", "gateway")
WITH_DATABASE = tuple(p for p in PROCESSES if (REPO / "services" / p / "migrations").is_dir())
# The processes that are no Kafka client (the gateway only calls the others' gRPC APIs): no
# KafkaUser, no Kafka login, no way to the brokers.
WITHOUT_KAFKA = ("gateway",)
KAFKA_CLIENTS = tuple(p for p in PROCESSES if p not in WITHOUT_KAFKA)
# What the gateway calls (services/gateway/settings.py, JZ_<NAME>_ADDRESS), and how it is reached.
GATEWAY_CALLS = ("workers", "orders", "regulator")
GATEWAY_KEYS = frozenset({"JZ_GATEWAY_API_KEY", "JZ_GATEWAY_PLATFORM_KEYS", "JZ_GATEWAY_SESSION_KEY"})
GRPC_PORT, HTTP_PORT, METRICS_PORT = 50051, 8080, 9464
# The port each process is reached on from anywhere: its gRPC API, the gateway's HTTP pages.
PUBLIC_PORT = {**{p: GRPC_PORT for p in PROCESSES}, "gateway": HTTP_PORT}
# Pods the manifests do not run, as the cluster and the operators label them: namespace (None:
# the overlay's) and labels. NetworkPolicy peers are resolved against these and the Deployments.
OTHER_PODS: dict[str, tuple[str | None, dict[str, str]]] = {
    "kube-dns": ("kube-system", {"k8s-app": "kube-dns"}),
    "kafka": (None, {"strimzi.io/cluster": "jiazheng", "strimzi.io/broker-role": "true"}),
    "postgres": (None, {"cnpg.io/cluster": "jiazheng-pg"}),
}
# (peer, protocol, port): a peer is a pod's name, "ns:<namespace>" for a whole namespace, "*" for
# anywhere, or "?" for a selector that matches no pod known here; "*" as port is any port.
Flow = tuple[str, str, int | str]
IMAGE = "jiazheng-service"
GROUP_PREFIX = "jiazheng"
READ, WRITE = frozenset({"Read", "Describe"}), frozenset({"Write", "Describe"})
READ_WRITE = READ | WRITE
IDEMPOTENT = frozenset({"IdempotentWrite"})

# (resource type, name) -> operations
Acls = dict[tuple[str, str], frozenset[str]]


@cache
def built(kustomization: str) -> tuple[Manifest, ...]:
    """``base`` or an overlay (``dev``, ``prod``), as ``kubectl kustomize`` renders it."""
    return tuple(build(K8S / "base" if kustomization == "base" else K8S / "overlays" / kustomization))


def base() -> tuple[Manifest, ...]:
    return built("base")


def of_kind(kind: str, manifests: Iterable[Manifest] | None = None) -> dict[str, Manifest]:
    of = base() if manifests is None else manifests
    return {m["metadata"]["name"]: m for m in of if m["kind"] == kind}


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


def matches(selector: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    """A label selector (matchLabels and matchExpressions) as Kubernetes applies it."""
    if any(labels.get(key) != value for key, value in selector.get("matchLabels", {}).items()):
        return False
    for expression in selector.get("matchExpressions", []):
        value, values = labels.get(expression["key"]), expression.get("values", [])
        if not {
            "In": value in values,
            "NotIn": value not in values,
            "Exists": value is not None,
            "DoesNotExist": value is None,
        }[expression["operator"]]:
            return False
    return True


def pods(manifests: Iterable[Manifest]) -> dict[str, tuple[str | None, Mapping[str, str]]]:
    """Every pod the NetworkPolicies may name: the Deployments' of the build and OTHER_PODS."""
    deployments = of_kind("Deployment", manifests).items()
    return {
        **OTHER_PODS,
        **{name: (None, d["spec"]["template"]["metadata"]["labels"]) for name, d in deployments},
    }


def peers(peer: Mapping[str, Any], known: Mapping[str, tuple[str | None, Mapping[str, str]]]) -> set[str]:
    """The pods (by name) or namespaces one ``from``/``to`` entry of a NetworkPolicy admits."""
    namespaces = peer.get("namespaceSelector")
    if namespaces is not None and "podSelector" not in peer:
        (name,) = namespaces["matchLabels"].values()  # kubernetes.io/metadata.name: <namespace>
        return {f"ns:{name}"}
    selected = {
        name
        for name, (namespace, labels) in known.items()
        if matches(peer["podSelector"], labels)
        and (
            namespace is None
            if namespaces is None
            else namespace is not None and matches(namespaces, {"kubernetes.io/metadata.name": namespace})
        )
    }
    return selected or {"?"}


def flows(manifests: Iterable[Manifest], process: str, direction: str) -> set[Flow]:
    """What the NetworkPolicies of a build allow into (``Ingress``) or out of (``Egress``) the
    pods of ``process``: (peer, protocol, port) for every peer and port of every rule."""
    manifests = tuple(manifests)
    known = pods(manifests)
    _, labels = known[process]
    allowed: set[Flow] = set()
    for policy in of_kind("NetworkPolicy", manifests).values():
        spec = policy["spec"]
        if direction not in spec["policyTypes"] or not matches(spec["podSelector"], labels):
            continue
        for rule in spec.get(direction.lower(), []):
            entries = rule.get("from" if direction == "Ingress" else "to", [])
            names = set().union(*(peers(e, known) for e in entries)) if entries else {"*"}
            ports = {(p.get("protocol", "TCP"), p["port"]) for p in rule.get("ports", [])} or {("*", "*")}
            allowed |= {(name, protocol, port) for name in names for protocol, port in ports}
    return allowed


def environment(manifests: Iterable[Manifest], process: str) -> dict[str, str]:
    """The settings of a process's container: its ConfigMaps (``envFrom``), then its literal
    ``env``; variables from a Secret are named with the value ``secret:<name>/<key>``."""
    manifests = tuple(manifests)
    config_maps = of_kind("ConfigMap", manifests)
    (container,) = containers(of_kind("Deployment", manifests)[process])
    env = {}
    for source in container.get("envFrom", []):
        env.update(config_maps[source["configMapRef"]["name"]]["data"])
    for var in container.get("env", []):
        ref = var.get("valueFrom", {}).get("secretKeyRef")
        env[var["name"]] = f"secret:{ref['name']}/{ref['key']}" if ref else var["value"]
    return env


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
    assert {"name": "grpc", "containerPort": GRPC_PORT} in container["ports"]
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert container[probe]["grpc"] == {"port": GRPC_PORT}


@pytest.mark.parametrize("process", KAFKA_CLIENTS)
def test_every_kafka_client_logs_in_to_kafka_as_its_kafka_user(process: str) -> None:
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


def test_the_kafka_users_are_the_kafka_clients_and_the_regulator_reader() -> None:
    assert set(of_kind("KafkaUser")) == {f"jiazheng-{p}" for p in KAFKA_CLIENTS} | {"regulator-reader"}


@pytest.mark.parametrize("process", WITHOUT_KAFKA)
def test_a_process_without_kafka_has_no_kafka_login(process: str) -> None:
    env = environment(base(), process)
    assert not {"JZ_KAFKA_SASL_USERNAME", "JZ_KAFKA_SASL_PASSWORD"} & set(env)
    assert f"jiazheng-{process}" not in set(env_secrets(of_kind("Deployment")[process]))


@pytest.mark.parametrize("process", PROCESSES)
def test_only_kafka_clients_reach_the_brokers_and_only_services_with_a_database_postgres(
    process: str,
) -> None:
    egress = {peer for peer, _, _ in flows(base(), process, "Egress")}
    assert ("kafka" in egress) == (process in KAFKA_CLIENTS)
    assert ("postgres" in egress) == (process in WITH_DATABASE)


@pytest.mark.parametrize("process", PROCESSES)
def test_every_process_has_a_network_policy(process: str) -> None:
    assert any(selects(policy, process) for policy in of_kind("NetworkPolicy").values())


@pytest.mark.parametrize("process", PROCESSES)
def test_every_process_is_reached_on_its_public_port_and_scraped_from_monitoring(process: str) -> None:
    """From anywhere only on its API (gRPC; the gateway's HTTP), metrics only from Prometheus'
    namespace (components/monitoring, in prod): the kubelet's probes come from the node, which
    NetworkPolicies do not restrict."""
    assert flows(base(), process, "Ingress") == {("*", "TCP", PUBLIC_PORT[process])}
    assert flows(built("prod"), process, "Ingress") == {
        ("*", "TCP", PUBLIC_PORT[process]),
        ("ns:monitoring", "TCP", METRICS_PORT),
    }


def test_the_gateway_reaches_only_the_services_it_calls_the_collector_and_dns() -> None:
    assert flows(built("prod"), "gateway", "Egress") == {
        *{(service, "TCP", GRPC_PORT) for service in GATEWAY_CALLS},
        ("otel-collector", "TCP", 4317),
        ("kube-dns", "UDP", 53),
        ("kube-dns", "TCP", 53),
    }


@pytest.mark.parametrize("service", GATEWAY_CALLS)
def test_the_services_the_gateway_calls_admit_it_on_their_grpc_port(service: str) -> None:
    admitted = flows(base(), service, "Ingress")
    assert any(peer in ("*", "gateway") and port in (GRPC_PORT, "*") for peer, _, port in admitted)


def _assert_hardened(pod: Mapping[str, Any]) -> None:
    """Non-root, seccomp, no service account token; its one container on a read-only root, with
    no privilege escalation, no capabilities, and limits."""
    (container,) = pod["containers"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["automountServiceAccountToken"] is False
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]
    assert {"cpu", "memory"} <= set(container["resources"]["limits"])


@pytest.mark.parametrize("process", PROCESSES)
def test_every_process_runs_hardened_and_outlives_its_drain(process: str) -> None:
    pod = of_kind("Deployment")[process]["spec"]["template"]["spec"]
    _assert_hardened(pod)
    drain = float(environment(base(), process)["JZ_SHUTDOWN_GRACE_S"])
    assert pod["terminationGracePeriodSeconds"] > 2 * drain


@pytest.mark.parametrize("process", PROCESSES)
def test_every_process_has_a_disruption_budget(process: str) -> None:
    budgets = of_kind("PodDisruptionBudget").values()
    _, labels = pods(base())[process]
    assert [b["spec"]["maxUnavailable"] for b in budgets if matches(b["spec"]["selector"], labels)] == [1]


def test_the_gateway_calls_the_services_at_their_grpc_service_ports() -> None:
    env = environment(base(), "gateway")
    for service in GATEWAY_CALLS:
        host, _, port = env[f"JZ_{service.upper()}_ADDRESS"].partition(":")
        ports = {p["name"]: p for p in of_kind("Service")[host]["spec"]["ports"]}
        assert (host, int(port), ports["grpc"]["targetPort"]) == (service, GRPC_PORT, "grpc")
        (container,) = containers(of_kind("Deployment")[service])
        assert {"name": "grpc", "containerPort": GRPC_PORT} in container["ports"]


def test_the_gateway_settings_are_its_settings_and_its_keys_come_from_its_secret() -> None:
    env = environment(base(), "gateway")
    fields = GatewaySettings.model_fields
    assert {k for k in env if k.startswith("JZ_")} <= {f"JZ_{name.upper()}" for name in fields}
    assert {f"JZ_{name.upper()}" for name, field in fields.items() if field.is_required()} <= set(env)
    from_secrets = {k: v for k, v in env.items() if v.startswith("secret:")}
    assert set(from_secrets) == GATEWAY_KEYS
    assert {v.split("/")[0] for v in from_secrets.values()} == {"secret:jiazheng-gateway-keys"}
    assert (env["JZ_HTTP_HOST"], env["JZ_HTTP_PORT"], env["JZ_COOKIE_SECURE"]) == ("0.0.0.0", "8080", "true")


@pytest.mark.parametrize("kustomization", ["base", "dev", "prod"])
def test_the_gateway_serves_http_behind_its_ingress_with_tls(kustomization: str) -> None:
    manifests = built(kustomization)
    (container,) = containers(of_kind("Deployment", manifests)["gateway"])
    assert {"name": "http", "containerPort": HTTP_PORT} in container["ports"]
    assert environment(manifests, "gateway")["JZ_HTTP_PORT"] == str(HTTP_PORT)
    service_ports = {p["name"]: p for p in of_kind("Service", manifests)["gateway"]["spec"]["ports"]}
    assert (service_ports["http"]["port"], service_ports["http"]["targetPort"]) == (HTTP_PORT, "http")
    ingress = of_kind("Ingress", manifests)["gateway"]["spec"]
    (rule,) = ingress["rules"]
    (tls,) = ingress["tls"]
    assert tls["hosts"] == [rule["host"]]
    assert tls["secretName"] == "jiazheng-gateway-tls"
    backends = [path["backend"]["service"] for path in rule["http"]["paths"]]
    assert backends == [{"name": "gateway", "port": {"name": "http"}}]


@pytest.mark.parametrize("kustomization", ["base", "dev", "prod"])
def test_the_cards_link_to_the_gateways_verification_page(kustomization: str) -> None:
    """The QR code of a card encodes "<JZ_CARD_VERIFY_BASE_URL>?t=<token>": the gateway's /v, at
    the host of its Ingress, over the TLS the Ingress terminates."""
    manifests = built(kustomization)
    (rule,) = of_kind("Ingress", manifests)["gateway"]["spec"]["rules"]
    url = environment(manifests, "workers")["JZ_CARD_VERIFY_BASE_URL"]
    assert url == f"https://{rule['host']}/v"


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


def test_the_image_holds_the_services_files_that_are_not_python_too() -> None:
    """The image copies the services' trees whole, only tests/ and __pycache__/ left out, and
    runs them from /app (PYTHONPATH, no installed package whose data files could be missed):
    the gateway's templates and static files go in with its code."""
    build = (REPO / "deploy" / "docker" / "build.sh").read_text()
    dockerfile = (REPO / "deploy" / "docker" / "Dockerfile").read_text()
    assert "tar -c --exclude=tests --exclude=__pycache__ libs services gen cli " in build
    assert "COPY app /app" in dockerfile
    assert "PYTHONPATH=/app:" in dockerfile
    gateway = REPO / "services" / "gateway"
    pages = [p.relative_to(gateway) for d in ("templates", "static") for p in (gateway / d).rglob("*")]
    assert pages
    assert not [p for p in pages if {"tests", "__pycache__"} & set(p.parts)]


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


def _console() -> tuple[Manifest, ...]:
    """The production build: the one that holds the dead-letter console (components/dlq-console)."""
    return built("prod")


def test_the_dlq_console_user_may_read_and_mark_the_dead_letters_and_replay_them_to_their_topics() -> None:
    apps = [importlib.import_module(f"services.{s}.app") for s in SOURCE_SERVICES]
    acls = {("topic", dlq_topic(app.CONSUMER)): READ_WRITE for app in apps}
    acls |= {("topic", topic): WRITE for app in apps for topic in app.SOURCES}
    user = of_kind("KafkaUser", _console())["jiazheng-dlq-console"]
    assert acls_of(user) == acls | {("cluster", ""): IDEMPOTENT}  # no group: the CLI reads with none
    assert user["spec"]["authentication"]["type"] == "scram-sha-512"


def test_the_dlq_console_holds_the_cli_hardened_logged_in_as_its_user_with_no_replica_until_needed() -> None:
    console = of_kind("Deployment", _console())["dlq-console"]
    pod = console["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert console["spec"]["replicas"] == 0
    assert (container["image"].split(":")[0], container["command"]) == (IMAGE, ["sleep", "infinity"])
    _assert_hardened(pod)
    env = environment(_console(), "dlq-console")
    assert env["JZ_KAFKA_SASL_USERNAME"] == "jiazheng-dlq-console"
    assert env["JZ_KAFKA_SASL_PASSWORD"] == "secret:jiazheng-dlq-console/password"
    assert env["JZ_KAFKA_BOOTSTRAP"] == environment(_console(), "credit")["JZ_KAFKA_BOOTSTRAP"]
    assert flows(_console(), "dlq-console", "Ingress") == set()
    assert flows(_console(), "dlq-console", "Egress") == {
        ("kafka", "TCP", 9092),
        ("kube-dns", "UDP", 53),
        ("kube-dns", "TCP", 53),
    }
