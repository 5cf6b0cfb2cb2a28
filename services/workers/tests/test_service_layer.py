"""Workers use cases through the fake unit of work: scoping, idempotency, events, colours, timers."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta

import pytest

from libs.common.auth import Principal, Role
from libs.common.errors import AlreadyExists, InvalidArgument, NotFound, PermissionDenied
from libs.common.testing import FixedClock
from services.workers import domain as d
from services.workers import service_layer as sl
from services.workers.tests.fakes import FakeWorkersUnitOfWork
from services.workers.tests.test_domain import USCC, id_born

NOW = datetime(2026, 11, 30, 2, tzinfo=UTC)  # 10:00 in Beijing
OPERATOR = Principal("operator", Role.OPERATOR, "")
COMPANY_ID = uuid.UUID("00000000-0000-4000-8000-00000000c001")
COMPANY = Principal("demo-company", Role.COMPANY, str(COMPANY_ID))
OTHER = Principal("other-company", Role.COMPANY, str(uuid.uuid4()))


def company_draft(code: str = USCC[0]) -> d.CompanyDraft:
    return d.CompanyDraft(code, "北京好家政", 60, (d.Outlet("望京", "110105"),), d.EmploymentModel.EMPLOYEE)


def worker_draft(born: date = date(1985, 4, 12)) -> d.WorkerDraft:
    return d.WorkerDraft(id_born(born), "王芳", "13912345678", "p.jpg", ("110105",), (d.Trade.HOUSEKEEPER,))


def event_types(uow: FakeWorkersUnitOfWork) -> list[str]:
    return [p.event.type.rsplit(".", 1)[-1] for p in uow.published]


@pytest.fixture
async def uow() -> FakeWorkersUnitOfWork:
    fake = FakeWorkersUnitOfWork(FixedClock(NOW))
    await sl.create_company(fake, uuid.uuid4(), company_draft(), COMPANY_ID)
    return fake


async def new_worker(uow: FakeWorkersUnitOfWork, born: date = date(1985, 4, 12)) -> uuid.UUID:
    return await sl.create_worker(uow, COMPANY, uuid.uuid4(), COMPANY_ID, worker_draft(born))


async def test_a_company_registers_once_per_request_and_once_per_code(uow: FakeWorkersUnitOfWork) -> None:
    request = uuid.uuid4()
    first = await sl.create_company(uow, request, company_draft(USCC[1]))
    again = await sl.create_company(uow, request, company_draft(USCC[1]))
    assert again == first
    assert event_types(uow).count("CompanyRegistered") == 2  # the fixture's and this one
    with pytest.raises(AlreadyExists):
        await sl.create_company(uow, uuid.uuid4(), company_draft(USCC[1]))


async def test_a_new_worker_is_yellow_with_every_missing_check_and_published(
    uow: FakeWorkersUnitOfWork,
) -> None:
    worker_id = await new_worker(uow)
    status = uow.records.statuses[worker_id]
    assert status == sl.StoredStatus(
        d.CardColour.YELLOW,
        (d.Reason.BACKGROUND_CHECK_PENDING, d.Reason.HEALTH_CHECK_MISSING, d.Reason.INSURANCE_MISSING),
    )
    assert event_types(uow)[-2:] == ["WorkerRegistered", "CardStatusChanged"]


async def test_a_retried_registration_is_the_same_worker_and_publishes_nothing_more(
    uow: FakeWorkersUnitOfWork,
) -> None:
    request = uuid.uuid4()
    first = await sl.create_worker(uow, COMPANY, request, COMPANY_ID, worker_draft())
    published = len(uow.published)
    assert await sl.create_worker(uow, COMPANY, request, COMPANY_ID, worker_draft()) == first
    assert len(uow.published) == published
    with pytest.raises(AlreadyExists):
        await sl.create_worker(uow, COMPANY, uuid.uuid4(), COMPANY_ID, worker_draft())


async def test_companies_act_only_on_their_own_workers(uow: FakeWorkersUnitOfWork) -> None:
    with pytest.raises(PermissionDenied):
        await sl.create_worker(uow, OTHER, uuid.uuid4(), COMPANY_ID, worker_draft())
    worker_id = await new_worker(uow)
    with pytest.raises(PermissionDenied):
        await sl.record_training(uow, OTHER, worker_id, d.Training("课", "机构", 8, NOW.date(), True))
    with pytest.raises(NotFound):
        await sl.create_worker(uow, OPERATOR, uuid.uuid4(), uuid.uuid4(), worker_draft(date(1990, 1, 1)))


async def test_a_health_check_sets_the_timer_for_beijing_midnight_after_it_lapses(
    uow: FakeWorkersUnitOfWork,
) -> None:
    worker_id = await new_worker(uow)
    form = sl.HealthCheckForm(d.HealthTier.LIVE_IN, date(2026, 1, 10), "医院", "TJ-1")
    check, colour = await sl.record_health_check(uow, COMPANY, worker_id, form, 12)
    assert (check.valid_until, colour) == (date(2027, 1, 9), d.CardColour.YELLOW)
    timer = uow.timers.pending[sl.CARD_STATUS_TIMER, str(worker_id)]
    assert timer.due_at == datetime(2027, 1, 10, tzinfo=sl.BEIJING)


async def test_a_lapse_turns_a_green_worker_yellow_when_the_timer_fires(uow: FakeWorkersUnitOfWork) -> None:
    worker_id = await new_worker(uow)
    await sl.record_background_check(
        uow, OPERATOR, worker_id, d.BackgroundCheck(True, False, False, False, NOW.date())
    )
    async with uow:
        await uow.status.set_insured_until({worker_id: date(2027, 12, 31)})
        await sl.refresh_status(uow, worker_id)
        await uow.commit()
    form = sl.HealthCheckForm(d.HealthTier.GENERAL, date(2025, 12, 1), "医院", "TJ-1")
    _, colour = await sl.record_health_check(uow, COMPANY, worker_id, form, 12)
    assert colour is d.CardColour.GREEN

    uow.clock.advance(timedelta(days=1))  # Beijing's 1 December 2026: the check lapsed
    async with uow:
        assert await sl.refresh_status(uow, worker_id) is d.CardColour.YELLOW
        await uow.commit()
    assert uow.records.statuses[worker_id] == sl.StoredStatus(
        d.CardColour.YELLOW, (d.Reason.HEALTH_CHECK_EXPIRED,)
    )
    assert event_types(uow)[-1] == "CardStatusChanged"
    # Insurance is the next validity to lapse: the timer follows it.
    assert uow.timers.pending[sl.CARD_STATUS_TIMER, str(worker_id)].due_at == datetime(
        2028, 1, 1, tzinfo=sl.BEIJING
    )


async def test_refreshing_an_unchanged_colour_publishes_nothing(uow: FakeWorkersUnitOfWork) -> None:
    worker_id = await new_worker(uow)
    published = len(uow.published)
    async with uow:
        await sl.refresh_status(uow, worker_id)
        await uow.commit()
    assert len(uow.published) == published


async def test_a_background_check_in_the_future_is_refused_and_stores_nothing(
    uow: FakeWorkersUnitOfWork,
) -> None:
    worker_id = await new_worker(uow)
    future = d.BackgroundCheck(True, False, False, False, date(2026, 12, 1))
    with pytest.raises(InvalidArgument, match="future"):
        await sl.record_background_check(uow, OPERATOR, worker_id, future)
    assert worker_id not in uow.records.background


async def test_a_transfer_is_published_with_both_companies(uow: FakeWorkersUnitOfWork) -> None:
    other = await sl.create_company(uow, uuid.uuid4(), company_draft(USCC[2]))
    worker_id = await new_worker(uow)
    await sl.transfer_worker(uow, COMPANY, worker_id, other.company_id)
    history = await uow.workers.employments(worker_id)
    assert [e.company_id for e in history] == [COMPANY_ID, other.company_id]
    assert history[0].ended_at == NOW
    assert event_types(uow)[-1] == "WorkerTransferred"


async def test_a_consent_code_works_once_within_ten_minutes(uow: FakeWorkersUnitOfWork) -> None:
    worker_id = await new_worker(uow)
    platform = Principal("demo-platform", Role.PLATFORM, "demo-platform")
    code = await sl.create_consent_code(uow, COMPANY, worker_id, timedelta(hours=24))
    late = await sl.create_consent_code(uow, COMPANY, worker_id, timedelta(hours=2))
    grant = await sl.redeem_consent_code(uow, platform, worker_id, code.code.lower(), "consumer-7")
    assert (grant.platform_id, grant.expires_at) == ("demo-platform", NOW + timedelta(hours=24))
    with pytest.raises(InvalidArgument, match="wrong, used or expired"):
        await sl.redeem_consent_code(uow, platform, worker_id, code.code, "consumer-7")
    uow.clock.advance(timedelta(minutes=11))
    with pytest.raises(InvalidArgument):
        await sl.redeem_consent_code(uow, platform, worker_id, late.code, "consumer-7")
    assert event_types(uow)[-1] == "ConsentGranted"


async def test_overlapping_slots_are_refused_and_availability_is_published(
    uow: FakeWorkersUnitOfWork,
) -> None:
    worker_id = await new_worker(uow)
    with pytest.raises(InvalidArgument, match="overlap"):
        d.availability((d.WeeklySlot(1, 480, 720), d.WeeklySlot(1, 700, 900)), ())
    week = d.availability((d.WeeklySlot(1, 480, 720), d.WeeklySlot(2, 480, 720)), ())
    await sl.set_availability(uow, COMPANY, worker_id, week)
    assert uow.availability.by_worker[worker_id] == week
    assert event_types(uow)[-1] == "AvailabilityChanged"
