"""Orders' terms on the real stack: cancellation fees by the contract's clause (who cancels, at what
notice) in the answer and in OrderCancelled on Kafka, the clause in the rendered contract; an
operator's catalogue change, versioned, published and pricing the next order; a declined offer
moving on; the steps an order's or offer's state refuses."""

from __future__ import annotations

import io
from typing import Any

import grpc
import pypdf
import pytest

from deploy.local.stack import Endpoints
from jiazheng.orders.events.v1 import events_pb2 as ev
from jiazheng.orders.v1 import orders_pb2 as o
from jiazheng.type.v1 import service_type_pb2
from tests.integration.harness import RunningService, ServiceHarness, eventually
from tests.integration.kafka_tools import ORDERS_TOPIC, events_about
from tests.integration.orders_client import (
    candidates,
    new_order,
    new_pair,
    offered_to,
    orders_call,
    start_hours_ahead,
)

pytestmark = pytest.mark.integration
DISTRICT = "110118"  # 密云: no other module's workers serve it
PRICE = 24_000  # four hours of elderly care at the catalogue's 60 yuan

# A clause of the company's own, unlike the defaults, so each fee shows whose rate was charged.
CLAUSE = o.CancellationTerms(
    consumer=[o.CancellationFee(notice_hours=48, percent=5), o.CancellationFee(notice_hours=6, percent=30)],
    worker=[o.CancellationFee(notice_hours=36, percent=15), o.CancellationFee(notice_hours=2, percent=40)],
)
DEFAULT_CLAUSE = o.CancellationTerms(
    consumer=[o.CancellationFee(notice_hours=24, percent=10), o.CancellationFee(notice_hours=2, percent=20)],
    worker=[o.CancellationFee(notice_hours=24, percent=10), o.CancellationFee(notice_hours=2, percent=20)],
)
OWN_TERMS = o.ContractTerms(wage_fen=19_200, management_fee_fen=4_800, cancellation=CLAUSE)
# (start in hours from now, which worker of the pair, who cancels, the terms accepted, the percent)
# A worker's bookings never overlap.
CANCELLATIONS: list[tuple[int, int, o.Party.ValueType, o.ContractTerms | None, int]] = [
    (30, 0, o.PARTY_CONSUMER, OWN_TERMS, 5),
    (3, 0, o.PARTY_CONSUMER, OWN_TERMS, 30),
    (26, 1, o.PARTY_WORKER, OWN_TERMS, 15),
    (1, 1, o.PARTY_WORKER, OWN_TERMS, 40),
    (12, 0, o.PARTY_CONSUMER, None, 10),  # no terms: the default clause
]


@pytest.fixture(scope="module")
async def pair(
    endpoints: Endpoints, harness: ServiceHarness, orders: RunningService, workers: RunningService
) -> list[tuple[str, str]]:
    """Two ready workers serving ``DISTRICT``, once matching knows them."""
    found = await new_pair(endpoints, harness, workers, DISTRICT)
    platform = harness.key("demo-platform")
    probe = await new_order(orders, platform, days_ahead=60, district=DISTRICT)
    await candidates(orders, platform, probe, {worker for worker, _ in found})
    await cancel(orders, platform, probe.name, o.PARTY_CONSUMER)
    return found


async def cancel(orders: RunningService, key: str, order: str, by: o.Party.ValueType) -> o.Order:
    request = o.CancelOrderRequest(name=order, cancelled_by=by, reason="plans changed")
    reply: o.CancelOrderResponse = await orders_call(orders, key, "CancelOrder", request)
    return reply.order


async def refusal(call: Any) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await call
    return refused.value


async def test_a_cancellation_costs_the_side_that_cancels_the_contracts_rate_for_its_notice(
    endpoints: Endpoints, harness: ServiceHarness, orders: RunningService, pair: list[tuple[str, str]]
) -> None:
    platform = harness.key("demo-platform")
    charged: dict[str, tuple[int, int]] = {}
    for hours, which, by, terms, percent in CANCELLATIONS:
        order = await new_order(orders, platform, district=DISTRICT, start=start_hours_ahead(hours))
        offer = await offered_to(orders, platform, order, pair[which][0])
        accept = o.AcceptOfferRequest(name=offer.name, terms=terms)
        accepted: o.AcceptOfferResponse = await orders_call(orders, platform, "AcceptOffer", accept)
        assert accepted.contract.terms.cancellation == (CLAUSE if terms else DEFAULT_CLAUSE)

        cancelled = await cancel(orders, platform, order.name, by)

        fee = PRICE * percent // 100
        assert (cancelled.state, cancelled.ended_by, cancelled.cancellation_fee_fen) == (
            o.ORDER_STATE_CANCELLED,
            by,
            fee,
        ), f"{hours} h ahead"
        charged[order.name] = (by, fee)

    async def published() -> dict[str, tuple[int, int]] | None:
        found = {
            name: await events_about(endpoints.kafka_bootstrap, ORDERS_TOPIC, name, ev.OrderCancelled)
            for name in charged
        }
        return (
            {name: (e.cancelled_by, e.fee_fen) for name, [e] in found.items()}
            if all(found.values())
            else None
        )

    assert await eventually(published, within=60) == charged


async def test_the_contract_document_states_the_cancellation_clause(
    harness: ServiceHarness, orders: RunningService, pair: list[tuple[str, str]]
) -> None:
    platform = harness.key("demo-platform")
    order = await new_order(orders, platform, days_ahead=40, district=DISTRICT)
    offer = await offered_to(orders, platform, order, pair[0][0])
    accept = o.AcceptOfferRequest(name=offer.name, terms=OWN_TERMS)
    contract = (await orders_call(orders, platform, "AcceptOffer", accept)).contract

    documents = {
        document_format: (
            await orders_call(
                orders,
                platform,
                "GetContract",
                o.GetContractRequest(name=contract.name, format=document_format),
            )
        ).document
        for document_format in (o.CONTRACT_FORMAT_HTML, o.CONTRACT_FORMAT_PDF)
    }

    html = documents[o.CONTRACT_FORMAT_HTML].decode()
    pdf = "".join(
        "".join(page.extract_text().split())
        for page in pypdf.PdfReader(io.BytesIO(documents[o.CONTRACT_FORMAT_PDF])).pages
    )
    assert "五、取消服务" in html
    assert "不足6小时或服务开始后取消的，支付服务费用的30%（¥72.00）" in html
    assert "取消服务" in pdf
    assert "支付服务费用的40%（¥96.00）" in pdf
    await cancel(orders, platform, order.name, o.PARTY_CONSUMER)


async def test_an_operators_catalogue_change_is_versioned_published_and_prices_the_next_order(
    endpoints: Endpoints, harness: ServiceHarness, orders: RunningService
) -> None:
    operator, platform = harness.key("operator"), harness.key("demo-platform")
    before: o.GetCatalogueResponse = await orders_call(
        orders, operator, "GetCatalogue", o.GetCatalogueRequest()
    )
    original = next(e for e in before.entries if e.service_type == service_type_pb2.SERVICE_TYPE_ORGANISING)
    dearer = o.CatalogueEntry()
    dearer.CopyFrom(original)
    dearer.price.fen_per_hour += 500
    try:
        update = o.UpdateCatalogueEntryRequest(entry=dearer, expected_version=before.version)
        changed: o.UpdateCatalogueEntryResponse = await orders_call(
            orders, operator, "UpdateCatalogueEntry", update
        )
        assert (changed.version, changed.entry) == (before.version + 1, dearer)

        stale = await refusal(orders_call(orders, operator, "UpdateCatalogueEntry", update))
        assert stale.code() == grpc.StatusCode.ABORTED  # as docs/orders.md and the proto say
        assert f"at version {changed.version}, not {before.version}" in (stale.details() or "")
        by_platform = await refusal(orders_call(orders, platform, "UpdateCatalogueEntry", update))
        assert by_platform.code() == grpc.StatusCode.PERMISSION_DENIED

        order = await new_order(
            orders, platform, days_ahead=30, service_type=service_type_pb2.SERVICE_TYPE_ORGANISING
        )
        assert (order.catalogue_version, order.price_fen) == (changed.version, 4 * dearer.price.fen_per_hour)

        async def published() -> list[Any]:
            found = await events_about(
                endpoints.kafka_bootstrap, ORDERS_TOPIC, "catalogue", ev.CatalogueChanged
            )
            return [e for e in found if e.version == changed.version]

        [event] = await eventually(published, within=60)
        assert event.entry == dearer
    finally:
        now: o.GetCatalogueResponse = await orders_call(
            orders, operator, "GetCatalogue", o.GetCatalogueRequest()
        )
        restore = o.UpdateCatalogueEntryRequest(entry=original, expected_version=now.version)
        await orders_call(orders, operator, "UpdateCatalogueEntry", restore)


async def test_a_declined_offer_goes_to_each_next_candidate_until_none_is_left(
    endpoints: Endpoints, harness: ServiceHarness, orders: RunningService, pair: list[tuple[str, str]]
) -> None:
    platform = harness.key("demo-platform")
    order = await new_order(orders, platform, days_ahead=20, district=DISTRICT)
    eligible = (await candidates(orders, platform, order, {worker for worker, _ in pair})).eligible
    first = (await orders_call(orders, platform, "OfferOrder", o.OfferOrderRequest(name=order.name))).offer
    pending = first.name
    for _ in range(eligible):
        declined = await orders_call(orders, platform, "DeclineOffer", o.DeclineOfferRequest(name=pending))
        assert declined.offer.state == o.OFFER_STATE_DECLINED
        current = (await orders_call(orders, platform, "GetOrder", o.GetOrderRequest(name=order.name))).order
        assert current.pending_offer != pending
        pending = current.pending_offer
        if not pending:
            break

    assert (current.state, current.pending_offer) == (o.ORDER_STATE_CREATED, "")
    refused = await refusal(
        orders_call(orders, platform, "AcceptOffer", o.AcceptOfferRequest(name=first.name))
    )
    assert refused.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "cannot accept an offer that is declined" in (refused.details() or "")

    async def published() -> tuple[list[str], list[Any], list[Any]] | None:
        about = (endpoints.kafka_bootstrap, ORDERS_TOPIC, order.name)
        unmatched = await events_about(*about, ev.OrderUnmatched)
        if not unmatched:
            return None
        made = [e.worker_id for e in await events_about(*about, ev.OfferMade)]
        return made, await events_about(*about, ev.OfferEnded), unmatched

    made, ended, unmatched = await eventually(published, within=60)
    assert len(made) == len(set(made)) == len(ended) == eligible  # each candidate once, each declined
    assert {worker for worker, _ in pair} <= set(made)
    assert {e.state for e in ended} == {o.OFFER_STATE_DECLINED}
    assert len(unmatched) == 1


async def test_completing_an_order_never_checked_in_is_refused_naming_its_state(
    harness: ServiceHarness, orders: RunningService, pair: list[tuple[str, str]]
) -> None:
    platform = harness.key("demo-platform")
    order = await new_order(orders, platform, days_ahead=22, district=DISTRICT)
    offer = await offered_to(orders, platform, order, pair[1][0])
    await orders_call(orders, platform, "AcceptOffer", o.AcceptOfferRequest(name=offer.name))

    refused = await refusal(orders_call(orders, platform, "CheckOut", o.CheckOutRequest(name=order.name)))

    assert refused.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert refused.details() == "cannot complete an order that is assigned (needs checked_in)"
    await cancel(orders, platform, order.name, o.PARTY_CONSUMER)
