"""The local real stack: a single-node Apache Kafka (KRaft) and a project-local PostgreSQL.

Everything lives under one folder (``.stack/<name>`` by default): data, logs, the chosen
ports and the process ids. ``up`` is idempotent: what already runs and answers is reused,
what was killed is started again on the same data. ``down`` stops only the processes this
folder recorded.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import random
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
KAFKA_POM = ROOT / "deploy" / "local" / "kafka" / "pom.xml"
KAFKA_LOG4J = ROOT / "deploy" / "local" / "kafka" / "log4j2.yaml"
KAFKA_LIBS = ROOT / ".build" / "kafka-libs"
SERVICE_DATABASES = ("orders", "workers", "credit", "complaints", "insurance")
PG_SUPERUSER = "jiazheng"


State = dict[str, dict[str, Any]]  # state.json: {"kafka": {...}, "postgres": {...}}


class StackError(RuntimeError):
    """The local stack could not be brought to the asked state."""


@dataclass(frozen=True)
class Endpoints:
    """Where the running stack answers."""

    kafka_bootstrap: str
    pg_host: str
    pg_port: int
    pg_user: str
    pg_password: str

    def dsn(self, database: str) -> str:
        return f"postgresql://{self.pg_user}:{self.pg_password}@{self.pg_host}:{self.pg_port}/{database}"


# Listening ports are drawn from below the kernel's ephemeral range: a port in that range,
# released while its server restarts, can be taken meanwhile by any outgoing connection.
LISTEN_PORTS_FROM = 20000


# Ports free_port has handed out in this process. Several are often picked before any server
# binds (a stack's services and their metrics), so "free now" alone could give two the same one.
_handed_out: set[int] = set()


def free_port() -> int:
    """A free port on 127.0.0.1 for a server, that an outgoing connection will never take, and
    that this process has not handed out before."""
    below = _ephemeral_ports_from()
    if len(_handed_out) > (below - LISTEN_PORTS_FROM) // 2:
        _handed_out.clear()  # a very long run: forget the oldest picks rather than run out
    for _ in range(200):
        port = random.randrange(LISTEN_PORTS_FROM, below)
        if port not in _handed_out and port_is_free(port):
            _handed_out.add(port)
            return port
    raise StackError(f"no free port between {LISTEN_PORTS_FROM} and {below}")


def _ephemeral_ports_from() -> int:
    try:
        low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768  # Linux's default
    return max(low, LISTEN_PORTS_FROM + 1000)


def port_is_free(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the servers bind
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def pid_alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return any(_task_running(task) for task in _tasks(pid))


def _tasks(pid: int) -> list[Path]:
    """The process's threads: its leader shows as a zombie while other threads, holding its files
    and sockets, are still exiting."""
    try:
        return list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:
        return [Path(f"/proc/{pid}")]


def _task_running(task: Path) -> bool:
    try:
        return not (task / "stat").read_text().split(") ")[-1].startswith("Z")
    except OSError:
        return False


def pid_cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def stop_pid(pid: int, must_contain: str, timeout: float = 30.0) -> None:
    """SIGTERM a process we started (checked by its command line), SIGKILL if it lingers."""
    if not pid_alive(pid) or must_contain not in pid_cmdline(pid):
        return
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not pid_alive(pid):
            return
        time.sleep(0.2)
    os.kill(pid, signal.SIGKILL)


def ensure_kafka_libs() -> Path:
    """Fetch the broker jars from Maven Central with Maven (once per checkout)."""
    marker = KAFKA_LIBS / ".complete"
    if marker.exists() and marker.read_text() == KAFKA_POM.read_text():
        return KAFKA_LIBS
    shutil.rmtree(KAFKA_LIBS, ignore_errors=True)
    KAFKA_LIBS.mkdir(parents=True)
    cmd = [
        "mvn",
        "-q",
        "-B",
        "-f",
        str(KAFKA_POM),
        "dependency:copy-dependencies",
        f"-DoutputDirectory={KAFKA_LIBS}",
        "-DincludeScope=runtime",
    ]
    if subprocess.run(cmd, check=False).returncode != 0:
        raise StackError("mvn could not fetch the Kafka broker jars")
    marker.write_text(KAFKA_POM.read_text())
    return KAFKA_LIBS


def postgres_bindir() -> Path:
    env_dir = os.environ.get("JZ_PG_BINDIR")
    candidates = [Path(env_dir)] if env_dir else []
    candidates += sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)
    for c in candidates:
        if (c / "initdb").exists():
            return c
    found = shutil.which("initdb")
    if found:
        return Path(found).parent
    raise StackError("PostgreSQL binaries (initdb, pg_ctl) not found; set JZ_PG_BINDIR")


class LocalStack:
    """One local stack rooted at ``home``."""

    def __init__(self, home: Path) -> None:
        self.home = home.resolve()
        self.kafka_dir = self.home / "kafka"
        self.pg_dir = self.home / "postgres"
        self.state_file = self.home / "state.json"

    # -- state -----------------------------------------------------------------------
    def _state(self) -> State:
        if self.state_file.exists():
            data: State = json.loads(self.state_file.read_text())
            return data
        return {}

    def _save(self, state: State) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(state, indent=2))
        tmp.chmod(0o600)  # holds the database password
        tmp.replace(self.state_file)

    def endpoints(self) -> Endpoints:
        state = self._state()
        try:
            kafka, pg = state["kafka"], state["postgres"]
            return Endpoints(
                kafka_bootstrap=f"127.0.0.1:{kafka['port']}",
                pg_host="127.0.0.1",
                pg_port=int(pg["port"]),
                pg_user=PG_SUPERUSER,
                pg_password=str(pg["password"]),
            )
        except KeyError as exc:
            raise StackError(f"stack at {self.home} was never started") from exc

    # -- lifecycle -------------------------------------------------------------------
    def up(self) -> Endpoints:
        self.home.mkdir(parents=True, exist_ok=True)
        self._postgres_up()
        self._kafka_up()
        endpoints = self.endpoints()
        asyncio.run(_create_databases(endpoints))
        return endpoints

    def down(self) -> None:
        self.stop_kafka()
        self.stop_postgres()

    # -- fault injection: the outage tests stop and start each part on its own ------------
    def stop_kafka(self, sig: int = signal.SIGTERM) -> None:
        """Stop the broker: SIGTERM shuts it down cleanly, SIGKILL is a crash."""
        pid = int(self._state().get("kafka", {}).get("pid") or 0)
        if sig == signal.SIGKILL and pid_alive(pid) and str(self.kafka_dir) in pid_cmdline(pid):
            os.kill(pid, signal.SIGKILL)
        if pid:
            stop_pid(pid, str(self.kafka_dir))

    def start_kafka(self) -> None:
        """Start the broker again on its ports and data (or reuse it if it runs)."""
        self._kafka_up()

    def stop_postgres(self) -> None:
        if self._pg_path("data/postmaster.pid").exists():
            self._pg_ctl("stop", "-m", "fast", check=False)

    def start_postgres(self) -> None:
        self._postgres_up()

    def status(self) -> dict[str, object]:
        state = self._state()
        kafka = state.get("kafka", {})
        pg = state.get("postgres", {})
        return {
            "home": str(self.home),
            "kafka": {
                "running": pid_alive(int(kafka.get("pid") or 0)),
                "bootstrap": f"127.0.0.1:{kafka['port']}" if kafka else None,
                "log": str(self.kafka_dir / "kafka.log"),
            },
            "postgres": {
                "running": self._pg_running(),
                "port": pg.get("port"),
                "log": str(self.pg_dir / "postgres.log"),
            },
        }

    # -- PostgreSQL ------------------------------------------------------------------
    def _pg_path(self, name: str) -> Path:
        """Real paths only: the server's user may not traverse the link in ``.stack``."""
        return self.pg_dir.resolve() / name

    def _run_as(self) -> list[str]:
        """initdb and postgres refuse root: run them as an unprivileged user then."""
        if os.geteuid() != 0:
            return []
        return ["runuser", "-u", os.environ.get("JZ_PG_OS_USER", "nobody"), "--"]

    def _pg_ctl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[bytes]:
        cmd = [*self._run_as(), str(postgres_bindir() / "pg_ctl"), "-D", str(self._pg_path("data")), *args]
        result = subprocess.run(cmd, check=False, capture_output=True)
        if check and result.returncode != 0:
            log = self._pg_path("postgres.log")
            tail = log.read_text()[-2000:] if log.exists() else ""
            raise StackError(f"pg_ctl {args[0]} failed: {result.stderr.decode()}\n{tail}")
        return result

    def _pg_running(self) -> bool:
        if not (self._pg_path("data") / "PG_VERSION").exists():
            return False
        return self._pg_ctl("status", check=False).returncode == 0

    def _postgres_up(self) -> None:
        state = self._state()
        data = self._pg_path("data")
        if not (data / "PG_VERSION").exists():
            self._initdb(state)
        pg = state["postgres"]
        if self._pg_running():
            return
        port = int(pg["port"])
        if not port_is_free(port):
            port = free_port()
            pg["port"] = port
            self._save(state)
        self._write_pg_conf(port)
        self._pg_ctl("start", "-w", "-t", "60", "-l", str(self._pg_path("postgres.log")))

    def _make_pg_dir(self) -> None:
        """The PostgreSQL folder, reachable by the user the server runs as.

        When that user cannot traverse this checkout's folders (a private home or CI folder), the
        data goes to a folder of its own in the temp directory, linked from ``.stack/<name>``.
        """
        if self.pg_dir.is_symlink():
            shutil.rmtree(self.pg_dir.resolve(), ignore_errors=True)
            self.pg_dir.unlink()
        shutil.rmtree(self.pg_dir, ignore_errors=True)
        run_as = self._run_as()
        if run_as and subprocess.run([*run_as, "test", "-x", str(self.home)], check=False).returncode != 0:
            digest = hashlib.sha256(str(self.home).encode()).hexdigest()[:12]
            target = Path(tempfile.gettempdir()) / f"jiazheng-pg-{digest}"
            shutil.rmtree(target, ignore_errors=True)
            target.mkdir(mode=0o700)
            self.pg_dir.symlink_to(target)
        else:
            self.pg_dir.mkdir(parents=True)

    def _initdb(self, state: State) -> None:
        self._make_pg_dir()
        password = secrets.token_urlsafe(18)
        pwfile = self._pg_path("pwfile")
        pwfile.write_text(password + "\n")
        if os.geteuid() == 0:
            user = os.environ.get("JZ_PG_OS_USER", "nobody")
            shutil.chown(self.pg_dir, user=user)
            shutil.chown(pwfile, user=user)
        pwfile.chmod(0o600)
        cmd = [
            *self._run_as(),
            str(postgres_bindir() / "initdb"),
            "-D",
            str(self._pg_path("data")),
            "-U",
            PG_SUPERUSER,
            "--pwfile",
            str(pwfile),
            "--auth=scram-sha-256",
            "-E",
            "UTF8",
            "--locale=C.UTF-8",
        ]
        result = subprocess.run(cmd, check=False, capture_output=True)
        pwfile.unlink()
        if result.returncode != 0:
            raise StackError(f"initdb failed: {result.stderr.decode()}")
        state["postgres"] = {"port": free_port(), "password": password}
        self._save(state)

    def _write_pg_conf(self, port: int) -> None:
        conf = self._pg_path("data") / "postgresql.auto.conf"
        conf.write_text(
            "listen_addresses = '127.0.0.1'\n"
            f"port = {port}\n"
            "unix_socket_directories = ''\n"
            "max_connections = 300\n"
            "log_lock_waits = on\n"
            "shared_buffers = '256MB'\n"
        )

    # -- Kafka -----------------------------------------------------------------------
    def _kafka_up(self) -> None:
        state = self._state()
        kafka = state.get("kafka", {})
        if pid_alive(int(kafka.get("pid") or 0)) and str(self.kafka_dir) in pid_cmdline(int(kafka["pid"])):
            asyncio.run(wait_for_kafka(f"127.0.0.1:{kafka['port']}", timeout=60))
            return
        libs = ensure_kafka_libs()
        ports_ok = kafka and all(port_is_free(int(kafka[k])) for k in ("port", "controller_port"))
        if not ports_ok or not (self.kafka_dir / "data" / "meta.properties").exists():
            kafka = {"port": free_port(), "controller_port": free_port(), "cluster_id": _cluster_id()}
            self._format_kafka(libs, kafka)
        proc = subprocess.Popen(
            [*_java(libs), "kafka.Kafka", str(self.kafka_dir / "server.properties")],
            stdout=(self.kafka_dir / "kafka.log").open("ab"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        kafka["pid"] = proc.pid
        state["kafka"] = kafka
        self._save(state)
        try:
            asyncio.run(wait_for_kafka(f"127.0.0.1:{kafka['port']}", timeout=120, proc=proc))
        except StackError:
            tail = (self.kafka_dir / "kafka.log").read_text()[-3000:]
            raise StackError(f"Kafka did not become ready; log tail:\n{tail}") from None

    def _format_kafka(self, libs: Path, kafka: dict[str, Any]) -> None:
        shutil.rmtree(self.kafka_dir, ignore_errors=True)
        self.kafka_dir.mkdir(parents=True)
        props = self.kafka_dir / "server.properties"
        props.write_text(_server_properties(self.kafka_dir / "data", kafka))
        cmd = [
            *_java(libs),
            "kafka.tools.StorageTool",
            "format",
            "--standalone",
            "-t",
            str(kafka["cluster_id"]),
            "-c",
            str(props),
        ]
        result = subprocess.run(cmd, check=False, capture_output=True)
        if result.returncode != 0:
            raise StackError(f"Kafka storage format failed: {result.stdout.decode()}{result.stderr.decode()}")


def _java(libs: Path) -> list[str]:
    java = str(Path(os.environ["JAVA_HOME"]) / "bin" / "java") if "JAVA_HOME" in os.environ else "java"
    return [
        java,
        "-Xms256m",
        "-Xmx768m",
        "-XX:+UseG1GC",
        "-Djava.awt.headless=true",
        f"-Dlog4j2.configurationFile={KAFKA_LOG4J}",
        "-cp",
        f"{libs}/*",
    ]


def _cluster_id() -> str:
    import base64

    return base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")


def _server_properties(data: Path, kafka: dict[str, Any]) -> str:
    port, cport = kafka["port"], kafka["controller_port"]
    return "\n".join(
        [
            "process.roles=broker,controller",
            "node.id=1",
            f"controller.quorum.bootstrap.servers=127.0.0.1:{cport}",
            f"listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{cport}",
            f"advertised.listeners=PLAINTEXT://127.0.0.1:{port}",
            "controller.listener.names=CONTROLLER",
            "inter.broker.listener.name=PLAINTEXT",
            "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            f"log.dirs={data}",
            "num.partitions=3",
            "offsets.topic.replication.factor=1",
            "offsets.topic.num.partitions=6",
            "transaction.state.log.replication.factor=1",
            "transaction.state.log.min.isr=1",
            "share.coordinator.state.topic.replication.factor=1",
            "share.coordinator.state.topic.min.isr=1",
            "group.initial.rebalance.delay.ms=0",
            "auto.create.topics.enable=false",
            "",
        ]
    )


async def wait_for_kafka(bootstrap: str, timeout: float, proc: subprocess.Popen[bytes] | None = None) -> None:
    """Ready means a real client call succeeds: the cluster describes itself and lists topics."""
    import logging

    from aiokafka.admin import AIOKafkaAdminClient

    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise StackError(f"Kafka exited with code {proc.returncode}")
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=5000)
        try:
            await admin.start()
            await admin.describe_cluster()
            await admin.list_topics()
            return
        except Exception as exc:  # noqa: BLE001 - any failure means "not ready yet"
            last = exc
        finally:
            await admin.close()
        await asyncio.sleep(0.5)
    raise StackError(f"Kafka at {bootstrap} not ready after {timeout}s: {last!r}")


async def _create_databases(endpoints: Endpoints) -> None:
    for name in SERVICE_DATABASES:
        await create_database(endpoints, f"jz_{name}")


async def create_database(endpoints: Endpoints, name: str) -> None:
    """Create ``name`` unless it exists."""
    import asyncpg

    conn = await asyncpg.connect(endpoints.dsn("postgres"))
    try:
        if not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
            await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


@contextlib.asynccontextmanager
async def scratch_database(endpoints: Endpoints, prefix: str) -> AsyncIterator[str]:
    """A fresh, empty database named ``<prefix>_<random>``, dropped afterwards whatever happens."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    await create_database(endpoints, name)
    try:
        yield name
    finally:
        await drop_database(endpoints, name)


async def drop_database(endpoints: Endpoints, name: str) -> None:
    """Drop ``name`` if it exists, ending its sessions."""
    import asyncpg

    conn = await asyncpg.connect(endpoints.dsn("postgres"))
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


def default_home(name: str = "dev") -> Path:
    return Path(os.environ.get("JZ_STACK_HOME", ROOT / ".stack" / name))
