"""A fake of the services behind the gateway, for the pages' unit tests."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import date

import grpc

from jiazheng.orders.v1 import orders_pb2
from jiazheng.regulator.v1 import regulator_pb2
from jiazheng.workers.v1 import workers_pb2

REGULATOR_KEY = "regulator-key"
PLATFORM_KEY = "platform-key"


def rpc_error(code: grpc.StatusCode, details: str = "") -> grpc.aio.AioRpcError:
    return grpc.aio.AioRpcError(code, grpc.aio.Metadata(), grpc.aio.Metadata(), details, None)


def green_card() -> workers_pb2.VerifyCardResponse:
    return workers_pb2.VerifyCardResponse(
        verdict=workers_pb2.TOKEN_VERDICT_VALID,
        colour=workers_pb2.CARD_COLOUR_GREEN,
        worker=workers_pb2.PublicWorkerView(
            masked_full_name="王*芳",
            company_display_name="北京好家政有限公司",
            trades=[workers_pb2.TRADE_FAMILY_CARER],
            skill_level=workers_pb2.SKILL_LEVEL_4,
            health_check_valid_until="2027-06-30",
            insurance_valid_until="2027-11-29",
            credit_level="A",
        ),
    )


@dataclass
class FakeServices:
    cards: dict[str, workers_pb2.VerifyCardResponse] = field(default_factory=dict)
    days: list[regulator_pb2.DistrictDay] = field(default_factory=list)
    check_in_error: grpc.aio.AioRpcError | None = None
    failure: BaseException | None = None  # raised by every call
    check_ins: list[tuple[str, str, str]] = field(default_factory=list)
    queries: list[tuple[str, date, date, tuple[str, ...]]] = field(default_factory=list)
    feed: list[regulator_pb2.SubscribeResponse] = field(default_factory=list)
    watching: list[FakeFeed] = field(default_factory=list)

    async def verify_card(self, token: str) -> workers_pb2.VerifyCardResponse:
        if self.failure:
            raise self.failure
        return self.cards.get(
            token, workers_pb2.VerifyCardResponse(verdict=workers_pb2.TOKEN_VERDICT_MALFORMED)
        )

    async def check_in(self, platform_key: str, order_id: str, token: str) -> orders_pb2.Order:
        if self.check_in_error:
            raise self.check_in_error
        self.check_ins.append((platform_key, order_id, token))
        return orders_pb2.Order(name=f"orders/{order_id}")

    async def list_indicators(
        self, key: str, start: date, end: date, districts: Sequence[str]
    ) -> list[regulator_pb2.DistrictDay]:
        if key != REGULATOR_KEY:
            raise rpc_error(grpc.StatusCode.PERMISSION_DENIED, "regulators only")
        self.queries.append((key, start, end, tuple(districts)))
        return [d for d in self.days if not districts or d.district_code in districts]

    async def watch(self, key: str) -> FakeFeed:
        if self.failure:
            raise self.failure
        self.watching.append(FakeFeed(self.feed))
        return self.watching[-1]


@dataclass
class FakeFeed:
    """A feed of the given responses that then ends; whether it was cancelled."""

    items: list[regulator_pb2.SubscribeResponse]
    cancelled: bool = False

    async def __aiter__(self) -> AsyncIterator[regulator_pb2.SubscribeResponse]:
        for item in self.items:
            yield item

    def cancel(self) -> bool:
        self.cancelled = True
        return True
