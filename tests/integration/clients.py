"""Thin gRPC clients for the tests (every call goes through the real servers), and a database peek."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Sequence
from typing import Any, cast

import asyncpg
import grpc
from google.protobuf.timestamp_pb2 import Timestamp
from google.rpc import error_details_pb2, status_pb2

from jiazheng.credit.v1 import credit_pb2, credit_pb2_grpc
from jiazheng.orders.v1 import orders_pb2, orders_pb2_grpc
from jiazheng.type.v1 import service_type_pb2
from tests.integration.harness import RunningService


def new_traceparent() -> tuple[str, str]:
    trace_id = uuid.uuid4().hex
    return trace_id, f"00-{trace_id}-{uuid.uuid4().hex[:16]}-01"


def order_request(
    worker_id: str = "", request_id: str | None = None, **fields: object
) -> orders_pb2.CreateOrderRequest:
    start = Timestamp()
    start.FromSeconds(int(time.time()) + 24 * 3600)
    order = orders_pb2.Order(
        service_type=service_type_pb2.SERVICE_TYPE_CLEANING,
        district_code="110108",
        consumer_ref="consumer-42",
        worker_id=worker_id,
        scheduled_start_time=start,
        duration_hours=3,
        contact=orders_pb2.Contact(full_name="张三", mobile="13812345678"),
        address="北京市海淀区中关村大街1号",
    )
    for name, value in fields.items():
        setattr(order, name, value)
    return orders_pb2.CreateOrderRequest(request_id=request_id or str(uuid.uuid4()), order=order)


def auth(key: str, traceparent: str | None = None) -> list[tuple[str, str]]:
    md = [("authorization", f"Bearer {key}")]
    if traceparent:
        md.append(("traceparent", traceparent))
    return md


async def create_order(
    orders: RunningService, key: str, request: orders_pb2.CreateOrderRequest, traceparent: str | None = None
) -> orders_pb2.Order:
    async with orders.channel() as channel:
        reply = await orders_pb2_grpc.OrderServiceStub(channel).CreateOrder(
            request, metadata=auth(key, traceparent)
        )
    return reply.order


async def ledger(credit: RunningService, key: str, worker_id: str) -> list[credit_pb2.LedgerEntry]:
    async with credit.channel() as channel:
        stub = credit_pb2_grpc.CreditServiceStub(channel)
        request = credit_pb2.ListLedgerEntriesRequest(parent=f"workers/{worker_id}", page_size=1000)
        reply = await stub.ListLedgerEntries(request, metadata=auth(key))
    return list(reply.ledger_entries)


def new_worker_id() -> str:
    return f"w-{uuid.uuid4().hex[:12]}"


def log_lines(service: RunningService, key: str, value: str) -> list[dict[str, str]]:
    """The JSON log lines of ``service`` whose ``key`` is ``value``, reduced to message and trace id."""
    lines = [json.loads(line) for line in service.log.read_text().splitlines() if line.startswith("{")]
    return [{"msg": e["msg"], "trace_id": e.get("trace_id", "")} for e in lines if e.get(key) == value]


async def db_value(dsn: str, sql: str, *args: object) -> Any:
    """The one value ``sql`` returns, on a connection of its own."""
    conn = await asyncpg.connect(dsn)
    try:
        return await conn.fetchval(sql, *args)
    finally:
        await conn.close()


def field_violations(err: grpc.aio.AioRpcError) -> list[str]:
    trailers = cast(Sequence[tuple[str, bytes]], err.trailing_metadata() or ())
    trailer = dict(trailers)["grpc-status-details-bin"]
    status = status_pb2.Status.FromString(trailer)
    fields = []
    for detail in status.details:
        bad_request = error_details_pb2.BadRequest()
        assert detail.Unpack(bad_request)
        fields += [v.field for v in bad_request.field_violations]
    return fields
