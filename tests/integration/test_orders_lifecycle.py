"""An order's life on the real stack: workers publish who may work, orders matches from what it keeps,
offers (timing out by the clock alone), the worker accepts, the contract is made and rendered, the
consumer checks the worker in by scanning the real signed card, the service completes and both sides
rate; a replacement links two contracts; a card turning YELLOW drops the worker from matching."""

from __future__ import annotations

import asyncio
from typing import Any

import grpc
import pytest

from deploy.local.services import stopped_after
from deploy.local.stack import Endpoints
from jiazheng.orders.v1 import orders_pb2 as o
from jiazheng.workers.v1 import workers_pb2 as w
from libs.common.kafka import events_topic
from tests.integration.clients import field_violations, order_request
from tests.integration.harness import RunningService, ServiceHarness, eventually
from tests.integration.kafka_tools import ORDERS_TOPIC, read_topic
from tests.integration.orders_client import candidates, new_order, new_pair
from tests.integration.orders_client import orders_call as orders_call  # other modules import it from here
from tests.integration.workers_client import card_colour_event, produce, uncovered_event

pytestmark = pytest.mark.integration
OFFER_TIMEOUT_S = 900  # the service's default


@pytest.fixture
async def pair(
    endpoints: Endpoints, harness: ServiceHarness, workers: RunningService
) -> list[tuple[str, str]]:
    """Two ready workers of one new company."""
    return await new_pair(endpoints, harness, workers)


ALONE = "110119"  # 延庆: no other test's workers serve it, so the next candidate is the pair's other


async def test_an_order_from_creation_to_ratings(
    endpoints: Endpoints,
    harness: ServiceHarness,
    orders: RunningService,
    workers: RunningService,
    orders_keys: dict[str, str],
) -> None:
    platform = harness.key("demo-platform")
    pair = await new_pair(endpoints, harness, workers, ALONE)
    order = await new_order(orders, platform, days_ahead=3, district=ALONE)
    assert order.price_fen == 24_000  # 4 hours of elderly care at the catalogue's 60 yuan
    assert order.contact.mobile == "138****1234"
    match = await candidates(orders, platform, order, {worker for worker, _ in pair})
    assert all(c.passed_rules[-1] == "free_slot" and c.score > 0 for c in match.candidates)
    assert next(e.rule for e in match.exclusions) == "trade"
    await _only(endpoints, orders, platform, order, match, {worker for worker, _ in pair})

    first = (await orders_call(orders, platform, "OfferOrder", o.OfferOrderRequest(name=order.name))).offer
    # A process whose clock runs past the offer timeout fires the offer's timer: no sleep, no call.
    offset = {**orders_keys, "clock_offset_s": str(OFFER_TIMEOUT_S + 60)}
    async with stopped_after(await harness.start("orders", None, 0, False, **offset)):

        async def next_offer() -> str:
            current = (
                await orders_call(orders, platform, "GetOrder", o.GetOrderRequest(name=order.name))
            ).order
            return current.pending_offer if current.pending_offer not in ("", first.name) else ""

        second_name = await eventually(next_offer, within=60)

    accepted = await orders_call(orders, platform, "AcceptOffer", o.AcceptOfferRequest(name=second_name))
    worker = accepted.order.assigned_worker_id
    assert worker != first.worker.removeprefix("workers/")
    assert accepted.order.state == o.ORDER_STATE_ASSIGNED
    assert len(accepted.contract.content_sha256) == 64

    pdf = await orders_call(
        orders,
        platform,
        "GetContract",
        o.GetContractRequest(name=accepted.order.contract, format=o.CONTRACT_FORMAT_PDF),
    )
    html = await orders_call(
        orders,
        platform,
        "GetContract",
        o.GetContractRequest(name=accepted.order.contract, format=o.CONTRACT_FORMAT_HTML),
    )
    assert pdf.document.startswith(b"%PDF")
    assert pdf.media_type == "application/pdf"
    assert accepted.contract.content_sha256 in html.document.decode()
    assert "李奶奶" in html.document.decode()

    cards = dict(pair)
    other = next(link for wid, link in pair if wid != worker)
    with pytest.raises(grpc.aio.AioRpcError) as wrong_card:
        await orders_call(orders, platform, "CheckIn", o.CheckInRequest(name=order.name, card_token=other))
    assert wrong_card.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    checked_in = (
        await orders_call(
            orders, platform, "CheckIn", o.CheckInRequest(name=order.name, card_token=cards[worker])
        )
    ).order
    assert checked_in.state == o.ORDER_STATE_CHECKED_IN
    completed = (await orders_call(orders, platform, "CheckOut", o.CheckOutRequest(name=order.name))).order
    assert completed.state == o.ORDER_STATE_COMPLETED

    for rater in (o.PARTY_CONSUMER, o.PARTY_WORKER):
        await orders_call(
            orders, platform, "RateOrder", o.RateOrderRequest(name=order.name, rater=rater, stars=5)
        )
    with pytest.raises(grpc.aio.AioRpcError) as twice:
        await orders_call(
            orders,
            platform,
            "RateOrder",
            o.RateOrderRequest(name=order.name, rater=o.PARTY_CONSUMER, stars=1),
        )
    assert twice.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "already rated" in (twice.value.details() or "")


async def _only(
    endpoints: Endpoints,
    orders: RunningService,
    platform: str,
    order: o.Order,
    match: o.MatchOrderResponse,
    workers: set[str],
) -> None:
    """Until ``workers`` are the only candidates of ``order`` (``match`` its last match). On a
    reused stack home, orders knows the workers of earlier runs that also serve ``ALONE`` from the
    workers topic (their database is gone with the run): their cards are turned YELLOW there, as
    the workers service would."""
    others = [c.worker for c in match.candidates if c.worker.removeprefix("workers/") not in workers]
    if others:
        yellow = (card_colour_event(worker, w.CARD_COLOUR_YELLOW) for worker in others)
        await produce(endpoints.kafka_bootstrap, events_topic("workers"), *yellow)
    request = o.MatchOrderRequest(name=order.name, max_candidates=50)
    shown: set[str] = set()

    async def alone() -> bool:
        reply = await orders_call(orders, platform, "MatchOrder", request)
        shown.clear()
        shown.update(c.worker.removeprefix("workers/") for c in reply.candidates)
        return shown == workers

    try:
        await eventually(alone, within=60)
    except AssertionError:
        raise AssertionError(f"candidates {shown}; expected only {workers}; dropped {others}") from None


async def test_a_replacement_links_two_contracts_and_tenants_are_apart(
    harness: ServiceHarness, orders: RunningService, pair: list[tuple[str, str]]
) -> None:
    platform = harness.key("demo-platform")
    order = await new_order(orders, platform, days_ahead=5)
    await candidates(orders, platform, order, {worker for worker, _ in pair})
    with pytest.raises(grpc.aio.AioRpcError) as hidden:
        await orders_call(
            orders, harness.key("other-platform"), "GetOrder", o.GetOrderRequest(name=order.name)
        )
    assert hidden.value.code() == grpc.StatusCode.NOT_FOUND

    offer = (
        await orders_call(
            orders, platform, "OfferOrder", o.OfferOrderRequest(name=order.name, worker_id=pair[0][0])
        )
    ).offer
    first = await orders_call(orders, platform, "AcceptOffer", o.AcceptOfferRequest(name=offer.name))
    replaced = await orders_call(
        orders, platform, "ReplaceWorker", o.ReplaceWorkerRequest(name=order.name, reason="consumer asked")
    )
    assert replaced.order.state == o.ORDER_STATE_CREATED
    offer = (await orders_call(orders, platform, "OfferOrder", o.OfferOrderRequest(name=order.name))).offer
    assert offer.worker != f"workers/{pair[0][0]}"  # the replaced worker is not offered it again
    second = await orders_call(orders, platform, "AcceptOffer", o.AcceptOfferRequest(name=offer.name))

    assert second.contract.replaces == first.contract.name
    ended = (
        await orders_call(orders, platform, "GetContract", o.GetContractRequest(name=first.contract.name))
    ).contract
    assert ended.HasField("end_time")


async def test_a_worker_whose_card_turns_yellow_drops_out_of_matching_and_cannot_check_in(
    endpoints: Endpoints,
    harness: ServiceHarness,
    orders: RunningService,
    workers: RunningService,
    pair: list[tuple[str, str]],
) -> None:
    platform = harness.key("demo-platform")
    order = await new_order(orders, platform, days_ahead=7)
    booked = await new_order(orders, platform, days_ahead=9)
    await candidates(orders, platform, order, {worker for worker, _ in pair})
    leaving, card_link = pair[0]
    offer = await orders_call(
        orders, platform, "OfferOrder", o.OfferOrderRequest(name=booked.name, worker_id=leaving)
    )
    await orders_call(orders, platform, "AcceptOffer", o.AcceptOfferRequest(name=offer.offer.name))

    await produce(endpoints.kafka_bootstrap, events_topic("insurance"), uncovered_event(f"workers/{leaving}"))

    async def dropped() -> o.MatchOrderResponse | None:
        request = o.MatchOrderRequest(name=order.name, max_candidates=50)
        reply: o.MatchOrderResponse = await orders_call(orders, platform, "MatchOrder", request)
        return None if any(c.worker == f"workers/{leaving}" for c in reply.candidates) else reply

    reply = await eventually(dropped, within=60)
    assert {e.rule: e.excluded for e in reply.exclusions}["card_colour"] >= 1
    assert f"workers/{pair[1][0]}" in {c.worker for c in reply.candidates}
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await orders_call(
            orders, platform, "CheckIn", o.CheckInRequest(name=booked.name, card_token=card_link)
        )
    assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "YELLOW" in (refused.value.details() or "")


async def test_of_two_concurrent_accepts_one_wins_and_the_events_carry_no_personal_data(
    endpoints: Endpoints, harness: ServiceHarness, orders: RunningService, pair: list[tuple[str, str]]
) -> None:
    platform = harness.key("demo-platform")
    order = await new_order(orders, platform, days_ahead=11)
    await candidates(orders, platform, order, {worker for worker, _ in pair})
    request = o.OfferOrderRequest(name=order.name, worker_id=pair[0][0])
    offer = (await orders_call(orders, platform, "OfferOrder", request)).offer

    accept = o.AcceptOfferRequest(name=offer.name)
    results = await asyncio.gather(
        *(orders_call(orders, platform, "AcceptOffer", accept) for _ in range(2)), return_exceptions=True
    )

    refused = [r.code() for r in results if isinstance(r, grpc.aio.AioRpcError)]
    assert refused == [grpc.StatusCode.ABORTED]

    async def published() -> list[str]:
        records = [
            r
            for r in await read_topic(endpoints.kafka_bootstrap, ORDERS_TOPIC)
            if r.key == order.name.encode()
        ]
        kinds = [
            r.headers["ce_type"].decode().rsplit(".", 1)[-1] for r in sorted(records, key=lambda r: r.offset)
        ]
        leaked = [r for r in records if any(p in r.value for p in PERSONAL)]
        assert leaked == []
        return kinds if "OrderAssigned" in kinds else []

    assert await eventually(published, within=60) == ["OrderCreated", "OfferMade", "OrderAssigned"]


PERSONAL = ["李奶奶".encode(), b"13800001234", "望京西路".encode()]


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"price_fen": 10**9}, "order.price_fen"),  # far above ten times the catalogue price
        ({"duration_hours": 9}, "order.duration_hours"),  # cleaning books at most 8 hours
        ({"service_type": 99}, "order.service_type"),
        ({"address": ""}, "order.address"),
    ],
)
async def test_bad_orders_are_refused_naming_the_field(
    harness: ServiceHarness, orders: RunningService, fields: dict[str, Any], field: str
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await orders_call(orders, harness.key("demo-platform"), "CreateOrder", order_request(**fields))

    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field_violations(refused.value) == [field]
