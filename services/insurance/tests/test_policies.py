"""Group policies and endorsements in the domain: the premium at issue, the term and worker checks
naming their fields, 批增/批改/批减 with effective dates and pro-rata premium changes, and the
errors for a worker already on the policy or not on it."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from libs.common.errors import AlreadyExists, FailedPrecondition, InvalidArgument
from services.insurance.domain.policies import (
    Applicant,
    Change,
    EndorsementKind,
    GroupPolicy,
    Issue,
    default_end,
    issue,
)
from services.insurance.domain.products import DEFAULT_PRODUCTS, Product, load_catalogue, pro_rata
from services.insurance.domain.vocabulary import ServiceType


def _product(product_id: str) -> Product:
    found = load_catalogue(DEFAULT_PRODUCTS).get(product_id)
    assert found is not None
    return found


EL_100K = _product("el-100k")
TODAY = date(2026, 11, 30)
NOW = datetime(2026, 11, 30, 2, 0, tzinfo=UTC)
YEAR_DAYS = 365  # 2026-11-30 to 2027-11-29
CLEANING = frozenset({ServiceType.CLEANING})


def worker(age: int = 30, job_class: int = 2, types: frozenset[ServiceType] = CLEANING) -> Applicant:
    return Applicant(str(uuid.uuid4()), date(TODAY.year - age, 1, 1), types, job_class)


def policy(*workers: Applicant, start: date = TODAY, end: date | None = None) -> GroupPolicy:
    return issue(Issue("c-1", EL_100K, start, end, workers), uuid.uuid4(), TODAY, NOW)


def endorse(p: GroupPolicy, change: Change, today: date = TODAY) -> GroupPolicy:
    return p.endorse(EL_100K, change, today, uuid.uuid4(), uuid.uuid4(), NOW)


def invalid_field(raised: pytest.ExceptionInfo[InvalidArgument]) -> str:
    return raised.value.field


def test_issue_charges_each_worker_pro_rata_for_the_term() -> None:
    full = policy(worker(30), worker(55), worker(65))
    assert full.end == date(2027, 11, 29)
    assert full.premium_fen == 7000 + 7500 + 8000
    short = policy(worker(30), end=TODAY + timedelta(days=99))
    assert short.premium_fen == pro_rata(7000, 100, YEAR_DAYS) == 1918  # 1917.8 up


def test_a_policy_year_over_29_february_has_366_days() -> None:
    start = date(2027, 12, 1)
    p = policy(worker(30), start=start)
    assert (p.end, p.year_days, p.premium_fen) == (date(2028, 11, 30), 366, 7000)


def test_a_policy_year_from_29_february_ends_on_28_february_and_has_366_days() -> None:
    start = date(2028, 2, 29)
    p = policy(worker(30), start=start)
    assert (p.end, p.year_days, p.premium_fen) == (date(2029, 2, 28), 366, 7000)
    assert default_end(start) == default_end(date(2028, 3, 1)) == date(2029, 2, 28)
    assert default_end(date(2028, 2, 28)) == date(2029, 2, 27)


@pytest.mark.parametrize(
    ("start", "end", "field"),
    [
        (TODAY - timedelta(days=1), None, "start_date"),
        (TODAY, TODAY - timedelta(days=1), "end_date"),
        (TODAY, date(2027, 11, 30), "end_date"),  # a year and a day
    ],
)
def test_terms_start_today_or_later_and_last_at_most_a_year(
    start: date, end: date | None, field: str
) -> None:
    with pytest.raises(InvalidArgument) as raised:
        policy(worker(), start=start, end=end)
    assert invalid_field(raised) == field


@pytest.mark.parametrize(
    ("bad", "field"),
    [
        (worker(15), "workers[1].birth_date"),
        (worker(71), "workers[1].birth_date"),
        (worker(30, job_class=1), "workers[1].job_class"),  # cleaning is class 2
        (worker(30, job_class=3, types=frozenset({ServiceType.APPLIANCE_CLEANING})), None),
        (worker(30, job_class=4), "workers[1].job_class"),  # no such class in the table
    ],
)
def test_workers_are_insurable_ages_under_a_class_their_work_needs(bad: Applicant, field: str | None) -> None:
    if field is None:
        assert policy(worker(), bad).premium_fen == 7000 + 10500
        return
    with pytest.raises(InvalidArgument) as raised:
        policy(worker(), bad)
    assert invalid_field(raised) == field


def test_a_worker_named_twice_or_none_at_all_is_refused() -> None:
    once = worker()
    with pytest.raises(InvalidArgument) as raised:
        policy(once, once)
    assert invalid_field(raised) == "workers[1]"
    with pytest.raises(InvalidArgument) as raised:
        policy()
    assert invalid_field(raised) == "workers"


def test_add_charges_from_the_effective_date_and_starts_cover_that_day() -> None:
    p = policy(worker())
    newcomer = worker(62)
    day = TODAY + timedelta(days=65)
    added = endorse(p, Change(EndorsementKind.ADD, day, add=(newcomer,)))
    endorsement = added.endorsements[-1]
    assert endorsement.premium_delta_fen == pro_rata(8000, YEAR_DAYS - 65, YEAR_DAYS)
    assert (endorsement.added, endorsement.removed) == ((newcomer.worker_id,), ())
    stint = added.stint_on(newcomer.worker_id, day)
    assert stint is not None
    assert (stint.insured.start, stint.insured.end) == (day, p.end)
    assert added.stint_on(newcomer.worker_id, day - timedelta(days=1)) is None


def test_replace_ends_the_old_cover_the_day_before_and_charges_the_difference() -> None:
    old, new = worker(30), worker(58)
    p = policy(old)
    day = TODAY + timedelta(days=10)
    replaced = endorse(p, Change(EndorsementKind.REPLACE, day, add=(new,), remove=(old.worker_id,)))
    days = YEAR_DAYS - 10
    assert replaced.endorsements[-1].premium_delta_fen == pro_rata(7500, days, YEAR_DAYS) - pro_rata(
        7000, days, YEAR_DAYS
    )
    assert replaced.stint_on(old.worker_id, day - timedelta(days=1)) is not None
    assert replaced.stint_on(old.worker_id, day) is None
    assert replaced.stint_on(new.worker_id, day) is not None


def test_a_worker_already_on_the_policy_that_day_already_exists() -> None:
    on = worker()
    p = policy(on)
    with pytest.raises(AlreadyExists):
        endorse(p, Change(EndorsementKind.ADD, TODAY + timedelta(days=3), add=(on,)))


def test_removing_or_replacing_a_worker_not_on_the_policy_is_a_failed_precondition() -> None:
    p = policy(worker())
    stranger = worker()
    with pytest.raises(FailedPrecondition):
        endorse(p, Change(EndorsementKind.REMOVE, TODAY, remove=(stranger.worker_id,)))
    with pytest.raises(FailedPrecondition):
        endorse(p, Change(EndorsementKind.REPLACE, TODAY, add=(worker(),), remove=(stranger.worker_id,)))


@pytest.mark.parametrize(
    ("day", "field"),
    [
        (TODAY - timedelta(days=1), "effective_date"),  # outside the term and in the past
        (date(2027, 11, 30), "effective_date"),  # after the end
    ],
)
def test_effective_dates_lie_inside_the_term_and_not_before_today(day: date, field: str) -> None:
    with pytest.raises(InvalidArgument) as raised:
        endorse(policy(worker()), Change(EndorsementKind.ADD, day, add=(worker(),)))
    assert invalid_field(raised) == field


def test_no_back_dating_inside_the_term() -> None:
    p = policy(worker())
    later = TODAY + timedelta(days=2)
    assert endorse(p, Change(EndorsementKind.ADD, later, add=(worker(),)), today=later).endorsements
    with pytest.raises(InvalidArgument) as raised:
        endorse(p, Change(EndorsementKind.ADD, TODAY + timedelta(days=1), add=(worker(),)), today=later)
    assert invalid_field(raised) == "effective_date"


@pytest.mark.parametrize(
    ("kind", "adds", "removes"),
    [
        (EndorsementKind.ADD, 0, 0),
        (EndorsementKind.ADD, 1, 1),
        (EndorsementKind.REMOVE, 1, 0),
        (EndorsementKind.REPLACE, 2, 1),
    ],
)
def test_each_kind_takes_its_own_shape(kind: EndorsementKind, adds: int, removes: int) -> None:
    on = [worker() for _ in range(removes)]
    p = policy(*on) if on else policy(worker())
    change = Change(
        kind, TODAY, add=tuple(worker() for _ in range(adds)), remove=tuple(w.worker_id for w in on)
    )
    with pytest.raises(InvalidArgument) as raised:
        endorse(p, change)
    assert invalid_field(raised) == "kind"


def test_an_expired_policy_takes_no_endorsement() -> None:
    with pytest.raises(FailedPrecondition):
        endorse(policy(worker()).expire(), Change(EndorsementKind.ADD, TODAY, add=(worker(),)))
    assert all(c.policy_expired for c in policy(worker()).expire().covers())


@given(
    offset=st.integers(min_value=0, max_value=YEAR_DAYS - 1), age=st.integers(min_value=16, max_value=69)
)  # 70 turns 71 on 1 January
def test_added_and_removed_the_same_day_refunds_what_was_charged(offset: int, age: int) -> None:
    p = policy(worker())
    newcomer = worker(age)
    day = TODAY + timedelta(days=offset)
    added = endorse(p, Change(EndorsementKind.ADD, day, add=(newcomer,)))
    removed = endorse(added, Change(EndorsementKind.REMOVE, day, remove=(newcomer.worker_id,)))
    charged, refunded = (e.premium_delta_fen for e in removed.endorsements)
    assert charged > 0
    assert charged + refunded == 0
    assert removed.stint_on(newcomer.worker_id, day) is None
