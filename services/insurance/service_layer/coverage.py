"""Order coverage: insurance's copy of each accepted order, kept current from the orders
service's events, and the cover of its worker found when it is accepted (or its worker
replaced), published as OrderCoverageRecorded or OrderUncovered."""

from __future__ import annotations

import dataclasses
from datetime import datetime

from libs.common.auth import Principal, Role
from libs.common.errors import NotFound
from libs.common.paging import Moment, moment_page
from services.insurance import claim_events
from services.insurance.domain.orders import Order, cover_order
from services.insurance.service_layer.claim_ports import InsuranceUnitOfWork


async def accept_order(uow: InsuranceUnitOfWork, assigned: Order) -> Order:
    """An order assigned to a worker (first, or after a replacement): the copy takes the worker
    (a new worker has not checked in yet), its cover is looked for and published."""
    known = await uow.orders.get_for_update(assigned.order_id)
    if known is not None and known.worker_id == assigned.worker_id:
        assigned = dataclasses.replace(assigned, check_in=known.check_in, check_out=known.check_out)
    now = uow.clock.now()
    covered = cover_order(assigned, await uow.policies.covers_of(assigned.worker_id), now)
    await uow.orders.put(covered)
    if covered.coverage is not None and covered.coverage.covered:
        await uow.add_event(claim_events.TOPIC, claim_events.order_covered(covered, now))
    else:
        await uow.add_event(claim_events.TOPIC, claim_events.order_uncovered(covered, now))
    return covered


async def update_order(uow: InsuranceUnitOfWork, order_id: str, **changes: datetime | bool | None) -> None:
    """Keep a known order's copy current (check-in, check-out, cancellation); an order insurance
    never saw assigned is not kept."""
    known = await uow.orders.get_for_update(order_id)
    if known is not None:
        await uow.orders.put(dataclasses.replace(known, **changes))  # type: ignore[arg-type]


def may_see_order(order: Order, principal: Principal) -> bool:
    """Operators see every order; a company its own; an insurer those its policies cover."""
    insurer = order.coverage.insurer if order.coverage else ""
    return (
        principal.role is Role.OPERATOR
        or (principal.role is Role.COMPANY and principal.tenant == order.company_id)
        or (principal.role is Role.INSURER and principal.tenant == insurer)
    )


async def get_order(uow: InsuranceUnitOfWork, principal: Principal, order_id: str) -> Order:
    """An order the caller may see, with its coverage; another tenant's is NOT_FOUND."""
    async with uow:
        order = await uow.orders.get(order_id)
    if order is None or order.coverage is None or not may_see_order(order, principal):
        raise NotFound(f"orders/{order_id}")
    return order


async def uncovered_orders(
    uow: InsuranceUnitOfWork, principal: Principal, token: str, size: int
) -> tuple[list[Order], str]:
    """A page of uncovered orders (a company's own, every one for operators), the soonest due
    first (the ones to put right before their service starts), and the next token."""
    company = "" if principal.role is Role.OPERATOR else principal.tenant

    async def fetch(after: Moment | None, limit: int) -> list[Order]:
        async with uow:
            return await uow.orders.uncovered(company, after, limit)

    return await moment_page(token, size, company, fetch, lambda o: (o.scheduled_start, o.order_id))


async def worker_left(uow: InsuranceUnitOfWork, order_id: str, worker_id: str, at: datetime) -> None:
    """The order's worker was replaced (换阿姨): their service ends now; the new worker's
    assignment arrives as another acceptance and is covered again."""
    known = await uow.orders.get_for_update(order_id)
    if known is not None and known.worker_id == worker_id and known.check_in and not known.check_out:
        await uow.orders.put(dataclasses.replace(known, check_out=max(at, known.check_in)))
