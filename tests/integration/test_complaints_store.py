"""The complaints store on the real PostgreSQL (its migrations in a scratch database): cases round-trip
with their description and agreement sealed, one case per filer's request id, mediation queues in
order, concurrent claimers skipping each other's locked cases, leases that expire, workloads,
referrals and known orders. The tests that need no second connection run on the in-memory fakes
too, so that the unit tests' fakes keep the store's semantics."""

from __future__ import annotations

import asyncio
import dataclasses
import secrets
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest

from libs.common.pii import Keyring
from libs.common.testing import FixedClock
from services.complaints import app as complaints_app
from services.complaints import domain
from services.complaints.service_layer.ports import ComplaintsUnitOfWork, KnownOrder, Workload
from services.complaints.store import PgComplaintsUnitOfWork
from services.complaints.tests.fakes import FakeComplaintsUnitOfWork


@pytest.fixture
def migrations() -> Path:
    """What the conftest's ``pool`` fixture migrates: the complaints service's tables."""
    return complaints_app.MIGRATIONS


NOW = datetime(2026, 3, 2, 2, tzinfo=UTC)  # 10:00 on Monday in Beijing
LEASE = timedelta(minutes=30)
KEYRING = Keyring({"test-1": secrets.token_bytes(32)}, "test-1", secrets.token_bytes(32))
CALENDAR = domain.WorkingCalendar()
DESCRIPTION = "阿姨打碎了花瓶，联系电话13812345678"
FACTS = "双方确认花瓶系服务中打碎，价值800元"
CONSUMERS = domain.MediationBody.CONSUMER_ASSOCIATION

NewUnitOfWork = Callable[[], ComplaintsUnitOfWork]


def _pg(pool: asyncpg.Pool) -> NewUnitOfWork:
    return lambda: PgComplaintsUnitOfWork(pool, KEYRING, FixedClock(NOW))


@pytest.fixture(params=["postgres", "fake"])
def new_uow(request: pytest.FixtureRequest) -> NewUnitOfWork:
    """A unit of work on the real store, or on one in-memory fake playing the database."""
    if request.param == "postgres":
        return _pg(request.getfixturevalue("pool"))
    fake = FakeComplaintsUnitOfWork(FixedClock(NOW))
    return lambda: fake


def _filing(severity: domain.Severity = domain.Severity.MAJOR) -> domain.Filing:
    return domain.Filing(
        kind=domain.CaseKind.COMPLAINT,
        category=domain.Category.DAMAGE,
        severity=severity,
        complainant=domain.PartyKind.CONSUMER,
        respondent=domain.PartyKind.WORKER,
        description=DESCRIPTION,
        platform_id="p-1",
        order_id=str(uuid.uuid4()),
        worker_id="w-1",
    )


def _mediated(severity: domain.Severity, due_in_days: int, filed_at: datetime = NOW) -> domain.Case:
    """A case in the consumer association's queue, its mediation due in ``due_in_days`` days."""
    case = domain.to_mediation(
        domain.file_case(uuid.uuid4(), _filing(severity), filed_at), filed_at, CALENDAR
    )
    assert case.body is CONSUMERS
    due = domain.Deadline(domain.DeadlineKind.MEDIATION, NOW + timedelta(days=due_in_days))
    return dataclasses.replace(case, deadline=due)


async def _store(new_uow: NewUnitOfWork, *cases: domain.Case) -> None:
    async with new_uow() as uow:
        for case in cases:
            assert await uow.cases.add_once(case, "p-1", uuid.uuid4()) is None
        await uow.commit()


async def _update(new_uow: NewUnitOfWork, *cases: domain.Case) -> None:
    async with new_uow() as uow:
        for case in cases:
            await uow.cases.update(case)
        await uow.commit()


def _every_field() -> domain.Case:
    """A case with every field set (the states need not follow each other: this is storage)."""
    filing = dataclasses.replace(
        _filing(domain.Severity.SEVERE),
        kind=domain.CaseKind.WORKER_DISPUTE,
        complainant=domain.PartyKind.WORKER,
        respondent=domain.PartyKind.COMPANY,
        company_id="c-1",
        district_code="110105",
        evidence_refs=("evidence/1.jpg", "evidence/2.m4a"),
        employee_model=False,
        filed_by="union-1",
    )
    agreement = domain.Agreement(
        FACTS,
        "公司承担全部责任",
        (
            domain.Undertaking(domain.PartyKind.COMPANY, "赔偿800元", date(2026, 3, 20)),
            domain.Undertaking(domain.PartyKind.WORKER, "书面致歉", date(2026, 3, 10)),
        ),
    )
    return domain.Case(
        case_id=uuid.uuid4(),
        filing=filing,
        state=domain.CaseState.AGREEMENT,
        filed_at=NOW,
        deadline=domain.Deadline(domain.DeadlineKind.AGREEMENT_FOLLOW_UP, agreement.follow_up_at),
        responded_at=NOW + timedelta(hours=3),
        body=domain.MediationBody.PEOPLES_MEDIATION,
        mediator="m-1",
        lease_until=NOW + LEASE,
        outcome=domain.Outcome(domain.OutcomeResult.PARTLY_SUBSTANTIATED, domain.PartyKind.COMPANY, 80_000),
        agreement=agreement,
        route=domain.EscalationRoute.LEGAL_AID,
        resolved_by="operator-1",
    )


async def test_a_case_round_trips_every_field_with_its_personal_data_sealed(pool: asyncpg.Pool) -> None:
    new_uow = _pg(pool)
    case = _every_field()
    filed = domain.file_case(uuid.uuid4(), case.filing, NOW)
    await _store(new_uow, case, filed)
    updated = dataclasses.replace(case, case_id=filed.case_id)
    await _update(new_uow, updated)

    async with new_uow() as uow:
        assert await uow.cases.get(case.case_id) == case  # as added
        assert await uow.cases.get_for_update(filed.case_id) == updated  # as updated
        assert await uow.cases.get(uuid.uuid4()) is None

    for row in await pool.fetch("SELECT * FROM cases"):
        sealed = [value for value in row.values() if isinstance(value, bytes)]
        assert len(sealed) == 2  # the description and the agreement
        assert all(plain.encode() not in value for value in sealed for plain in (DESCRIPTION, FACTS))
    as_text = "".join(await pool.fetchval("SELECT array_agg(c::text) FROM cases c"))
    assert all(plain not in as_text and plain.encode().hex() not in as_text for plain in (DESCRIPTION, FACTS))


async def test_a_request_id_creates_one_case_per_filer(new_uow: NewUnitOfWork) -> None:
    first, retry = (domain.file_case(uuid.uuid4(), _filing(), NOW) for _ in range(2))
    request_id = uuid.uuid4()
    async with new_uow() as uow:
        assert await uow.cases.add_once(first, "p-1", request_id) is None
        assert await uow.cases.add_once(retry, "p-1", request_id) == first
        assert await uow.cases.get(retry.case_id) is None
        assert await uow.cases.add_once(retry, "p-2", request_id) is None  # another filer's request
        await uow.commit()
    responded = domain.respond(first, NOW, CALENDAR)
    await _update(new_uow, responded)

    async with new_uow() as uow:
        assert await uow.cases.add_once(retry, "p-1", request_id) == responded  # as it is now
        assert await uow.cases.get(retry.case_id) == retry


async def test_the_queue_is_most_severe_first_then_earliest_deadline(new_uow: NewUnitOfWork) -> None:
    minor_soon = _mediated(domain.Severity.MINOR, 1)
    severe_late = _mediated(domain.Severity.SEVERE, 40)
    severe_soon = _mediated(domain.Severity.SEVERE, 30)
    severe_soon_filed_later = _mediated(domain.Severity.SEVERE, 30, NOW + timedelta(minutes=1))
    major = _mediated(domain.Severity.MAJOR, 20)
    elsewhere = dataclasses.replace(
        _mediated(domain.Severity.SEVERE, 1), body=domain.MediationBody.PEOPLES_MEDIATION
    )
    not_in_mediation = domain.file_case(uuid.uuid4(), _filing(domain.Severity.SEVERE), NOW)
    held = domain.claim(severe_soon, "m-1", NOW, LEASE)
    cases = [
        minor_soon,
        severe_late,
        severe_soon,
        severe_soon_filed_later,
        major,
        elsewhere,
        not_in_mediation,
    ]
    await _store(new_uow, *cases)
    await _update(new_uow, held)

    async with new_uow() as uow:
        queue = await uow.cases.queue(CONSUMERS, 10)
        assert queue == [held, severe_soon_filed_later, severe_late, major, minor_soon]  # held included
        assert await uow.cases.queue(CONSUMERS, 2) == queue[:2]
        assert await uow.cases.next_claimable(CONSUMERS, NOW) == severe_soon_filed_later


async def test_an_expired_lease_makes_a_case_claimable_again(new_uow: NewUnitOfWork) -> None:
    case = _mediated(domain.Severity.MAJOR, 30)
    await _store(new_uow, case)
    held = domain.claim(case, "m-1", NOW, LEASE)
    await _update(new_uow, held)

    async with new_uow() as uow:
        assert await uow.cases.next_claimable(CONSUMERS, NOW + LEASE - timedelta(seconds=1)) is None
        assert await uow.cases.next_claimable(CONSUMERS, NOW + LEASE) == held


async def test_concurrent_claimers_skip_each_others_locked_cases(pool: asyncpg.Pool) -> None:
    new_uow = _pg(pool)
    cases = [_mediated(domain.Severity.MAJOR, 30), _mediated(domain.Severity.MINOR, 30)]
    await _store(new_uow, *cases)

    async def claims(uows: list[ComplaintsUnitOfWork]) -> list[domain.Case | None]:
        # Each claimer locks its case until its transaction ends; a wait would time out here.
        return [await asyncio.wait_for(u.cases.next_claimable(CONSUMERS, NOW), 5) for u in uows]

    async with new_uow() as first, new_uow() as second:
        assert await claims([first, second]) == cases
    async with new_uow() as uow:
        await uow.cases.update(domain.claim(cases[1], "m-1", NOW, LEASE))
        await uow.commit()
    async with new_uow() as first, new_uow() as second:
        assert await claims([first, second]) == [cases[0], None]  # one case: exactly one claimer gets it


async def test_claimers_racing_for_one_case_get_it_once(pool: asyncpg.Pool) -> None:
    new_uow = _pg(pool)
    case = _mediated(domain.Severity.MAJOR, 30)
    await _store(new_uow, case)

    async def claim_and_hold() -> domain.Case | None:
        async with new_uow() as uow:
            claimed = await uow.cases.next_claimable(CONSUMERS, NOW)
            await asyncio.sleep(0.2)  # hold the lock while the others look
            return claimed

    got = await asyncio.wait_for(asyncio.gather(*(claim_and_hold() for _ in range(4))), 10)
    assert sorted(got, key=lambda c: c is None) == [case, None, None, None]


async def test_workload_counts_live_leases_and_the_cases_each_mediator_closed(new_uow: NewUnitOfWork) -> None:
    held, expired, ended, agreed, withdrawn = (_mediated(domain.Severity.MAJOR, 30) for _ in range(5))
    peoples = dataclasses.replace(
        _mediated(domain.Severity.MAJOR, 30), body=domain.MediationBody.PEOPLES_MEDIATION
    )
    await _store(new_uow, held, expired, ended, agreed, withdrawn, peoples)
    claimed = [
        domain.claim(held, "m-1", NOW, LEASE),
        domain.claim(expired, "m-2", NOW - LEASE, LEASE),
        domain.claim(ended, "m-1", NOW, LEASE),
        domain.claim(agreed, "m-2", NOW, LEASE),
        domain.claim(withdrawn, "m-3", NOW, LEASE),
        domain.claim(peoples, "m-9", NOW, LEASE),
    ]
    await _update(new_uow, *claimed)
    agreement = domain.Agreement(
        FACTS, "阿姨负责", (domain.Undertaking(domain.PartyKind.WORKER, "赔偿", NOW.date()),)
    )
    outcome = domain.Outcome(domain.OutcomeResult.SUBSTANTIATED, domain.PartyKind.WORKER, 80_000)
    in_agreement = domain.record_agreement(claimed[3], "m-2", agreement, outcome, NOW)
    await _update(
        new_uow,
        domain.end_mediation(claimed[2], "m-1", domain.EscalationRoute.REGULATOR_12315, NOW),
        in_agreement,
        domain.withdraw(claimed[4]),
        domain.end_mediation(claimed[5], "m-9", domain.EscalationRoute.COURT, NOW),
    )
    await _update(new_uow, domain.follow_up(in_agreement, performed=True))

    async with new_uow() as uow:
        assert await uow.cases.workload(CONSUMERS, NOW) == [Workload("m-1", 1, 1), Workload("m-2", 0, 1)]
        assert await uow.cases.workload(domain.MediationBody.PEOPLES_MEDIATION, NOW) == [
            Workload("m-9", 0, 1)
        ]


async def test_referrals_are_listed_open_first_oldest_first(new_uow: NewUnitOfWork) -> None:
    cases = [domain.file_case(uuid.uuid4(), _filing(), NOW) for _ in range(3)]
    await _store(new_uow, *cases)
    referrals = [
        domain.Referral(case.case_id, index % 2 == 0, NOW + timedelta(days=7), NOW + timedelta(hours=index))
        for index, case in enumerate(cases)
    ]
    async with new_uow() as uow:
        for referral in reversed(referrals):
            await uow.referrals.add(referral)
        await uow.commit()
    accepted = dataclasses.replace(referrals[0], accepted_at=NOW + timedelta(days=1), overdue=True)

    async with new_uow() as uow:
        assert await uow.referrals.get_for_update(referrals[0].case_id) == referrals[0]
        await uow.referrals.update(accepted)
        await uow.commit()
    async with new_uow() as uow:
        assert await uow.referrals.listing(10) == [referrals[1], referrals[2], accepted]
        assert await uow.referrals.listing(1) == [referrals[1]]
        assert await uow.referrals.get_for_update(uuid.uuid4()) is None


async def test_a_known_order_keeps_its_earlier_non_empty_fields(new_uow: NewUnitOfWork) -> None:
    async with new_uow() as uow:
        await uow.orders.upsert(KnownOrder("o-1", "p-1", district_code="110105", worker_id="w-1"))
        await uow.orders.upsert(KnownOrder("o-1", "", worker_id="w-2", company_id="c-2"))
        await uow.commit()

    async with new_uow() as uow:
        assert await uow.orders.get("o-1") == KnownOrder("o-1", "p-1", "110105", "w-2", "c-2")
        assert await uow.orders.get("o-2") is None


async def test_what_a_unit_of_work_does_not_commit_is_not_kept(new_uow: NewUnitOfWork) -> None:
    case = _mediated(domain.Severity.MAJOR, 30)
    await _store(new_uow, case)
    async with new_uow() as uow:
        await uow.cases.update(domain.claim(case, "m-1", NOW, LEASE))
        await uow.orders.upsert(KnownOrder("o-1", "p-1"))

    async with new_uow() as uow:
        assert await uow.cases.get(case.case_id) == case
        assert await uow.orders.get("o-1") is None
