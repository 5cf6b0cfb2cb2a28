"""Cancellation fees by the contract (取消服务): the clause of the order's contract, for the side that
cancels, at the notice given; the default clause for a contract without one."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from libs.common.errors import FailedPrecondition
from services.orders.domain import (
    DEFAULT_CATALOGUE,
    OrderDraft,
    OrderState,
    Party,
    ServiceType,
    cancel,
    cancellation_fee,
    create_order,
)
from services.orders.domain.contract import (
    DEFAULT_CANCELLATION_FEES,
    CancellationFee,
    CancellationTerms,
    Contract,
    cancellation_percent,
    share_of,
)
from services.orders.domain.order import Order
from services.orders.tests.test_contract import CLAUSE, make_contract, make_terms

NOW = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)
START = NOW + timedelta(days=3)
PRICE = 24_000  # four hours of elderly care
CONTRACT_ID = uuid.UUID(int=1)


def _assigned(state: OrderState = OrderState.ASSIGNED) -> Order:
    draft = OrderDraft(ServiceType.ELDERLY_CARE, "110105", "c-1", None, START, 4)
    order = create_order(draft, "p-1", NOW, DEFAULT_CATALOGUE)
    assert order.price_fen == PRICE
    return dataclasses.replace(order, state=state, assigned_worker_id="w-1", contract_id=CONTRACT_ID)


def _contract(clause: CancellationTerms | None = CLAUSE) -> Contract:
    return dataclasses.replace(make_contract(terms=make_terms(cancellation=clause)), contract_id=CONTRACT_ID)


@pytest.mark.parametrize(
    ("notice", "percent"),
    [
        (timedelta(days=2), 0),
        (timedelta(hours=24), 0),  # a full day's notice is free
        (timedelta(hours=24) - timedelta(seconds=1), 10),
        (timedelta(hours=2), 10),
        (timedelta(hours=2) - timedelta(seconds=1), 20),
        (timedelta(0), 20),
        (-timedelta(hours=1), 20),  # after the start
    ],
)
def test_the_default_fees_run_by_the_notice(notice: timedelta, percent: int) -> None:
    assert cancellation_percent(DEFAULT_CANCELLATION_FEES, notice) == percent


@pytest.mark.parametrize(
    ("by", "notice", "percent"),
    [
        (Party.CONSUMER, timedelta(hours=48), 0),
        (Party.CONSUMER, timedelta(hours=30), 5),
        (Party.CONSUMER, timedelta(hours=6), 5),
        (Party.CONSUMER, timedelta(hours=3), 30),
        (Party.WORKER, timedelta(hours=36), 0),
        (Party.WORKER, timedelta(hours=30), 15),
        (Party.WORKER, timedelta(hours=2), 15),
        (Party.WORKER, timedelta(hours=1), 40),
        (Party.WORKER, -timedelta(minutes=1), 40),
    ],
)
def test_the_fee_is_the_contracts_rate_for_the_side_that_cancels(
    by: Party, notice: timedelta, percent: int
) -> None:
    fee = cancellation_fee(_assigned(), by, START - notice, _contract())

    assert fee == PRICE * percent // 100


@pytest.mark.parametrize("by", list(Party))
@pytest.mark.parametrize(
    ("notice", "percent"), [(timedelta(hours=25), 0), (timedelta(hours=12), 10), (timedelta(hours=1), 20)]
)
def test_without_a_clause_or_a_contract_the_default_clause_applies(
    by: Party, notice: timedelta, percent: int
) -> None:
    now = START - notice

    old_contract = cancellation_fee(_assigned(), by, now, _contract(clause=None))

    assert old_contract == cancellation_fee(_assigned(), by, now) == PRICE * percent // 100


@pytest.mark.parametrize("state", [OrderState.CREATED, OrderState.OFFERED])
def test_before_a_worker_is_assigned_cancelling_is_free(state: OrderState) -> None:
    order = dataclasses.replace(_assigned(state), assigned_worker_id=None)

    cancelled = cancel(order, Party.CONSUMER, START - timedelta(minutes=5))

    assert cancelled.cancellation_fee_fen == 0


def test_a_clause_that_charges_nothing_lets_that_side_cancel_free() -> None:
    free_for_worker = CancellationTerms(CLAUSE.consumer, ())

    cancelled = cancel(_assigned(), Party.WORKER, START, _contract(free_for_worker))

    assert (cancelled.state, cancelled.ended_by, cancelled.cancellation_fee_fen) == (
        OrderState.CANCELLED,
        Party.WORKER,
        0,
    )


def test_cancel_records_who_when_and_the_contracts_fee() -> None:
    now = START - timedelta(hours=3)

    cancelled = cancel(_assigned(), Party.CONSUMER, now, _contract())

    assert (cancelled.ended_by, cancelled.ended_at, cancelled.cancellation_fee_fen) == (
        Party.CONSUMER,
        now,
        7_200,  # 30 % of 240 yuan
    )


def test_another_orders_contract_is_refused() -> None:
    other = dataclasses.replace(_contract(), contract_id=uuid.UUID(int=2))

    with pytest.raises(ValueError, match="is not the contract of"):
        cancel(_assigned(), Party.CONSUMER, NOW, other)


def test_a_checked_in_order_cannot_be_cancelled() -> None:
    with pytest.raises(FailedPrecondition, match="cannot cancel an order that is checked_in"):
        cancel(_assigned(OrderState.CHECKED_IN), Party.CONSUMER, NOW, _contract())


@pytest.mark.parametrize(
    ("price", "percent", "fee"), [(24_000, 10, 2_400), (4_505, 10, 451), (4_504, 10, 450), (1, 50, 1)]
)
def test_the_share_is_rounded_half_up_to_the_fen(price: int, percent: int, fee: int) -> None:
    assert share_of(price, percent) == fee


def test_of_several_fees_that_apply_the_highest_is_charged() -> None:
    fees = (CancellationFee(48, 5), CancellationFee(6, 30), CancellationFee(12, 30))

    assert cancellation_percent(fees, timedelta(hours=5)) == 30
