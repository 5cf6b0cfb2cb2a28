"""Benchmark 3: resident memory of each service after start and ``idle_s`` seconds idle.

Every ``python -m services.<name>`` process is started one after the other (each on a fresh
database, the orders topic recreated empty so credit has nothing to consume; the web gateway with
the addresses of the services started before it, as the local stack starts it), then left idle;
VmRSS (and the peak, VmHWM) is read from /proc/<pid>/status. Baselines in the same run:
``bench.bare_service`` (grpc.aio + health + an asyncpg pool, no project code) and a bare Python
interpreter.
"""

from __future__ import annotations

import asyncio
import contextlib

import asyncpg

from bench.common import (
    BenchEnv,
    Target,
    figure,
    proc_status_kb,
    reset_topic,
    spawn_module,
    spawn_service,
)
from deploy.local.services import SERVICES, ServiceProcess, gateway_env, new_session_key
from deploy.local.stack import create_database, drop_database, free_port
from libs.common.kafka import events_topic

TARGET_MB = 150.0


def _memory(pid: int) -> dict[str, float]:
    return {
        "rss_mb": round(proc_status_kb(pid, "VmRSS") / 1024, 1),
        "peak_rss_mb": round(proc_status_kb(pid, "VmHWM") / 1024, 1),
    }


def _gateway_env(env: BenchEnv, running: dict[str, ServiceProcess]) -> dict[str, str]:
    ports = {name: {"grpc_port": svc.port} for name, svc in running.items()}
    return gateway_env(env.keys, new_session_key(), free_port(), ports)


async def run(env: BenchEnv, idle_s: float = 10.0) -> dict[str, object]:
    await reset_topic(env.endpoints.kafka_bootstrap, events_topic("orders"))
    databases = {name: f"jzbench_mem_{name}" for name in [*SERVICES, "bare"]}
    running: dict[str, ServiceProcess] = {}
    ready_s: dict[str, float] = {}
    try:
        for db in databases.values():
            await drop_database(env.endpoints, db)  # left over by an interrupted run
            await create_database(env.endpoints, db)
        for name in SERVICES:
            extra = _gateway_env(env, running) if name == "gateway" else None
            running[name] = spawn_service(env, name, databases[name], extra)
            ready_s[name] = round(await running[name].wait_serving(), 2)
        bare = spawn_module(env, "bench.bare_service", databases["bare"])
        running["bare_service"] = bare
        await bare.wait_serving(timeout=60)
        interpreter = spawn_module(
            env, "interpreter", databases["bare"], ["-c", "import time; time.sleep(600)"]
        )
        running["python_interpreter"] = interpreter
        await asyncio.sleep(idle_s)
        measured = {name: _memory(svc.pid) for name, svc in running.items()}
    finally:
        for svc in running.values():
            await asyncio.to_thread(svc.stop)
        for db in databases.values():
            with contextlib.suppress(asyncpg.PostgresError, OSError):
                await drop_database(env.endpoints, db)
    services = {name: {**measured[name], "start_to_serving_s": ready_s[name]} for name in SERVICES}
    base = measured["bare_service"]["rss_mb"]
    for entry in services.values():
        entry["over_bare_service_mb"] = round(entry["rss_mb"] - base, 1)
    return {
        "idle_s": idle_s,
        "services": services,
        "baseline": {
            "bare_service": measured["bare_service"],
            "python_interpreter": measured["python_interpreter"],
        },
        "figures": [
            figure(f"idle RSS: {name}", "MB", entry["rss_mb"], base, Target(at_most=TARGET_MB))
            for name, entry in services.items()
        ],
    }
