"""Delivery guarantees: redelivery applies no effect twice, a crashed relay loses nothing,
and what cannot be processed goes to the dead-letter topic with its error."""

from __future__ import annotations

import asyncio
import json
import signal
import uuid

import asyncpg
from aiokafka import AIOKafkaProducer

from deploy.local.stack import Endpoints
from libs.common.kafka import dlq_topic, events_topic
from tests.integration.clients import (
    create_order,
    db_value,
    ledger,
    new_traceparent,
    new_worker_id,
    order_request,
)
from tests.integration.harness import RunningService, ServiceHarness, eventually
from tests.integration.kafka_tools import produce_order_created, read_topic, wait_until_consumed

ORDERS_TOPIC = events_topic("orders")
CREDIT_GROUP = "jiazheng-credit"


async def fetch_outbox(dsn: str, event_id: str) -> asyncpg.Record | None:
    conn = await asyncpg.connect(dsn)
    try:
        return await conn.fetchrow("SELECT * FROM outbox WHERE event_id = $1::uuid", event_id)
    finally:
        await conn.close()


async def outbox_for_order(dsn: str, order_name: str) -> asyncpg.Record:
    conn = await asyncpg.connect(dsn)
    try:
        row = await conn.fetchrow("SELECT * FROM outbox WHERE aggregate_id = $1", order_name)
    finally:
        await conn.close()
    assert row is not None
    return row


async def test_duplicate_delivery_creates_no_second_ledger_entry(
    harness: ServiceHarness, orders: RunningService, credit: RunningService, endpoints: Endpoints
) -> None:
    worker = new_worker_id()
    order = await create_order(orders, harness.key("demo-platform"), order_request(worker))
    [entry] = await eventually(lambda: ledger(credit, harness.key("operator"), worker))
    row = await outbox_for_order(endpoints.dsn("jz_orders"), order.name)
    assert str(row["event_id"]) == entry.event_id

    producer = AIOKafkaProducer(bootstrap_servers=endpoints.kafka_bootstrap)
    await producer.start()
    try:
        headers = [(k, v.encode()) for k, v in json.loads(row["headers"]).items()]
        for _ in range(2):
            sent = await producer.send_and_wait(
                ORDERS_TOPIC, value=bytes(row["payload"]), key=order.name.encode(), headers=headers
            )
    finally:
        await producer.stop()
    await wait_until_consumed(
        endpoints.kafka_bootstrap, CREDIT_GROUP, ORDERS_TOPIC, sent.partition, sent.offset
    )

    assert await ledger(credit, harness.key("operator"), worker) == [entry]


async def test_relay_killed_between_commit_and_publish_loses_no_event(
    harness: ServiceHarness, credit: RunningService, endpoints: Endpoints, scratch_database: str
) -> None:
    dsn = endpoints.dsn(scratch_database)
    worker = new_worker_id()
    trace_id, traceparent = new_traceparent()

    # 1. Committed but never published: this process has no relay, and is then killed.
    no_relay = await harness.start("orders", database=scratch_database, relay_enabled="false")
    order = await create_order(no_relay, harness.key("demo-platform"), order_request(worker), traceparent)
    no_relay.kill()
    row = await outbox_for_order(dsn, order.name)
    event_id = str(row["event_id"])
    assert row["published_at"] is None

    # 2. A relay that dies after Kafka acknowledged the event but before marking it published.
    crashing = harness.spawn("orders", database=scratch_database, fault_injection="relay_crash_after_publish")
    assert crashing.proc.wait(timeout=120) == 70
    assert (await fetch_outbox(dsn, event_id))["published_at"] is None  # type: ignore[index]

    # 3. A healthy relay publishes it again and marks it.
    await harness.start("orders", database=scratch_database)

    async def published() -> bool:
        return (await fetch_outbox(dsn, event_id))["published_at"] is not None  # type: ignore[index]

    await eventually(published)
    copies = [
        r
        for r in await read_topic(endpoints.kafka_bootstrap, ORDERS_TOPIC)
        if r.headers.get("ce_id") == event_id.encode()
    ]
    assert len(copies) == 2
    assert all(trace_id.encode() in c.headers["traceparent"] for c in copies)
    last = max(copies, key=lambda r: r.offset)
    await wait_until_consumed(
        endpoints.kafka_bootstrap, CREDIT_GROUP, ORDERS_TOPIC, last.partition, last.offset
    )

    entries = await ledger(credit, harness.key("operator"), worker)
    assert [(e.event_id, e.trace_id) for e in entries] == [(event_id, trace_id)]


async def test_unprocessable_events_go_to_the_dead_letter_topic_with_the_error(
    credit: RunningService, endpoints: Endpoints
) -> None:
    not_a_cloudevent = uuid.uuid4().hex.encode()
    undecodable_id = str(uuid.uuid4())
    producer = AIOKafkaProducer(bootstrap_servers=endpoints.kafka_bootstrap)
    await producer.start()
    try:
        await producer.send_and_wait(ORDERS_TOPIC, value=b"hello", key=not_a_cloudevent)
        await producer.send_and_wait(
            ORDERS_TOPIC,
            value=b"\xff\xff\xff",
            key=b"orders/x",
            headers=[
                ("ce_specversion", b"1.0"),
                ("ce_id", undecodable_id.encode()),
                ("ce_type", b"jiazheng.orders.events.v1.OrderCreated"),
                ("ce_source", b"/test"),
                ("ce_time", b"2026-01-01T00:00:00Z"),
            ],
        )
    finally:
        await producer.stop()

    async def dead_lettered() -> list[dict[str, bytes]]:
        records = await read_topic(endpoints.kafka_bootstrap, dlq_topic("credit"))
        ours = [
            r.headers
            for r in records
            if r.key == not_a_cloudevent or r.headers.get("ce_id") == undecodable_id.encode()
        ]
        return ours if len(ours) == 2 else []

    for headers in await eventually(dead_lettered):
        assert headers["dlq_original_topic"] == ORDERS_TOPIC.encode()
        assert headers["dlq_consumer"] == b"credit"
        assert b"PermanentEventError" in headers["dlq_error"]


async def test_credit_stopped_then_killed_mid_stream_loses_nothing_and_applies_nothing_twice(
    harness: ServiceHarness, endpoints: Endpoints, scratch_database: str
) -> None:
    worker, total = new_worker_id(), 6000
    await produce_order_created(endpoints.kafka_bootstrap, [worker] * total)
    dsn = endpoints.dsn(scratch_database)
    # A group of its own, so it reads everything and competes with no other credit process;
    # small batches, so that stopping it lands mid-stream.
    group_prefix = f"test-{uuid.uuid4().hex[:8]}"

    async def start_credit() -> RunningService:
        return await harness.start(
            "credit", database=scratch_database, consumer_group_prefix=group_prefix, consumer_batch_size="10"
        )

    async def recorded() -> int:
        count: int = await db_value(dsn, "SELECT count(*) FROM ledger_entries WHERE worker_id = $1", worker)
        return count

    async def more_than(n: int) -> int:
        count = await recorded()
        return count if count > n else 0

    first = await start_credit()
    await eventually(lambda: more_than(0))
    first.proc.send_signal(signal.SIGTERM)
    assert await asyncio.to_thread(first.proc.wait, 60) == 0
    after_stop = await recorded()

    second = await start_credit()
    await eventually(lambda: more_than(after_stop))
    second.kill(signal.SIGKILL)
    after_kill = await recorded()

    await start_credit()
    await eventually(lambda: more_than(total - 1), within=120)
    assert 0 < after_stop < after_kill < total  # both interruptions landed mid-stream
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetchrow(
            "SELECT count(*) AS entries, count(DISTINCT event_id) AS events FROM ledger_entries"
            " WHERE worker_id = $1",
            worker,
        )
    finally:
        await conn.close()
    assert (rows["entries"], rows["events"]) == (total, total)


async def test_a_relay_in_a_process_of_its_own_publishes_what_the_api_committed(
    harness: ServiceHarness, credit: RunningService, endpoints: Endpoints, scratch_database: str
) -> None:
    api = await harness.start("orders", database=scratch_database, relay_enabled="false")
    relay = harness.spawn(
        "relay", database=scratch_database, command=["-m", "libs.common.relay"], service_name="orders-relay"
    )
    await relay.wait_serving()
    worker = new_worker_id()
    trace_id, traceparent = new_traceparent()

    order = await create_order(api, harness.key("demo-platform"), order_request(worker), traceparent)

    [entry] = await eventually(lambda: ledger(credit, harness.key("operator"), worker))
    assert entry.trace_id == trace_id
    assert order.name.removeprefix("orders/") in entry.reason

    async def marked_published() -> bool:  # the relay marks the row after Kafka's acknowledgement
        row = await outbox_for_order(endpoints.dsn(scratch_database), order.name)
        return row["published_at"] is not None

    assert await eventually(marked_published, within=30)
    relay.proc.send_signal(signal.SIGTERM)
    assert await asyncio.to_thread(relay.proc.wait, 60) == 0
