"""The insurance store's listings on the real PostgreSQL (its migrations in a scratch database),
through the use cases, and on the in-memory fakes the unit tests use: policies oldest issued
first, uncovered orders soonest due first, page after page, whatever their ids."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TypeVar

import pytest

from libs.common.auth import Principal, Role
from libs.common.errors import InvalidArgument
from libs.common.pii import Keyring
from libs.common.testing import FixedClock
from services.insurance import app as insurance_app
from services.insurance.domain.orders import Order
from services.insurance.domain.policies import Applicant, Issue
from services.insurance.domain.products import DEFAULT_PRODUCTS, load_catalogue
from services.insurance.domain.vocabulary import ServiceType
from services.insurance.service_layer import coverage, policies
from services.insurance.service_layer.claim_ports import InsuranceUnitOfWork
from services.insurance.store import PgInsuranceUnitOfWork
from services.insurance.tests.fakes import FakeInsuranceUnitOfWork


@pytest.fixture
def migrations() -> Path:
    """What the conftest's ``pool`` fixture migrates: the insurance service's tables."""
    return insurance_app.MIGRATIONS


NOW = datetime(2026, 12, 3, 2, tzinfo=UTC)  # 10:00 in Beijing
KEYRING = Keyring({"test-1": secrets.token_bytes(32)}, "test-1", secrets.token_bytes(32))
COMPANY = Principal("demo-company", Role.COMPANY, "co-1")
OPERATOR = Principal("operator", Role.OPERATOR, "ops")
PRODUCT = load_catalogue(DEFAULT_PRODUCTS).get("el-100k")

NewUnitOfWork = Callable[[], InsuranceUnitOfWork]
T = TypeVar("T")


@pytest.fixture(params=["postgres", "fake"])
def new_uow(request: pytest.FixtureRequest) -> tuple[NewUnitOfWork, FixedClock]:
    """A unit of work on the real store, or on the in-memory fake playing the database, and its clock."""
    clock = FixedClock(NOW)
    if request.param == "postgres":
        pool = request.getfixturevalue("pool")
        return (lambda: PgInsuranceUnitOfWork(pool, KEYRING, clock)), clock
    fake = FakeInsuranceUnitOfWork(clock)
    return (lambda: fake), clock


async def test_policies_page_oldest_issued_first(new_uow: tuple[NewUnitOfWork, FixedClock]) -> None:
    uow, clock = new_uow
    assert PRODUCT is not None
    made = []
    for n in range(5):
        worker = Applicant(f"w-{n}", date(1990, 5, 1), frozenset({ServiceType.CLEANING}), 2)
        request = Issue(COMPANY.tenant, PRODUCT, NOW.date(), None, (worker,))
        made.append(await policies.create_policy(uow(), COMPANY, uuid.uuid4(), request))
        clock.advance(timedelta(seconds=1 if n % 2 else 0))  # two pairs issued at one instant

    listed = await _all(lambda token: policies.list_policies(uow(), COMPANY, token, 2))

    keys = [(p.issued_at, p.policy_id) for p in made]
    assert [(p.issued_at, p.policy_id) for p in listed] == sorted(keys)
    assert [p.issued_at for p in listed] == sorted(p.issued_at for p in made)


async def test_uncovered_orders_page_soonest_due_first(new_uow: tuple[NewUnitOfWork, FixedClock]) -> None:
    uow, _ = new_uow
    hours = {"o-a": 30, "o-b": 2, "o-c": 2, "o-d": 26, "o-e": 5}
    for order_id, after in hours.items():
        order = Order(
            order_id,
            "p-1",
            COMPANY.tenant,
            "w-uninsured",
            ServiceType.CLEANING,
            "110105",
            NOW + timedelta(hours=after),
            NOW + timedelta(hours=after + 2),
        )
        work = uow()
        async with work:
            await coverage.accept_order(work, order)
            await work.commit()

    listed = await _all(lambda token: coverage.uncovered_orders(uow(), COMPANY, token, 2))

    assert [o.order_id for o in listed] == ["o-b", "o-c", "o-e", "o-d", "o-a"]
    first, token = await coverage.uncovered_orders(uow(), COMPANY, "", 2)
    with pytest.raises(InvalidArgument) as raised:
        await coverage.uncovered_orders(uow(), OPERATOR, token, 2)
    assert raised.value.field == "page_token"
    assert [o.order_id for o in first] == ["o-b", "o-c"]


async def _all(page: Callable[[str], Awaitable[tuple[list[T], str]]]) -> list[T]:
    """Every row of a listing, page after page."""
    found: list[T] = []
    token = ""
    while True:
        rows, token = await page(token)
        found += rows
        if not token:
            return found
