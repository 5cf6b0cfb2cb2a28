"""Test harness: where the real Kafka and PostgreSQL are, and service processes started against them."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import shutil
import subprocess
import urllib.request
from collections.abc import Awaitable, Callable, Iterator, Sequence
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlparse

import grpc

from deploy.local.services import SUPERVISOR, DevKey, ServiceProcess, api_keys_setting, new_dev_keys
from deploy.local.stack import (
    PG_SUPERUSER,
    Endpoints,
    LocalStack,
    StackError,
    default_home,
    free_port,
    pid_cmdline,
    stop_pid,
    wait_for_kafka,
)

T = TypeVar("T")


def endpoints_from_env() -> Endpoints | None:
    """1. Endpoints given in the environment: JZ_TEST_KAFKA_BOOTSTRAP and JZ_TEST_PG_DSN."""
    bootstrap, dsn = os.environ.get("JZ_TEST_KAFKA_BOOTSTRAP"), os.environ.get("JZ_TEST_PG_DSN")
    if not (bootstrap and dsn):
        return None
    url = urlparse(dsn)
    return Endpoints(
        bootstrap,
        url.hostname or "127.0.0.1",
        url.port or 5432,
        url.username or "postgres",
        url.password or "",
    )


def docker_answers() -> bool:
    if os.environ.get("JZ_TEST_NO_DOCKER") or not shutil.which("docker"):
        return False
    return subprocess.run(["docker", "info"], capture_output=True, check=False, timeout=20).returncode == 0


class Testcontainers:
    """2. Where a Docker engine answers: throwaway Kafka and PostgreSQL containers of the images
    `make images` builds (deploy/docker), started with testcontainers on the host's network, on
    free ports of this machine's loopback. No image is pulled: none comes from a registry."""

    def __init__(self, tag: str = os.environ.get("JZ_IMAGE_TAG", "latest")) -> None:
        from testcontainers.core.config import testcontainers_config
        from testcontainers.core.container import DockerContainer
        from testcontainers.core.wait_strategies import LogMessageWaitStrategy

        # The reaper (Ryuk) is an image from a registry too; down() removes what up() started.
        testcontainers_config.ryuk_disabled = True
        self.password = secrets.token_urlsafe(18)
        self.kafka_port, self.pg_port = free_port(), free_port()
        self.kafka = (
            DockerContainer(f"jiazheng-kafka:{tag}")
            .with_env("KAFKA_PORT", str(self.kafka_port))
            .with_env("KAFKA_CONTROLLER_PORT", str(free_port()))
            .with_kwargs(network_mode="host")
        )
        self.pg = (
            DockerContainer(f"jiazheng-postgres:{tag}")
            .with_env("PGPORT", str(self.pg_port))
            .with_env("POSTGRES_USER", PG_SUPERUSER)
            .with_env("POSTGRES_PASSWORD", self.password)
            .with_kwargs(network_mode="host")
            .waiting_for(LogMessageWaitStrategy("database system is ready to accept connections"))
        )

    def up(self) -> Endpoints:
        self.pg.start()
        self.kafka.start()
        bootstrap = f"127.0.0.1:{self.kafka_port}"
        try:
            asyncio.run(wait_for_kafka(bootstrap, timeout=120))
        except StackError as not_ready:
            output = self._kafka_output()
            raise StackError(f"{not_ready}; the Kafka container's last output:\n{output}") from None
        return Endpoints(bootstrap, "127.0.0.1", self.pg_port, PG_SUPERUSER, self.password)

    def _kafka_output(self, limit: int = 4000) -> str:
        stdout, stderr = self.kafka.get_logs()
        return (stdout + stderr)[-limit:].decode(errors="replace")

    def down(self) -> None:
        self.kafka.stop()
        self.pg.stop()


class LocalStackSource:
    """3. Otherwise the project's own local stack (in .stack/test, apart from `make run`'s)."""

    def __init__(self) -> None:
        self.stack = LocalStack(default_home("test"))
        status = self.stack.status()
        self.was_running = all(status[k]["running"] for k in ("kafka", "postgres"))  # type: ignore[index]

    def up(self) -> Endpoints:
        return self.stack.up()

    def down(self) -> None:
        if not self.was_running:
            self.stack.down()


class RunningService(ServiceProcess):
    """A service the tests started, with what the tests ask of it."""

    def channel(self) -> grpc.aio.Channel:
        return grpc.aio.insecure_channel(f"127.0.0.1:{self.port}")

    async def metrics_showing(self, series: str) -> str:
        """The Prometheus exposition, once it contains ``series``."""

        def scrape() -> str:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5) as reply:
                return str(reply.read().decode())

        async def shown() -> str:
            text = await asyncio.to_thread(scrape)
            return text if series in text else ""

        return await eventually(shown, within=30)


class ServiceHarness:
    """Starts service processes the way production runs them (``python -m services.<name>``),
    optionally under the local supervisor, which restarts them as an orchestrator would.

    Their pids (the supervisor's, when supervised) are recorded so that a later run cleans up
    after a run that was killed.
    """

    def __init__(self, endpoints: Endpoints, home: Path) -> None:
        self.endpoints = endpoints
        self.home = home
        self.keys: list[DevKey] = new_dev_keys()
        self._pids_file = home / "test-services.json"
        self._running: list[RunningService] = []

    def key(self, principal: str) -> str:
        return next(k.key for k in self.keys if k.principal == principal)

    def reap_leftovers(self) -> None:
        if self._pids_file.exists():
            for pid in json.loads(self._pids_file.read_text()):
                ours = SUPERVISOR if SUPERVISOR in pid_cmdline(pid) else "services."
                stop_pid(pid, ours, timeout=10)
        for leftover in ("logs", "faust"):  # keep only this run's logs and regulators' folders
            shutil.rmtree(self.home / leftover, ignore_errors=True)
        self._record()

    def _record(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        self._pids_file.write_text(json.dumps([s.proc.pid for s in self._running if s.proc.poll() is None]))

    def spawn(
        self,
        name: str,
        database: str | None = None,
        metrics_port: int = 0,
        supervised: bool = False,
        command: Sequence[str] = (),
        **env: str,
    ) -> RunningService:
        """Start without waiting (for processes expected to exit); ``command`` runs a stand-in."""
        svc = RunningService.spawn(
            name,
            self.endpoints,
            api_keys_setting(self.keys),
            self.home,
            database=database,
            metrics_port=metrics_port,
            extra={
                "JZ_RELAY_POLL_INTERVAL_S": "0.2",
                # The tests' tables recover in seconds: a regulator stuck recovering exits sooner.
                "JZ_REGULATOR_RECOVERY_STALL_S": "120",
                **{f"JZ_{k.upper()}": v for k, v in env.items()},
            },
            supervised=supervised,
            command=command,
        )
        self._running.append(svc)
        self._record()
        return svc

    async def start(
        self,
        name: str,
        database: str | None = None,
        metrics_port: int = 0,
        supervised: bool = False,
        **env: str,
    ) -> RunningService:
        svc = self.spawn(name, database, metrics_port, supervised, **env)
        await svc.wait_serving()
        return svc

    def running(self) -> list[RunningService]:
        return list(self._running)

    def stop(self, svc: RunningService) -> None:
        svc.stop()
        self._running.remove(svc)
        self._record()

    def stop_all(self) -> None:
        for svc in self._running:
            svc.stop()
        self._running.clear()
        self._record()


@contextlib.contextmanager
def services_on(endpoints: Endpoints, home: Path) -> Iterator[ServiceHarness]:
    """A harness for ``home``: what a killed run left there is stopped first, all it started after."""
    harness = ServiceHarness(endpoints, home)
    harness.reap_leftovers()
    try:
        yield harness
    finally:
        harness.stop_all()


async def eventually(
    check: Callable[[], Awaitable[T | None]], within: float = 60.0, interval: float = 0.2
) -> T:
    """Poll an async ``check`` until it returns something truthy; return that."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        result = await check()
        if result:
            return result
        if loop.time() > deadline:
            raise AssertionError(f"condition not met within {within}s (last: {result!r})")
        await asyncio.sleep(interval)
