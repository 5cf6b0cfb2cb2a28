"""Baseline server for the day (``bench/beijing_day.py``): every method of the five services at once,
each answered at once with its empty reply.

One grpc.aio process serving every gRPC service of orders, workers, credit, complaints and
insurance (their generated descriptors), registered as ``GrpcServer.add`` registers them (generic
and registered handlers); each request is parsed and answered with the method's response message
left empty (a server-streaming method ends its stream at once). No guard, telemetry, logging,
database work or Kafka: what the day's driver costs on its own plus the gRPC transport, the
ceiling of client + gRPC on this machine. ``bench.bare_service.serve`` runs it (health on
``JZ_GRPC_PORT``, its idle asyncpg pool on ``JZ_DATABASE_URL``), until SIGTERM:
``python -m bench.bare_day_server``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from types import ModuleType
from typing import Any

import asyncpg
import grpc
from google.protobuf.descriptor import MethodDescriptor
from google.protobuf.message import Message
from google.protobuf.message_factory import GetMessageClass

from bench.bare_service import serve
from jiazheng.complaints.v1 import complaints_pb2
from jiazheng.credit.v1 import credit_pb2
from jiazheng.insurance.v1 import claims_pb2, policies_pb2
from jiazheng.orders.v1 import orders_pb2
from jiazheng.workers.v1 import workers_pb2

PROTOS: tuple[ModuleType, ...] = (
    orders_pb2,
    workers_pb2,
    credit_pb2,
    complaints_pb2,
    claims_pb2,
    policies_pb2,
)


def _handler(method: MethodDescriptor) -> grpc.RpcMethodHandler[Any, Any]:
    request = GetMessageClass(method.input_type)
    reply = GetMessageClass(method.output_type)

    async def unary(_: Message, context: grpc.aio.ServicerContext[Any, Any]) -> Message:
        return reply()

    async def stream(_: Message, context: grpc.aio.ServicerContext[Any, Any]) -> AsyncIterator[Message]:
        return
        yield  # an async generator that yields nothing

    if method.client_streaming:
        raise ValueError(f"{method.full_name}: client streaming is not served")
    make = (
        grpc.unary_stream_rpc_method_handler
        if method.server_streaming
        else grpc.unary_unary_rpc_method_handler
    )
    return make(
        stream if method.server_streaming else unary,
        request_deserializer=request.FromString,
        response_serializer=reply.SerializeToString,
    )


def service_names() -> list[str]:
    """The full names of the services answered."""
    return [s.full_name for m in PROTOS for s in m.DESCRIPTOR.services_by_name.values()]


def register(server: grpc.aio.Server, pool: asyncpg.Pool) -> None:
    """Every method of every service of ``PROTOS`` on ``server``."""
    for module in PROTOS:
        for service in module.DESCRIPTOR.services_by_name.values():
            handlers = {m.name: _handler(m) for m in service.methods}
            server.add_generic_rpc_handlers(
                (grpc.method_handlers_generic_handler(service.full_name, handlers),)
            )
            server.add_registered_method_handlers(service.full_name, handlers)  # type: ignore[attr-defined]


if __name__ == "__main__":
    asyncio.run(serve(register))
