"""gRPC OrderService: protobuf ↔ use cases, nothing else."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc

from jiazheng.orders.v1 import orders_pb2 as pb
from jiazheng.orders.v1 import orders_pb2_grpc
from libs.common.auth import Role, current_principal
from libs.common.errors import FailedPrecondition
from libs.common.protoutil import timestamp
from services.orders import contract_document, domain, queries, service_layer
from services.orders.api.convert import (
    contract_to_proto,
    draft_from_proto,
    match_to_proto,
    offer_to_proto,
    order_to_proto,
    resource_ids,
    terms_from_proto,
)
from services.orders.mapping import PARTY_FROM_PROTO
from services.orders.queries import OrderReads
from services.orders.service_layer import CardKeys, Dispatch, OrdersUnitOfWork

SERVICE = pb.DESCRIPTOR.services_by_name["OrderService"]
_PLATFORM = frozenset({Role.PLATFORM})
_PLATFORM_OR_COMPANY = frozenset({Role.PLATFORM, Role.COMPANY})
POLICY = {
    f"/{SERVICE.full_name}/{method.name}": (
        _PLATFORM_OR_COMPANY if method.name in {"AcceptOffer", "DeclineOffer"} else _PLATFORM
    )
    for method in SERVICE.methods
}
DEFAULT_CANDIDATES = 10

Context = grpc.aio.ServicerContext[Any, Any]


class OrderServicer(orders_pb2_grpc.OrderServiceServicer):
    def __init__(
        self,
        uow_factory: Callable[[], OrdersUnitOfWork],
        reads: OrderReads,
        window: domain.BookingWindow,
        dispatch: Dispatch,
        card_keys: CardKeys,
        font_path: Path | None,
    ) -> None:
        self._uow = uow_factory
        self._reads = reads
        self._window = window
        self._dispatch = dispatch
        self._card_keys = card_keys
        self._font_path = font_path

    async def CreateOrder(self, request: pb.CreateOrderRequest, context: Context) -> pb.CreateOrderResponse:
        [request_id] = resource_ids(f"requests/{request.request_id}", "request_id")
        draft = draft_from_proto(request.order)
        order = await service_layer.create_order(
            self._uow(), current_principal().tenant, request_id, draft, self._window
        )
        return pb.CreateOrderResponse(order=order_to_proto(order))

    async def GetOrder(self, request: pb.GetOrderRequest, context: Context) -> pb.GetOrderResponse:
        [order_id] = resource_ids(request.name, "name")
        order = await queries.get_order(self._reads, current_principal().tenant, order_id)
        return pb.GetOrderResponse(order=order_to_proto(order))

    async def MatchOrder(self, request: pb.MatchOrderRequest, context: Context) -> pb.MatchOrderResponse:
        [order_id] = resource_ids(request.name, "name")
        top_n = request.max_candidates or DEFAULT_CANDIDATES
        result = await service_layer.match_order(
            self._uow(), self._dispatch.matcher, current_principal().tenant, order_id, top_n
        )
        return match_to_proto(result)

    async def OfferOrder(self, request: pb.OfferOrderRequest, context: Context) -> pb.OfferOrderResponse:
        [order_id] = resource_ids(request.name, "name")
        offer = await service_layer.offer_order(
            self._uow(), self._dispatch, current_principal().tenant, order_id, request.worker_id or None
        )
        return pb.OfferOrderResponse(offer=offer_to_proto(offer))

    async def AcceptOffer(self, request: pb.AcceptOfferRequest, context: Context) -> pb.AcceptOfferResponse:
        order_id, offer_id = resource_ids(request.name, "name")
        order, contract = await service_layer.accept_offer(
            self._uow(), current_principal(), order_id, offer_id, terms_from_proto(request)
        )
        return pb.AcceptOfferResponse(
            order=order_to_proto(order), contract=contract_to_proto(contract, contract.content_hash(), None)
        )

    async def DeclineOffer(
        self, request: pb.DeclineOfferRequest, context: Context
    ) -> pb.DeclineOfferResponse:
        order_id, offer_id = resource_ids(request.name, "name")
        offer = await service_layer.decline_offer(
            self._uow(), self._dispatch, current_principal(), order_id, offer_id
        )
        return pb.DeclineOfferResponse(offer=offer_to_proto(offer))

    async def GetContract(self, request: pb.GetContractRequest, context: Context) -> pb.GetContractResponse:
        order_id, contract_id = resource_ids(request.name, "name")
        contract, sha256, ended_at = await service_layer.get_contract(
            self._uow(), current_principal().tenant, order_id, contract_id
        )
        response = pb.GetContractResponse(contract=contract_to_proto(contract, sha256, ended_at))
        if request.format == pb.CONTRACT_FORMAT_HTML:
            response.document = contract_document.render_html(contract).encode()
            response.media_type = "text/html; charset=utf-8"
        elif request.format == pb.CONTRACT_FORMAT_PDF:
            response.document = contract_document.render_pdf(contract, self._pdf_font())
            response.media_type = "application/pdf"
        return response

    def _pdf_font(self) -> Path:
        if self._font_path is None:
            raise FailedPrecondition("PDF contracts are not available here: no CJK font is installed")
        return self._font_path

    async def ReplaceWorker(
        self, request: pb.ReplaceWorkerRequest, context: Context
    ) -> pb.ReplaceWorkerResponse:
        [order_id] = resource_ids(request.name, "name")
        order, replace_by = await service_layer.replace_worker(
            self._uow(), current_principal().tenant, order_id, request.reason
        )
        return pb.ReplaceWorkerResponse(order=order_to_proto(order), replace_by_time=timestamp(replace_by))

    async def CheckIn(self, request: pb.CheckInRequest, context: Context) -> pb.CheckInResponse:
        [order_id] = resource_ids(request.name, "name")
        order = await service_layer.check_in(
            self._uow(), self._card_keys, current_principal().tenant, order_id, request.card_token
        )
        return pb.CheckInResponse(order=order_to_proto(order))

    async def CheckOut(self, request: pb.CheckOutRequest, context: Context) -> pb.CheckOutResponse:
        [order_id] = resource_ids(request.name, "name")
        order = await service_layer.check_out(self._uow(), current_principal().tenant, order_id)
        return pb.CheckOutResponse(order=order_to_proto(order))

    async def CancelOrder(self, request: pb.CancelOrderRequest, context: Context) -> pb.CancelOrderResponse:
        [order_id] = resource_ids(request.name, "name")
        by = PARTY_FROM_PROTO[request.cancelled_by]
        order = await service_layer.cancel_order(
            self._uow(), current_principal().tenant, order_id, by, request.reason
        )
        return pb.CancelOrderResponse(order=order_to_proto(order))

    async def ReportNoShow(
        self, request: pb.ReportNoShowRequest, context: Context
    ) -> pb.ReportNoShowResponse:
        [order_id] = resource_ids(request.name, "name")
        no_show = await service_layer.report_no_show(
            self._uow(), current_principal().tenant, order_id, PARTY_FROM_PROTO[request.at_fault]
        )
        return pb.ReportNoShowResponse(
            order=order_to_proto(no_show.order),
            worker_no_shows_28d=no_show.worker_no_shows_28d,
            serious_breach=no_show.serious_breach,
        )

    async def RateOrder(self, request: pb.RateOrderRequest, context: Context) -> pb.RateOrderResponse:
        [order_id] = resource_ids(request.name, "name")
        order = await service_layer.rate_order(
            self._uow(), current_principal().tenant, order_id, PARTY_FROM_PROTO[request.rater], request.stars
        )
        return pb.RateOrderResponse(order=order_to_proto(order))

    async def DisputeCharge(
        self, request: pb.DisputeChargeRequest, context: Context
    ) -> pb.DisputeChargeResponse:
        [order_id] = resource_ids(request.name, "name")
        order = await service_layer.dispute_charge(
            self._uow(),
            current_principal().tenant,
            order_id,
            PARTY_FROM_PROTO[request.disputed_by],
            request.reason,
        )
        return pb.DisputeChargeResponse(order=order_to_proto(order))
