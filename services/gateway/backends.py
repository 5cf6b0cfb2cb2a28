"""The gRPC APIs the gateway calls: workers (cards), orders (check-in) and regulator
(indicators and the feed of new figures). Thin: each method is one call with the caller's key and
a deadline."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from datetime import date
from typing import Protocol

import grpc

from jiazheng.orders.v1 import orders_pb2, orders_pb2_grpc
from jiazheng.regulator.v1 import regulator_pb2, regulator_pb2_grpc
from jiazheng.workers.v1 import workers_pb2, workers_pb2_grpc
from services.gateway.settings import GatewaySettings

# A service that cannot answer now: the page says "try again", the status is 503.
UNAVAILABLE = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED})
# The key is not a regulator's (or no key at all).
NOT_ALLOWED = frozenset({grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED})
# Where the regulator publishes a district day's figures each time they change (docs/regulators.md).
INDICATORS_TOPIC = "jiazheng.regulator.indicators.v1"


class LiveFeed(Protocol):
    """A feed that is read until it is cancelled."""

    def __aiter__(self) -> AsyncIterator[regulator_pb2.SubscribeResponse]: ...

    def cancel(self) -> bool: ...


class Services(Protocol):
    """What the pages need from the services behind the gateway (a fake in unit tests)."""

    async def verify_card(self, token: str) -> workers_pb2.VerifyCardResponse: ...

    async def check_in(self, platform_key: str, order_id: str, token: str) -> orders_pb2.Order: ...

    async def list_indicators(
        self, key: str, start: date, end: date, districts: Sequence[str]
    ) -> list[regulator_pb2.DistrictDay]: ...

    async def watch(self, key: str) -> LiveFeed: ...


def _auth(key: str) -> tuple[tuple[str, str]]:
    return (("authorization", f"Bearer {key}"),)


class GrpcServices:
    """``Services`` over one channel per service, opened with the gateway and closed with it."""

    def __init__(self, settings: GatewaySettings) -> None:
        self._key = settings.gateway_api_key.get_secret_value()
        self._timeout = settings.call_timeout_s
        self._workers = grpc.aio.insecure_channel(settings.workers_address)
        self._orders = grpc.aio.insecure_channel(settings.orders_address)
        self._regulator = grpc.aio.insecure_channel(settings.regulator_address)

    async def close(self) -> None:
        for channel in (self._workers, self._orders, self._regulator):
            await channel.close(None)

    async def verify_card(self, token: str) -> workers_pb2.VerifyCardResponse:
        stub = workers_pb2_grpc.CardServiceStub(self._workers)
        request = workers_pb2.VerifyCardRequest(token=token)
        reply: workers_pb2.VerifyCardResponse = await stub.VerifyCard(
            request, metadata=_auth(self._key), timeout=self._timeout
        )
        return reply

    async def check_in(self, platform_key: str, order_id: str, token: str) -> orders_pb2.Order:
        stub = orders_pb2_grpc.OrderServiceStub(self._orders)
        request = orders_pb2.CheckInRequest(name=f"orders/{order_id}", card_token=token)
        reply = await stub.CheckIn(request, metadata=_auth(platform_key), timeout=self._timeout)
        order: orders_pb2.Order = reply.order
        return order

    async def list_indicators(
        self, key: str, start: date, end: date, districts: Sequence[str]
    ) -> list[regulator_pb2.DistrictDay]:
        stub = regulator_pb2_grpc.RegulatorServiceStub(self._regulator)
        request = regulator_pb2.ListIndicatorsRequest(
            start_date=start.isoformat(), end_date=end.isoformat(), district_codes=list(districts)
        )
        reply = await stub.ListIndicators(request, metadata=_auth(key), timeout=self._timeout)
        return list(reply.days)

    async def watch(self, key: str) -> LiveFeed:
        """The indicators topic from now on, returned once the regulator has positioned its reader
        (its initial metadata): figures published after that are all in it. Read without a
        deadline; one not positioned within the call timeout is DEADLINE_EXCEEDED."""
        stub = regulator_pb2_grpc.RegulatorServiceStub(self._regulator)
        request = regulator_pb2.SubscribeRequest(
            start=regulator_pb2.START_POSITION_LATEST, topics=[INDICATORS_TOPIC]
        )
        call = stub.Subscribe(request, metadata=_auth(key))
        try:
            await asyncio.wait_for(call.initial_metadata(), self._timeout)
            await call.wait_for_connection()  # raises the call's error if it ended instead
        except TimeoutError:
            call.cancel()
            raise grpc.aio.AioRpcError(
                grpc.StatusCode.DEADLINE_EXCEEDED,
                grpc.aio.Metadata(),
                grpc.aio.Metadata(),
                "feed not positioned",
                None,
            ) from None
        except BaseException:
            call.cancel()
            raise
        return call
