"""Policy use cases: premium quotes, issuing a group policy, endorsements, reading policies by
tenant, and the durable timers of cover that changes on a later day (a worker's cover starting or
ending, a policy expiring). Each write runs in one unit of work, the policy's row locked, its
events in the outbox."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

from libs.common.auth import Principal, Role
from libs.common.beijing import beijing_day, beijing_midnight
from libs.common.errors import InvalidArgument, NotFound
from libs.common.paging import Moment, moment_page, uuid_moment
from libs.common.timers import DueTimer
from services.insurance import events
from services.insurance.domain import policies as domain
from services.insurance.domain.cover import Cover, covered_until
from services.insurance.domain.products import Catalogue, Product, pro_rata
from services.insurance.service_layer.policy_ports import PolicyFilter, PolicyKey, PolicyUnitOfWork

EXPIRY_TIMER = "insurance.policy_expiry"
COVERAGE_TIMER = "insurance.coverage_change"


@dataclass(frozen=True)
class Quote:
    """A premium quote: the annual premium and what the term given costs (``days`` of a
    ``year_days`` policy year)."""

    annual_fen: int
    pro_rata_fen: int
    days: int
    year_days: int


def product_of(catalogue: Catalogue, product_id: str, field: str = "product") -> Product:
    product = catalogue.get(product_id)
    if product is None:
        raise InvalidArgument(field, f"no product {product_id!r}")
    return product


def quote(product: Product, job_class: int, age: int, start: date, end: date | None, today: date) -> Quote:
    """What ``product`` costs a worker of ``age`` under ``job_class`` from ``start`` to ``end``
    (default: a year less a day)."""
    end = end or domain.default_end(start)
    domain.check_term(start, end, today)
    annual = product.annual_premium(job_class, age)
    year_days = (domain.year_after(start) - start).days
    days = (end - start).days + 1
    return Quote(annual, pro_rata(annual, days, year_days), days, year_days)


def today_of(uow: PolicyUnitOfWork) -> date:
    return beijing_day(uow.clock.now())


def cover_today(covers: Iterable[Cover], today: date) -> Cover | None:
    """The cover that holds ``today`` and lasts longest, as ``covered_until`` picks it."""
    holding = [c for c in covers if not c.policy_expired and c.insured.covers_day(today)]
    until = covered_until(holding, today)
    return next((c for c in holding if c.insured.end == until), None)


async def publish_coverage(uow: PolicyUnitOfWork, worker_ids: Iterable[str]) -> None:
    """WorkerCoverageChanged for each worker: their cover today, over every policy."""
    today, now = today_of(uow), uow.clock.now()
    for worker_id in dict.fromkeys(worker_ids):
        cover = cover_today(await uow.policies.covers_of(worker_id), today)
        await uow.add_event(events.TOPIC, events.coverage_changed(worker_id, cover, now))


async def coverage_changes_on(uow: PolicyUnitOfWork, day: date, worker_ids: Iterable[str]) -> None:
    """Cover changing on ``day``: published now when it is today, else when the day begins."""
    if day <= today_of(uow):
        await publish_coverage(uow, worker_ids)
        return
    for worker_id in worker_ids:
        key = f"{worker_id}/{day.isoformat()}"
        payload = {"worker_id": worker_id}
        await uow.timers.schedule(COVERAGE_TIMER, key, beijing_midnight(day), payload)


def visible(policy: domain.GroupPolicy | None, principal: Principal) -> domain.GroupPolicy:
    """The policy if ``principal`` may see it; another tenant's is NOT_FOUND, like a missing one."""
    if policy is not None and _sees(policy, principal):
        return policy
    raise NotFound("no such policy")


def _sees(policy: domain.GroupPolicy, principal: Principal) -> bool:
    if principal.role is Role.OPERATOR:
        return True
    if principal.role is Role.INSURER:
        return policy.insurer == principal.tenant
    return principal.role is Role.COMPANY and policy.company_id == principal.tenant


def buyer(principal: Principal, company_id: str) -> str:
    """The company a policy is for: a company buys for itself, an operator names the company."""
    if principal.role is Role.COMPANY:
        if company_id not in ("", principal.tenant):
            raise InvalidArgument("company", "a company buys policies for itself")
        return principal.tenant
    if not company_id:
        raise InvalidArgument("company", "is required when an operator creates a policy")
    return company_id


async def create_policy(
    uow: PolicyUnitOfWork, principal: Principal, request_id: uuid.UUID, request: domain.Issue
) -> domain.GroupPolicy:
    """Issue a group policy (or answer the one this request issued): PolicyIssued, the workers'
    coverage now or on the start day, and the expiry timer."""
    async with uow:
        # A retry is answered before the request is checked again: its start date may have passed.
        earlier = await uow.policies.issued_by(principal.tenant, request_id)
        if earlier is not None:
            return earlier
        policy = domain.issue(request, uuid.uuid4(), today_of(uow), uow.clock.now())
        earlier = await uow.policies.add_once(policy, principal.tenant, request_id)
        if earlier is not None:
            return earlier
        await uow.add_event(events.TOPIC, events.policy_issued(policy))
        await coverage_changes_on(uow, policy.start, policy.worker_ids)
        expires_at = beijing_midnight(policy.end + domain.ONE_DAY)
        await uow.timers.schedule(EXPIRY_TIMER, str(policy.policy_id), expires_at, {})
        await uow.commit()
    return policy


async def get_policy(uow: PolicyUnitOfWork, principal: Principal, policy_id: uuid.UUID) -> domain.GroupPolicy:
    async with uow:
        return visible(await uow.policies.get(policy_id), principal)


def filter_for(principal: Principal) -> PolicyFilter:
    """A company lists its own policies, an insurer its products', an operator all."""
    if principal.role is Role.COMPANY:
        return PolicyFilter(company_id=principal.tenant)
    if principal.role is Role.INSURER:
        return PolicyFilter(insurer=principal.tenant)
    return PolicyFilter()


async def list_policies(
    uow: PolicyUnitOfWork, principal: Principal, token: str, size: int
) -> tuple[list[domain.GroupPolicy], str]:
    """A page of the policies the caller may see, oldest issued first, and the next page's token."""

    async def fetch(after: Moment | None, limit: int) -> list[domain.GroupPolicy]:
        key = None if after is None else PolicyKey(*uuid_moment(after))
        async with uow:
            return await uow.policies.listing(filter_for(principal), key, limit)

    scope = f"{principal.role}:{principal.tenant}"
    return await moment_page(token, size, scope, fetch, lambda p: (p.issued_at, str(p.policy_id)))


async def endorse_policy(
    uow: PolicyUnitOfWork,
    catalogue: Catalogue,
    principal: Principal,
    policy_id: uuid.UUID,
    request_id: uuid.UUID,
    change: domain.Change,
) -> tuple[domain.GroupPolicy, domain.Endorsement]:
    """Apply an endorsement (or answer the one this request made): PolicyEndorsed, and the
    changed workers' coverage now or on the effective day."""
    async with uow:
        policy = visible(await uow.policies.get_for_update(policy_id), principal)
        earlier = policy.endorsement(request_id)
        if earlier is not None:
            return policy, earlier
        product = product_of(catalogue, policy.product_id)
        endorsed = policy.endorse(product, change, today_of(uow), uuid.uuid4(), request_id, uow.clock.now())
        endorsement = endorsed.endorsements[-1]
        await uow.policies.update(endorsed)
        await uow.add_event(events.TOPIC, events.policy_endorsed(endorsed, endorsement))
        await coverage_changes_on(uow, change.effective_date, [*endorsement.added, *endorsement.removed])
        await uow.commit()
    return endorsed, endorsement


async def policy_expiry_due(uow: PolicyUnitOfWork, timer: DueTimer) -> None:
    """The day after a policy's end began (in the timer worker's unit of work): the policy
    expires, PolicyExpired and each of its workers' coverage are published, once."""
    policy = await uow.policies.get_for_update(uuid.UUID(timer.key))
    if policy is None or policy.state is domain.PolicyState.EXPIRED:
        return
    await uow.policies.update(policy.expire())
    await uow.add_event(events.TOPIC, events.policy_expired(policy, uow.clock.now()))
    await publish_coverage(uow, policy.worker_ids)


async def coverage_change_due(uow: PolicyUnitOfWork, timer: DueTimer) -> None:
    """A day on which a worker's cover starts or ends began: their coverage is published."""
    await publish_coverage(uow, [timer.payload["worker_id"]])
