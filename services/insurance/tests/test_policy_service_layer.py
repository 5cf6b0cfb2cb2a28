"""The policy use cases on the in-memory unit of work: what issuing and endorsing publish and
schedule (coverage now when it changes today, a timer at 00:00 Beijing when it changes later, the
expiry timer), retries by request id, tenants, and the timers' effects, once."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta

import pytest

from jiazheng.insurance.events.v1 import events_pb2 as ev
from libs.common.auth import Principal, Role
from libs.common.errors import InvalidArgument, NotFound
from libs.common.testing import FixedClock
from services.insurance.domain.policies import (
    Applicant,
    Change,
    EndorsementKind,
    GroupPolicy,
    Issue,
    PolicyState,
)
from services.insurance.domain.products import DEFAULT_PRODUCTS, Product, load_catalogue
from services.insurance.domain.vocabulary import ServiceType
from services.insurance.service_layer import policies as use_cases
from services.insurance.tests.policy_fakes import FakePolicyUnitOfWork

CATALOGUE = load_catalogue(DEFAULT_PRODUCTS)
TODAY = date(2026, 11, 30)
COMPANY = Principal("demo-company", Role.COMPANY, "c-1")
OTHER = Principal("other-company", Role.COMPANY, "c-2")
INSURER = Principal("demo-insurer", Role.INSURER, "demo-insurer")
OPERATOR = Principal("operator", Role.OPERATOR, "ops")


def el_100k() -> Product:
    found = CATALOGUE.get("el-100k")
    assert found is not None
    return found


def worker(age: int = 30) -> Applicant:
    return Applicant(str(uuid.uuid4()), date(TODAY.year - age, 1, 1), frozenset({ServiceType.CLEANING}), 2)


@pytest.fixture
def uow() -> FakePolicyUnitOfWork:
    return FakePolicyUnitOfWork(FixedClock(datetime(2026, 11, 30, 2, 0, tzinfo=UTC)))  # 10:00 in Beijing


async def create(
    uow: FakePolicyUnitOfWork, *workers: Applicant, start: date = TODAY, end: date | None = None
) -> GroupPolicy:
    request = Issue("c-1", el_100k(), start, end, workers)
    return await use_cases.create_policy(uow, COMPANY, uuid.uuid4(), request)


def published(
    uow: FakePolicyUnitOfWork, message: type[ev.WorkerCoverageChanged]
) -> list[ev.WorkerCoverageChanged]:
    return [p.event.parse(message) for p in uow.published if p.event.type == message.DESCRIPTOR.full_name]


def coverage(uow: FakePolicyUnitOfWork) -> list[tuple[str, bool, str]]:
    return [(c.worker_id, c.covered, c.valid_until) for c in published(uow, ev.WorkerCoverageChanged)]


def types(uow: FakePolicyUnitOfWork) -> list[str]:
    return [p.event.type.rsplit(".", 1)[1] for p in uow.published]


async def test_issue_publishes_the_policy_and_cover_from_today_and_schedules_expiry(
    uow: FakePolicyUnitOfWork,
) -> None:
    a, b = worker(), worker(55)
    policy = await create(uow, a, b)
    assert types(uow) == ["PolicyIssued", "WorkerCoverageChanged", "WorkerCoverageChanged"]
    assert uow.published[0].event.subject == f"policies/{policy.policy_id}"
    assert uow.published[1].event.subject == f"workers/{a.worker_id}"
    assert coverage(uow) == [(a.worker_id, True, "2027-11-29"), (b.worker_id, True, "2027-11-29")]
    expiry = uow.timers.pending[use_cases.EXPIRY_TIMER, str(policy.policy_id)]
    assert expiry.due_at == datetime(2027, 11, 29, 16, 0, tzinfo=UTC)  # 00:00 Beijing, 30 November


async def test_a_retried_request_issues_nothing_more(uow: FakePolicyUnitOfWork) -> None:
    request, request_id = Issue("c-1", el_100k(), TODAY, None, (worker(),)), uuid.uuid4()
    first = await use_cases.create_policy(uow, COMPANY, request_id, request)
    again = await use_cases.create_policy(uow, COMPANY, request_id, request)
    assert again == first
    assert len(uow.policies.by_id) == 1
    assert types(uow).count("PolicyIssued") == 1


async def test_a_retry_after_the_start_day_has_passed_answers_the_policy_it_issued(
    uow: FakePolicyUnitOfWork,
) -> None:
    request, request_id = Issue("c-1", el_100k(), TODAY, None, (worker(),)), uuid.uuid4()
    first = await use_cases.create_policy(uow, COMPANY, request_id, request)
    uow.clock.advance(timedelta(days=2))
    assert await use_cases.create_policy(uow, COMPANY, request_id, request) == first
    assert types(uow).count("PolicyIssued") == 1


async def test_a_policy_starting_later_covers_from_a_timer_on_its_first_day(
    uow: FakePolicyUnitOfWork,
) -> None:
    a = worker()
    await create(uow, a, start=TODAY + timedelta(days=7))
    assert coverage(uow) == []
    timer = uow.timers.pending[use_cases.COVERAGE_TIMER, f"{a.worker_id}/2026-12-07"]
    assert timer.due_at == datetime(2026, 12, 6, 16, 0, tzinfo=UTC)
    uow.clock.advance(timer.due_at - uow.clock.now())
    async with uow:
        await use_cases.coverage_change_due(uow, timer)
        await uow.commit()
    assert coverage(uow) == [(a.worker_id, True, "2027-12-06")]


async def test_removal_today_ends_cover_now_and_a_later_one_on_its_day(uow: FakePolicyUnitOfWork) -> None:
    a, b = worker(), worker()
    policy = await create(uow, a, b)
    remove_a = Change(EndorsementKind.REMOVE, TODAY, remove=(a.worker_id,))
    _, endorsement = await use_cases.endorse_policy(
        uow, CATALOGUE, COMPANY, policy.policy_id, uuid.uuid4(), remove_a
    )
    assert endorsement.premium_delta_fen == -7000
    assert coverage(uow)[-1] == (a.worker_id, False, "")
    later = Change(EndorsementKind.REMOVE, TODAY + timedelta(days=30), remove=(b.worker_id,))
    await use_cases.endorse_policy(uow, CATALOGUE, COMPANY, policy.policy_id, uuid.uuid4(), later)
    assert (use_cases.COVERAGE_TIMER, f"{b.worker_id}/2026-12-30") in uow.timers.pending
    assert types(uow).count("WorkerCoverageChanged") == 3  # two at issue, a's removal


async def test_a_retried_endorsement_returns_the_first(uow: FakePolicyUnitOfWork) -> None:
    policy = await create(uow, worker())
    change, request_id = Change(EndorsementKind.ADD, TODAY, add=(worker(),)), uuid.uuid4()
    _, first = await use_cases.endorse_policy(uow, CATALOGUE, COMPANY, policy.policy_id, request_id, change)
    after, again = await use_cases.endorse_policy(
        uow, CATALOGUE, COMPANY, policy.policy_id, request_id, change
    )
    assert again == first
    assert len(after.endorsements) == 1
    assert types(uow).count("PolicyEndorsed") == 1


async def test_expiry_expires_the_policy_and_ends_cover_once(uow: FakePolicyUnitOfWork) -> None:
    a = worker()
    policy = await create(uow, a, end=TODAY)
    timer = uow.timers.pending[use_cases.EXPIRY_TIMER, str(policy.policy_id)]
    uow.clock.advance(timer.due_at - uow.clock.now())
    for _ in range(2):
        async with uow:
            await use_cases.policy_expiry_due(uow, timer)
            await uow.commit()
    assert uow.policies.by_id[policy.policy_id].state is PolicyState.EXPIRED
    assert types(uow)[-2:] == ["PolicyExpired", "WorkerCoverageChanged"]
    assert types(uow).count("PolicyExpired") == 1
    assert coverage(uow) == [(a.worker_id, True, "2026-11-30"), (a.worker_id, False, "")]


async def test_cover_on_another_policy_is_what_remains(uow: FakePolicyUnitOfWork) -> None:
    a = worker()
    short = await create(uow, a, end=TODAY)
    await create(uow, a, start=TODAY, end=TODAY + timedelta(days=90))
    uow.clock.advance(timedelta(days=1))
    timer = uow.timers.pending[use_cases.EXPIRY_TIMER, str(short.policy_id)]
    async with uow:
        await use_cases.policy_expiry_due(uow, timer)
        await uow.commit()
    assert coverage(uow)[-1] == (a.worker_id, True, "2027-02-28")


async def test_tenants_see_their_own_policies_and_another_tenants_is_not_found(
    uow: FakePolicyUnitOfWork,
) -> None:
    policy = await create(uow, worker())
    assert await use_cases.get_policy(uow, INSURER, policy.policy_id) == policy
    assert await use_cases.get_policy(uow, OPERATOR, policy.policy_id) == policy
    with pytest.raises(NotFound):
        await use_cases.get_policy(uow, OTHER, policy.policy_id)
    with pytest.raises(NotFound):
        await use_cases.endorse_policy(
            uow,
            CATALOGUE,
            OTHER,
            policy.policy_id,
            uuid.uuid4(),
            Change(EndorsementKind.ADD, TODAY, add=(worker(),)),
        )
    assert await use_cases.list_policies(uow, OTHER, "", 10) == ([], "")
    assert await use_cases.list_policies(uow, INSURER, "", 10) == ([policy], "")
    assert await use_cases.list_policies(uow, Principal("x", Role.INSURER, "another-insurer"), "", 10) == (
        [],
        "",
    )


def test_a_company_buys_for_itself_and_an_operator_names_the_company() -> None:
    assert use_cases.buyer(COMPANY, "") == "c-1"
    assert use_cases.buyer(OPERATOR, "c-9") == "c-9"
    for principal, company in ((COMPANY, "c-2"), (OPERATOR, "")):
        with pytest.raises(InvalidArgument) as raised:
            use_cases.buyer(principal, company)
        assert raised.value.field == "company"


def test_a_quote_is_annual_and_pro_rata_for_the_term() -> None:
    quote = use_cases.quote(el_100k(), 2, 55, TODAY, TODAY + timedelta(days=29), TODAY)
    assert (quote.annual_fen, quote.pro_rata_fen, quote.days, quote.year_days) == (7500, 616, 30, 365)
    with pytest.raises(InvalidArgument) as raised:
        use_cases.quote(el_100k(), 2, 71, TODAY, None, TODAY)
    assert raised.value.field == "birth_date"


async def test_policies_are_listed_oldest_issued_first_whatever_their_ids(uow: FakePolicyUnitOfWork) -> None:
    made = []
    for _ in range(4):
        made.append(await create(uow, worker()))
        uow.clock.advance(timedelta(minutes=7))

    first, token = await use_cases.list_policies(uow, COMPANY, "", 3)
    rest, last = await use_cases.list_policies(uow, COMPANY, token, 3)

    assert [p.policy_id for p in first + rest] == [p.policy_id for p in made]
    assert (len(first), last) == (3, "")
    with pytest.raises(InvalidArgument) as raised:
        await use_cases.list_policies(uow, OPERATOR, token, 3)
    assert raised.value.field == "page_token"
