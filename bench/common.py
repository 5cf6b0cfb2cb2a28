"""What every benchmark needs: scratch databases, service processes, topics, clocks and CPU samples.

Service processes are started by the helper that ``tests/integration/harness.py`` and
``jiazheng up`` use (``deploy.local.services.ServiceProcess.spawn``), and stopped by their own pid.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import platform
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import asyncpg
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError

from deploy.local.services import DevKey, api_keys_setting, new_dev_keys, new_dev_pii_keys
from deploy.local.services import ServiceProcess as ServiceProcess  # the benchmarks' process type
from deploy.local.services import stopped_after as stopped_after
from deploy.local.stack import ROOT, Endpoints, default_home, drop_database, free_port
from libs.common.pii import Keyring

BENCH_HOME = default_home("bench")  # .stack/bench; JZ_STACK_HOME picks another, as for the CLI
RESULTS_DIR = ROOT / "bench" / "results"
TOPIC_PARTITIONS = 3  # the services' default (JZ_TOPIC_PARTITIONS)


@dataclass
class BenchEnv:
    """The bench stack's endpoints, the API keys handed (hashed) to the services, and the throw-away
    personal-data keys every process of the run (and this one) seals with."""

    endpoints: Endpoints
    keys: list[DevKey] = field(default_factory=new_dev_keys)
    pii_keys: dict[str, str] = field(default_factory=new_dev_pii_keys)  # as a service's environment

    def key(self, principal: str) -> str:
        return next(k.key for k in self.keys if k.principal == principal)

    def keyring(self) -> Keyring:
        """The keyring ``pii_keys`` configure, for what the bench writes in this process."""
        entries = {
            "keys": json.loads(self.pii_keys["JZ_PII_KEYS"]),
            "active_key": self.pii_keys["JZ_PII_ACTIVE_KEY"],
            "hmac_key": self.pii_keys["JZ_PII_HMAC_KEY"],
        }
        return Keyring.from_entries(entries, source="the bench's throw-away keys")


# -- PostgreSQL ------------------------------------------------------------------------------


async def drop_leftover_databases(endpoints: Endpoints) -> list[str]:
    """Drop the scratch databases an interrupted run left in the bench stack."""
    conn = await asyncpg.connect(endpoints.dsn("postgres"))
    try:
        names = [
            r["datname"]
            for r in await conn.fetch(r"SELECT datname FROM pg_database WHERE datname LIKE 'jzbench\_%'")
        ]
    finally:
        await conn.close()
    for name in names:
        await drop_database(endpoints, name)
    return names


# -- service processes -----------------------------------------------------------------------


def spawn_service(
    env: BenchEnv, name: str, database: str, extra: dict[str, str] | None = None
) -> ServiceProcess:
    """``python -m services.<name>`` with the harness's environment, on a database of our choosing."""
    return ServiceProcess.spawn(
        name,
        env.endpoints,
        api_keys_setting(env.keys),
        BENCH_HOME,
        database=database,
        metrics_port=free_port(),
        extra={"JZ_RELAY_POLL_INTERVAL_S": "0.2", **env.pii_keys, **(extra or {})},
    )


def spawn_module(env: BenchEnv, module: str, database: str, argv: list[str] | None = None) -> ServiceProcess:
    """A bench helper process (``python -m <module>`` or ``python <argv>``) configured like a service."""
    name = module.rsplit(".", 1)[-1]
    return ServiceProcess.spawn(
        name,
        env.endpoints,
        "[]",
        BENCH_HOME,
        database=database,
        extra=env.pii_keys,
        command=argv or ["-m", module],
    )


@contextlib.asynccontextmanager
async def serving(svc: ServiceProcess) -> AsyncIterator[ServiceProcess]:
    """``svc`` once it answers SERVING; stopped on the way out."""
    async with stopped_after(svc):
        await svc.wait_serving()
        yield svc


def running_service(
    env: BenchEnv, name: str, database: str, extra: dict[str, str] | None = None
) -> contextlib.AbstractAsyncContextManager[ServiceProcess]:
    return serving(spawn_service(env, name, database, extra))


def running_module(
    env: BenchEnv, module: str, database: str
) -> contextlib.AbstractAsyncContextManager[ServiceProcess]:
    return serving(spawn_module(env, module, database))


# -- the outbox -----------------------------------------------------------------------------


async def unpublished(conn: asyncpg.Connection) -> int:
    """Outbox rows not yet published."""
    return int(await conn.fetchval("SELECT count(*) FROM outbox WHERE published_at IS NULL"))


async def watch_outbox(
    conn: asyncpg.Connection,
    until: Callable[[int], bool],
    timeout_s: float,
    svc: ServiceProcess | None = None,
    interval_s: float = 0.05,
) -> int:
    """Poll the unpublished count until ``until(count)`` or ``timeout_s``; the last count.

    With ``svc``, a process that exits meanwhile is an error rather than a long wait.
    """
    deadline = time.perf_counter() + timeout_s
    count = await unpublished(conn)
    while not until(count) and time.perf_counter() < deadline:
        if svc is not None and svc.proc.poll() is not None:
            raise RuntimeError(f"{svc.name} exited (code {svc.proc.returncode}); see {svc.log}")
        await asyncio.sleep(interval_s)
        count = await unpublished(conn)
    return count


# -- /proc -----------------------------------------------------------------------------------


def proc_status_kb(pid: int, field_name: str) -> int:
    """A ``kB`` field of /proc/<pid>/status, e.g. VmRSS (resident now) or VmHWM (resident peak)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field_name}:"):
            return int(line.split()[1])
    raise KeyError(f"{field_name} not in /proc/{pid}/status")


def process_cpu_s(pid: int) -> float:
    """User + system CPU seconds a process (all its threads) has used."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)
    return ticks / os.sysconf("SC_CLK_TCK")


def machine_cpu_ticks() -> tuple[int, int, int]:
    """(busy, steal, total) jiffies over all cores, from the first line of /proc/stat.

    ``steal`` is time the hypervisor gave this VM's cores to someone else; it counts as busy.
    """
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    total = sum(values[:8])  # up to steal; guest time is already inside user
    return total - idle, values[7], total


@dataclass
class CpuWindow:
    """CPU used between ``start`` and ``stop``: this process, optionally a server, and the machine."""

    server_pid: int | None = None
    _t0: float = 0.0
    _self0: float = 0.0
    _server0: float = 0.0
    _machine0: tuple[int, int, int] = (0, 0, 0)
    result: dict[str, float] = field(default_factory=dict)

    def start(self) -> None:
        self._t0 = time.perf_counter()
        self._self0 = time.process_time()
        self._server0 = process_cpu_s(self.server_pid) if self.server_pid else 0.0
        self._machine0 = machine_cpu_ticks()

    def stop(self) -> dict[str, float]:
        wall = time.perf_counter() - self._t0
        busy, steal, total = machine_cpu_ticks()
        elapsed_ticks = max(1, total - self._machine0[2])
        self.result = {
            "wall_s": round(wall, 3),
            "bench_process_cpu_s": round(time.process_time() - self._self0, 3),
            "machine_busy_fraction": round((busy - self._machine0[0]) / elapsed_ticks, 3),
            "machine_steal_fraction": round((steal - self._machine0[1]) / elapsed_ticks, 3),
            "machine_cores": float(os.cpu_count() or 1),
        }
        if self.server_pid:
            self.result["server_process_cpu_s"] = round(process_cpu_s(self.server_pid) - self._server0, 3)
        return self.result


def machine_info() -> dict[str, object]:
    model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    mem_kb = 0
    with contextlib.suppress(OSError, IndexError, ValueError):
        mem_kb = int(Path("/proc/meminfo").read_text().splitlines()[0].split()[1])
    return {
        "cores": os.cpu_count(),
        "cpu_model": model,
        "memory_mb": mem_kb // 1024,
        "kernel": platform.release(),
        "python": platform.python_version(),
    }


# -- Kafka -----------------------------------------------------------------------------------


async def reset_topic(
    bootstrap: str, topic: str, partitions: int = TOPIC_PARTITIONS, within_s: float = 60
) -> None:
    """Delete ``topic`` (and with it every group's committed offsets on it), then create it empty."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within_s
        if topic in await admin.list_topics():
            await admin.delete_topics([topic])
        while True:
            try:
                if topic not in await admin.list_topics():
                    await admin.create_topics(
                        [NewTopic(topic, num_partitions=partitions, replication_factor=1)]
                    )
                    return
            except KafkaError:  # still being deleted: "marked for deletion" / already exists
                pass
            if loop.time() > deadline:
                raise RuntimeError(f"topic {topic} could not be recreated within {within_s}s")
            await asyncio.sleep(0.5)
    finally:
        await admin.close()


async def topic_record_count(bootstrap: str, topic: str) -> int:
    """Records in ``topic`` now (sum of end offsets; the topic was created empty by ``reset_topic``)."""
    from tests.integration.kafka_tools import end_offsets

    return sum((await end_offsets(bootstrap, topic)).values())


# -- statistics and loops --------------------------------------------------------------------


def percentile_ms(sorted_s: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of latencies given in seconds, in milliseconds."""
    if not sorted_s:
        return float("nan")
    rank = max(1, min(len(sorted_s), math.ceil(q / 100 * len(sorted_s))))
    return round(sorted_s[rank - 1] * 1000, 2)


@dataclass
class LoadResult:
    calls: int
    errors: dict[str, int]
    elapsed_s: float
    latencies_s: list[float]
    cpu: dict[str, float]

    @property
    def rate(self) -> float:
        return self.calls / self.elapsed_s if self.elapsed_s > 0 else 0.0

    def percentile_ms(self, q: float) -> float:
        return percentile_ms(sorted(self.latencies_s), q)

    @property
    def cpu_ms_per_call(self) -> float | None:
        return cpu_ms_per_unit(self.cpu, self.calls)

    def summary(self) -> dict[str, object]:
        lat = sorted(self.latencies_s)
        return {
            "calls": self.calls,
            "errors": self.errors,
            "elapsed_s": round(self.elapsed_s, 3),
            "calls_per_s": round(self.rate, 1),
            "p50_ms": percentile_ms(lat, 50),
            "p90_ms": percentile_ms(lat, 90),
            "p99_ms": percentile_ms(lat, 99),
            "max_ms": round(lat[-1] * 1000, 2) if lat else float("nan"),
            "cpu_ms_per_call": self.cpu_ms_per_call,
            "cpu": self.cpu,
        }


async def closed_loop(
    call: Callable[[], Awaitable[None]],
    concurrency: int,
    warmup_s: float,
    duration_s: float,
    server_pid: int | None = None,
    error_name: Callable[[BaseException], str | None] | None = None,
) -> LoadResult:
    """``concurrency`` workers call ``call`` back to back for ``warmup_s + duration_s``.

    Only calls started after the warm-up count; the window ends at the last counted completion.
    ``error_name`` names an expected failure (counted, not raised); it returns None for the rest.
    """
    measure_from = time.perf_counter() + warmup_s
    end = measure_from + duration_s
    latencies: list[float] = []
    errors: dict[str, int] = {}
    last_done = measure_from
    cpu = CpuWindow(server_pid)

    async def worker() -> None:
        nonlocal last_done
        while (t0 := time.perf_counter()) < end:
            try:
                await call()
            except Exception as exc:
                name = error_name(exc) if error_name else None
                if name is None:
                    raise
                errors[name] = errors.get(name, 0) + 1
                continue
            t1 = time.perf_counter()
            if t0 >= measure_from:
                latencies.append(t1 - t0)
                last_done = max(last_done, t1)

    async def sampler() -> None:
        await asyncio.sleep(max(0.0, measure_from - time.perf_counter()))
        cpu.start()
        await asyncio.sleep(max(0.0, end - time.perf_counter()))
        cpu.stop()

    await asyncio.gather(sampler(), *(worker() for _ in range(concurrency)))
    return LoadResult(len(latencies), errors, last_done - measure_from, latencies, cpu.result)


def cpu_ms_per_unit(cpu: dict[str, float], units: int) -> float | None:
    """CPU milliseconds per unit of work of the process doing it: the server process when there
    is one, else this process."""
    cpu_s = cpu.get("server_process_cpu_s", cpu.get("bench_process_cpu_s", 0.0))
    return round(cpu_s * 1000 / units, 3) if units else None


def ratio(value: float, baseline: float) -> float:
    return round(value / baseline, 3) if baseline > 0 else float("nan")


def mean(*values: float | None) -> float | None:
    """The mean of the values measured (None: not measured)."""
    known = [v for v in values if v is not None]
    return round(sum(known) / len(known), 3) if known else None


# -- headline figures and their targets ------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """What a headline figure must reach: bounds on it, on its ratio to the same-run baseline,
    or (for a yes/no figure) the property that must hold."""

    at_least: float | None = None
    at_most: float | None = None
    ratio_at_least: float | None = None
    holds: str | None = None

    def met(self, measured: float | None, ratio_: float | None) -> bool:
        if measured is None or math.isnan(measured):
            return False
        if self.holds is not None:
            return bool(measured)
        return all(
            (
                self.at_least is None or measured >= self.at_least,
                self.at_most is None or measured <= self.at_most,
                self.ratio_at_least is None or (ratio_ is not None and ratio_ >= self.ratio_at_least),
            )
        )

    def text(self) -> str:
        parts = [
            f">= {self.at_least:,g}" if self.at_least is not None else "",
            f"<= {self.at_most:,g}" if self.at_most is not None else "",
            f">= {self.ratio_at_least:g} x baseline" if self.ratio_at_least is not None else "",
            self.holds or "",
        ]
        return " and ".join(p for p in parts if p)


def figure(
    name: str,
    unit: str,
    measured: float | None,
    baseline: float | None = None,
    target: Target | None = None,
) -> dict[str, object]:
    """One headline figure for the JSON and the table; a yes/no figure has the unit "yes/no"."""
    entry: dict[str, object] = {"figure": name, "unit": unit, "measured": measured}
    ratio_ = None
    if baseline is not None:
        ratio_ = ratio(measured, baseline) if measured is not None else None
        entry.update(baseline=baseline, ratio=ratio_)
    if target is not None:
        entry.update(
            target={k: v for k, v in asdict(target).items() if v is not None},
            target_text=target.text(),
            meets=target.met(measured, ratio_),
        )
    return entry
