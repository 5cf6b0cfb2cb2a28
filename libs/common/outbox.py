"""Transactional outbox: events are written with the state change and relayed to Kafka afterwards."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import time
import uuid
from collections.abc import Sequence

import asyncpg
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from opentelemetry import trace

from libs.common.events import EventEnvelope
from libs.common.kafka import OutgoingRecord, send_batched
from libs.common.outages import backoff, is_outage
from libs.common.settings import ServiceSettings
from libs.common.telemetry import OUTBOX_BACKLOG, OUTBOX_PUBLISHED, trace_id_of, tracer

log = logging.getLogger(__name__)

NOTIFY_CHANNEL = "jiazheng_outbox"
# After a failed batch (Kafka or the database away) the relay retries, backing off up to this.
_FIRST_RETRY_S = 0.2
_LAST_RETRY_S = 5.0
# Claiming works by aggregate, never by lone row. ``head`` is the oldest unpublished rows; this
# relay takes the aggregates in it whose transaction-scoped advisory lock it gets, and publishes
# their rows in ``head``. Since ``head`` holds every unpublished row up to some seq, an
# aggregate's rows in it are the start of its queue: no relay skips an earlier event of an
# aggregate, and while a relay holds an aggregate no other takes any of its rows. A row another
# relay published meanwhile fails the re-check of ``published_at`` under FOR UPDATE. (Locking row
# by row in one scan let a relay skip an aggregate's rows while another held it, then take a
# later row once the lock was released mid-scan; reading a claimed aggregate's rows beyond
# ``head`` made each claim scan the table; nested IN subqueries once ran 30 s under a generic
# plan.) Writers of one aggregate serialise on the aggregate's own row, so its events' seq order
# is their commit order. ``$2`` names aggregates another lane of this relay holds: leaving whole
# aggregates out of ``head`` keeps it a prefix of every other aggregate's queue, and lets the
# lane look past the rows in flight. The claimed rows are locked by primary key from an array,
# with no join and no ``published_at`` condition until they are locked (a locked row is its
# latest version): statistics taken while the outbox was drained estimate one unpublished row,
# and under a backlog a join planned for one row became nested loops over head × claimed × outbox
# (250 rows: 1.6 s; 1,000: past the 30 s timeout, so the relay stalled until the next ANALYZE),
# while a condition the partial indexes answer had each claim scan every unpublished row.
_CLAIM_BATCH = """
WITH head AS MATERIALIZED (
    SELECT seq, aggregate_id FROM outbox
    WHERE published_at IS NULL AND aggregate_id <> ALL($2::text[])
    ORDER BY seq LIMIT $1
), claimed AS MATERIALIZED (
    SELECT array_agg(seq) AS seqs FROM head GROUP BY aggregate_id
    HAVING pg_try_advisory_xact_lock(hashtext('jiazheng.outbox'), hashtext(aggregate_id))
), locked AS MATERIALIZED (
    SELECT o.* FROM outbox o
    WHERE o.seq = ANY(ARRAY(SELECT unnest(seqs) FROM claimed))
    FOR UPDATE OF o SKIP LOCKED
)
SELECT seq, event_id, topic, aggregate_id, headers, payload FROM locked
WHERE published_at IS NULL
ORDER BY seq
"""


class Notifications:
    """Wakes a waiter when a transaction that sent NOTIFY on ``channel`` commits.

    It listens on a connection of its own, reopened by ``listen`` whenever it was lost: a
    database restart closes it, and without it the waiter would only poll.
    """

    def __init__(self, dsn: str, channel: str) -> None:
        self._dsn = dsn
        self._channel = channel
        self._wake = asyncio.Event()
        self._conn: asyncpg.Connection | None = None
        self._opening = asyncio.Lock()

    async def listen(self) -> None:
        """(Re)open the LISTEN connection when there is none."""
        async with self._opening:
            if self._conn is not None and not self._conn.is_closed():
                return
            self.close()
            self._conn = await asyncpg.connect(self._dsn, timeout=10)
            await self._conn.add_listener(self._channel, lambda *_: self._wake.set())
            self._conn.add_termination_listener(lambda *_: self._wake.set())  # reconnect at once
            self._wake.set()  # whatever was committed while nobody listened
            log.info("listening for notifications", extra={"fields": {"channel": self._channel}})

    async def wait(self, timeout_s: float) -> None:
        """Until a notification (or the connection's loss) or ``timeout_s``, whichever comes first."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout_s):
                await self._wake.wait()
        self._wake.clear()

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.terminate()


_ADD_EVENT = (
    "WITH stored AS ("
    " INSERT INTO outbox (event_id, topic, aggregate_id, event_type, headers, payload)"
    " VALUES ($1, $2, $3, $4, $5::jsonb, $6) RETURNING 1)"
    f" SELECT pg_notify('{NOTIFY_CHANNEL}', '') FROM stored"
)


async def add_event(conn: asyncpg.Connection, topic: str, event: EventEnvelope) -> None:
    """Store ``event`` in the caller's transaction; the relay is woken when it commits. Logged at
    DEBUG with the trace the event carries on."""
    await add_events(conn, topic, [event])


async def add_events(conn: asyncpg.Connection, topic: str, events: Sequence[EventEnvelope]) -> None:
    """``add_event`` of each, in order (the outbox's sequence follows), pipelined: one round trip."""
    rows = [_outbox_row(topic, event) for event in events]
    if len(rows) == 1:
        await conn.execute(_ADD_EVENT, *rows[0])
    elif rows:
        await conn.executemany(_ADD_EVENT, rows)
    if log.isEnabledFor(logging.DEBUG):
        for event in events:
            fields = {
                "event_id": event.id,
                "event_type": event.type,
                "subject": event.subject,
                "trace_id": trace_id_of(event.traceparent),
            }
            log.debug("event added to the outbox", extra={"fields": fields})


def _outbox_row(topic: str, event: EventEnvelope) -> tuple[object, ...]:
    return (uuid.UUID(event.id), topic, event.subject, event.type, json.dumps(event.headers()), event.data)


class OutboxRelay:
    """Publishes committed outbox rows with an idempotent producer, then marks them published.

    A crash after Kafka acknowledged a batch but before it was marked republishes that batch:
    consumers are idempotent by event id, so the effect still happens once.
    """

    def __init__(self, pool: asyncpg.Pool, producer: AIOKafkaProducer, settings: ServiceSettings) -> None:
        self._pool = pool
        self._producer = producer
        self._settings = settings
        self._notifications = Notifications(settings.database_url, NOTIFY_CHANNEL)
        self._backlog = asyncio.Event()
        self._in_flight: dict[int, set[str]] = {}  # lane -> aggregates its open transaction holds
        self._last_prune = 0.0
        self._last_backlog = 0.0

    async def run(self) -> None:
        """Lane 0 follows the notifications; the others join in from the first full batch until a
        lane finds nothing, so that one batch is claimed and sent while another waits for Kafka
        and its commit."""
        await self._producer.start()
        try:
            await asyncio.gather(*(self._lane(lane) for lane in range(self._settings.relay_lanes)))
        finally:
            self._notifications.close()
            await self._producer.stop()

    async def _lane(self, lane: int) -> None:
        delays = backoff(_FIRST_RETRY_S, _LAST_RETRY_S)
        while True:
            try:
                await self._notifications.listen()
                published = await self.publish_batch(lane)
                delays = backoff(_FIRST_RETRY_S, _LAST_RETRY_S)
                if published == self._settings.relay_batch_size:
                    self._backlog.set()
                elif not published:
                    self._backlog.clear()
                if self._backlog.is_set():
                    continue  # a short batch may only mean that another lane held the rest
                if lane == 0:
                    await self._idle()
                else:
                    await self._backlog.wait()
            except Exception as exc:
                if not (isinstance(exc, KafkaError) or is_outage(exc)):
                    raise  # a bug, not an outage: end the process, to be restarted
                # Nothing was marked: the batch is retried whole once the outage passes.
                delay = next(delays)
                log.warning(
                    "relay batch failed; retrying",
                    extra={"fields": {"error": repr(exc), "retry_in_s": delay, "lane": lane}},
                )
                await asyncio.sleep(delay)

    async def _idle(self) -> None:
        await self._housekeeping()
        await self._notifications.wait(self._settings.relay_poll_interval_s)

    async def publish_batch(self, lane: int = 0) -> int:
        held = [a for other, aggregates in self._in_flight.items() if other != lane for a in aggregates]
        try:
            async with self._pool.acquire() as conn, conn.transaction():
                rows = await conn.fetch(_CLAIM_BATCH, self._settings.relay_batch_size, held)
                if not rows:
                    return 0
                self._in_flight[lane] = {r["aggregate_id"] for r in rows}
                with tracer.start_as_current_span(
                    "outbox relay batch",
                    kind=trace.SpanKind.PRODUCER,
                    attributes={"messaging.system": "kafka", "messaging.batch.message_count": len(rows)},
                ):
                    await self._publish(conn, rows)
        finally:
            self._in_flight.pop(lane, None)  # only once the transaction has ended
        OUTBOX_PUBLISHED.labels(self._settings.service_name).inc(len(rows))
        return len(rows)

    async def _publish(self, conn: asyncpg.Connection, rows: list[asyncpg.Record]) -> None:
        records = (
            OutgoingRecord(
                r["topic"],
                r["aggregate_id"].encode(),
                bytes(r["payload"]),
                [(k, v.encode()) for k, v in json.loads(r["headers"]).items()],
            )
            for r in rows
        )
        await asyncio.gather(*await send_batched(self._producer, records))
        if self._settings.fault_injection == "relay_crash_after_publish":
            log.warning("fault injection: relay exits after publish, before marking")
            os._exit(70)
        await conn.execute(
            "UPDATE outbox SET published_at = now() WHERE seq = ANY($1::bigint[])", [r["seq"] for r in rows]
        )

    async def _housekeeping(self) -> None:
        """At most every few seconds: report the backlog; every minute: delete old published rows."""
        now = time.monotonic()
        if now - self._last_backlog >= 5:
            self._last_backlog = now
            backlog = await self._pool.fetchval("SELECT count(*) FROM outbox WHERE published_at IS NULL")
            OUTBOX_BACKLOG.labels(self._settings.service_name).set(backlog)
        if now - self._last_prune < 60:
            return
        self._last_prune = now
        await self._pool.execute(
            "DELETE FROM outbox WHERE published_at < now() - make_interval(secs => $1)",
            self._settings.outbox_retention_hours * 3600,
        )
