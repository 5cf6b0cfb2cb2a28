"""Run the services as local processes against a stack's endpoints, each under a supervisor.

``ServiceProcess.spawn`` is the one way a service process is started: by ``jiazheng up``
(supervised), by the integration tests' harness and by the benchmarks.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self, TypeVar

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from deploy.local.stack import (
    ROOT,
    Endpoints,
    StackError,
    free_port,
    pid_alive,
    pid_cmdline,
    port_is_free,
    stop_pid,
)
from deploy.local.supervisor import SupervisorState
from libs.common.card_token import SigningKeyring

# The regulator and the gateway own no database: SERVICE_DATABASES (deploy/local/stack.py) does
# not name them. The gateway comes last: it is given the others' addresses.
SERVICES = ("orders", "workers", "credit", "complaints", "insurance", "regulator", "gateway")
SUPERVISOR = "deploy.local.supervisor"


@dataclass(frozen=True)
class DevKey:
    """An API key for trying the system locally; only its hash reaches the services."""

    key: str
    principal: str
    role: str
    tenant: str


# Company principals act for one company: these ids are given to CreateCompany (company_id) when
# a company is registered on the local stack, so their keys exist before the companies do.
DEMO_COMPANY_ID = "00000000-0000-4000-8000-00000000c001"
OTHER_COMPANY_ID = "00000000-0000-4000-8000-00000000c002"


def new_dev_keys() -> list[DevKey]:
    return [
        DevKey(f"jzk_{secrets.token_urlsafe(24)}", principal, role, tenant)
        for principal, role, tenant in [
            ("demo-platform", "platform", "demo-platform"),
            ("other-platform", "platform", "other-platform"),
            ("operator", "operator", ""),
            ("regulator", "regulator", ""),
            ("demo-company", "company", DEMO_COMPANY_ID),
            ("other-company", "company", OTHER_COMPANY_ID),
            # Mediators act for their mediation body; the union files disputes for workers.
            ("consumer-mediator", "mediator", "consumer_association"),
            ("consumer-mediator-2", "mediator", "consumer_association"),
            ("peoples-mediator", "mediator", "peoples_mediation"),
            ("industry-mediator", "mediator", "industry_association"),
            ("union", "union", "beijing-union"),
            ("demo-insurer", "insurer", "demo-insurer"),
            # The web gateway reads cards (VerifyCard) as itself.
            ("gateway", "service", ""),
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


def new_dev_pii_keys() -> dict[str, str]:
    """Throw-away personal-data keys (libs.common.pii) for a local service, as its environment."""
    return {
        "JZ_PII_KEYS": json.dumps({"dev-1": base64.b64encode(secrets.token_bytes(32)).decode()}),
        "JZ_PII_ACTIVE_KEY": "dev-1",
        "JZ_PII_HMAC_KEY": base64.b64encode(secrets.token_bytes(32)).decode(),
    }


def new_dev_pseudonym_key() -> dict[str, str]:
    """A throw-away key for the regulator's pseudonyms (services.regulator), as an environment."""
    return {"JZ_REGULATOR_PSEUDONYM_KEY": base64.b64encode(secrets.token_bytes(32)).decode()}


def new_dev_card_keys() -> dict[str, str]:
    """A throw-away Ed25519 key that signs the local stack's service cards, as an environment."""
    return {
        "JZ_CARD_SIGNING_KEYS": json.dumps(
            {"dev-card-1": base64.b64encode(secrets.token_bytes(32)).decode()}
        ),
        "JZ_CARD_ACTIVE_KEY": "dev-card-1",
    }


def card_jwks(card_keys: Mapping[str, str]) -> str:
    """The public JWK Set of the card keys ``new_dev_card_keys`` made: what the orders service
    verifies check-ins with (JZ_CARD_JWKS)."""
    ring = SigningKeyring.from_json(card_keys["JZ_CARD_SIGNING_KEYS"], card_keys["JZ_CARD_ACTIVE_KEY"])
    return json.dumps(ring.jwks())


def service_env(
    name: str,
    endpoints: Endpoints,
    api_keys: str,
    grpc_port: int,
    metrics_port: int,
    extra: Mapping[str, str] | None = None,
) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("JZ_")}
    # Fresh unless ``extra`` brings the keys the data was sealed and the cards were signed with.
    env.update({**new_dev_pii_keys(), **new_dev_card_keys(), **new_dev_pseudonym_key()})
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


def gateway_env(
    keys: Sequence[DevKey], session_key: str, http_port: int, ports: Mapping[str, Mapping[str, int]]
) -> dict[str, str]:
    """The web gateway's environment on a local stack: its HTTP port, the addresses of the services
    it calls, its own key, the platforms' keys (确认入户 acts for them) and its session key. Cookies
    stay Secure: browsers accept them from http://127.0.0.1."""
    return {
        "JZ_HTTP_PORT": str(http_port),
        **{
            f"JZ_{name.upper()}_ADDRESS": f"127.0.0.1:{ports[name]['grpc_port']}"
            for name in ("workers", "orders", "regulator")
        },
        "JZ_GATEWAY_API_KEY": next(k.key for k in keys if k.principal == "gateway"),
        "JZ_GATEWAY_PLATFORM_KEYS": json.dumps({k.tenant: k.key for k in keys if k.role == "platform"}),
        "JZ_GATEWAY_SESSION_KEY": session_key,
    }


def new_session_key() -> str:
    """A fresh key for the web gateway's session cookies: 32 random bytes, base64."""
    return base64.b64encode(secrets.token_bytes(32)).decode()


def supervisor_state_file(log: Path) -> Path:
    """Where the supervisor of the service writing ``log`` keeps its state: beside the log."""
    return log.with_suffix(".supervisor.json")


@dataclass
class ServiceProcess:
    """A service started by ``spawn``: on its own, or under a supervisor that restarts it."""

    name: str
    port: int
    metrics_port: int
    proc: subprocess.Popen[bytes]  # the service, or its supervisor
    log: Path
    supervised: bool = False
    started_at: float = field(default_factory=time.monotonic)

    @classmethod
    def spawn(
        cls,
        name: str,
        endpoints: Endpoints,
        api_keys: str,
        home: Path,
        *,
        database: str | None = None,
        grpc_port: int = 0,
        metrics_port: int = 0,
        extra: Mapping[str, str] | None = None,
        log: Path | None = None,
        supervised: bool = False,
        command: Sequence[str] = (),
    ) -> Self:
        """Start ``python -m services.<name>`` (or ``python <command>``) with the service's environment.

        Without a ``grpc_port``, a free one; without a ``log``, ``<home>/logs/<name>-<port>.log``.
        """
        port = grpc_port or free_port()
        log = (log or home / "logs" / f"{name}-{port}.log").resolve()  # the supervisor runs in ROOT
        settings = dict(extra or {})
        # The regulator's faust working folder: in the stack's folder, not the temp directory.
        settings.setdefault("JZ_FAUST_DATADIR", str(home.resolve() / "faust"))
        if database:
            settings["JZ_DATABASE_URL"] = endpoints.dsn(database)
        argv = [sys.executable, *(command or ["-m", f"services.{name}"])]
        if supervised:
            state = supervisor_state_file(log)
            state.unlink(missing_ok=True)  # a former supervisor's, naming a dead child
            argv = [sys.executable, "-m", SUPERVISOR, "--name", name, "--state", str(state), "--", *argv]
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("ab") as out:
            proc = subprocess.Popen(
                argv,
                cwd=ROOT,
                env=service_env(name, endpoints, api_keys, port, metrics_port, settings),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return cls(name, port, metrics_port, proc, log, supervised)

    def supervision(self) -> SupervisorState | None:
        """The supervisor's state (None unsupervised, or before the supervisor wrote it)."""
        return SupervisorState.read(supervisor_state_file(self.log)) if self.supervised else None

    def child_pid(self) -> int | None:
        """The service's own process now; under a supervisor, None between an exit and the restart."""
        if not self.supervised:
            return self.proc.pid
        state = self.supervision()
        return state.child_pid if state else None

    @property
    def pid(self) -> int:
        pid = self.child_pid()
        if pid is None:
            raise StackError(f"{self.name} is being restarted: it has no process right now")
        return pid

    def kill_child(self, sig: int = signal.SIGKILL) -> int:
        """Signal the service's own process (not its supervisor); returns its pid."""
        pid = self.pid
        os.kill(pid, sig)
        return pid

    async def wait_serving(self, timeout: float = 120.0) -> float:
        """Wait until it answers SERVING; returns the seconds since it was spawned.

        Fails if ``proc`` ends first; under a supervisor, a service that keeps exiting times out.
        """
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise StackError(f"{self.name} exited before serving:\n{self._log_tail()}")
            with contextlib.suppress(grpc.aio.AioRpcError):
                if await health_status(self.port) == "SERVING":
                    return time.monotonic() - self.started_at
            await asyncio.sleep(0.3)
        raise StackError(f"{self.name} on port {self.port} not SERVING after {timeout}s:\n{self._log_tail()}")

    def _log_tail(self) -> str:
        return self.log.read_text()[-3000:] if self.log.exists() else ""

    def kill(self, sig: int = signal.SIGKILL, timeout: float = 30.0) -> None:
        """Signal ``proc`` (the supervisor, when supervised) and wait for it to end."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        self.proc.wait(timeout=timeout)

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM ``proc``; SIGKILL if it outlives ``timeout``."""
        try:
            self.kill(signal.SIGTERM, timeout)
        except subprocess.TimeoutExpired:
            self.kill(signal.SIGKILL)


ServiceT = TypeVar("ServiceT", bound=ServiceProcess)


@contextlib.asynccontextmanager
async def stopped_after(svc: ServiceT) -> AsyncIterator[ServiceT]:
    """``svc`` at once (it may still be starting); stopped on the way out."""
    try:
        yield svc
    finally:
        await asyncio.to_thread(svc.stop)


async def health_status(port: int, timeout: float = 2.0) -> str:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        reply = await stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=timeout)
        return str(health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status))


@dataclass(frozen=True)
class ServiceStatus:
    name: str
    grpc_port: int
    supervised: bool  # its supervisor runs
    child_pid: int | None
    restarts: int
    last_exit: int | None


class LocalServices:
    """The services of one local stack, each under its supervisor, recorded in ``<home>/services.json``."""

    def __init__(self, home: Path) -> None:
        self.home = home.resolve()
        self.state_file = self.home / "services.json"
        self.keys_file = self.home / "api-keys.json"
        # Kept while the stack's databases live: what the services sealed must stay openable.
        self.pii_keys_file = self.home / "pii-keys.json"
        self.card_keys_file = self.home / "card-keys.json"
        # Kept too: the regulator's pseudonyms stay the same across restarts of the stack.
        self.pseudonym_key_file = self.home / "pseudonym-key.json"

    def api_keys(self) -> list[DevKey]:
        """The stack's keys; principals added to ``new_dev_keys`` since they were made get a key too."""
        kept = [DevKey(**k) for k in _kept(self.keys_file, lambda: [k.__dict__ for k in new_dev_keys()])]
        known = {k.principal for k in kept}
        added = [k for k in new_dev_keys() if k.principal not in known]
        if added:
            self.keys_file.write_text(json.dumps([k.__dict__ for k in kept + added], indent=2))
        return kept + added

    def pii_keys(self) -> dict[str, str]:
        keys: dict[str, str] = _kept(self.pii_keys_file, new_dev_pii_keys)
        return keys

    def card_keys(self) -> dict[str, str]:
        keys: dict[str, str] = _kept(self.card_keys_file, new_dev_card_keys)
        return keys

    def pseudonym_key(self) -> dict[str, str]:
        key: dict[str, str] = _kept(self.pseudonym_key_file, new_dev_pseudonym_key)
        return key

    def gateway_session_key(self) -> str:
        key: dict[str, str] = _kept(
            self.home / "gateway-session-key.json", lambda: {"key": new_session_key()}
        )
        return key["key"]

    def state(self) -> dict[str, dict[str, int]]:
        if not self.state_file.exists():
            return {}
        data: dict[str, dict[str, int]] = json.loads(self.state_file.read_text())
        return data

    def up(self, endpoints: Endpoints) -> dict[str, dict[str, int]]:
        """Start a supervisor for each service that has none running, on its former ports if free."""
        state = self.state()
        keys = self.api_keys()
        api_keys = api_keys_setting(keys)
        web = state.get("gateway", {})
        running = self._supervisor_runs("gateway", web)
        http_port = (web["http_port"] if running else _reusable(web.get("http_port"))) or free_port()
        started: list[ServiceProcess] = []
        for name in SERVICES:
            current = state.get(name, {})
            if self._supervisor_runs(name, current):
                continue
            extra = {
                **self.pii_keys(),
                **self.card_keys(),
                **self.pseudonym_key(),
                "JZ_CARD_JWKS": card_jwks(self.card_keys()),
                "JZ_CARD_VERIFY_BASE_URL": f"http://127.0.0.1:{http_port}/v",
            }
            if name == "gateway":
                extra |= gateway_env(keys, self.gateway_session_key(), http_port, state)
            svc = ServiceProcess.spawn(
                name,
                endpoints,
                api_keys,
                self.home,
                grpc_port=_reusable(current.get("grpc_port")),
                metrics_port=_reusable(current.get("metrics_port")) or free_port(),
                log=self.log(name),
                supervised=True,
                extra=extra,
            )
            state[name] = {
                "supervisor_pid": svc.proc.pid,
                "grpc_port": svc.port,
                "metrics_port": svc.metrics_port,
            }
            if name == "gateway":
                state[name]["http_port"] = http_port
            started.append(svc)
        self.state_file.write_text(json.dumps(state, indent=2))
        for svc in started:
            asyncio.run(svc.wait_serving(timeout=90))
        return state

    def down(self) -> None:
        for name, info in self.state().items():
            stop_pid(info.get("supervisor_pid", 0), str(supervisor_state_file(self.log(name))))
        self.state_file.unlink(missing_ok=True)

    def status(self) -> list[ServiceStatus]:
        rows = []
        for name, info in self.state().items():
            state = SupervisorState.read(supervisor_state_file(self.log(name)))
            rows.append(
                ServiceStatus(
                    name,
                    info["grpc_port"],
                    self._supervisor_runs(name, info),
                    state.child_pid if state and pid_alive(state.child_pid) else None,
                    state.restarts if state else 0,
                    state.last_exit if state else None,
                )
            )
        return rows

    def _supervisor_runs(self, name: str, info: dict[str, int]) -> bool:
        pid = info.get("supervisor_pid", 0)
        return pid_alive(pid) and str(supervisor_state_file(self.log(name))) in pid_cmdline(pid)

    def log(self, name: str) -> Path:
        return self.home / "logs" / f"{name}.log"


def _kept(path: Path, make: Callable[[], object]) -> Any:
    """The JSON kept in ``path`` (readable by its owner only), made by ``make`` the first time."""
    if not path.exists():
        path.write_text(json.dumps(make(), indent=2))
        path.chmod(0o600)
    return json.loads(path.read_text())


def _reusable(port: int | None) -> int:
    """``port`` if it can be bound again (clients keep working), else 0 (pick another)."""
    return port if port and port_is_free(port) else 0
