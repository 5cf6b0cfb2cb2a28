"""The events orders publishes (its contract, protos/jiazheng/orders/events/v1/events.proto).

Keyed by the order's resource name (the catalogue's events by ``catalogue``), so one order's
events stay in order. None carries personal data: no consumer reference, contact or address.
"""

from __future__ import annotations

from datetime import datetime

from google.protobuf.message import Message

from jiazheng.orders.events.v1 import events_pb2 as ev
from libs.common.events import EventEnvelope, new_event
from libs.common.kafka import events_topic
from libs.common.protoutil import timestamp
from services.orders import domain
from services.orders.domain.contract import Contract
from services.orders.mapping import (
    OFFER_STATE_TO_PROTO,
    PARTY_TO_PROTO,
    SERVICE_TYPE_TO_PROTO,
    SPECIAL_NEED_TO_PROTO,
    catalogue_entry_to_proto,
)

SOURCE = "/jiazheng/orders"
TOPIC = events_topic("orders")


def _about(order_id: object, message: Message, time: datetime) -> EventEnvelope:
    return new_event(message, source=SOURCE, subject=f"orders/{order_id}", time=time)


def order_created(order: domain.Order) -> EventEnvelope:
    d = order.draft
    message = ev.OrderCreated(
        order_id=str(order.order_id),
        platform_id=order.platform_id,
        service_type=SERVICE_TYPE_TO_PROTO[d.service_type],
        district_code=d.district_code,
        worker_id=d.worker_id or "",
        scheduled_start_time=timestamp(d.scheduled_start),
        duration_hours=d.duration_hours,
        create_time=timestamp(order.created_at),
        price_fen=order.price_fen,
        special_needs=[SPECIAL_NEED_TO_PROTO[n] for n in d.special_needs],
        catalogue_version=order.catalogue_version,
    )
    return _about(order.order_id, message, order.created_at)


def catalogue_changed(
    catalogue: domain.Catalogue, entry: domain.CatalogueEntry, at: datetime
) -> EventEnvelope:
    message = ev.CatalogueChanged(
        version=catalogue.version, entry=catalogue_entry_to_proto(entry), change_time=timestamp(at)
    )
    return new_event(message, source=SOURCE, subject="catalogue", time=at)


def offer_made(offer: domain.Offer) -> EventEnvelope:
    message = ev.OfferMade(
        order_id=str(offer.order_id),
        offer_id=str(offer.offer_id),
        worker_id=offer.worker_id,
        expire_time=timestamp(offer.expires_at),
        rank=offer.rank,
        score=offer.score,
    )
    return _about(offer.order_id, message, offer.created_at)


def offer_ended(offer: domain.Offer, at: datetime) -> EventEnvelope:
    message = ev.OfferEnded(
        order_id=str(offer.order_id),
        offer_id=str(offer.offer_id),
        worker_id=offer.worker_id,
        state=OFFER_STATE_TO_PROTO[offer.state],
        end_time=timestamp(at),
    )
    return _about(offer.order_id, message, at)


def order_unmatched(order: domain.Order, at: datetime) -> EventEnvelope:
    return _about(order.order_id, ev.OrderUnmatched(order_id=str(order.order_id), time=timestamp(at)), at)


def order_assigned(
    order: domain.Order, offer: domain.Offer, contract: Contract, company_id: str
) -> EventEnvelope:
    d = order.draft
    message = ev.OrderAssigned(
        order_id=str(order.order_id),
        offer_id=str(offer.offer_id),
        worker_id=offer.worker_id,
        company_id=company_id,
        contract_id=str(contract.contract_id),
        contract_sha256=contract.content_hash(),
        replaces_contract_id=str(contract.replaces_contract_id or ""),
        service_type=SERVICE_TYPE_TO_PROTO[d.service_type],
        district_code=d.district_code,
        scheduled_start_time=timestamp(d.scheduled_start),
        scheduled_end_time=timestamp(d.scheduled_end),
        price_fen=order.price_fen,
        trial_end_time=timestamp(contract.trial_ends_at),
        platform_id=order.platform_id,
    )
    return _about(order.order_id, message, contract.created_at)


def worker_replaced(order: domain.Order, replace_by: datetime, at: datetime, reason: str) -> EventEnvelope:
    message = ev.WorkerReplaced(
        order_id=str(order.order_id),
        worker_id=order.assigned_worker_id or "",
        contract_id=str(order.contract_id or ""),
        replace_by_time=timestamp(replace_by),
        time=timestamp(at),
    )
    return _about(order.order_id, message, at)


def order_checked_in(order: domain.Order) -> EventEnvelope:
    at = order.check_in_at or order.created_at
    message = ev.OrderCheckedIn(
        order_id=str(order.order_id),
        worker_id=order.assigned_worker_id or "",
        card_id=order.card_id or "",
        check_in_time=timestamp(at),
        district_code=order.draft.district_code,
        service_type=SERVICE_TYPE_TO_PROTO[order.draft.service_type],
    )
    return _about(order.order_id, message, at)


def order_completed(order: domain.Order, company_id: str) -> EventEnvelope:
    at = order.check_out_at or order.created_at
    message = ev.OrderCompleted(
        order_id=str(order.order_id),
        worker_id=order.assigned_worker_id or "",
        company_id=company_id,
        check_in_time=timestamp(order.check_in_at or at),
        check_out_time=timestamp(at),
        service_type=SERVICE_TYPE_TO_PROTO[order.draft.service_type],
        district_code=order.draft.district_code,
        price_fen=order.price_fen,
        platform_id=order.platform_id,
    )
    return _about(order.order_id, message, at)


def order_cancelled(before: domain.Order, cancelled: domain.Order, reason: str) -> EventEnvelope:
    at = cancelled.ended_at or cancelled.created_at
    ahead = (cancelled.draft.scheduled_start - at).total_seconds() // 3600
    message = ev.OrderCancelled(
        order_id=str(cancelled.order_id),
        cancelled_by=PARTY_TO_PROTO[cancelled.ended_by or domain.Party.CONSUMER],
        fee_fen=cancelled.cancellation_fee_fen,
        worker_id=before.assigned_worker_id or "",
        hours_before_start=int(ahead),
        time=timestamp(at),
        reason=reason,
    )
    return _about(cancelled.order_id, message, at)


def no_show_reported(no_show: domain.NoShow, company_id: str) -> EventEnvelope:
    order = no_show.order
    at = order.ended_at or order.created_at
    message = ev.NoShowReported(
        order_id=str(order.order_id),
        at_fault=PARTY_TO_PROTO[order.ended_by or domain.Party.WORKER],
        worker_id=order.assigned_worker_id or "",
        company_id=company_id,
        worker_no_shows_28d=no_show.worker_no_shows_28d,
        serious_breach=no_show.serious_breach,
        time=timestamp(at),
    )
    return _about(order.order_id, message, at)


def rating_posted(order: domain.Order, rater: domain.Party, stars: int, at: datetime) -> EventEnvelope:
    message = ev.RatingPosted(
        order_id=str(order.order_id),
        rater=PARTY_TO_PROTO[rater],
        stars=stars,
        worker_id=order.assigned_worker_id or "",
        time=timestamp(at),
    )
    return _about(order.order_id, message, at)


def charge_disputed(
    order: domain.Order, charge: str, by: domain.Party, reason: str, company_id: str, at: datetime
) -> EventEnvelope:
    message = ev.ChargeDisputed(
        order_id=str(order.order_id),
        platform_id=order.platform_id,
        charge=charge,
        disputed_by=PARTY_TO_PROTO[by],
        amount_fen=order.cancellation_fee_fen if charge == "cancellation_fee" else 0,
        worker_id=order.assigned_worker_id or "",
        company_id=company_id,
        district_code=order.draft.district_code,
        reason=reason,
        time=timestamp(at),
    )
    return _about(order.order_id, message, at)
