"""Run the benchmarks on a stack of their own, write the JSON result, print the table.

    .venv/bin/python -m bench.run                 # everything (about 5 minutes)
    .venv/bin/python -m bench.run --only orders   # one benchmark: orders, credit or memory
    .venv/bin/python -m bench.run --quick         # shorter runs, to check that it works

The stack is ``.stack/bench`` (Kafka + PostgreSQL, see docs/local-stack.md); it is started, and
stopped at the end whatever happens. Every figure has a baseline measured in the same run.
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

from bench import credit_pipeline, idle_memory, orders_create
from bench.common import BENCH_HOME, RESULTS_DIR, BenchEnv, drop_leftover_databases, machine_info
from deploy.local.stack import ROOT, LocalStack

BENCHMARKS = ("memory", "orders", "credit")


# option: (full run, --quick); an option given on the command line wins over both.
SIZES: dict[str, tuple[float, float]] = {
    "duration": (15.0, 4.0),
    "diagnostics": (10.0, 3.0),
    "events": (40_000, 5_000),
    "diagnostic_events": (10_000, 2_000),
}


def _args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n\n")[0])
    p.add_argument("--only", action="append", choices=BENCHMARKS, help="run only this benchmark (repeatable)")
    p.add_argument("--quick", action="store_true", help="short runs: a smoke test, not figures to publish")
    p.add_argument("--concurrency", type=int, default=64, help="CreateOrder calls in flight (64)")
    p.add_argument("--duration", type=float, help="CreateOrder measured seconds per run (15; quick 4)")
    p.add_argument(
        "--diagnostics",
        type=float,
        help="seconds per CreateOrder diagnostic run, 0 skips all diagnostics (10; quick 3)",
    )
    p.add_argument("--events", type=int, help="events for the credit pipeline (40000; quick 5000)")
    p.add_argument(
        "--diagnostic-events", type=int, help="events per credit diagnostic run (10000; quick 2000)"
    )
    p.add_argument("--idle", type=float, default=10.0, help="idle seconds before reading RSS (10)")
    p.add_argument(
        "--output", type=Path, help="JSON result file (bench/results/latest.json; quick.tmp with --quick)"
    )
    args = p.parse_args(argv)
    for name, (full, quick) in SIZES.items():
        if getattr(args, name) is None:
            value = quick if args.quick else full
            setattr(args, name, int(value) if name.endswith("events") else value)
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
        print("idle memory: five services + baselines ...", flush=True)
        results["idle_memory"] = await idle_memory.run(env, args.idle)
    if "orders" in selected:
        print("CreateOrder: baseline, relay drain, use case, service, diagnostics ...", flush=True)
        results["create_order"] = await orders_create.run(
            env, args.concurrency, duration_s=args.duration, diagnostics_s=args.diagnostics
        )
    if "credit" in selected:
        print(
            f"credit pipeline: {args.events} events; baseline, service, in-process consumer ...", flush=True
        )
        results["credit_pipeline"] = await credit_pipeline.run(
            env, args.events, diagnostic_events=args.diagnostic_events if args.diagnostics > 0 else 0
        )
    return results


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


def table_rows(results: Mapping[str, Any]) -> list[tuple[str, str, str, str, str, str]]:
    """(what, measured, baseline, ratio, target, met) for each headline figure."""
    rows: list[tuple[str, str, str, str, str, str]] = []
    order = results.get("create_order")
    if order:
        svc, base, meets = order["service"]["load"], order["baseline"], order["meets"]
        rows.append(
            (
                f"CreateOrder calls/s ({order['concurrency']} in flight)",
                _fmt(svc["calls_per_s"]),
                _fmt(order["baseline_calls_per_s_mean"]),
                _fmt(order["ratio_to_baseline"], 2),
                ">= 1,500 and >= 0.60 x",
                _fmt(meets["calls_per_s"] and meets["ratio_to_baseline"]),
            )
        )
        rows.append(("CreateOrder p50 ms", _fmt(svc["p50_ms"], 1), _fmt(base["p50_ms"], 1), "", "", ""))
        rows.append(
            (
                "CreateOrder p99 ms",
                _fmt(svc["p99_ms"], 1),
                _fmt(base["p99_ms"], 1),
                "",
                "<= 30",
                _fmt(meets["p99_ms"]),
            )
        )
        outbox = order["service"]["outbox"]
        rows.append(
            (
                "outbox: commit -> published p99 ms",
                _fmt(outbox["commit_to_published_p99_ms"], 1),
                "",
                "",
                "",
                "",
            )
        )
        rows.append(
            ("outbox relay drain events/s", _fmt(order["relay_drain"]["events_per_s"]), "", "", "", "")
        )
    credit = results.get("credit_pipeline")
    if credit:
        rows.append(
            (
                "credit events/s (one worker process)",
                _fmt(credit["service"]["events_per_s"]),
                _fmt(credit["baseline_events_per_s_mean"]),
                _fmt(credit["ratio_to_baseline"], 3),
                ">= 10,000 and >= 0.50 x",
                _fmt(credit["meets"]["events_per_s"] and credit["meets"]["ratio_to_baseline"]),
            )
        )
        rows.append(
            (
                "credit: each event applied once",
                _fmt(credit["each_event_applied_exactly_once"]),
                "",
                "",
                "ledger = inbox = events",
                _fmt(credit["each_event_applied_exactly_once"]),
            )
        )
    memory = results.get("idle_memory")
    if memory:
        bare = memory["baseline"]["bare_service"]["rss_mb"]
        for name, entry in memory["services"].items():
            rows.append(
                (
                    f"idle RSS MB: {name}",
                    _fmt(entry["rss_mb"], 1),
                    _fmt(bare, 1),
                    _fmt(entry["rss_mb"] / bare, 2) if bare else "-",
                    "<= 150",
                    _fmt(memory["meets"][name]),
                )
            )
    return rows


def diagnostic_rows(results: Mapping[str, Any]) -> list[tuple[str, str, str, str, str]]:
    """(what, rate, p50 ms, p99 ms, CPU ms per unit of work) for the runs that locate the costs."""
    rows: list[tuple[str, str, str, str, str]] = []
    order = results.get("create_order")
    if order:
        n = order["concurrency"]
        runs = [
            (f"CreateOrder baseline (bare asyncpg), {n} in flight", order["baseline"]),
            (f"CreateOrder service, {n} in flight", order["service"]["load"]),
            ("CreateOrder baseline again, after the service", order["baseline_after_service"]),
            *[
                (f"CreateOrder {name.replace('_', ' ')}", d["load"])
                for name, d in order["diagnostics"].items()
            ],
        ]
        for label, load in runs:
            rows.append(
                (
                    f"{label} (calls/s)",
                    _fmt(load["calls_per_s"]),
                    _fmt(load["p50_ms"], 1),
                    _fmt(load["p99_ms"], 1),
                    _fmt(load["cpu_ms_per_call"], 3),
                )
            )
    credit = results.get("credit_pipeline")
    if credit:
        runs = [
            ("credit baseline (batched per poll)", credit["baseline"]),
            ("credit service", credit["service"]),
            ("credit baseline again, after the service", credit["baseline_after_service"]),
            ("credit IdempotentConsumer in-process", credit["idempotent_consumer_in_process"]),
            *[(f"credit service, {name.replace('_', ' ')}", d) for name, d in credit["diagnostics"].items()],
        ]
        for label, run in runs:
            rows.append(
                (f"{label} (events/s)", _fmt(run["events_per_s"]), "", "", _fmt(run["cpu_ms_per_event"], 3))
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
        _print([("diagnostic (same run)", "rate", "p50 ms", "p99 ms", "CPU ms/unit"), *diagnostics])


def main(argv: list[str] | None = None) -> None:
    args = _args(argv)
    logging.basicConfig(level=logging.WARNING)
    for noisy in ("aiokafka", "kafka"):
        logging.getLogger(noisy).setLevel(logging.CRITICAL)
    stack = LocalStack(BENCH_HOME)
    started = datetime.now(UTC)
    try:
        env = BenchEnv(stack.up())
        results = asyncio.run(_run(env, args))
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
