"""Use cases: the visit and its end. Check-in by the card scan (确认入户), check-out, cancellation,
no-shows, ratings, and replacing the worker (换阿姨)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from libs.common.card_token import CardVerification, token_from_scan, verify_with_keys
from libs.common.errors import FailedPrecondition, NotFound
from services.orders import domain, events
from services.orders.domain import contract as c
from services.orders.service_layer.offers import withdraw_pending_offer
from services.orders.service_layer.orders import locked_order
from services.orders.service_layer.ports import OrdersUnitOfWork


@dataclass(frozen=True)
class CardKeys:
    """The workers service's published card keys (its JWK Set), to verify a scanned card offline."""

    keys: Mapping[str, Ed25519PublicKey]

    def verify(self, token: str, now: datetime) -> CardVerification:
        return verify_with_keys(token, self.keys, now)


def _card_problem(verification: CardVerification) -> str | None:
    if not verification.valid:
        return f"the card is not valid: {verification.check}"
    return None


async def check_in(
    uow: OrdersUnitOfWork, card_keys: CardKeys, platform_id: str, order_id: uuid.UUID, token: str
) -> domain.Order:
    """确认入户: the card's signature offline, then its status as this service keeps it."""
    async with uow:
        order = await locked_order(uow, order_id, platform_id)
        order.require(domain.OrderState.ASSIGNED, doing="check in")
        now = uow.clock.now()
        verification = card_keys.verify(token_from_scan(token), now)
        if (problem := _card_problem(verification)) is not None or verification.claims is None:
            raise FailedPrecondition(problem or "the card is not valid")
        claims = verification.claims
        if claims.worker_ref != order.assigned_worker_id:
            raise FailedPrecondition("the card scanned is not the card of the worker assigned to this order")
        await _check_card_on_file(uow, claims.worker_ref, claims.card_id)
        checked_in = domain.check_in(order, claims.worker_ref, claims.card_id, now)
        await uow.orders.update(checked_in)
        await uow.add_event(events.TOPIC, events.order_checked_in(checked_in))
        await uow.commit()
    return checked_in


async def _check_card_on_file(uow: OrdersUnitOfWork, worker_id: str, card_id: str) -> None:
    card = await uow.eligibility.card_on_file(worker_id)
    if card is None or card.card_id != card_id or card.revoked:
        raise FailedPrecondition("the card was revoked or replaced by a newer card")
    if card.colour is not domain.CardColour.GREEN:
        raise FailedPrecondition(f"the worker's card is {card.colour.upper()}: only a GREEN card may enter")


async def check_out(uow: OrdersUnitOfWork, platform_id: str, order_id: uuid.UUID) -> domain.Order:
    async with uow:
        order = await locked_order(uow, order_id, platform_id)
        completed = domain.check_out(order, uow.clock.now())
        worker_id = completed.assigned_worker_id or ""
        await uow.orders.update(completed)
        await uow.eligibility.touch(worker_id)
        company = await uow.eligibility.company_of(worker_id)
        await uow.add_event(events.TOPIC, events.order_completed(completed, company or ""))
        await uow.commit()
    return completed


async def cancel_order(
    uow: OrdersUnitOfWork, platform_id: str, order_id: uuid.UUID, by: domain.Party, reason: str
) -> domain.Order:
    """Cancel before check-in; the fee follows the cancellation clause of the order's contract
    (docs/orders.md)."""
    async with uow:
        order = await locked_order(uow, order_id, platform_id)
        cancelled = domain.cancel(order, by, uow.clock.now(), await _contract_in_force(uow, order))
        await withdraw_pending_offer(uow, order)
        await uow.orders.update(cancelled)
        if cancelled.assigned_worker_id:
            await uow.eligibility.touch(cancelled.assigned_worker_id)
        await uow.add_event(events.TOPIC, events.order_cancelled(order, cancelled, reason))
        await uow.commit()
    return cancelled


async def _contract_in_force(uow: OrdersUnitOfWork, order: domain.Order) -> c.Contract | None:
    """The contract of the worker assigned; an order waiting for a worker has none (after a
    replacement, the one it names has ended)."""
    if order.state is not domain.OrderState.ASSIGNED or order.contract_id is None:
        return None
    stored = await uow.contracts.get(order.contract_id)
    return stored.contract if stored else None


async def report_no_show(
    uow: OrdersUnitOfWork, platform_id: str, order_id: uuid.UUID, at_fault: domain.Party
) -> domain.NoShow:
    async with uow:
        order = await locked_order(uow, order_id, platform_id)
        now = uow.clock.now()
        worker_id = order.assigned_worker_id or ""
        earlier = await uow.orders.worker_no_shows_since(worker_id, now - domain.order.NO_SHOW_WINDOW)
        no_show = domain.report_no_show(order, at_fault, now, earlier)
        await uow.orders.update(no_show.order)
        await uow.eligibility.touch(worker_id)
        company = await uow.eligibility.company_of(worker_id)
        await uow.add_event(events.TOPIC, events.no_show_reported(no_show, company or ""))
        await uow.commit()
    return no_show


async def rate_order(
    uow: OrdersUnitOfWork, platform_id: str, order_id: uuid.UUID, rater: domain.Party, stars: int
) -> domain.Order:
    """A rating from one side; the consumer's stars count in the worker's matching score."""
    async with uow:
        order = await locked_order(uow, order_id, platform_id)
        rated = domain.rate(order, rater, stars)
        await uow.orders.update(rated)
        if rater is domain.Party.CONSUMER and rated.assigned_worker_id:
            await uow.eligibility.record_rating(rated.assigned_worker_id, stars)
        await uow.add_event(events.TOPIC, events.rating_posted(rated, rater, stars, uow.clock.now()))
        await uow.commit()
    return rated


async def replace_worker(
    uow: OrdersUnitOfWork, platform_id: str, order_id: uuid.UUID, reason: str
) -> tuple[domain.Order, datetime]:
    """换阿姨: the contract ends; the company has until the returned time to offer a new worker."""
    async with uow:
        order = await locked_order(uow, order_id, platform_id)
        waiting = domain.replace_worker(order)
        now = uow.clock.now()
        if order.contract_id is not None:
            await uow.contracts.end(order.contract_id, now)
        await uow.orders.update(waiting)
        await uow.eligibility.touch(order.assigned_worker_id or "")
        replace_by = c.replacement_due(now)
        await uow.add_event(events.TOPIC, events.worker_replaced(order, replace_by, now, reason))
        await uow.commit()
    return waiting, replace_by


async def get_contract(
    uow: OrdersUnitOfWork, platform_id: str, order_id: uuid.UUID, contract_id: uuid.UUID
) -> tuple[c.Contract, str, datetime | None]:
    """One of the order's contracts: content, SHA-256 and when it ended."""
    async with uow:
        order = await uow.orders.get(order_id)
        stored = await uow.contracts.get(contract_id)
    if (
        order is None
        or order.platform_id != platform_id
        or stored is None
        or stored.contract.order_id != order_id
    ):
        raise NotFound(f"orders/{order_id}/contracts/{contract_id}")
    return stored.contract, stored.content_sha256, stored.ended_at


async def dispute_charge(
    uow: OrdersUnitOfWork, platform_id: str, order_id: uuid.UUID, by: domain.Party, reason: str
) -> domain.Order:
    """The side charged disputes the fee or the no-show; the complaints service takes it up."""
    async with uow:
        order = await locked_order(uow, order_id, platform_id)
        disputed, charge = domain.dispute_charge(order, by)
        await uow.orders.update(disputed)
        company = await uow.eligibility.company_of(disputed.assigned_worker_id or "")
        now = uow.clock.now()
        await uow.add_event(
            events.TOPIC, events.charge_disputed(disputed, charge, by, reason, company or "", now)
        )
        await uow.commit()
    return disputed
