"""Use cases: matching an order, offering it, and the worker's answer (accept, decline, no answer).

An offer waits ``offer_timeout`` for an answer (a durable timer, ``OFFER_TIMER``); a declined or
expired offer goes to the next candidate the order was never offered to, by itself. Accepting
makes the model contract in the same unit of work.
"""

from __future__ import annotations

import dataclasses
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Protocol

from libs.common.auth import Principal, Role
from libs.common.errors import FailedPrecondition, NotFound
from libs.common.timers import DueTimer
from services.orders import domain, events
from services.orders.domain import contract as c
from services.orders.domain.matching import first_failed_rule, score_components
from services.orders.service_layer.orders import locked_order
from services.orders.service_layer.ports import OrdersUnitOfWork

OFFER_TIMER = "orders.offer_expiry"


class Matcher(Protocol):
    """The workers' eligibility as this service keeps it (services/orders/eligibility.py)."""

    def match(
        self, request: domain.MatchRequest, catalogue: domain.Catalogue, top_n: int
    ) -> domain.MatchResult: ...

    def get(self, worker_id: str) -> domain.WorkerEligibility | None: ...


@dataclass(frozen=True)
class Dispatch:
    """What offering needs beside storage: the eligibility index and how long an offer waits."""

    matcher: Matcher
    offer_timeout: timedelta


def match_request(order: domain.Order) -> domain.MatchRequest:
    d = order.draft
    return domain.MatchRequest(d.service_type, d.district_code, d.scheduled_start, d.scheduled_end)


async def match_order(
    uow: OrdersUnitOfWork, matcher: Matcher, platform_id: str, order_id: uuid.UUID, top_n: int
) -> domain.MatchResult:
    """The ranked candidates for one of the platform's orders, with the exclusions by rule."""
    async with uow:
        order = await uow.orders.get(order_id)
        if order is None or order.platform_id != platform_id:
            raise NotFound(f"orders/{order_id}")
        return matcher.match(match_request(order), await uow.catalogue.current(), top_n)


async def offer_order(
    uow: OrdersUnitOfWork, dispatch: Dispatch, platform_id: str, order_id: uuid.UUID, worker_id: str | None
) -> domain.Offer:
    """Offer the order to ``worker_id`` (who must be eligible), else to the worker the platform
    booked when the order was created (the first time), else to the best candidate not yet offered it."""
    async with uow:
        order = await locked_order(uow, order_id, platform_id)
        order.require(domain.OrderState.CREATED, doing="offer")
        named = worker_id or await _booked_worker(uow, order)
        offer = await (_offer_named if named else _offer_next)(uow, dispatch, order, named or "")
        if offer is None:
            raise FailedPrecondition("no eligible worker is left who was not offered this order")
        await uow.commit()
    return offer


async def _booked_worker(uow: OrdersUnitOfWork, order: domain.Order) -> str | None:
    booked = order.draft.worker_id
    if booked and booked not in await uow.offers.offered_workers(order.order_id):
        return booked
    return None


async def _offer_named(
    uow: OrdersUnitOfWork, dispatch: Dispatch, order: domain.Order, worker_id: str
) -> domain.Offer:
    worker = dispatch.matcher.get(worker_id)
    needs = (await uow.catalogue.current()).entry(order.draft.service_type)
    if worker is None:
        raise FailedPrecondition(f"worker {worker_id} is not known to matching")
    failed = first_failed_rule(worker, match_request(order), needs)
    if failed is not None:
        raise FailedPrecondition(
            f"worker {worker_id} is not eligible for this order: fails the {failed} rule"
        )
    score = score_components(worker, order.draft.district_code, needs.min_skill_level).total
    return await _make_offer(uow, dispatch, order, worker_id, 0, score)


async def _offer_next(
    uow: OrdersUnitOfWork, dispatch: Dispatch, order: domain.Order, _: str = ""
) -> domain.Offer | None:
    """Offer to the best candidate never offered this order; None when none is left."""
    offered = await uow.offers.offered_workers(order.order_id)
    catalogue = await uow.catalogue.current()
    result = dispatch.matcher.match(match_request(order), catalogue, len(offered) + 1)
    ranked = enumerate(result.candidates, start=1)
    found = next(((rank, c) for rank, c in ranked if c.worker_id not in offered), None)
    if found is None:
        return None
    rank, candidate = found
    return await _make_offer(uow, dispatch, order, candidate.worker_id, rank, candidate.score)


async def _make_offer(
    uow: OrdersUnitOfWork, dispatch: Dispatch, order: domain.Order, worker_id: str, rank: int, score: int
) -> domain.Offer:
    now = uow.clock.now()
    offered, offer = domain.make_offer(order, worker_id, now, dispatch.offer_timeout, rank, score)
    await uow.orders.update(offered)
    await uow.offers.add(offer)
    await uow.timers.schedule(
        OFFER_TIMER, str(offer.offer_id), offer.expires_at, {"order_id": str(order.order_id)}
    )
    await uow.add_event(events.TOPIC, events.offer_made(offer))
    return offer


async def _order_and_offer(
    uow: OrdersUnitOfWork, principal: Principal, order_id: uuid.UUID, offer_id: uuid.UUID
) -> tuple[domain.Order, domain.Offer]:
    """The order (locked) and its offer as ``principal`` may see them: the order's platform, or the
    company of the worker offered it."""
    platform = principal.tenant if principal.role is Role.PLATFORM else None
    order = await locked_order(uow, order_id, platform)
    offer = await uow.offers.get(offer_id)
    if offer is None or offer.order_id != order_id:
        raise NotFound(f"orders/{order_id}/offers/{offer_id}")
    if (
        principal.role is Role.COMPANY
        and await uow.eligibility.company_of(offer.worker_id) != principal.tenant
    ):
        raise NotFound(f"orders/{order_id}/offers/{offer_id}")
    return order, offer


async def accept_offer(
    uow: OrdersUnitOfWork,
    principal: Principal,
    order_id: uuid.UUID,
    offer_id: uuid.UUID,
    terms: c.ContractTerms | None,
) -> tuple[domain.Order, c.Contract]:
    """The worker accepts: the order is assigned to them and the model contract made."""
    async with uow:
        order, offer = await _order_and_offer(uow, principal, order_id, offer_id)
        assigned, accepted = domain.accept_offer(order, offer, uuid.uuid4())
        contract = await _contract(uow, order, assigned, terms)
        await uow.orders.update(assigned)
        await uow.offers.update(accepted)
        await uow.contracts.add(contract)
        await uow.timers.cancel(OFFER_TIMER, str(offer_id))
        await uow.eligibility.touch(offer.worker_id)
        company = await uow.eligibility.company_of(offer.worker_id)
        await uow.add_event(events.TOPIC, events.order_assigned(assigned, accepted, contract, company or ""))
        await uow.commit()
    return assigned, contract


async def _contract(
    uow: OrdersUnitOfWork, before: domain.Order, assigned: domain.Order, terms: c.ContractTerms | None
) -> c.Contract:
    """The contract of ``assigned``: a new one, or, after a replacement (换阿姨), the one that
    follows the order's earlier contract, same terms, the trial restarting."""
    worker_id = assigned.assigned_worker_id or ""
    contract_id = assigned.contract_id or uuid.uuid4()
    card = await uow.eligibility.card_on_file(worker_id)
    card_id = card.card_id if card and card.card_id else ""
    now = uow.clock.now()
    previous = await uow.contracts.get(before.contract_id) if before.contract_id else None
    if previous is not None:
        return c.replacement_contract(previous.contract, contract_id, worker_id, card_id, now)
    contact, address = await uow.orders.particulars(assigned.order_id)
    parties = c.ContractParties(
        platform_id=assigned.platform_id,
        company_id=await uow.eligibility.company_of(worker_id) or "",
        worker_id=worker_id,
        card_id=card_id,
        consumer_ref=assigned.draft.consumer_ref,
        consumer_name=contact.full_name,
        consumer_phone=contact.mobile,
        address=address,
    )
    d = assigned.draft
    service = c.ContractService(
        d.service_type,
        d.district_code,
        d.scheduled_start,
        d.scheduled_end,
        d.duration_hours,
        tuple(d.special_needs),
        assigned.price_fen,
    )
    hourly = isinstance((await uow.catalogue.current()).entry(d.service_type).price, domain.HourlyRate)
    defaults = c.default_terms(d.service_type, assigned.price_fen, hourly)
    # The payment cycle follows the price rule: hourly services per visit, term prices monthly;
    # terms without a cancellation clause get the default one.
    agreed = (
        dataclasses.replace(
            terms,
            payment_cycle=defaults.payment_cycle,
            cancellation=terms.cancellation or defaults.cancellation,
        )
        if terms
        else defaults
    )
    return c.draft_contract(contract_id, assigned.order_id, parties, service, agreed, now)


async def decline_offer(
    uow: OrdersUnitOfWork, dispatch: Dispatch, principal: Principal, order_id: uuid.UUID, offer_id: uuid.UUID
) -> domain.Offer:
    """The worker declines; the order goes to the next candidate."""
    async with uow:
        order, offer = await _order_and_offer(uow, principal, order_id, offer_id)
        declined = await _end_and_move_on(uow, dispatch, order, offer, domain.OfferState.DECLINED)
        await uow.timers.cancel(OFFER_TIMER, str(offer_id))
        await uow.commit()
    return declined


async def _end_and_move_on(
    uow: OrdersUnitOfWork,
    dispatch: Dispatch,
    order: domain.Order,
    offer: domain.Offer,
    state: domain.OfferState,
) -> domain.Offer:
    waiting, ended = domain.end_offer(order, offer, state)
    await uow.orders.update(waiting)
    await uow.offers.update(ended)
    await uow.add_event(events.TOPIC, events.offer_ended(ended, uow.clock.now()))
    if await _offer_next(uow, dispatch, waiting) is None:
        await uow.add_event(events.TOPIC, events.order_unmatched(waiting, uow.clock.now()))
    return ended


async def expire_offer(uow: OrdersUnitOfWork, dispatch: Dispatch, timer: DueTimer) -> None:
    """The offer timer fired (in the timer worker's unit of work): no answer came, move on."""
    order = await locked_order(uow, uuid.UUID(str(timer.payload["order_id"])), None)
    offer = await uow.offers.get(uuid.UUID(timer.key))
    if offer is not None and offer.state is domain.OfferState.PENDING:
        await _end_and_move_on(uow, dispatch, order, offer, domain.OfferState.EXPIRED)


async def withdraw_pending_offer(uow: OrdersUnitOfWork, order: domain.Order) -> None:
    """The order is cancelled while an offer waits: the offer is withdrawn."""
    if order.pending_offer_id is None:
        return
    offer = await uow.offers.get(order.pending_offer_id)
    if offer is not None and offer.state is domain.OfferState.PENDING:
        withdrawn = dataclasses.replace(offer, state=domain.OfferState.WITHDRAWN)
        await uow.offers.update(withdrawn)
        await uow.timers.cancel(OFFER_TIMER, str(offer.offer_id))
        await uow.add_event(events.TOPIC, events.offer_ended(withdrawn, uow.clock.now()))
