"""Service containers of the jiazheng-service image, run the way the Kubernetes manifests run them.

Each is a ``docker run`` in the foreground, so it is a ``RunningService`` like the harness's
processes: its output is its log, SIGTERM to the client stops the container, and the integration
clients (tests/integration/clients.py) talk to it unchanged.
"""

from __future__ import annotations

import base64
import contextlib
import os
import secrets
import subprocess
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Self

from deploy.local.services import (
    DevKey,
    api_keys_setting,
    card_jwks,
    gateway_env,
    new_dev_card_keys,
    new_dev_pii_keys,
    new_dev_pseudonym_key,
    service_env,
)
from deploy.local.stack import Endpoints, free_port
from tests.integration.harness import RunningService

IMAGE = f"jiazheng-service:{os.environ.get('JZ_IMAGE_TAG', 'latest')}"
# It needs the addresses of the services it calls: started by ``start_gateway``, once they serve.
GATEWAY = "gateway"
# As deploy/k8s/base/common/hardening-deployment.yaml: uid 10001, read-only root, /tmp writable.
HARDENING = ("--network", "host", "--read-only", "--tmpfs", "/tmp", "--user", "10001:10001")


def container_of(svc: RunningService) -> str:
    """The name of the container ``ServiceContainers.start`` ran ``svc`` in."""
    return _container_name(svc.name, svc.port)


def _container_name(name: str, port: int) -> str:
    return f"jz-{name}-{port}"


@dataclass
class ServiceContainers:
    """The service containers of one test run, with the keys they share (as ``jiazheng up`` does)."""

    endpoints: Endpoints
    keys: list[DevKey]
    home: Path
    shared: dict[str, str] = field(default_factory=dict)
    started: list[RunningService] = field(default_factory=list)
    # The HTTP port of the gateway ``start_gateway`` ran, 0 before.
    gateway_http_port: int = 0

    @classmethod
    @contextlib.contextmanager
    def on(cls, endpoints: Endpoints, keys: list[DevKey], home: Path) -> Iterator[Self]:
        """Containers started in the block are stopped and removed after it."""
        card = new_dev_card_keys()
        shared = {**new_dev_pii_keys(), **card, **new_dev_pseudonym_key(), "JZ_CARD_JWKS": card_jwks(card)}
        containers = cls(endpoints, keys, home, shared)
        try:
            yield containers
        finally:
            containers.stop_all()

    def start(self, name: str, **settings: str) -> RunningService:
        """``python -m services.<name>`` in a container of its own, not waited for; ``settings``
        (JZ_*) override the service's environment."""
        port, metrics_port = free_port(), free_port()
        env = service_env(name, self.endpoints, api_keys_setting(self.keys), port, metrics_port, self.shared)
        settings_env = {k: v for k, v in {**env, **settings}.items() if k.startswith("JZ_")}
        log = self.home / "logs" / f"{name}-{port}.log"
        proc = self._run(_container_name(name, port), settings_env, log, ["python", "-m", f"services.{name}"])
        svc = RunningService(name, port, metrics_port, proc, log)
        self.started.append(svc)
        return svc

    def start_gateway(self, called: Mapping[str, RunningService]) -> RunningService:
        """``python -m services.gateway``, given the gRPC addresses of the containers it calls
        (``called``: workers, orders, regulator, on the host network), its key, the platforms'
        keys and a fresh session key, as ``jiazheng up`` gives them (deploy/local/services.py)."""
        self.gateway_http_port = free_port()
        ports = {name: {"grpc_port": svc.port} for name, svc in called.items()}
        session_key = base64.b64encode(secrets.token_bytes(32)).decode()
        return self.start(GATEWAY, **gateway_env(self.keys, session_key, self.gateway_http_port, ports))

    def _run(
        self, container: str, env: Mapping[str, str], log: Path, command: list[str]
    ) -> subprocess.Popen[bytes]:
        # `-e NAME` takes the value from the client's environment: no setting shows in a command line.
        names = [arg for key in env for arg in ("-e", key)]
        argv = ["docker", "run", "--rm", "--name", container, *HARDENING, *names, IMAGE, *command]
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("ab") as out:
            return subprocess.Popen(
                argv,
                env={**os.environ, **env},
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def stop_all(self) -> None:
        for svc in self.started:
            svc.stop()
        names = [container_of(svc) for svc in self.started]
        if names:  # a container whose client was killed outlives it
            subprocess.run(["docker", "rm", "-f", *names], capture_output=True, check=False)
        self.started.clear()
