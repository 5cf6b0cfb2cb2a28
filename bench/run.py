"""Run the benchmarks on a stack of their own, write the JSON result, print the table.

    make bench                                    # everything (about 25 minutes)
    make bench ARGS=--quick                       # shorter runs, to check that it works
    .venv/bin/python -m bench.run --only orders   # one: memory, orders, relay, credit, rebuild,
                                                  # propagation, eligibility, day or matching

The stack is ``.stack/bench`` (Kafka + PostgreSQL, see docs/local-stack.md); it is started, and
stopped at the end whatever happens; matching runs in-process first and needs no stack. Every figure has
a baseline measured in the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import math
import subprocess
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import (
    beijing_day,
    credit_pipeline,
    credit_propagation,
    credit_rebuild,
    eligibility_events,
    idle_memory,
    matching,
    orders_create,
    relay_drain,
)
from bench.common import BENCH_HOME, RESULTS_DIR, BenchEnv, drop_leftover_databases, machine_info
from deploy.local.services import SERVICES
from deploy.local.stack import ROOT, LocalStack

BENCHMARKS = (
    "memory",
    "orders",
    "relay",
    "credit",
    "rebuild",
    "propagation",
    "eligibility",
    "day",
    "matching",
)
IN_PROCESS = ("matching",)  # benchmarks that need no stack


# option: (full run, --quick); an option given on the command line wins over both.
SIZES: dict[str, tuple[float, float]] = {
    "duration": (15.0, 4.0),
    "diagnostics": (10.0, 3.0),
    "events": (40_000, 5_000),
    "aggregates": (4_000, 1_000),
    "idle": (10.0, 3.0),
    "workers": (100_000, 20_000),
    "requests": (2_000, 500),
    "baseline_requests": (50, 20),
    "updates": (20_000, 5_000),
    "ledger_entries": (1_000_000, 100_000),
    "outcomes": (4_000, 400),
    "watch_every": (20, 2),
    "eligibility_workers": (20_000, 5_000),
    "eligibility_updates": (50_000, 10_000),
    "eligibility_runs": (3, 2),
    "day_orders": (3_000, 1_500),
    "day_window": (20.0, 5.0),
    "day_ramp_seconds": (20.0, 8.0),
    "day_ramp_top": (320.0, 80.0),
    "day_probes": (100, 10),
}
INTEGER_SIZES = (
    "events",
    "aggregates",
    "workers",
    "requests",
    "baseline_requests",
    "updates",
    "ledger_entries",
    "outcomes",
    "watch_every",
    "eligibility_workers",
    "eligibility_updates",
    "eligibility_runs",
    "day_orders",
    "day_probes",
)


def _args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n\n")[0])
    p.add_argument("--only", action="append", choices=BENCHMARKS, help="run only this benchmark (repeatable)")
    p.add_argument("--quick", action="store_true", help="short runs: a smoke test, not figures to publish")
    p.add_argument("--concurrency", type=int, default=64, help="CreateOrder calls in flight (64)")
    p.add_argument(
        "--p99-concurrency", type=int, default=16, help="CreateOrder calls in flight for the p99 target (16)"
    )
    p.add_argument("--duration", type=float, help="CreateOrder measured seconds per run (15; quick 4)")
    p.add_argument(
        "--diagnostics",
        type=float,
        help="seconds per CreateOrder diagnostic run, 0 skips all diagnostic runs (10; quick 3)",
    )
    p.add_argument("--events", type=int, help="events for the credit pipeline (40000; quick 5000)")
    p.add_argument(
        "--aggregates",
        type=int,
        help="aggregates of 10 events each in the relay's backlog (4000; quick 1000)",
    )
    p.add_argument("--idle", type=float, help="idle seconds before reading RSS (10; quick 3)")
    p.add_argument("--workers", type=int, help="workers in the matching index (100000; quick 20000)")
    p.add_argument("--requests", type=int, help="match requests timed on the index (2000; quick 500)")
    p.add_argument(
        "--baseline-requests", type=int, help="of those, timed on the linear scan too (50; quick 20)"
    )
    p.add_argument("--updates", type=int, help="mixed colour/credit/load index updates (20000; quick 5000)")
    p.add_argument(
        "--ledger-entries",
        type=int,
        help="ledger entries for the credit rebuild, ten per worker up to 100,000 (1000000; quick 100000)",
    )
    p.add_argument(
        "--outcomes",
        type=int,
        help="complaint outcomes for the propagation benchmark (2000; quick 400)",
    )
    p.add_argument(
        "--outcome-rate",
        type=float,
        default=200.0,
        help="outcomes per second offered, open loop (200: the target's rate)",
    )
    p.add_argument(
        "--watch-every",
        type=int,
        help="of those, every N-th watched until level and card show it (4; quick 2)",
    )
    p.add_argument(
        "--eligibility-workers",
        type=int,
        help="workers loaded through events before the eligibility bursts (20000; quick 5000)",
    )
    p.add_argument(
        "--eligibility-updates",
        type=int,
        help="card/credit/availability events per eligibility burst (50000; quick 10000)",
    )
    p.add_argument("--eligibility-runs", type=int, help="eligibility bursts, each timed (3; quick 2)")
    p.add_argument("--day-orders", type=int, help="orders of the generated Beijing day (3000; quick 1500)")
    p.add_argument(
        "--day-window", type=float, help="minutes of the day's busiest window replayed at 10x (20; quick 5)"
    )
    p.add_argument(
        "--day-ramp-seconds",
        type=float,
        help="wall seconds of each ramp pass, at most the window (20; quick 8)",
    )
    p.add_argument(
        "--day-ramp-top",
        type=float,
        help="the ramp's last compression: 20x, 40x, ... up to it (320; quick 80)",
    )
    p.add_argument(
        "--day-probes", type=int, help="severe-complaint outcomes watched during the 10x pass (100; quick 10)"
    )
    p.add_argument(
        "--output", type=Path, help="JSON result file (bench/results/latest.json; quick.tmp with --quick)"
    )
    args = p.parse_args(argv)
    for name, (full, quick) in SIZES.items():
        if getattr(args, name) is None:
            value = quick if args.quick else full
            setattr(args, name, int(value) if name in INTEGER_SIZES else value)
    if args.output is None:
        # --quick figures are not for publishing: git ignores bench/results/*.tmp
        args.output = RESULTS_DIR / ("quick.tmp" if args.quick else "latest.json")
    return args


async def _run(env: BenchEnv, args: argparse.Namespace) -> dict[str, Any]:
    selected = args.only or list(BENCHMARKS)
    dropped = await drop_leftover_databases(env.endpoints)
    if dropped:
        print(f"dropped {len(dropped)} scratch databases left by an interrupted run")
    results: dict[str, Any] = {}
    if "memory" in selected:
        print(f"idle memory: {len(SERVICES)} services + baselines ...", flush=True)
        results["idle_memory"] = await idle_memory.run(env, args.idle)
    if "orders" in selected:
        print("CreateOrder: bare gRPC server, service, bare gRPC server again, diagnostics ...", flush=True)
        results["create_order"] = await orders_create.run(
            env,
            args.concurrency,
            args.p99_concurrency,
            duration_s=args.duration,
            diagnostics_s=args.diagnostics,
        )
    if "relay" in selected:
        print(f"relay: a backlog of {args.aggregates} aggregates x 10 events ...", flush=True)
        results["relay_drain"] = await relay_drain.run(env, args.aggregates)
    if "credit" in selected:
        print(f"credit: {args.events} events; baseline, service, baseline again, in-process ...", flush=True)
        results["credit_pipeline"] = await credit_pipeline.run(
            env, args.events, in_process=args.diagnostics > 0
        )
    if "rebuild" in selected:
        print(
            f"credit rebuild: {args.ledger_entries} ledger entries; baseline, rebuilds, baseline ...",
            flush=True,
        )
        results["credit_rebuild"] = await credit_rebuild.run(env, args.ledger_entries)
    if "propagation" in selected:
        print(
            f"credit propagation: {args.outcomes} outcomes at {args.outcome_rate:g}/s; set-up, baselines,"
            " timed ...",
            flush=True,
        )
        results["credit_propagation"] = await credit_propagation.run(
            env, args.outcomes, args.outcome_rate, args.watch_every
        )
    if "eligibility" in selected:
        print(
            f"eligibility from events: {args.eligibility_workers} workers loaded, then"
            f" {args.eligibility_runs} bursts of {args.eligibility_updates} events; baseline after each ...",
            flush=True,
        )
        results["eligibility_events"] = await eligibility_events.run(
            env, args.eligibility_workers, args.eligibility_updates, args.eligibility_runs
        )
    if "day" in selected:
        ramp = tuple(20.0 * 2**k for k in range(12) if 20.0 * 2**k <= args.day_ramp_top)
        print(
            f"a Beijing day: {args.day_orders} orders, the busiest {args.day_window:g} min at 10x, then"
            f" {', '.join(f'{x:g}x' for x in ramp)}; each pass also against the bare gRPC server ...",
            flush=True,
        )
        results["beijing_day"] = await beijing_day.run(
            env,
            args.day_orders,
            args.day_window,
            ramp,
            ramp_seconds=args.day_ramp_seconds,
            probes=args.day_probes,
        )
    return results


def _run_in_process(args: argparse.Namespace) -> dict[str, Any]:
    """The benchmarks that need no stack, run before it starts so nothing competes with them."""
    if "matching" not in (args.only or BENCHMARKS):
        return {}
    print(
        f"matching: {args.workers} workers, {args.requests} requests, index and linear scan ...", flush=True
    )
    return {"matching": matching.run(args.workers, args.requests, args.baseline_requests, args.updates)}


def _git_commit() -> str:
    result = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=False
    )
    return result.stdout.strip()


def _fmt(value: Any, digits: int = 0) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "NO"
    if isinstance(value, int | float):
        return f"{value:,.{digits}f}"
    return str(value)


# Digits shown per unit; the JSON keeps what was measured.
DIGITS = {"calls/s": 0, "events/s": 0, "updates/s": 0, "ms": 1, "CPU ms": 3, "MB": 1}
# How the diagnostic table names each benchmark's runs.
RUN_PREFIX = {
    "create_order": "CreateOrder ",
    "credit_pipeline": "credit ",
    "credit_rebuild": "credit ",
    "credit_propagation": "propagation: ",
    "eligibility_events": "eligibility: ",
    "beijing_day": "day: ",
}


def table_rows(results: Mapping[str, Any]) -> list[tuple[str, str, str, str, str, str]]:
    """(figure, measured, baseline, ratio, target, met) for each headline figure."""
    rows: list[tuple[str, str, str, str, str, str]] = []
    for result in results.values():
        for f in result.get("figures", []):
            unit, digits = f["unit"], DIGITS.get(f["unit"], 0)
            rows.append(
                (
                    f["figure"] if unit == "yes/no" else f"{f['figure']} ({unit})",
                    _fmt(f["measured"], digits),
                    _fmt(f.get("baseline"), digits),
                    _fmt(f.get("ratio"), 2),
                    f.get("target_text", ""),
                    _fmt(f["meets"]) if "meets" in f else "",
                )
            )
    return rows


def diagnostic_rows(results: Mapping[str, Any]) -> list[tuple[str, str, str, str, str]]:
    """(run, rate, p50 ms, p99 ms, CPU ms per unit of work) for every run, baselines included."""
    rows: list[tuple[str, str, str, str, str]] = []
    for name, result in results.items():
        for run in result.get("runs", []):
            m = run.get("load", run)
            rate = m.get("calls_per_s", m.get("events_per_s"))
            cpu = m.get("cpu_ms_per_call", m.get("cpu_ms_per_event"))
            rows.append(
                (
                    RUN_PREFIX.get(name, "") + run["what"],
                    _fmt(rate),
                    _fmt(m.get("p50_ms"), 1),
                    _fmt(m.get("p99_ms"), 1),
                    _fmt(cpu, 3),
                )
            )
    return rows


def _print(rows: list[tuple[str, ...]]) -> None:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for n, row in enumerate(rows):
        cells = [
            c.rjust(w) if 0 < i < 4 or (i == 4 and len(widths) == 5) else c.ljust(w)
            for i, (c, w) in enumerate(zip(row, widths, strict=True))
        ]
        print("  ".join(cells).rstrip())
        if n == 0:
            print("  ".join("-" * w for w in widths))


def print_table(results: Mapping[str, Any]) -> None:
    _print([("figure", "measured", "baseline", "ratio", "target", "met"), *table_rows(results)])
    diagnostics = diagnostic_rows(results)
    if diagnostics:
        print()
        _print([("run (same run)", "per s", "p50 ms", "p99 ms", "CPU ms/unit"), *diagnostics])


def main(argv: list[str] | None = None) -> None:
    args = _args(argv)
    logging.basicConfig(level=logging.WARNING)
    for noisy in ("aiokafka", "kafka"):
        logging.getLogger(noisy).setLevel(logging.CRITICAL)
    started = datetime.now(UTC)
    results = _run_in_process(args)
    if any(name not in IN_PROCESS for name in args.only or BENCHMARKS):
        stack = LocalStack(BENCH_HOME)
        try:
            env = BenchEnv(stack.up())
            results.update(asyncio.run(_run(env, args)))
        finally:
            stack.down()
    report = {
        "date": started.isoformat(timespec="seconds"),
        "duration_s": round((datetime.now(UTC) - started).total_seconds(), 1),
        "commit": _git_commit(),
        "quick": args.quick,
        "machine": machine_info(),
        "note": "client, services, Kafka and PostgreSQL share this machine's cores",
        "results": results,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.output.with_name(args.output.name + ".tmp")
    tmp.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    tmp.replace(args.output)
    print()
    print_table(results)
    print(f"\nwritten: {args.output}")


if __name__ == "__main__":
    main()
