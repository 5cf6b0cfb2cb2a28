"""Fault injection 4: durable timers under a restart storm; each deadline fires once in effect.

Two supervised complaints processes share one database, so that their timer workers race for
the same timers, and are SIGKILLed in turn, each once it has served again for a second, while
deadlines fall due by their clocks (JZ_CLOCK_OFFSET_S), never by waiting: 150 new cases'
first-response deadlines one after another, and 100 older cases, long past their first response,
reach their decision deadline (midnight) at once and go to mediation. Afterwards every deadline
fired once: one breach (and one escalation) per case on the topic, each case moved on by exactly
its deadlines, and each keeps only its next deadline as a timer, pending, neither due nor parked.
"""

from __future__ import annotations

import asyncio
import signal
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone

import asyncpg
import pytest

from deploy.local.services import stopped_after
from deploy.local.stack import Endpoints
from jiazheng.complaints.events.v1 import events_pb2 as ce
from jiazheng.complaints.v1 import complaints_pb2 as c
from libs.common.events import envelope_from_kafka
from libs.common.kafka import events_topic
from services.complaints.service_layer import DEADLINE_TIMER
from tests.integration.complaints_client import complaints_call, file_worker_complaint
from tests.integration.harness import RunningService, ServiceHarness, eventually
from tests.integration.kafka_tools import read_topic

pytestmark = pytest.mark.integration
BEIJING = timezone(timedelta(hours=8))
COMPANY = "companies/00000000-0000-4000-8000-00000000c001"  # the demo-company key's tenant
TOPIC = events_topic("complaints")
# Filed on Monday 2 March 2026, the decision is due when the 7th working day after it (Wednesday
# 11 March) ends: 00:00 on 12 March. The new cases are filed about 24 hours before that instant.
OLD_FILED = datetime(2026, 3, 2, 10, 0, tzinfo=BEIJING)
DECISION_DUE = datetime(2026, 3, 12, tzinfo=BEIJING)
OLD_CASES, NEW_CASES = 100, 150
# The new cases' first-response deadlines fall due a tenth of a second apart, from 6 s before the
# old cases' decision to 9 s after it.
NEW_FIRST_DUE, FILING_PACE_S = DECISION_DUE - timedelta(seconds=6), 0.1
LEAD_S = 8.0  # the storm's processes start this long before the first new deadline falls due
# Each process is killed once it has served (its timer worker firing) for a second, 1.5 s at
# least after the last kill: start-up takes seconds, and deadlines fall due meanwhile.
KILLS, SERVED_S, KILL_GAP_S = 6, 1.0, 1.5
Events = Counter[tuple[str, str]]  # (event type, deadline kind of a breach) → distinct events
NEW_EVENTS: Events = Counter({("CaseFiled", ""): 1, ("SlaBreached", "first_response"): 1})
OLD_EVENTS: Events = NEW_EVENTS + Counter(
    {("SlaBreached", "decision"): 1, ("CaseEscalatedToMediation", ""): 1}
)


def _offset_to(instant: datetime) -> float:
    return (instant - datetime.now(UTC)).total_seconds()


@dataclass(frozen=True)
class Progress:
    """Where the deadlines stood when a kill came: the processes' time, and the cases still
    waiting for theirs to fire."""

    at: datetime
    new_waiting: int  # first response still running
    old_waiting: int  # not yet in mediation


@pytest.fixture
async def db(endpoints: Endpoints, scratch_database: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await asyncpg.create_pool(endpoints.dsn(scratch_database), min_size=1, max_size=2)
    yield pool
    await pool.close()


async def _complaints(
    processes: AsyncExitStack,
    harness: ServiceHarness,
    database: str,
    env: dict[str, str],
    supervised: bool = False,
) -> RunningService:
    """A complaints process on ``database`` (not yet serving), stopped when ``processes`` closes."""
    svc = harness.spawn("complaints", database, 0, supervised, (), **env)
    return await processes.enter_async_context(stopped_after(svc))


async def _file(
    svc: RunningService, key: str, count: int, offset_s: float, first: datetime | None = None
) -> list[uuid.UUID]:
    """``count`` complaints filed one after another; with ``first``, the i-th when the process's
    clock (``offset_s`` off) reads ``first`` + i × ``FILING_PACE_S``, or as soon after as it can.
    Their ids."""
    ids = []
    for i in range(count):
        if first is not None:
            at = first + timedelta(seconds=i * FILING_PACE_S - offset_s)
            await asyncio.sleep(max(0.0, (at - datetime.now(UTC)).total_seconds()))
        name = await file_worker_complaint(svc, key, str(uuid.uuid4()), COMPANY)
        ids.append(uuid.UUID(name.removeprefix("cases/")))
    return ids


async def _case(svc: RunningService, key: str, case_id: uuid.UUID) -> c.Case:
    reply = await complaints_call(svc, key, "GetCase", c.GetCaseRequest(name=f"cases/{case_id}"))
    case: c.Case = reply.complaint_case
    return case


async def _progress(
    db: asyncpg.Pool, new: list[uuid.UUID], old: list[uuid.UUID], offset_s: float = 0.0
) -> Progress:
    row = await db.fetchrow(
        "SELECT count(*) FILTER (WHERE case_id = ANY($1) AND deadline_kind = 'first_response') AS new,"
        " count(*) FILTER (WHERE case_id = ANY($2) AND state <> 'in_mediation') AS old FROM cases",
        new,
        old,
    )
    return Progress(datetime.now(UTC) + timedelta(seconds=offset_s), row["new"], row["old"])


async def _storm(
    storm: list[RunningService],
    offset_s: float,
    db: asyncpg.Pool,
    new: list[uuid.UUID],
    old: list[uuid.UUID],
) -> list[Progress]:
    """SIGKILL the processes in turn, each once it has served again for ``SERVED_S``."""
    loop = asyncio.get_running_loop()
    seen: list[Progress] = []
    last = loop.time() - KILL_GAP_S
    for i in range(KILLS):
        svc = storm[i % len(storm)]
        await svc.wait_serving(timeout=60)
        await asyncio.sleep(max(SERVED_S, last + KILL_GAP_S - loop.time()))
        seen.append(await _progress(db, new, old, offset_s))
        svc.kill_child(signal.SIGKILL)
        last = loop.time()
    return seen


async def _settled(db: asyncpg.Pool, offset_s: float, last_due: datetime) -> bool:
    """Every deadline has passed on the processes' clock and none pending is still due (parked
    ones aside: the assertions find those), and what the firings published has left the outbox."""
    now = datetime.now(UTC) + timedelta(seconds=offset_s)
    due = await db.fetchval(
        "SELECT count(*) FROM timers WHERE fired_at IS NULL AND parked_at IS NULL AND due_at <= $1", now
    )
    unsent = await db.fetchval("SELECT count(*) FROM outbox WHERE published_at IS NULL")
    return (now > last_due, due, unsent) == (True, 0, 0)


async def _events_by_case(bootstrap: str, cases: set[str]) -> tuple[dict[str, Events], int]:
    """Each case's distinct events (by event id), and how many records were redeliveries: the
    relay delivers at least once, so the same event may come twice; a deadline fired twice would
    publish two events."""
    found: dict[str, Events] = {name: Counter() for name in cases}
    seen: set[str] = set()
    redelivered = 0
    for record in await read_topic(bootstrap, TOPIC):
        name = (record.key or b"").decode()
        if name not in found:
            continue
        event = envelope_from_kafka(record.headers, record.value)
        if event.id in seen:
            redelivered += 1
            continue
        seen.add(event.id)
        kind = event.type.rsplit(".", 1)[-1]
        deadline = event.parse(ce.SlaBreached).deadline_kind if kind == "SlaBreached" else ""
        found[name][(kind, deadline)] += 1
    return found, redelivered


async def _file_new_then_old(
    processes: AsyncExitStack, harness: ServiceHarness, database: str, env: dict[str, str]
) -> tuple[list[uuid.UUID], list[uuid.UUID]]:
    """The new cases, then the old ones, each by a process on its filing day. The new cases come
    first: their filer's clock, past the old cases' first response, would fire it. That filer
    starts 12 s before the first new case is to be filed."""
    platform = harness.key("demo-platform")
    new_filing = _offset_to(NEW_FIRST_DUE - timedelta(hours=24, seconds=12))
    old_filing = _offset_to(OLD_FILED)
    new_filer, old_filer = [
        await _complaints(processes, harness, database, {**env, "clock_offset_s": str(offset)})
        for offset in (new_filing, old_filing)
    ]
    await asyncio.gather(new_filer.wait_serving(), old_filer.wait_serving())
    new = await _file(new_filer, platform, NEW_CASES, new_filing, NEW_FIRST_DUE - timedelta(hours=24))
    await asyncio.to_thread(new_filer.stop)
    old = await _file(old_filer, platform, OLD_CASES, old_filing)
    await asyncio.to_thread(old_filer.stop)
    return new, old


def _assert_the_storm_came_as_they_fell_due(progress: list[Progress]) -> None:
    """The first kill before most new deadlines and the old cases' decision, the last after it."""
    kills = [
        f"{(p.at - DECISION_DUE).total_seconds():+.1f}s:{p.new_waiting}/{p.old_waiting}" for p in progress
    ]
    print(f"kills (to the decision: new/old cases waiting) {kills}")
    assert progress[0].new_waiting > NEW_CASES // 2, kills
    assert progress[-1].new_waiting < progress[0].new_waiting, kills
    assert progress[0].old_waiting == OLD_CASES, kills
    assert progress[0].at < DECISION_DUE < progress[-1].at, kills


def _assert_each_deadline_fired_once(
    events: dict[str, Events], new: list[uuid.UUID], old: list[uuid.UUID]
) -> None:
    """No deadline fired twice (two distinct events of one kind for one case), and each fired."""
    twice = {name: e for name, e in events.items() if any(n > 1 for n in e.values())}
    assert twice == {}
    expected = {f"cases/{i}": NEW_EVENTS for i in new} | {f"cases/{i}": OLD_EVENTS for i in old}
    assert {name: e for name, e in events.items() if e != expected[name]} == {}


def _assert_only_next_deadlines_pending(
    timers: list[asyncpg.Record], cases: list[uuid.UUID], now: datetime
) -> None:
    """One timer per case, on its next deadline: pending, not due, never failed, not parked."""
    assert Counter(t["key"] for t in timers) == Counter(str(i) for i in cases)
    assert {(t["kind"], t["deadline_kind"]) for t in timers} == {
        (DEADLINE_TIMER, "decision"),
        (DEADLINE_TIMER, "mediation"),
    }
    assert [t for t in timers if t["fired_at"] or t["parked_at"] or t["attempts"] or t["last_error"]] == []
    assert all(t["due_at"] == t["deadline_at"] > now for t in timers)


async def test_deadlines_falling_due_through_a_restart_storm_each_fire_once(
    endpoints: Endpoints,
    harness: ServiceHarness,
    scratch_database: str,
    orders_keys: dict[str, str],
    db: asyncpg.Pool,
) -> None:
    env = {k: v for k, v in orders_keys.items() if k.startswith("pii_")}
    env["timer_batch_size"] = "10"  # both workers take their share of a burst, in many transactions
    async with AsyncExitStack() as processes:
        new, old = await _file_new_then_old(processes, harness, scratch_database, env)
        first_due, last_due = await db.fetchrow(
            "SELECT min(deadline_at), max(deadline_at) FROM cases WHERE case_id = ANY($1)", new
        )
        offset = _offset_to(first_due - timedelta(seconds=LEAD_S))
        storm = [
            await _complaints(
                processes, harness, scratch_database, {**env, "clock_offset_s": str(offset)}, True
            )
            for _ in range(2)
        ]

        async def firing() -> bool:
            return (await _progress(db, new, old)).new_waiting < NEW_CASES

        await eventually(firing, within=60)  # the storm starts as the new deadlines fall due
        progress = await _storm(storm, offset, db, new, old)
        await asyncio.gather(*(s.wait_serving() for s in storm))
        await eventually(lambda: _settled(db, offset, max(last_due, DECISION_DUE)), within=120)
        events, redelivered = await _events_by_case(
            endpoints.kafka_bootstrap, {f"cases/{i}" for i in new + old}
        )
        timers = await db.fetch(
            "SELECT t.*, t.payload->>'kind' AS deadline_kind, c.deadline_at"
            " FROM timers t LEFT JOIN cases c ON c.case_id::text = t.key"
        )
        cases = [await _case(storm[0], harness.key("demo-platform"), i) for i in new + old]
        supervision = [s.supervision() for s in storm]
    print(f"records the relay delivered again: {redelivered}")

    # Each process was restarted after each of its kills, and never exited of itself; no handler
    # failed (rescheduling a case's timer clears its attempts; the log keeps them).
    assert [(s.restarts, s.last_exit) if s else None for s in supervision] == [
        (KILLS // 2, -signal.SIGKILL)
    ] * 2
    assert [line for s in storm for line in s.log.read_text().splitlines() if '"msg": "timer ' in line] == []
    _assert_each_deadline_fired_once(events, new, old)
    # As the API answers: the new cases wait for their decision, the old ones are in mediation.
    assert Counter((case.state, case.deadline_kind) for case in cases) == {
        (c.CASE_STATE_FILED, "decision"): NEW_CASES,
        (c.CASE_STATE_IN_MEDIATION, "mediation"): OLD_CASES,
    }
    _assert_only_next_deadlines_pending(timers, new + old, datetime.now(UTC) + timedelta(seconds=offset))
    _assert_the_storm_came_as_they_fell_due(progress)  # else the above proved less
