"""Which cover insures a service on a day (domain/cover.py): why a cover does not, the one
chosen among several, and the last day of cover that WorkerCoverageChanged publishes."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import date

import pytest

from services.insurance.domain.cover import Cover, InsuredWorker, covered_until, find_cover
from services.insurance.domain.vocabulary import ServiceType

START, END = date(2026, 12, 1), date(2027, 11, 30)
HOUSEWORK = frozenset({ServiceType.CLEANING, ServiceType.MATERNITY})


def cover(
    start: date = START,
    end: date = END,
    job_class: int = 2,
    service_types: frozenset[ServiceType] = HOUSEWORK,
    expired: bool = False,
    policy: str = "00000000-0000-0000-0000-000000000001",
) -> Cover:
    insured = InsuredWorker(uuid.UUID(policy), "w-1", job_class, service_types, start, end)
    return Cover(insured, "el-300k", "demo-insurer", "co-1", expired)


@pytest.mark.parametrize("day", [START, date(2027, 6, 1), END])
def test_a_cover_insures_its_service_types_on_every_day_of_its_term(day: date) -> None:
    assert cover().why_not(ServiceType.CLEANING, day) is None


@pytest.mark.parametrize(
    ("kwargs", "service", "day", "reason"),
    [
        (
            {},
            ServiceType.CLEANING,
            date(2026, 11, 30),
            "cover not yet effective on 2026-11-30 (starts 2026-12-01)",
        ),
        ({}, ServiceType.CLEANING, date(2027, 12, 1), "cover ended on 2027-11-30"),
        ({}, ServiceType.ELDERLY_CARE, START, "not insured for elderly_care"),
        (
            {"job_class": 1},
            ServiceType.CLEANING,
            START,
            "insured job class 1 is below class 2 of cleaning",
        ),
    ],
)
def test_why_not_names_the_reason(
    kwargs: dict[str, int], service: ServiceType, day: date, reason: str
) -> None:
    assert cover(**kwargs).why_not(service, day) == reason  # type: ignore[arg-type]


def test_an_expired_policy_insures_nothing_even_inside_its_dates() -> None:
    reason = cover(expired=True).why_not(ServiceType.CLEANING, START)
    assert reason == "policy 00000000-0000-0000-0000-000000000001 has expired"


def test_find_cover_takes_the_longest_lasting_of_the_covers_that_insure() -> None:
    short = cover(end=date(2027, 1, 31), policy="00000000-0000-0000-0000-00000000000a")
    long = cover(policy="00000000-0000-0000-0000-00000000000b")
    assert find_cover([short, long], ServiceType.CLEANING, START) == long
    assert find_cover([long, short], ServiceType.CLEANING, START) == long


def test_find_cover_gives_every_distinct_reason_when_none_insures() -> None:
    later = cover(start=date(2027, 1, 1))
    low = cover(job_class=1, policy="00000000-0000-0000-0000-000000000002")
    found = find_cover([later, low, later], ServiceType.CLEANING, START)
    assert found == (
        "cover not yet effective on 2026-12-01 (starts 2027-01-01);"
        " insured job class 1 is below class 2 of cleaning"
    )


def test_find_cover_without_covers_says_no_policy_lists_the_worker() -> None:
    assert find_cover([], ServiceType.CLEANING, START) == "no policy lists the worker"


def test_covered_until_is_the_latest_end_of_the_covers_holding_today() -> None:
    ending = cover(end=date(2027, 3, 31))
    extended = dataclasses.replace(ending, insured=dataclasses.replace(ending.insured, end=END))
    future = cover(start=date(2028, 1, 1), end=date(2028, 12, 31))
    assert covered_until([ending, future], START) == date(2027, 3, 31)
    assert covered_until([ending, extended, future], START) == END


def test_covered_until_ignores_expired_policies_and_other_days() -> None:
    assert covered_until([cover(expired=True)], START) is None
    assert covered_until([cover()], date(2026, 11, 30)) is None
