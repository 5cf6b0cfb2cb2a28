"""Benchmark: the matching index kept up to date from events, end to end, in the orders process.

The path measured is the one the service runs: workers' and credit's CloudEvents on
``jiazheng.workers.events.v1`` and ``jiazheng.credit.events.v1`` → orders' ingest loop
(``libs.common.ingest.run_ingest``, ``IdempotentConsumer`` + ``services.orders.handlers.EFFECTS``:
an inbox row and an upsert of the worker's ``worker_eligibility`` row with a new revision, one unit
of work per poll) → ``EligibilityIndex.catch_up`` every ``JZ_ELIGIBILITY_REFRESH_S`` (0.2 s)
reading the rows changed since its revision into the ``MatchingIndex``.

The orders process is ``python -m bench.observed_orders``: the service's own composition root
(``services.orders.app.build`` under ``run_service``) with the consumer and the index subclassed
only to note when each poll committed and when each catch-up ran (see that module). On a fresh
database and freshly recreated topics:

1. load: ``workers`` workers' WorkerRegistered, AvailabilityChanged, CardStatusChanged (GREEN) and
   CreditLevelChanged (B) are produced, then the process starts and applies them (untimed);
2. ``runs`` times: a burst of ``updates`` events on random workers (seeded), 40 % CardStatusChanged,
   40 % CreditLevelChanged, 20 % AvailabilityChanged, produced with the services' producer
   settings (``idempotent_producer``). **updates/s** = events / (first send → the end of the
   catch-up that brought the last of them into the index). **Latency** of an event: its send →
   the end of the first catch-up that started after its poll committed (an upper bound by the
   few milliseconds between a commit and the next catch-up's query);
3. **baseline**, after each burst: a bare aiokafka consumer (no group) reading the same burst's
   records from the same partitions, nothing else: the transport's ceiling for this machine;
4. the index's card colour, credit level and weekly slots of every worker must equal the last
   event of each kind produced for them, and the index must hold exactly ``workers`` workers.

Bookings change eligibility through orders' own use cases (``touch``), not through events, so no
booking is in the mix. Target: >= 5,000 updates/s (issue 7).
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import json
import os
import random
import signal
import statistics
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from bench.common import (
    BENCH_HOME,
    BenchEnv,
    CpuWindow,
    ServiceProcess,
    Target,
    figure,
    percentile_ms,
    process_cpu_s,
    reset_topic,
    serving,
)
from bench.observed_orders import worker_id
from deploy.local.services import api_keys_setting
from deploy.local.stack import free_port, scratch_database
from jiazheng.credit.events.v1 import events_pb2 as credit_events
from jiazheng.workers.events.v1 import events_pb2 as worker_events
from jiazheng.workers.v1 import workers_pb2 as workers_pb
from libs.common.events import EventEnvelope, new_event
from libs.common.kafka import events_topic, idempotent_producer
from libs.common.settings import ServiceSettings
from tests.integration.kafka_tools import end_offsets

WORKERS_TOPIC, CREDIT_TOPIC = events_topic("workers"), events_topic("credit")
TARGET_RATE = 5_000.0
SEED = 20_261_130
DISTRICTS = ("110101", "110102", "110105", "110106", "110108", "110111", "110112", "110114", "110115")
COLOURS = {"GREEN": 70, "YELLOW": 20, "RED": 10}
LEVELS = {"A": 25, "B": 40, "C": 25, "D": 10}
SCHEDULES = (  # weekly slots: (days, start minute, end minute)
    (range(1, 6), 8 * 60, 18 * 60),
    (range(1, 8), 8 * 60, 20 * 60),
    (range(1, 8), 0, 24 * 60),
    (range(6, 8), 9 * 60, 21 * 60),
)
MIX = {"card": 40, "credit": 40, "availability": 20}
YIELD_EVERY = 100  # sends between two yields to the loop, so the producer streams as it goes


@dataclass
class Expected:
    """What the index must show for each worker after every event produced so far."""

    colour: dict[str, str] = field(default_factory=dict)
    credit: dict[str, str] = field(default_factory=dict)
    slots: dict[str, list[list[int]]] = field(default_factory=dict)


@dataclass(frozen=True)
class Outgoing:
    topic: str
    event: EventEnvelope


def _worker_event(message: Any, worker: str) -> EventEnvelope:
    return new_event(message, source="/jiazheng/workers", subject=f"workers/{worker}")


def _card(worker: str, colour: str, expected: Expected) -> Outgoing:
    expected.colour[worker] = colour.lower()
    message = worker_events.CardStatusChanged(
        worker_id=worker, colour=workers_pb.CardColour.Value(f"CARD_COLOUR_{colour}")
    )
    return Outgoing(WORKERS_TOPIC, _worker_event(message, worker))


def _credit(worker: str, level: str, expected: Expected) -> Outgoing:
    expected.credit[worker] = level
    message = credit_events.CreditLevelChanged(
        worker_id=worker, level=credit_events.CreditLevel.Value(f"CREDIT_LEVEL_{level}"), score=600
    )
    event = new_event(message, source="/jiazheng/credit", subject=f"workers/{worker}")
    return Outgoing(CREDIT_TOPIC, event)


def _availability(worker: str, schedule: int, expected: Expected) -> Outgoing:
    days, start, end = SCHEDULES[schedule]
    slots = [workers_pb.WeeklySlot(day_of_week=d, start_minute=start, end_minute=end) for d in days]
    expected.slots[worker] = sorted([d, start, end] for d in days)
    message = worker_events.AvailabilityChanged(worker_id=worker, weekly_slots=slots)
    return Outgoing(WORKERS_TOPIC, _worker_event(message, worker))


def load_events(workers: int, expected: Expected) -> list[Outgoing]:
    """Each worker registered (a housekeeper in one of the districts), available on weekdays, GREEN, B."""
    out = []
    for n in range(workers):
        w = worker_id(n)
        registered = worker_events.WorkerRegistered(
            worker_id=w,
            company_id="bench-company",
            service_districts=[DISTRICTS[n % len(DISTRICTS)]],
            trades=[workers_pb.TRADE_HOUSEKEEPER],
        )
        out.append(Outgoing(WORKERS_TOPIC, _worker_event(registered, w)))
        out += [_availability(w, 0, expected), _card(w, "GREEN", expected), _credit(w, "B", expected)]
    return out


def burst_events(rng: random.Random, workers: int, count: int, expected: Expected) -> list[Outgoing]:
    out = []
    for _ in range(count):
        w = worker_id(rng.randrange(workers))
        kind = rng.choices(list(MIX), weights=list(MIX.values()))[0]
        if kind == "card":
            out.append(_card(w, rng.choices(list(COLOURS), weights=list(COLOURS.values()))[0], expected))
        elif kind == "credit":
            out.append(_credit(w, rng.choices(list(LEVELS), weights=list(LEVELS.values()))[0], expected))
        else:
            out.append(_availability(w, rng.randrange(len(SCHEDULES)), expected))
    return out


async def produce(producer: AIOKafkaProducer, events: Sequence[Outgoing]) -> dict[str, float]:
    """Send every event, keyed by worker as the services key them; each event's send time."""
    sent: dict[str, float] = {}
    pending = []
    for i, out in enumerate(events):
        e = out.event
        sent[e.id] = time.monotonic()
        pending.append(await producer.send(out.topic, value=e.data, key=e.key, headers=e.kafka_headers()))
        if i % YIELD_EVERY == YIELD_EVERY - 1:
            await asyncio.sleep(0)
    await asyncio.gather(*pending)
    return sent


# -- the orders process ----------------------------------------------------------------------


@dataclass
class Orders:
    """The observed orders process and the files it reports through."""

    svc: ServiceProcess
    status: Path
    dump: Path
    dsn: str

    def state(self) -> dict[str, Any]:
        try:
            data: dict[str, Any] = json.loads(self.status.read_text())
        except (OSError, ValueError):  # not written yet
            return {"reflected": 0, "at": 0.0}
        return data

    async def reflected(self, events: int, timeout_s: float) -> dict[str, Any]:
        """Poll until ``events`` events are in the index; the status that showed it."""
        deadline = time.monotonic() + timeout_s
        while (state := self.state())["reflected"] < events:
            if self.svc.proc.poll() is not None:
                raise RuntimeError(f"orders exited (code {self.svc.proc.returncode}); see {self.svc.log}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"{state['reflected']} of {events} events in the index after {timeout_s}s")
            await asyncio.sleep(0.01)
        return state

    async def observations(self) -> dict[str, Any]:
        self.dump.unlink(missing_ok=True)
        os.kill(self.svc.pid, signal.SIGUSR1)
        for _ in range(600):
            if self.dump.exists():
                data: dict[str, Any] = json.loads(self.dump.read_text())
                return data
            await asyncio.sleep(0.05)
        raise RuntimeError("orders wrote no observations within 30 s")


def spawn_orders(env: BenchEnv, database: str, workers: int) -> Orders:
    run = uuid.uuid4().hex[:8]
    status, dump = BENCH_HOME / f"eligibility-{run}.status", BENCH_HOME / f"eligibility-{run}.dump"
    report = {
        "BENCH_ELIGIBILITY_STATUS": str(status),
        "BENCH_ELIGIBILITY_DUMP": str(dump),
        "BENCH_ELIGIBILITY_WORKERS": str(workers),
    }
    svc = ServiceProcess.spawn(
        "orders",
        env.endpoints,
        api_keys_setting(env.keys),
        BENCH_HOME,
        database=database,
        metrics_port=free_port(),
        extra={"JZ_RELAY_POLL_INTERVAL_S": "0.2", **env.pii_keys, **report},
        command=["-m", "bench.observed_orders"],
    )
    return Orders(svc, status, dump, env.endpoints.dsn(database))


# -- one burst, and its baseline ---------------------------------------------------------------


@dataclass
class Burst:
    what: str
    events: int
    elapsed_s: float
    produce_s: float
    cpu: dict[str, float]
    sent: dict[str, float]
    latencies_s: list[float] = field(default_factory=list)

    def summary(self) -> dict[str, object]:
        lat = sorted(self.latencies_s)
        cpu_s = self.cpu.get("server_process_cpu_s")
        return {
            "what": self.what,
            "events": self.events,
            "elapsed_s": round(self.elapsed_s, 3),
            "events_per_s": round(self.events / self.elapsed_s, 1),
            "produce_s": round(self.produce_s, 3),
            "p50_ms": percentile_ms(lat, 50),
            "p99_ms": percentile_ms(lat, 99),
            "max_ms": percentile_ms(lat, 100),
            "cpu_ms_per_event": round(cpu_s * 1000 / self.events, 3) if cpu_s is not None else None,
            "postgres_cpu_ms_per_event": round(self.cpu["postgres_backends_cpu_s"] * 1000 / self.events, 3),
            "cpu": self.cpu,
        }


async def _backends_cpu_s(conn: asyncpg.Connection) -> float:
    """CPU seconds of the PostgreSQL backends serving the orders database (the pool's), but ``conn``'s."""
    pids = await conn.fetch(
        "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
    )
    total = 0.0
    for row in pids:
        with contextlib.suppress(OSError):  # a connection closed meanwhile
            total += process_cpu_s(row["pid"])
    return total


async def timed_burst(
    orders: Orders, producer: AIOKafkaProducer, events: list[Outgoing], total: int, what: str
) -> Burst:
    """Produce ``events`` and wait until the index holds all ``total`` events produced so far."""
    conn = await asyncpg.connect(orders.dsn)
    try:
        cpu = CpuWindow(orders.svc.pid)
        postgres_cpu = await _backends_cpu_s(conn)
        cpu.start()
        sent = await produce(producer, events)
        first = min(sent.values())
        produced = time.monotonic() - first
        state = await orders.reflected(total, timeout_s=max(120.0, len(events) / 50))
        cpu.stop()
        cpu.result["postgres_backends_cpu_s"] = round(await _backends_cpu_s(conn) - postgres_cpu, 3)
    finally:
        await conn.close()
    return Burst(what, len(events), state["at"] - first, produced, cpu.result, sent)


async def _offsets(bootstrap: str) -> dict[TopicPartition, int]:
    return {**await end_offsets(bootstrap, WORKERS_TOPIC), **await end_offsets(bootstrap, CREDIT_TOPIC)}


async def bare_read(
    bootstrap: str, start: dict[TopicPartition, int], end: dict[TopicPartition, int], timeout_s: float
) -> dict[str, object]:
    """Read the records between ``start`` and ``end`` with a bare consumer, nothing done with them."""
    count = sum(end[tp] - start[tp] for tp in end)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        consumer.assign(list(end))
        for tp, offset in start.items():
            consumer.seek(tp, offset)
        cpu = CpuWindow()
        cpu.start()
        began, read = time.monotonic(), 0
        while read < count and time.monotonic() - began < timeout_s:
            batches = await consumer.getmany(timeout_ms=200, max_records=2000)
            read += sum(len([m for m in ms if m.offset < end[tp]]) for tp, ms in batches.items())
        elapsed = time.monotonic() - began
        cpu.stop()
    finally:
        await consumer.stop()
    return {
        "what": "baseline: bare aiokafka read of the same records",
        "events": read,
        "elapsed_s": round(elapsed, 3),
        "events_per_s": round(read / elapsed, 1),
        "cpu_ms_per_event": round(cpu.result["bench_process_cpu_s"] * 1000 / max(read, 1), 3),
        "cpu": cpu.result,
    }


# -- reading the observations ------------------------------------------------------------------


def latencies(observed: dict[str, Any], bursts: list[Burst]) -> None:
    """Each burst event's send → the end of the first catch-up that started after its commit."""
    catch_ups = observed["catch_ups"]
    starts = [c[0] for c in catch_ups]
    sent_at = {eid: (b, t) for b in bursts for eid, t in b.sent.items()}
    for committed_at, ids in observed["commits"]:
        i = bisect.bisect_right(starts, committed_at)
        if i == len(catch_ups):
            continue  # not in the index (cannot happen once all were reflected)
        for eid in ids:
            if eid in sent_at:
                burst, t = sent_at[eid]
                burst.latencies_s.append(catch_ups[i][1] - t)


def index_matches(observed: dict[str, Any], expected: Expected, workers: int) -> dict[str, int]:
    """Workers whose colour, credit or slots in the index differ from the last event produced."""
    held = observed["workers"]
    wrong = {"missing": 0, "colour": 0, "credit": 0, "slots": 0}
    for n in range(workers):
        w = worker_id(n)
        if w not in held:
            wrong["missing"] += 1
            continue
        colour, credit, slots = held[w]
        wrong["colour"] += colour != expected.colour[w]
        wrong["credit"] += credit != expected.credit[w]
        wrong["slots"] += slots != expected.slots[w]
    wrong["index_size_minus_workers"] = observed["index_size"] - workers
    return wrong


# -- the benchmark ---------------------------------------------------------------------------


async def _measure(
    env: BenchEnv, orders: Orders, workers: int, updates: int, runs: int, expected: Expected
) -> dict[str, Any]:
    bootstrap = env.endpoints.kafka_bootstrap
    rng = random.Random(SEED)
    total = 4 * workers
    producer = idempotent_producer(ServiceSettings(kafka_bootstrap=bootstrap, service_name="bench"))
    await producer.start()
    bursts, baselines = [], []
    try:
        for k in range(runs):
            events = burst_events(rng, workers, updates, expected)
            total += len(events)
            before = await _offsets(bootstrap)
            bursts.append(await timed_burst(orders, producer, events, total, f"service, burst {k + 1}"))
            baselines.append(await bare_read(bootstrap, before, await _offsets(bootstrap), 120.0))
    finally:
        await producer.stop()
    observed = await orders.observations()
    latencies(observed, bursts)
    return {"bursts": bursts, "baselines": baselines, "wrong": index_matches(observed, expected, workers)}


async def _load(
    env: BenchEnv, database: str, workers: int, expected: Expected
) -> tuple[Orders, dict[str, Any]]:
    """Produce the workers' load, start orders, wait until the index holds it."""
    bootstrap = env.endpoints.kafka_bootstrap
    producer = idempotent_producer(ServiceSettings(kafka_bootstrap=bootstrap, service_name="bench"))
    await producer.start()
    try:
        events = load_events(workers, expected)
        t0 = time.monotonic()
        await produce(producer, events)
        produce_s = time.monotonic() - t0
    finally:
        await producer.stop()
    orders = spawn_orders(env, database, workers)
    return orders, {"events": len(events), "produce_s": round(produce_s, 2)}


def _figures(
    bursts: list[Burst], baselines: list[dict[str, Any]], wrong: dict[str, int]
) -> list[dict[str, Any]]:
    rates = [b.events / b.elapsed_s for b in bursts]
    base = statistics.median(float(b["events_per_s"]) for b in baselines)
    pooled = sorted(s for b in bursts for s in b.latencies_s)
    return [
        figure(
            "index updates/s from events, orders process (median of runs)",
            "updates/s",
            round(statistics.median(rates), 1),
            round(base, 1),
            Target(at_least=TARGET_RATE),
        ),
        figure("event → index latency p50, all runs", "ms", percentile_ms(pooled, 50)),
        figure("event → index latency p99, all runs", "ms", percentile_ms(pooled, 99)),
        figure(
            "index = the last event of each kind, every worker",
            "yes/no",
            not any(wrong.values()),
            target=Target(holds="colour, credit, slots as last produced; no worker missing or extra"),
        ),
    ]


async def run(env: BenchEnv, workers: int = 20_000, updates: int = 50_000, runs: int = 3) -> dict[str, Any]:
    bootstrap = env.endpoints.kafka_bootstrap
    for topic in (WORKERS_TOPIC, CREDIT_TOPIC):
        await reset_topic(bootstrap, topic)
    expected = Expected()
    async with scratch_database(env.endpoints, "jzbench_eligibility") as db:
        orders, load = await _load(env, db, workers, expected)
        try:
            async with serving(orders.svc):
                t0 = time.monotonic()
                state = await orders.reflected(load["events"], timeout_s=max(120.0, load["events"] / 50))
                load["serving_to_loaded_s"] = round(state["at"] - t0, 2)
                measured = await _measure(env, orders, workers, updates, runs, expected)
        finally:
            for path in (orders.status, orders.dump):
                path.unlink(missing_ok=True)
    bursts, baselines = measured["bursts"], measured["baselines"]
    runs_out: list[dict[str, Any]] = []
    for b, base in zip(bursts, baselines, strict=True):
        runs_out += [b.summary(), base]
    return {
        "workers": workers,
        "updates": updates,
        "load": load,
        "index_differences": measured["wrong"],
        "figures": _figures(bursts, baselines, measured["wrong"]),
        "runs": runs_out,
    }
