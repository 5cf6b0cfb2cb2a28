"""Fault injection: a poison message on every topic every idempotent consumer reads.

The subscriptions are read from the services' composition roots (``CONSUMER``, ``SOURCES`` and the
effects of each ``services/<name>/app.py``), so a new subscription is covered without touching this
file (or fails here until ``VALID`` knows a valid event for it). On each consumed topic, in one
partition: a record without CloudEvents headers; for each consumer, an event of a type it applies
with an undecodable payload, then one whose effect fails while everything answers (its inbox row
is refused by a trigger of the test's: an effect's bug), then a valid one. Each consumer
dead-letters the first two at once (attempts 1: they would fail the same way every time), the
third after ``JZ_CONSUMER_MAX_ATTEMPTS`` attempts, and applies the valid one after them: the
partition keeps flowing. The regulator (faust) has no dead-letter topic: it logs what it cannot
project and goes on. Then the fix (the trigger no longer refuses): ``jiazheng dlq list`` shows the
dead letters, ``jiazheng dlq replay`` sends them again, and each is applied exactly once.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import importlib
import json
import os
import pkgutil
import re
import secrets
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from aiokafka import AIOKafkaProducer
from google.protobuf.message import Message

import services
from deploy.local.stack import Endpoints
from deploy.local.stack import scratch_database as new_scratch_database
from jiazheng.complaints.events.v1 import events_pb2 as complaint_events
from jiazheng.complaints.v1 import complaints_pb2
from jiazheng.credit.events.v1 import events_pb2 as credit_events
from jiazheng.insurance.events.v1 import events_pb2 as insurance_events
from jiazheng.orders.events.v1 import events_pb2 as order_events
from jiazheng.type.v1 import service_type_pb2
from jiazheng.workers.events.v1 import events_pb2 as worker_events
from jiazheng.workers.v1 import workers_pb2
from libs.common.events import EventEnvelope, event_type_of, new_event
from libs.common.kafka import dlq_topic, ensure_topics
from libs.common.settings import ServiceSettings
from services.regulator.domain.projection import pseudonymous_subject, regulator_event_id
from services.regulator.topics import REGULATOR_TOPICS
from tests.integration.clients import db_value
from tests.integration.harness import RunningService, ServiceHarness, eventually
from tests.integration.kafka_tools import Record, read_topic, start_group_at_end, wait_until_consumed

CLI = Path(sys.executable).with_name("jiazheng")
# The bound the test's consumers run with (JZ_CONSUMER_MAX_ATTEMPTS): not the default, so that
# the attempts on the dead letters are seen to be the setting's.
MAX_ATTEMPTS = 2
UNDECODABLE = b"\xff\xff\xff"  # a truncated varint: no protobuf message parses it
# Refuses the inbox row of the events listed in poisoned_events: the unit of work of such an
# event fails while the database answers, as an effect's bug would, until the row is deleted.
FAULT = """
CREATE TABLE poisoned_events (event_id text PRIMARY KEY);
CREATE FUNCTION refuse_poisoned() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM poisoned_events WHERE event_id = NEW.event_id) THEN
        RAISE EXCEPTION 'injected fault: event % refused', NEW.event_id;
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER refuse_poisoned BEFORE INSERT ON inbox FOR EACH ROW EXECUTE FUNCTION refuse_poisoned();
"""


@dataclass(frozen=True)
class Subscription:
    """An idempotent consumer as its service's composition root declares it."""

    service: str  # services/<service>
    consumer: str
    topics: tuple[str, ...]
    handled: frozenset[str]  # the event types it applies


def subscriptions() -> list[Subscription]:
    """Every service whose app module declares a consumer (CONSUMER, SOURCES, its effects)."""
    found = []
    for info in pkgutil.iter_modules(services.__path__):
        try:
            app: Any = importlib.import_module(f"services.{info.name}.app")
        except ModuleNotFoundError:
            continue
        if not hasattr(app, "CONSUMER") or not hasattr(app, "SOURCES"):
            continue
        # insurance builds its effects from its claim rules; only their event types matter here
        effects = app.EFFECTS if hasattr(app, "EFFECTS") else app.effects(None)
        found.append(Subscription(info.name, app.CONSUMER, tuple(app.SOURCES), frozenset(effects)))
    return found


# -- valid events: one of a type, valid for every consumer that applies it --------------------

Build = Callable[[str], tuple[Message, str]]  # a worker's id -> the event and its subject


def _id() -> str:
    return str(uuid.uuid4())


def _order_created(worker: str) -> tuple[Message, str]:
    order = _id()
    created = order_events.OrderCreated(
        order_id=order,
        platform_id="poison-platform",
        service_type=service_type_pb2.SERVICE_TYPE_CLEANING,
        district_code="110105",
        worker_id=worker,
        duration_hours=2,
    )
    created.create_time.GetCurrentTime()
    return created, f"orders/{order}"


def _order_assigned(worker: str) -> tuple[Message, str]:
    order = _id()
    assigned = order_events.OrderAssigned(
        order_id=order,
        offer_id=_id(),
        worker_id=worker,
        company_id=_id(),
        service_type=service_type_pb2.SERVICE_TYPE_CLEANING,
        district_code="110105",
        platform_id="poison-platform",
    )
    assigned.scheduled_start_time.GetCurrentTime()
    assigned.scheduled_end_time.FromSeconds(assigned.scheduled_start_time.seconds + 7200)
    return assigned, f"orders/{order}"


def _worker_registered(worker: str) -> tuple[Message, str]:
    registered = worker_events.WorkerRegistered(
        worker_id=worker,
        company_id=_id(),
        service_districts=["110105"],
        trades=[workers_pb2.TRADE_HOUSEKEEPER],
    )
    return registered, f"workers/{worker}"


def _credit_level_changed(worker: str) -> tuple[Message, str]:
    changed = credit_events.CreditLevelChanged(
        worker_id=worker, level=credit_events.CREDIT_LEVEL_B, previous_level=credit_events.CREDIT_LEVEL_A
    )
    return changed, f"workers/{worker}"


def _suspension_requested(worker: str) -> tuple[Message, str]:
    return complaint_events.WorkerSuspensionRequested(worker_id=worker, case_id=_id()), f"workers/{worker}"


def _case_resolved(worker: str) -> tuple[Message, str]:
    case = _id()
    outcome = complaints_pb2.Outcome(result=complaints_pb2.OUTCOME_RESULT_NOT_SUBSTANTIATED)
    return complaint_events.CaseResolved(case_id=case, worker_id=worker, outcome=outcome), f"cases/{case}"


def _claim_paid(worker: str) -> tuple[Message, str]:
    claim = _id()
    return insurance_events.ClaimPaid(claim_id=claim, worker_id=worker, paid_fen=100), f"claims/{claim}"


def _coverage_changed(worker: str) -> tuple[Message, str]:
    return insurance_events.WorkerCoverageChanged(worker_id=worker, covered=False), f"workers/{worker}"


# In order of preference: a consumer gets the first of these that it applies on the topic.
VALID: Mapping[str, Build] = {
    event_type_of(message): build
    for message, build in (
        (order_events.OrderCreated(), _order_created),
        (order_events.OrderAssigned(), _order_assigned),
        (worker_events.WorkerRegistered(), _worker_registered),
        (credit_events.CreditLevelChanged(), _credit_level_changed),
        (complaint_events.WorkerSuspensionRequested(), _suspension_requested),
        (complaint_events.CaseResolved(), _case_resolved),
        (insurance_events.ClaimPaid(), _claim_paid),
        (insurance_events.WorkerCoverageChanged(), _coverage_changed),
    )
}


def valid_type(sub: Subscription, topic: str) -> str:
    """The type of the valid events for ``sub`` on ``topic`` (a topic carries its package's types)."""
    for event_type in VALID:
        if event_type in sub.handled and event_type.startswith(f"{topic}."):
            return event_type
    pytest.fail(f"no valid event known for {sub.consumer} on {topic}: add one of its types to VALID")


# -- the scenario ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Pair:
    """What was produced on ``topic`` for ``consumer``."""

    consumer: str
    topic: str
    undecodable: EventEnvelope  # a type it applies, an undecodable payload
    failing: EventEnvelope  # valid, refused by the fault until it is fixed
    valid: EventEnvelope  # after the others, in the same partition


@dataclass(frozen=True)
class Scenario:
    prefix: str  # the test consumers' group prefix
    bootstrap: str
    subscriptions: list[Subscription]
    databases: dict[str, str]  # consumer -> its database's DSN
    processes: dict[str, RunningService]  # consumer (and "regulator") -> process
    headerless: dict[str, bytes]  # topic -> the key of its record without CloudEvents headers
    pairs: list[Pair]
    regulator_key: bytes

    def of(self, consumer: str) -> list[Pair]:
        return [p for p in self.pairs if p.consumer == consumer]


def envelope(event_type: str, worker: str) -> EventEnvelope:
    message, subject = VALID[event_type](worker)
    return new_event(message, source="/test/poison-messages", subject=subject)


async def produce(bootstrap: str, topic: str, key: bytes, records: Sequence[EventEnvelope | bytes]) -> None:
    """In this order, all with ``key`` (one partition); bytes are a value without headers."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True)
    await producer.start()
    try:
        for r in records:
            if isinstance(r, bytes):
                await producer.send_and_wait(topic, value=r, key=key)
            else:
                await producer.send_and_wait(topic, value=r.data, key=key, headers=r.kafka_headers())
    finally:
        await producer.stop()


@pytest.fixture(scope="module")
async def scenario(
    harness: ServiceHarness, endpoints: Endpoints, orders_keys: dict[str, str], workers_keys: dict[str, str]
) -> AsyncIterator[Scenario]:
    subs = subscriptions()
    assert {s.consumer for s in subs} >= {"orders", "workers", "credit", "complaints", "insurance"}
    bootstrap, prefix = endpoints.kafka_bootstrap, f"test-poison-{uuid.uuid4().hex[:8]}"
    topics = sorted({t for s in subs for t in s.topics})
    assert set(REGULATOR_TOPICS) <= set(topics), "a source topic of the regulator that no consumer reads"
    await ensure_topics(
        ServiceSettings(kafka_bootstrap=bootstrap), [*topics, *(dlq_topic(s.consumer) for s in subs)]
    )
    for s in subs:  # what earlier tests left on the topics is not this test's business
        for topic in s.topics:
            await start_group_at_end(bootstrap, f"{prefix}-{s.consumer}", topic)
    settings = {
        **workers_keys,
        **orders_keys,
        "consumer_group_prefix": prefix,
        "consumer_max_attempts": str(MAX_ATTEMPTS),
        "consumer_retry_backoff_s": "0.05",
        "relay_enabled": "false",  # what their effects publish stays in their scratch databases
    }
    regulator_key = secrets.token_bytes(32)
    async with contextlib.AsyncExitStack() as stack:
        databases = {
            s.consumer: await stack.enter_async_context(
                new_scratch_database(endpoints, f"jz_poison_{s.service}")
            )
            for s in subs
        }
        started = await asyncio.gather(
            *(harness.start(s.service, databases[s.consumer], 0, False, **settings) for s in subs),
            harness.start(
                "regulator",
                consumer_group_prefix=prefix,
                regulator_pseudonym_key=base64.b64encode(regulator_key).decode(),
            ),
        )
        for svc in started:  # stopped before their databases are dropped
            stack.callback(harness.stop, svc)
        dsns = {consumer: endpoints.dsn(db) for consumer, db in databases.items()}
        for dsn in dsns.values():
            conn = await asyncpg.connect(dsn)
            try:
                await conn.execute(FAULT)
            finally:
                await conn.close()

        worker, run = _id(), uuid.uuid4().hex[:8]
        pairs = []
        headerless: dict[str, bytes] = {}
        for topic in topics:
            readers = [s for s in subs if topic in s.topics]
            mine = []
            for s in readers:
                event_type = valid_type(s, topic)
                undecodable = dataclasses.replace(envelope(event_type, worker), data=UNDECODABLE)
                pair = Pair(
                    s.consumer, topic, undecodable, envelope(event_type, worker), envelope(event_type, worker)
                )
                await db_value(dsns[s.consumer], "INSERT INTO poisoned_events VALUES ($1)", pair.failing.id)
                mine.append(pair)
            headerless[topic] = f"poison/{run}/{topic}".encode()
            records: list[EventEnvelope | bytes] = [b"poison: no CloudEvents headers"]
            records += [p.undecodable for p in mine] + [p.failing for p in mine] + [p.valid for p in mine]
            await produce(bootstrap, topic, headerless[topic], records)
            pairs += mine
        processes = {s.consumer: svc for s, svc in zip(subs, started, strict=False)}
        processes["regulator"] = started[-1]
        yield Scenario(prefix, bootstrap, subs, dsns, processes, headerless, pairs, regulator_key)


def identity(record: Record) -> str:
    """What a dead letter is of: its event's id, or the key of a record without CloudEvents headers."""
    return _header(record, "ce_id") or f"key:{(record.key or b'').decode()}"


async def dead_letters(bootstrap: str, consumer: str, expected: set[str]) -> list[Record]:
    """The records of ``consumer``'s DLQ topic of the ``expected`` identities, once all are there."""

    async def found() -> list[Record]:
        records = [r for r in await read_topic(bootstrap, dlq_topic(consumer)) if identity(r) in expected]
        return records if {identity(r) for r in records} == expected else []

    return await eventually(found, within=90)


async def applied(dsn: str, consumer: str, event_ids: Iterable[str]) -> set[str]:
    """Those of ``event_ids`` in ``consumer``'s inbox: applied (the row commits with the effect)."""
    sql = "SELECT event_id FROM inbox WHERE consumer = $1 AND event_id = ANY($2)"
    return {r["event_id"] for r in await db_rows(dsn, sql, consumer, list(event_ids))}


async def db_rows(dsn: str, sql: str, *args: object) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(dsn)
    try:
        return list(await conn.fetch(sql, *args))
    finally:
        await conn.close()


def _header(record: Record, name: str) -> str:
    return record.headers.get(name, b"").decode()


# -- the tests ---------------------------------------------------------------------------------------


async def test_every_consumer_dead_letters_the_poison_on_every_topic_and_applies_what_follows(
    scenario: Scenario,
) -> None:
    covered = set()
    for sub in scenario.subscriptions:
        pairs = scenario.of(sub.consumer)
        topic_of = {f"key:{scenario.headerless[t].decode()}": t for t in sub.topics}
        pair_of = {p.undecodable.id: p for p in pairs} | {p.failing.id: p for p in pairs}

        # (another process of the same consumer in the session may have dead-lettered them too)
        for record in await dead_letters(scenario.bootstrap, sub.consumer, set(topic_of) | set(pair_of)):
            what = identity(record)
            error, attempts = _header(record, "dlq_error"), int(_header(record, "dlq_attempts"))
            assert _header(record, "dlq_consumer") == sub.consumer
            if what in topic_of:  # no CloudEvents headers: given up at once
                assert record.value == b"poison: no CloudEvents headers"
                assert _header(record, "dlq_original_topic") == topic_of[what]
                assert attempts == 1
                assert error.startswith("PermanentEventError: not a CloudEvent"), error
                continue
            pair = pair_of[what]
            assert _header(record, "dlq_original_topic") == pair.topic
            assert record.key == scenario.headerless[pair.topic]
            if what == pair.undecodable.id:  # would fail the same way every time: given up at once
                assert record.value == UNDECODABLE
                assert attempts == 1
                assert "undecodable payload" in error, error
            else:  # failed while everything answered: retried, up to the bound
                assert record.value == pair.failing.data
                assert attempts == MAX_ATTEMPTS
                assert error == f"RaiseError: injected fault: event {pair.failing.id} refused"
                logged = {
                    entry["attempt"]
                    for entry in log_entries(scenario.processes[sub.consumer].log)
                    if entry.get("msg") == "effect failed" and entry.get("event_id") == what
                }
                assert logged == set(range(1, MAX_ATTEMPTS + 1))

        # What followed in each partition is applied; the poison is not.
        dsn, valid = scenario.databases[sub.consumer], {p.valid.id for p in pairs}

        async def all_applied(dsn: str = dsn, consumer: str = sub.consumer, valid: set[str] = valid) -> bool:
            return await applied(dsn, consumer, valid) == valid

        await eventually(all_applied)
        assert await applied(dsn, sub.consumer, set(pair_of)) == set()
        assert scenario.processes[sub.consumer].proc.poll() is None  # it did not crash
        covered |= {(sub.consumer, p.topic) for p in pairs}
    assert covered == {(s.consumer, t) for s in scenario.subscriptions for t in s.topics}


async def test_the_regulator_logs_what_it_cannot_project_and_projects_what_follows(
    scenario: Scenario,
) -> None:
    """The regulator has no dead-letter topic: a record it cannot project would fail the same way
    every time, so it is logged, counted (unprojectable) and skipped."""
    regulator = scenario.processes["regulator"]
    for source, target in REGULATOR_TOPICS.items():
        pairs = [p for p in scenario.pairs if p.topic == source]
        expected = {regulator_event_id(p.valid.id): p.valid for p in pairs}

        async def projected(
            target: str = target, expected: dict[str, EventEnvelope] = expected
        ) -> list[Record]:
            records = [
                r for r in await read_topic(scenario.bootstrap, target) if _header(r, "ce_id") in expected
            ]
            return records if {_header(r, "ce_id") for r in records} == set(expected) else []

        for record in await eventually(projected, within=120):
            source_event = expected[_header(record, "ce_id")]
            assert record.key == pseudonymous_subject(scenario.regulator_key, source_event).encode()
        poisoned = {regulator_event_id(p.undecodable.id) for p in pairs}
        assert not [
            r for r in await read_topic(scenario.bootstrap, target) if _header(r, "ce_id") in poisoned
        ]
        not_projectable = [
            str(entry.get("error"))
            for entry in log_entries(regulator.log)
            if entry.get("msg") == "source event not projectable"
        ]
        for p in pairs:
            assert any(f"{p.undecodable.id}: undecodable payload" in e for e in not_projectable)
    assert regulator.proc.poll() is None


def log_entries(log: Path) -> list[dict[str, Any]]:
    """A service's JSON log lines (what else its output holds is left out)."""
    entries = []
    for line in log.read_text(errors="replace").splitlines():
        with contextlib.suppress(ValueError):
            entry = json.loads(line)
            if isinstance(entry, dict):
                entries.append(entry)
    return entries


def jiazheng(bootstrap: str, *args: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [str(CLI), "dlq", "--bootstrap", bootstrap, *args],
        env={**os.environ, "COLUMNS": "200"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert "Traceback" not in result.stdout + result.stderr, result.stderr
    return result


async def listed(bootstrap: str, consumer: str) -> list[dict[str, Any]]:
    result = await asyncio.to_thread(jiazheng, bootstrap, "list", consumer, "--json")
    assert result.returncode == 0, result.stdout + result.stderr
    assert re.fullmatch(rf"jiazheng\.{consumer}\.dlq\.v1: \d+ dead letters, \d+ replayed\n", result.stderr)
    entries: list[dict[str, Any]] = json.loads(result.stdout)
    return entries


# A line of `replay`: the dead letter, its event, where the copy went.
REPLAYED = re.compile(r"^replayed (\d+:\d+) \S+ (\S+) to (\S+) partition (\d+) offset (\d+)$", re.MULTILINE)


@dataclass(frozen=True)
class Copy:
    dead_letter: str
    event_id: str
    topic: str
    partition: int
    offset: int


def copies_in(output: str) -> list[Copy]:
    return [Copy(pos, eid, topic, int(p), int(o)) for pos, eid, topic, p, o in REPLAYED.findall(output)]


async def replay_after_the_fix(scenario: Scenario, sub: Subscription) -> list[Copy]:
    """`dlq list` shows the consumer's failed events pending; `dlq replay --offset` sends them again."""
    pairs = {p.failing.id: p for p in scenario.of(sub.consumer)}
    entries = {e["id"]: e for e in await listed(scenario.bootstrap, sub.consumer) if e["id"] in pairs}
    assert set(entries) == set(pairs)
    for event_id, entry in entries.items():
        pair = pairs[event_id]
        assert (entry["original_topic"], entry["type"], entry["consumer"]) == (
            pair.topic,
            pair.failing.type,
            sub.consumer,
        )
        assert (entry["attempts"], entry["replay"], entry["cloud_event"]) == (MAX_ATTEMPTS, "pending", True)
        assert "injected fault" in entry["error"]
        assert entry["dead_lettered_at"]
    offsets = [arg for entry in entries.values() for arg in ("--offset", entry["dead_letter"])]
    result = await asyncio.to_thread(jiazheng, scenario.bootstrap, "replay", sub.consumer, *offsets, "--yes")
    assert result.returncode == 0, result.stdout + result.stderr
    copies = copies_in(result.stdout)
    assert sorted((c.dead_letter, c.event_id, c.topic) for c in copies) == sorted(
        (e["dead_letter"], e["id"], e["original_topic"]) for e in entries.values()
    )
    assert f"replayed {len(entries)} dead letters of {sub.consumer}" in result.stdout
    return copies


async def test_after_the_fix_the_cli_lists_and_replays_the_dead_letters_and_each_applies_once(
    scenario: Scenario,
) -> None:
    for sub in scenario.subscriptions:
        await dead_letters(
            scenario.bootstrap, sub.consumer, {p.failing.id for p in scenario.of(sub.consumer)}
        )
    for dsn in scenario.databases.values():  # the fix
        await db_value(dsn, "DELETE FROM poisoned_events")

    replayed = await asyncio.gather(*(replay_after_the_fix(scenario, s) for s in scenario.subscriptions))
    copies = {s.consumer: c for s, c in zip(scenario.subscriptions, replayed, strict=True)}

    # Every consumer of a topic reads the copies on it: the one that dead-lettered an event applies
    # it now, the others find it in their inbox.
    for sub in scenario.subscriptions:
        group = f"{scenario.prefix}-{sub.consumer}"
        for copy in (c for cs in copies.values() for c in cs if c.topic in sub.topics):
            await wait_until_consumed(scenario.bootstrap, group, copy.topic, copy.partition, copy.offset)
        failed = {p.failing.id for p in scenario.of(sub.consumer)}
        assert await applied(scenario.databases[sub.consumer], sub.consumer, failed) == failed
    # Exactly once in effect: one ledger entry per OrderCreated, whether credit dead-lettered it
    # and applied its copy, or applied it and then dropped the copy another consumer replayed.
    booked = [
        e.id
        for p in scenario.pairs
        for e in (p.failing, p.valid)
        if e.type == event_type_of(order_events.OrderCreated())
    ]
    sql = "SELECT event_id, count(*) AS n FROM ledger_entries WHERE event_id = ANY($1) GROUP BY event_id"
    rows = await db_rows(scenario.databases["credit"], sql, booked)
    assert {r["event_id"]: r["n"] for r in rows} == dict.fromkeys(booked, 1)

    # The list shows them replayed, and `replay --all` does not send them again.
    for sub in scenario.subscriptions:
        failed = {p.failing.id for p in scenario.of(sub.consumer)}
        shown = {
            e["id"]: e["replay"] for e in await listed(scenario.bootstrap, sub.consumer) if e["id"] in failed
        }
        assert shown == dict.fromkeys(failed, "replayed")
    again = await asyncio.to_thread(jiazheng, scenario.bootstrap, "replay", "credit", "--all", "--yes")
    assert again.returncode == 0, again.stdout + again.stderr
    sent_again = {c.event_id for c in copies_in(again.stdout)}
    for copy in copies["credit"]:
        assert re.search(
            rf"^skipped {copy.dead_letter} {copy.event_id}: replayed at ", again.stdout, re.MULTILINE
        )
        assert copy.event_id not in sent_again
        on_topic = [
            r
            for r in await read_topic(scenario.bootstrap, copy.topic)
            if _header(r, "ce_id") == copy.event_id
        ]
        assert len(on_topic) == 2  # the original and its one replay
