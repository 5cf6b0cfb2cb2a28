"""Protobuf ↔ domain for the orders APIs: orders, offers, contracts, match results."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from google.protobuf.timestamp_pb2 import Timestamp

from jiazheng.orders.v1 import orders_pb2 as pb
from libs.common.errors import InvalidArgument
from libs.common.pii import mask_address, mask_name, mask_phone
from libs.common.protoutil import timestamp
from services.orders import domain
from services.orders.domain import contract as c
from services.orders.mapping import (
    OFFER_STATE_TO_PROTO,
    ORDER_STATE_TO_PROTO,
    PARTY_TO_PROTO,
    SERVICE_TYPE_FROM_PROTO,
    SERVICE_TYPE_TO_PROTO,
    SPECIAL_NEED_FROM_PROTO,
    SPECIAL_NEED_TO_PROTO,
)


def resource_ids(name: str, field: str) -> list[uuid.UUID]:
    """The ids of a resource name such as orders/{order_id}/offers/{offer_id} (every other segment)."""
    try:
        return [uuid.UUID(part) for part in name.split("/")[1::2]]
    except ValueError:
        raise InvalidArgument(field, "must name the resource with UUIDs") from None


def _time(moment: datetime | None) -> Timestamp | None:
    return timestamp(moment) if moment is not None else None


def order_to_proto(order: domain.Order) -> pb.Order:
    """The order as answered: the contact and address masked (masking a masked value keeps it)."""
    d = order.draft
    contact = (
        pb.Contact(full_name=mask_name(d.contact.full_name), mobile=mask_phone(d.contact.mobile))
        if d.contact
        else None
    )
    return pb.Order(
        name=order.name,
        platform_id=order.platform_id,
        service_type=SERVICE_TYPE_TO_PROTO[d.service_type],
        district_code=d.district_code,
        consumer_ref=d.consumer_ref,
        worker_id=d.worker_id or "",
        scheduled_start_time=timestamp(d.scheduled_start),
        duration_hours=d.duration_hours,
        state=ORDER_STATE_TO_PROTO[order.state],
        create_time=timestamp(order.created_at),
        contact=contact,
        address=mask_address(d.address),
        price_fen=order.price_fen,
        special_needs=[SPECIAL_NEED_TO_PROTO[n] for n in d.special_needs],
        catalogue_version=order.catalogue_version,
        assigned_worker_id=order.assigned_worker_id or "",
        contract=f"{order.name}/contracts/{order.contract_id}" if order.contract_id else "",
        pending_offer=f"{order.name}/offers/{order.pending_offer_id}" if order.pending_offer_id else "",
        check_in_time=_time(order.check_in_at),
        check_out_time=_time(order.check_out_at),
        ended_by=PARTY_TO_PROTO[order.ended_by] if order.ended_by else pb.PARTY_UNSPECIFIED,
        cancellation_fee_fen=order.cancellation_fee_fen,
        consumer_rating=order.consumer_rating or 0,
        worker_rating=order.worker_rating or 0,
    )


def draft_from_proto(order: pb.Order) -> domain.OrderDraft:
    contact = (
        domain.Contact(order.contact.full_name, order.contact.mobile) if order.HasField("contact") else None
    )
    return domain.OrderDraft(
        service_type=SERVICE_TYPE_FROM_PROTO[order.service_type],
        district_code=order.district_code,
        consumer_ref=order.consumer_ref,
        worker_id=order.worker_id or None,
        scheduled_start=order.scheduled_start_time.ToDatetime(tzinfo=UTC),
        duration_hours=order.duration_hours,
        contact=contact,
        address=order.address,
        price_fen=order.price_fen,
        special_needs=tuple(SPECIAL_NEED_FROM_PROTO[n] for n in order.special_needs),
    )


def offer_to_proto(offer: domain.Offer) -> pb.Offer:
    return pb.Offer(
        name=offer.name,
        worker=f"workers/{offer.worker_id}",
        state=OFFER_STATE_TO_PROTO[offer.state],
        create_time=timestamp(offer.created_at),
        expire_time=timestamp(offer.expires_at),
    )


def terms_from_proto(request: pb.AcceptOfferRequest) -> c.ContractTerms | None:
    """The terms the company set, or None for the defaults. The payment cycle is the service
    type's (the use case sets it); wage and fee must add up to the price (the contract checks)."""
    if not request.HasField("terms"):
        return None
    t = request.terms
    return c.ContractTerms(
        t.wage_fen,
        t.management_fee_fen,
        t.deposit_fen,
        c.PaymentCycle.PER_VISIT,
        t.trial_days,
        cancellation=cancellation_from_proto(t.cancellation) if t.HasField("cancellation") else None,
    )


def cancellation_from_proto(clause: pb.CancellationTerms) -> c.CancellationTerms:
    consumer, worker = (
        tuple(c.CancellationFee(fee.notice_hours, fee.percent) for fee in fees)
        for fees in (clause.consumer, clause.worker)
    )
    return c.CancellationTerms(consumer, worker)


def cancellation_to_proto(clause: c.CancellationTerms | None) -> pb.CancellationTerms | None:
    if clause is None:
        return None
    consumer, worker = (
        [pb.CancellationFee(notice_hours=fee.notice_hours, percent=fee.percent) for fee in fees]
        for fees in (clause.consumer, clause.worker)
    )
    return pb.CancellationTerms(consumer=consumer, worker=worker)


def contract_to_proto(contract: c.Contract, sha256: str, ended_at: datetime | None) -> pb.Contract:
    t = contract.terms
    return pb.Contract(
        name=f"orders/{contract.order_id}/contracts/{contract.contract_id}",
        worker=f"workers/{contract.parties.worker_id}",
        content_sha256=sha256,
        replaces=(
            f"orders/{contract.order_id}/contracts/{contract.replaces_contract_id}"
            if contract.replaces_contract_id
            else ""
        ),
        trial_end_time=timestamp(contract.trial_ends_at),
        create_time=timestamp(contract.created_at),
        end_time=_time(ended_at),
        terms=pb.ContractTerms(
            wage_fen=t.wage_fen,
            management_fee_fen=t.management_fee_fen,
            deposit_fen=t.deposit_fen,
            trial_days=t.trial_days,
            cancellation=cancellation_to_proto(t.cancellation),
        ),
    )


def match_to_proto(result: domain.MatchResult) -> pb.MatchOrderResponse:
    return pb.MatchOrderResponse(
        candidates=[
            pb.Candidate(
                worker=f"workers/{candidate.worker_id}",
                score=candidate.score,
                components=pb.ScoreComponents(
                    credit=candidate.components.credit,
                    rating=candidate.components.rating,
                    skill_above_minimum=candidate.components.skill_above_minimum,
                    district_distance=candidate.components.district_distance,
                    load=candidate.components.load,
                ),
                passed_rules=[str(rule) for rule in candidate.passed],
            )
            for candidate in result.candidates
        ],
        exclusions=[pb.RuleExclusion(rule=str(rule), excluded=n) for rule, n in result.excluded.items()],
        eligible=result.eligible,
    )
