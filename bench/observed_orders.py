"""The orders service as it runs, with its eligibility path observed: ``python -m bench.observed_orders``.

Runs ``services.orders.app.build`` under ``libs.common.runtime.run_service`` exactly as
``python -m services.orders`` does (migrations, gRPC server, offer timers, relay, the ingest of
workers' and credit's events, and the index catching up every ``JZ_ELIGIBILITY_REFRESH_S``), with
two names of the composition root replaced by subclasses that only note times:

- ``idempotent_consumer``: the consumer ``libs.common.ingest.idempotent_consumer`` builds, noting
  when each poll's unit of work committed and the CloudEvents ids it held;
- ``EligibilityIndex``: notes when each catch-up that applied rows started and ended.

An event is in the index at the end of the first catch-up that started after its poll committed
(the feed reads every revision committed before its query, in revision order). After every such
catch-up the process replaces ``$BENCH_ELIGIBILITY_STATUS`` (JSON: events reflected, when, the
index's revision and size); on SIGUSR1 it writes ``$BENCH_ELIGIBILITY_DUMP``: every commit and
catch-up noted, and the card colour, credit level and weekly slots the index holds for each
worker ``bw000000`` .. of ``$BENCH_ELIGIBILITY_WORKERS``. Times are ``time.monotonic()``, one
clock for every process of the machine.
"""

from __future__ import annotations

import asyncio
import bisect
import json
import os
import signal
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import asyncpg
from aiokafka import AIOKafkaProducer

from libs.common import ingest
from libs.common.inbox import ConsumedRecord, Effect, IdempotentConsumer
from libs.common.runtime import run_service
from libs.common.settings import ServiceSettings
from services.orders import app
from services.orders.eligibility import EligibilityIndex


def worker_id(n: int) -> str:
    return f"bw{n:06}"


class Observer:
    """The commits and catch-ups noted in this process."""

    def __init__(self, status: Path, dump: Path, workers: int) -> None:
        self.status, self.dump_path, self.workers = status, dump, workers
        self.commit_times: list[float] = []
        self.committed: list[int] = []  # events committed up to and including each commit
        self.commit_ids: list[list[str]] = []
        self.catch_ups: list[tuple[float, float, int, int]] = []  # start, end, rows, revision
        self.reported = 0  # polls reflected in the last status written

    def commit(self, at: float, ids: list[str]) -> None:
        self.commit_times.append(at)
        self.committed.append((self.committed[-1] if self.committed else 0) + len(ids))
        self.commit_ids.append(ids)

    def unreported(self, started: float) -> bool:
        """Whether a poll noted before ``started`` is not in the status yet. Its rows may have
        been applied by a catch-up that started between its commit and the note (an empty
        catch-up now reports them)."""
        return bisect.bisect_left(self.commit_times, started) > self.reported

    def caught_up(self, started: float, ended: float, rows: int, index: EligibilityIndex) -> None:
        self.catch_ups.append((started, ended, rows, index.revision))
        before = bisect.bisect_left(self.commit_times, started)
        self.reported = before
        reflected = self.committed[before - 1] if before else 0
        state = {"reflected": reflected, "at": ended, "revision": index.revision, "workers": len(index)}
        tmp = self.status.with_name(self.status.name + ".tmp")
        tmp.write_text(json.dumps(state))
        tmp.replace(self.status)

    def dump(self, index: EligibilityIndex) -> None:
        workers: dict[str, object] = {}
        for n in range(self.workers):
            w = index.get(worker_id(n))
            if w is not None:
                slots = sorted([s.day_of_week, s.start_minute, s.end_minute] for s in w.weekly_slots)
                workers[w.worker_id] = [str(w.card_colour), w.credit_level and str(w.credit_level), slots]
        report = {
            "commits": [[t, ids] for t, ids in zip(self.commit_times, self.commit_ids, strict=True)],
            "catch_ups": self.catch_ups,
            "index_size": len(index),
            "workers": workers,
        }
        tmp = self.dump_path.with_name(self.dump_path.name + ".tmp")
        tmp.write_text(json.dumps(report))
        tmp.replace(self.dump_path)


OBSERVER = Observer(
    Path(os.environ.get("BENCH_ELIGIBILITY_STATUS", "eligibility-status.json")),
    Path(os.environ.get("BENCH_ELIGIBILITY_DUMP", "eligibility-dump.json")),
    int(os.environ.get("BENCH_ELIGIBILITY_WORKERS", "0")),
)


class ObservedIndex(EligibilityIndex):
    async def catch_up(self) -> int:
        started = time.monotonic()
        applied = await super().catch_up()
        if applied or OBSERVER.unreported(started):
            OBSERVER.caught_up(started, time.monotonic(), applied, self)
        return applied

    async def run(self, interval_s: float) -> None:
        asyncio.get_running_loop().add_signal_handler(signal.SIGUSR1, OBSERVER.dump, self)
        await super().run(interval_s)


class ObservedConsumer(IdempotentConsumer[Any]):
    async def handle_batch(self, records: Sequence[ConsumedRecord]) -> list[str]:
        outcomes = await super().handle_batch(records)
        OBSERVER.commit(time.monotonic(), [_event_id(r.headers) for r in records])
        return outcomes


def _event_id(headers: Sequence[tuple[str, bytes]]) -> str:
    return next((v.decode() for k, v in headers if k == "ce_id"), "")


def observed_consumer(
    name: str,
    pool: asyncpg.Pool,
    uow_factory: Callable[[], Any],
    effects: Mapping[str, Effect[Any]],
    dlq_producer: AIOKafkaProducer,
    settings: ServiceSettings,
) -> IdempotentConsumer[Any]:
    """The consumer the service builds, as an ``ObservedConsumer`` (same state, same settings)."""
    built = ingest.idempotent_consumer(name, pool, uow_factory, effects, dlq_producer, settings)
    observed = ObservedConsumer.__new__(ObservedConsumer)
    observed.__dict__.update(built.__dict__)
    return observed


def main() -> None:
    # build() looks both names up in its module when it runs
    vars(app).update(EligibilityIndex=ObservedIndex, idempotent_consumer=observed_consumer)
    run_service(app.OrdersSettings(), app.MIGRATIONS, app.build)


if __name__ == "__main__":
    main()
