"""Run the five services as local processes against a stack's endpoints."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from deploy.local.stack import ROOT, Endpoints, StackError, free_port, pid_alive, pid_cmdline, stop_pid

SERVICES = ("orders", "workers", "credit", "complaints", "insurance")


@dataclass(frozen=True)
class DevKey:
    """An API key for trying the system locally; only its hash reaches the services."""

    key: str
    principal: str
    role: str
    tenant: str


def new_dev_keys() -> list[DevKey]:
    return [
        DevKey(f"jzk_{secrets.token_urlsafe(24)}", principal, role, tenant)
        for principal, role, tenant in [
            ("demo-platform", "platform", "demo-platform"),
            ("other-platform", "platform", "other-platform"),
            ("operator", "operator", ""),
            ("regulator", "regulator", ""),
        ]
    ]


def api_keys_setting(keys: list[DevKey]) -> str:
    from libs.common.auth import hash_key

    return json.dumps(
        [
            {"key_sha256": hash_key(k.key), "principal": k.principal, "role": k.role, "tenant": k.tenant}
            for k in keys
        ]
    )


def service_env(
    name: str,
    endpoints: Endpoints,
    api_keys: str,
    grpc_port: int,
    metrics_port: int,
    extra: dict[str, str] | None = None,
) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("JZ_")}
    env.update(
        {
            "JZ_DATABASE_URL": endpoints.dsn(f"jz_{name}"),
            "JZ_KAFKA_BOOTSTRAP": endpoints.kafka_bootstrap,
            "JZ_GRPC_PORT": str(grpc_port),
            "JZ_METRICS_PORT": str(metrics_port),
            "JZ_API_KEYS": api_keys,
            "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "gen")]),
        }
    )
    env.update(extra or {})
    return env


def start_service(name: str, env: dict[str, str], log_path: Path) -> subprocess.Popen[bytes]:
    log_path.parent.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen(
        [sys.executable, "-m", f"services.{name}"],
        cwd=ROOT,
        env=env,
        stdout=log_path.open("ab"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


async def health_status(port: int, timeout: float = 2.0) -> str:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        reply = await stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=timeout)
        return str(health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status))


async def wait_serving(
    port: int, timeout: float, pid: int | None = None, log_path: Path | None = None
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pid is not None and not pid_alive(pid):
            tail = log_path.read_text()[-3000:] if log_path and log_path.exists() else ""
            raise StackError(f"service on port {port} exited before serving:\n{tail}")
        try:
            if await health_status(port) == "SERVING":
                return
        except grpc.aio.AioRpcError:
            pass
        await asyncio.sleep(0.3)
    raise StackError(f"service on port {port} not SERVING after {timeout}s")


class LocalServices:
    """The services of one local stack, recorded in ``<home>/services.json``."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.state_file = home / "services.json"
        self.keys_file = home / "api-keys.json"

    def api_keys(self) -> list[DevKey]:
        if not self.keys_file.exists():
            keys = new_dev_keys()
            self.keys_file.write_text(json.dumps([k.__dict__ for k in keys], indent=2))
            self.keys_file.chmod(0o600)
        return [DevKey(**k) for k in json.loads(self.keys_file.read_text())]

    def state(self) -> dict[str, dict[str, int]]:
        if not self.state_file.exists():
            return {}
        data: dict[str, dict[str, int]] = json.loads(self.state_file.read_text())
        return data

    def up(self, endpoints: Endpoints) -> dict[str, dict[str, int]]:
        state = self.state()
        api_keys = api_keys_setting(self.api_keys())
        started: list[tuple[str, int, int]] = []
        for name in SERVICES:
            current = state.get(name)
            if current and pid_alive(current["pid"]) and f"services.{name}" in pid_cmdline(current["pid"]):
                continue
            grpc_port, metrics_port = free_port(), free_port()
            proc = start_service(
                name, service_env(name, endpoints, api_keys, grpc_port, metrics_port), self.log(name)
            )
            state[name] = {"pid": proc.pid, "grpc_port": grpc_port, "metrics_port": metrics_port}
            started.append((name, grpc_port, proc.pid))
        self.state_file.write_text(json.dumps(state, indent=2))
        for name, port, pid in started:
            asyncio.run(wait_serving(port, timeout=90, pid=pid, log_path=self.log(name)))
        return state

    def down(self) -> None:
        for name, info in self.state().items():
            stop_pid(info["pid"], f"services.{name}")
        self.state_file.unlink(missing_ok=True)

    def log(self, name: str) -> Path:
        return self.home / "logs" / f"{name}.log"
