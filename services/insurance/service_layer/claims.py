"""Claim use cases: filing (by hand or from a complaint's compensation), adjudication, payment and
the contest of a denial. Each runs in one unit of work, the claim's row locked before its events
are written."""

from __future__ import annotations

import uuid
from datetime import datetime

from libs.common.auth import Principal, Role
from libs.common.beijing import beijing_day
from libs.common.errors import AlreadyExists, NotFound
from libs.common.paging import Moment, moment_page, uuid_moment
from services.insurance import claim_events
from services.insurance.domain import claims as domain
from services.insurance.domain.cover import Cover
from services.insurance.domain.orders import Order
from services.insurance.service_layer.claim_ports import (
    ClaimFilter,
    ClaimKey,
    ClaimRules,
    InsuranceUnitOfWork,
)

AUTOMATIC_CLAIMS = uuid.UUID("0b8f0c7e-93b5-4a53-8d1c-2f4a6e9d5c31")  # namespace of automatic claims' ids


def automatic_claim_id(case_id: str) -> uuid.UUID:
    """The id of the claim a complaints case's compensation files: one case, one claim."""
    return uuid.uuid5(AUTOMATIC_CLAIMS, case_id)


def may_see(claim: domain.Claim, principal: Principal) -> bool:
    """Operators see every claim; a company its own; an insurer those on its cover."""
    return (
        principal.role is Role.OPERATOR
        or (principal.role is Role.COMPANY and principal.tenant == claim.company_id)
        or (principal.role is Role.INSURER and principal.tenant == claim.insurer)
    )


async def _cover(
    uow: InsuranceUnitOfWork, worker_id: str, order: Order | None, moment: datetime
) -> Cover | None:
    """The cover of ``worker_id`` a claim on ``order`` at ``moment`` is judged against."""
    recorded = order.coverage.policy_id if order and order.coverage else None
    covers = await uow.policies.covers_of(worker_id)
    return domain.cover_for(covers, order.service_type if order else None, beijing_day(moment), recorded)


async def _standing(uow: InsuranceUnitOfWork, rules: ClaimRules, claim: domain.Claim) -> domain.Standing:
    """The claim's cover on the policy it was filed against, its product and the limit used."""
    if claim.policy_id is None:
        return domain.Standing(None, {}, frozenset())
    covers = [
        c for c in await uow.policies.covers_of(claim.worker_id) if c.insured.policy_id == claim.policy_id
    ]
    day = beijing_day(claim.filing.incident_time or claim.report_time)
    cover = domain.cover_for(covers, claim.service_type, day, claim.policy_id)
    product = rules.catalogue.get(claim.product_id)
    used = await uow.claims.used_fen(claim.policy_id, claim.worker_id, claim.filing.kind, claim.claim_id)
    if product is None:
        return domain.Standing(cover, {}, frozenset(), used)
    return domain.Standing(cover, product.terms, product.exclusions, used)


async def _open(
    uow: InsuranceUnitOfWork, rules: ClaimRules, claim: domain.Claim, filer: str, request_id: uuid.UUID
) -> domain.Claim:
    """Store a new claim (or answer the one this request made) and publish ClaimFiled. A claim no
    insurer covers cannot wait for one: it is decided at once by the same rules (no cover)."""
    earlier = await uow.claims.add_once(claim, filer, request_id)
    if earlier is not None:
        if earlier.filing.order_id != claim.filing.order_id or earlier.case_id != claim.case_id:
            raise AlreadyExists(f"request_id {request_id} was used for {earlier.name}")
        return earlier
    await uow.add_event(claim_events.TOPIC, claim_events.claim_filed(claim))
    if claim.insurer:
        return claim
    return await _decide(uow, rules, claim, domain.Assessment(0), uuid.uuid5(claim.claim_id, "no insurer"))


async def _decide(
    uow: InsuranceUnitOfWork,
    rules: ClaimRules,
    claim: domain.Claim,
    assessment: domain.Assessment,
    request_id: uuid.UUID,
) -> domain.Claim:
    standing = await _standing(uow, rules, claim)
    decided = domain.adjudicate(claim, assessment, standing, request_id, uow.clock.now())
    if decided is not claim:
        await uow.claims.update(decided)
        await uow.add_event(claim_events.TOPIC, claim_events.claim_adjudicated(decided))
    return decided


async def file_claim(
    uow: InsuranceUnitOfWork,
    rules: ClaimRules,
    principal: Principal,
    request_id: uuid.UUID,
    filing: domain.ClaimFiling,
) -> domain.Claim:
    """A claim filed by the order's company or by the insurer covering it."""
    async with uow:
        order = await uow.orders.get(filing.order_id)
        moment = filing.incident_time or uow.clock.now()
        cover = await _cover(uow, order.worker_id, order, moment) if order else None
        insurer = cover.insurer if cover else ""
        if order is None or principal.tenant != (
            order.company_id if principal.role is Role.COMPANY else insurer
        ):
            raise NotFound(f"orders/{filing.order_id}")
        claim = domain.file_claim(uuid.uuid4(), filing, order, cover, principal.tenant, uow.clock.now())
        stored = await _open(uow, rules, claim, principal.tenant, request_id)
        await uow.commit()
    return stored


async def file_from_award(
    uow: InsuranceUnitOfWork, rules: ClaimRules, award: domain.CompensationAward
) -> domain.Claim:
    """The automatic claim for a complaint's compensation (inside the caller's unit of work); its id
    comes from the case's, so a redelivered outcome finds the claim it filed."""
    claim_id = automatic_claim_id(award.case_id)
    existing = await uow.claims.get(claim_id)
    if existing is not None:
        return existing
    order = await uow.orders.get(award.order_id)
    worker_id = award.worker_id or (order.worker_id if order else "")
    moment = order.check_in if order and order.check_in else award.file_time
    cover = await _cover(uow, worker_id, order, moment)
    claim = domain.file_from_award(claim_id, award, order, cover, uow.clock.now())
    return await _open(uow, rules, claim, claim.filed_by, claim_id)


async def get_claim(uow: InsuranceUnitOfWork, principal: Principal, claim_id: uuid.UUID) -> domain.Claim:
    async with uow:
        claim = await uow.claims.get(claim_id)
    if claim is None or not may_see(claim, principal):
        raise NotFound(f"claims/{claim_id}")
    return claim


async def list_claims(
    uow: InsuranceUnitOfWork, principal: Principal, state: domain.ClaimState | None, token: str, size: int
) -> tuple[list[domain.Claim], str]:
    """A page of the claims the caller may see, of ``state`` or any, and the next page's token."""
    which = ClaimFilter(
        company_id=principal.tenant if principal.role is Role.COMPANY else "",
        insurer=principal.tenant if principal.role is Role.INSURER else "",
        state=state,
    )
    scope = f"{which.company_id}|{which.insurer}|{state or ''}"

    async def fetch(after: Moment | None, limit: int) -> list[domain.Claim]:
        async with uow:
            return await uow.claims.listing(
                which, None if after is None else ClaimKey(*uuid_moment(after)), limit
            )

    return await moment_page(token, size, scope, fetch, lambda c: (c.filed_at, str(c.claim_id)))


async def _locked(uow: InsuranceUnitOfWork, principal: Principal, claim_id: uuid.UUID) -> domain.Claim:
    claim = await uow.claims.get_for_update(claim_id)
    if claim is None or not may_see(claim, principal):
        raise NotFound(f"claims/{claim_id}")
    return claim


async def adjudicate_claim(
    uow: InsuranceUnitOfWork,
    rules: ClaimRules,
    principal: Principal,
    claim_id: uuid.UUID,
    request_id: uuid.UUID,
    assessment: domain.Assessment,
) -> domain.Claim:
    """The insurer's decision on its claim."""
    async with uow:
        claim = await _locked(uow, principal, claim_id)
        decided = await _decide(uow, rules, claim, assessment, request_id)
        await uow.commit()
    return decided


async def pay_claim(
    uow: InsuranceUnitOfWork, principal: Principal, claim_id: uuid.UUID, request_id: uuid.UUID
) -> domain.Claim:
    """The insurer pays its approved claim, once; ClaimPaid closes a complaint's compensation."""
    async with uow:
        claim = await _locked(uow, principal, claim_id)
        paid = domain.pay(claim, request_id, uow.clock.now())
        if paid is not claim:
            await uow.claims.update(paid)
            await uow.add_event(claim_events.TOPIC, claim_events.claim_paid(paid))
        await uow.commit()
    return paid


async def contest_denial(
    uow: InsuranceUnitOfWork, principal: Principal, claim_id: uuid.UUID, request_id: uuid.UUID, reason: str
) -> domain.Claim:
    """The company contests its claim's denial; complaints opens a claim dispute from the event."""
    async with uow:
        claim = await _locked(uow, principal, claim_id)
        contested = domain.contest(claim, reason, request_id, uow.clock.now())
        if contested is not claim:
            await uow.claims.update(contested)
            await uow.add_event(claim_events.TOPIC, claim_events.claim_denial_contested(contested))
        await uow.commit()
    return contested
