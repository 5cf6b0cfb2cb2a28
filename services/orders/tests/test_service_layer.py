"""Orders use cases through the fake unit of work: an order's whole life, what is stored, what is
published, what is refused."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import UTC, datetime, timedelta
from typing import TypeVar

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from google.protobuf.message import Message

from jiazheng.orders.events.v1 import events_pb2 as ev
from jiazheng.orders.v1 import orders_pb2 as o
from libs.common.auth import Principal, Role
from libs.common.card_token import CardClaims, SigningKeyring
from libs.common.errors import Aborted, FailedPrecondition, InvalidArgument, NotFound
from libs.common.settings import ServiceSettings
from libs.common.testing import FixedClock
from libs.common.timers import DueTimer, TimerWorker
from services.orders import domain, queries, service_layer
from services.orders.domain import CardColour, CreditLevel, HealthTier, SkillLevel, Trade
from services.orders.domain import contract as c
from services.orders.domain.matching import MatchingIndex, WeeklySlot, WorkerEligibility
from services.orders.events import TOPIC
from services.orders.tests.fakes import FakeOrdersUnitOfWork
from services.orders.tests.test_contract import CLAUSE

NOW = datetime(2024, 6, 3, 1, 0, tzinfo=UTC)  # a Monday, 09:00 in Beijing
START = NOW + timedelta(days=2)
WINDOW = domain.BookingWindow()
PLATFORM = Principal("p-key", Role.PLATFORM, "p-1")
WHOLE_WEEK = tuple(WeeklySlot(day, 0, 1440) for day in range(1, 8))
M = TypeVar("M", bound=Message)
KEYRING = SigningKeyring({"k1": Ed25519PrivateKey.generate()}, "k1")


def _draft(**changes: object) -> domain.OrderDraft:
    draft = domain.OrderDraft(
        service_type=domain.ServiceType.ELDERLY_CARE,
        district_code="110105",
        consumer_ref="c-1",
        worker_id=None,
        scheduled_start=START,
        duration_hours=4,
        contact=domain.Contact("张三", "13812345678"),
        address="北京市朝阳区幸福路1号",
        special_needs=(domain.SpecialNeed.ELDERLY_CLIENT,),
    )
    return dataclasses.replace(draft, **changes)  # type: ignore[arg-type]


def _worker(worker_id: str, **changes: object) -> WorkerEligibility:
    worker = WorkerEligibility(
        worker_id=worker_id,
        home_district="110105",
        districts=frozenset({"110105"}),
        trades=frozenset({Trade.FAMILY_CARER}),
        skill_level=SkillLevel.LEVEL_4,
        health_tier=HealthTier.ELDERLY_CARE,
        card_colour=CardColour.GREEN,
        credit_level=CreditLevel.B,
        weekly_slots=WHOLE_WEEK,
    )
    return dataclasses.replace(worker, **changes)  # type: ignore[arg-type]


@pytest.fixture
def uow() -> FakeOrdersUnitOfWork:
    return FakeOrdersUnitOfWork(FixedClock(NOW))


@pytest.fixture
def index() -> MatchingIndex:
    # w-best outranks w-next on credit (A over B); w-far is not in the district.
    return MatchingIndex(
        [
            _worker("w-best", credit_level=CreditLevel.A),
            _worker("w-next"),
            _worker("w-far", districts=frozenset({"110108"})),
        ]
    )


@pytest.fixture
def dispatch(index: MatchingIndex) -> service_layer.Dispatch:
    return service_layer.Dispatch(index, timedelta(minutes=15))


async def _order(uow: FakeOrdersUnitOfWork, **changes: object) -> domain.Order:
    return await service_layer.create_order(uow, "p-1", uuid.uuid4(), _draft(**changes), WINDOW)


async def _assigned(
    uow: FakeOrdersUnitOfWork, dispatch: service_layer.Dispatch
) -> tuple[domain.Order, domain.Offer]:
    order = await _order(uow)
    offer = await service_layer.offer_order(uow, dispatch, "p-1", order.order_id, None)
    assigned, _ = await service_layer.accept_offer(uow, PLATFORM, order.order_id, offer.offer_id, None)
    return assigned, offer


def _published(uow: FakeOrdersUnitOfWork, kind: type[M]) -> list[M]:
    name = kind.DESCRIPTOR.full_name
    return [p.event.parse(kind) for p in uow.published if p.event.type == name and p.topic == TOPIC]


# -- creating --------------------------------------------------------------------------------


async def test_create_prices_from_the_catalogue_and_publishes_no_personal_data(
    uow: FakeOrdersUnitOfWork,
) -> None:
    order = await _order(uow)

    assert order.state is domain.OrderState.CREATED
    assert order.price_fen == 4 * 6_000  # elderly care: 60 yuan an hour by default
    assert order.catalogue_version == domain.DEFAULT_CATALOGUE.version
    [created] = _published(uow, ev.OrderCreated)
    assert created.price_fen == 24_000
    assert "13812345678" not in str(created)
    assert "张三" not in str(created)
    assert await queries.get_order(uow.orders, "p-1", order.order_id) == order


async def test_a_retry_returns_the_first_order_and_a_changed_one_is_refused(
    uow: FakeOrdersUnitOfWork,
) -> None:
    request_id = uuid.uuid4()
    first = await service_layer.create_order(uow, "p-1", request_id, _draft(), WINDOW)

    again = await service_layer.create_order(uow, "p-1", request_id, _draft(), WINDOW)
    with pytest.raises(InvalidArgument) as refused:
        await service_layer.create_order(uow, "p-1", request_id, _draft(address="别处"), WINDOW)

    assert again == first
    assert refused.value.field == "request_id"
    assert len(uow.published) == 1


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"contact": None}, "order.contact.full_name"),
        ({"address": "  "}, "order.address"),
        ({"duration_hours": 13}, "order.duration_hours"),  # elderly care books at most 12 hours
        ({"price_fen": 10 * 24_000 + 1}, "order.price_fen"),
        ({"scheduled_start": NOW - timedelta(hours=2)}, "order.scheduled_start_time"),
    ],
)
async def test_bad_orders_are_refused_naming_the_field(
    uow: FakeOrdersUnitOfWork, changes: dict[str, object], field: str
) -> None:
    with pytest.raises(InvalidArgument) as refused:
        await _order(uow, **changes)

    assert refused.value.field == field
    assert uow.published == []


async def test_another_platform_cannot_see_or_touch_the_order(
    uow: FakeOrdersUnitOfWork, dispatch: service_layer.Dispatch
) -> None:
    order = await _order(uow)

    with pytest.raises(NotFound):
        await queries.get_order(uow.orders, "p-2", order.order_id)
    with pytest.raises(NotFound):
        await service_layer.offer_order(uow, dispatch, "p-2", order.order_id, None)
    with pytest.raises(NotFound):
        await service_layer.match_order(uow, dispatch.matcher, "p-2", order.order_id, 10)


# -- matching and offers ---------------------------------------------------------------------


async def test_match_ranks_candidates_and_counts_exclusions(
    uow: FakeOrdersUnitOfWork, dispatch: service_layer.Dispatch
) -> None:
    order = await _order(uow)

    result = await service_layer.match_order(uow, dispatch.matcher, "p-1", order.order_id, 10)

    assert [c.worker_id for c in result.candidates] == ["w-best", "w-next"]
    assert result.excluded[domain.Rule.DISTRICT] == 1


async def test_an_offer_goes_to_the_best_candidate_with_a_timer(
    uow: FakeOrdersUnitOfWork, dispatch: service_layer.Dispatch
) -> None:
    order = await _order(uow)

    offer = await service_layer.offer_order(uow, dispatch, "p-1", order.order_id, None)

    assert (offer.worker_id, offer.rank, offer.expires_at) == ("w-best", 1, NOW + timedelta(minutes=15))
    assert (await uow.orders.get(order.order_id)).state is domain.OrderState.OFFERED  # type: ignore[union-attr]
    assert (service_layer.OFFER_TIMER, str(offer.offer_id)) in uow.timers.pending
    [made] = _published(uow, ev.OfferMade)
    assert made.worker_id == "w-best"


async def test_the_worker_booked_at_creation_gets_the_first_offer_only(
    uow: FakeOrdersUnitOfWork, dispatch: service_layer.Dispatch
) -> None:
    order = await _order(uow, worker_id="w-next")

    first = await service_layer.offer_order(uow, dispatch, "p-1", order.order_id, None)
    await service_layer.decline_offer(uow, dispatch, PLATFORM, order.order_id, first.offer_id)
    second = await uow.offers.get((await uow.orders.get(order.order_id)).pending_offer_id)  # type: ignore[arg-type,union-attr]

    assert (first.worker_id, first.rank) == ("w-next", 0)
    assert second is not None
    assert second.worker_id == "w-best"


async def test_a_named_worker_who_is_not_eligible_is_refused_with_the_rule(
    uow: FakeOrdersUnitOfWork, dispatch: service_layer.Dispatch
) -> None:
    order = await _order(uow)

    with pytest.raises(FailedPrecondition, match="district"):
        await service_layer.offer_order(uow, dispatch, "p-1", order.order_id, "w-far")


async def test_accepting_assigns_the_worker_and_makes_the_contract(
    uow: FakeOrdersUnitOfWork, dispatch: service_layer.Dispatch
) -> None:
    assigned, offer = await _assigned(uow, dispatch)

    assert assigned.state is domain.OrderState.ASSIGNED
    assert assigned.assigned_worker_id == "w-best"
    stored = await uow.contracts.get(assigned.contract_id)  # type: ignore[arg-type]
    assert stored is not None
    assert stored.contract.parties.consumer_name == "张三"
    assert stored.contract.terms.wage_fen + stored.contract.terms.management_fee_fen == assigned.price_fen
    [event] = _published(uow, ev.OrderAssigned)
    assert event.contract_sha256 == stored.content_sha256
    assert (service_layer.OFFER_TIMER, str(offer.offer_id)) not in uow.timers.pending


async def test_a_second_accept_is_aborted_and_a_declined_offer_cannot_be_accepted(
    uow: FakeOrdersUnitOfWork, dispatch: service_layer.Dispatch
) -> None:
    assigned, offer = await _assigned(uow, dispatch)
    with pytest.raises(Aborted):
        await service_layer.accept_offer(uow, PLATFORM, assigned.order_id, offer.offer_id, None)

    other = await _order(uow)
    first = await service_layer.offer_order(uow, dispatch, "p-1", other.order_id, "w-next")
    await service_layer.decline_offer(uow, dispatch, PLATFORM, other.order_id, first.offer_id)
    with pytest.raises(FailedPrecondition, match="declined"):
        await service_layer.accept_offer(uow, PLATFORM, other.order_id, first.offer_id, None)


async def test_a_decline_offers_the_order_to_the_next_candidate_then_none_is_left(
    uow: FakeOrdersUnitOfWork, dispatch: service_layer.Dispatch
) -> None:
    order = await _order(uow)
    first = await service_layer.offer_order(uow, dispatch, "p-1", order.order_id, None)

    await service_layer.decline_offer(uow, dispatch, PLATFORM, order.order_id, first.offer_id)
    second_id = (await uow.orders.get(order.order_id)).pending_offer_id  # type: ignore[union-attr]
    second = await uow.offers.get(second_id)  # type: ignore[arg-type]
    await service_layer.decline_offer(uow, dispatch, PLATFORM, order.order_id, second.offer_id)  # type: ignore[union-attr]

    assert second is not None
    assert second.worker_id == "w-next"
    assert (await uow.orders.get(order.order_id)).state is domain.OrderState.CREATED  # type: ignore[union-attr]
    assert len(_published(uow, ev.OrderUnmatched)) == 1


async def test_an_unanswered_offer_expires_to_the_next_candidate_by_the_clock_alone(
    uow: FakeOrdersUnitOfWork, dispatch: service_layer.Dispatch
) -> None:
    order = await _order(uow)
    await service_layer.offer_order(uow, dispatch, "p-1", order.order_id, None)

    async def expire(unit: FakeOrdersUnitOfWork, timer: DueTimer) -> None:
        await service_layer.expire_offer(unit, dispatch, timer)

    worker = TimerWorker(lambda: uow, {service_layer.OFFER_TIMER: expire}, ServiceSettings(), _answers)
    assert await worker.fire_due() == 0
    uow.clock.advance(timedelta(minutes=15))
    assert await worker.fire_due() == 1

    [ended] = _published(uow, ev.OfferEnded)
    assert ended.worker_id == "w-best"
    assert [m.worker_id for m in _published(uow, ev.OfferMade)] == ["w-best", "w-next"]


async def _answers() -> bool:
    return True


async def test_a_company_sees_only_offers_to_its_own_workers(
    uow: FakeOrdersUnitOfWork, dispatch: service_layer.Dispatch
) -> None:
    await uow.eligibility.set_company("w-best", "company-a")
    order = await _order(uow)
    offer = await service_layer.offer_order(uow, dispatch, "p-1", order.order_id, None)

    with pytest.raises(NotFound):
        await service_layer.accept_offer(
            uow, Principal("k", Role.COMPANY, "company-b"), order.order_id, offer.offer_id, None
        )
    assigned, _ = await service_layer.accept_offer(
        uow, Principal("k", Role.COMPANY, "company-a"), order.order_id, offer.offer_id, None
    )
    assert assigned.assigned_worker_id == "w-best"


# -- the visit -------------------------------------------------------------------------------


def _token(worker_id: str, card_id: str = "card-1") -> str:
    return KEYRING.sign(CardClaims(card_id, worker_id, NOW - timedelta(days=1), NOW + timedelta(days=300)))


CARD_KEYS = service_layer.CardKeys(KEYRING.public_keys())


async def _card(uow: FakeOrdersUnitOfWork, worker_id: str, colour: CardColour = CardColour.GREEN) -> None:
    await uow.eligibility.issue_card(worker_id, "card-1")
    await uow.eligibility.set_card_colour(worker_id, colour)


async def test_check_in_with_the_assigned_workers_green_card_then_complete(
    uow: FakeOrdersUnitOfWork, dispatch: service_layer.Dispatch
) -> None:
    assigned, _ = await _assigned(uow, dispatch)
    await _card(uow, "w-best")
    link = f"https://verify.example/card?t={_token('w-best')}"

    checked_in = await service_layer.check_in(uow, CARD_KEYS, "p-1", assigned.order_id, link)
    uow.clock.advance(timedelta(hours=4))
    completed = await service_layer.check_out(uow, "p-1", assigned.order_id)

    assert (checked_in.state, checked_in.check_in_at, checked_in.card_id) == (
        domain.OrderState.CHECKED_IN,
        NOW,
        "card-1",
    )
    [done] = _published(uow, ev.OrderCompleted)
    assert done.check_in_time.ToDatetime(tzinfo=UTC) == NOW
    assert done.check_out_time.ToDatetime(tzinfo=UTC) == NOW + timedelta(hours=4)
    assert completed.state is domain.OrderState.COMPLETED


@pytest.mark.parametrize(
    ("token_of", "colour", "says"),
    [
        ("w-next", CardColour.GREEN, "not the card of the worker"),
        ("w-best", CardColour.YELLOW, "YELLOW"),
        ("tampered", CardColour.GREEN, "bad_signature"),
    ],
)
async def test_check_in_refuses_a_wrong_a_yellow_or_a_forged_card(
    uow: FakeOrdersUnitOfWork, dispatch: service_layer.Dispatch, token_of: str, colour: CardColour, says: str
) -> None:
    assigned, _ = await _assigned(uow, dispatch)
    await _card(uow, "w-best", colour)
    token = _token("w-best")[:-4] + "AAAA" if token_of == "tampered" else _token(token_of)

    with pytest.raises(FailedPrecondition, match=says):
        await service_layer.check_in(uow, CARD_KEYS, "p-1", assigned.order_id, token)
    assert (await uow.orders.get(assigned.order_id)).state is domain.OrderState.ASSIGNED  # type: ignore[union-attr]


async def test_a_revoked_card_cannot_check_in(
    uow: FakeOrdersUnitOfWork, dispatch: service_layer.Dispatch
) -> None:
    assigned, _ = await _assigned(uow, dispatch)
    await _card(uow, "w-best")
    await uow.eligibility.revoke_card("w-best", "card-1")

    with pytest.raises(FailedPrecondition, match="revoked"):
        await service_layer.check_in(uow, CARD_KEYS, "p-1", assigned.order_id, _token("w-best"))


async def test_completing_an_order_never_checked_in_names_its_state(
    uow: FakeOrdersUnitOfWork, dispatch: service_layer.Dispatch
) -> None:
    assigned, _ = await _assigned(uow, dispatch)

    with pytest.raises(FailedPrecondition, match="assigned"):
        await service_layer.check_out(uow, "p-1", assigned.order_id)


async def test_each_side_rates_once_after_completion(
    uow: FakeOrdersUnitOfWork, dispatch: service_layer.Dispatch
) -> None:
    assigned, _ = await _assigned(uow, dispatch)
    with pytest.raises(FailedPrecondition, match="assigned"):
        await service_layer.rate_order(uow, "p-1", assigned.order_id, domain.Party.CONSUMER, 5)
    await _card(uow, "w-best")
    await service_layer.check_in(uow, CARD_KEYS, "p-1", assigned.order_id, _token("w-best"))
    await service_layer.check_out(uow, "p-1", assigned.order_id)

    await service_layer.rate_order(uow, "p-1", assigned.order_id, domain.Party.CONSUMER, 5)
    rated = await service_layer.rate_order(uow, "p-1", assigned.order_id, domain.Party.WORKER, 4)
    with pytest.raises(FailedPrecondition, match="already rated"):
        await service_layer.rate_order(uow, "p-1", assigned.order_id, domain.Party.CONSUMER, 1)

    assert (rated.consumer_rating, rated.worker_rating) == (5, 4)
    assert [r.stars for r in _published(uow, ev.RatingPosted)] == [5, 4]


# -- endings ---------------------------------------------------------------------------------


async def test_a_late_cancellation_by_the_consumer_pays_the_fee(
    uow: FakeOrdersUnitOfWork, dispatch: service_layer.Dispatch
) -> None:
    assigned, _ = await _assigned(uow, dispatch)
    uow.clock.advance(timedelta(days=1, hours=12))  # 12 h before the start

    cancelled = await service_layer.cancel_order(
        uow, "p-1", assigned.order_id, domain.Party.CONSUMER, "plans changed"
    )

    assert cancelled.cancellation_fee_fen == 2_400  # 10 % of 240 yuan
    [event] = _published(uow, ev.OrderCancelled)
    assert (event.fee_fen, event.hours_before_start, event.worker_id) == (2_400, 12, "w-best")


async def test_the_fee_follows_the_cancellation_clause_the_company_set_in_the_contract(
    uow: FakeOrdersUnitOfWork, dispatch: service_layer.Dispatch
) -> None:
    order = await _order(uow)
    offer = await service_layer.offer_order(uow, dispatch, "p-1", order.order_id, None)
    terms = c.ContractTerms(19_200, 4_800, 0, c.PaymentCycle.PER_VISIT, 0, cancellation=CLAUSE)
    _, contract = await service_layer.accept_offer(uow, PLATFORM, order.order_id, offer.offer_id, terms)
    uow.clock.advance(timedelta(days=1, hours=12))  # 12 h before the start

    cancelled = await service_layer.cancel_order(
        uow, "p-1", order.order_id, domain.Party.WORKER, "the worker fell ill"
    )

    assert contract.terms.cancellation == CLAUSE
    assert cancelled.cancellation_fee_fen == 3_600  # the clause's 15 % for the worker's side, not 10 %
    [event] = _published(uow, ev.OrderCancelled)
    assert (event.fee_fen, event.cancelled_by) == (3_600, o.PARTY_WORKER)


async def test_terms_without_a_clause_get_the_default_one_and_a_replaced_order_cancels_free(
    uow: FakeOrdersUnitOfWork, dispatch: service_layer.Dispatch
) -> None:
    order = await _order(uow)
    offer = await service_layer.offer_order(uow, dispatch, "p-1", order.order_id, None)
    terms = c.ContractTerms(20_000, 4_000, 0, c.PaymentCycle.PER_VISIT, 0)
    _, contract = await service_layer.accept_offer(uow, PLATFORM, order.order_id, offer.offer_id, terms)
    await service_layer.replace_worker(uow, "p-1", order.order_id, "consumer asked")
    uow.clock.advance(timedelta(days=1, hours=23))  # an hour before the start

    cancelled = await service_layer.cancel_order(uow, "p-1", order.order_id, domain.Party.CONSUMER, "")

    assert contract.terms.cancellation == c.DEFAULT_CANCELLATION
    assert cancelled.cancellation_fee_fen == 0  # the contract ended with the replacement


async def test_cancelling_while_an_offer_waits_withdraws_it(
    uow: FakeOrdersUnitOfWork, dispatch: service_layer.Dispatch
) -> None:
    order = await _order(uow)
    offer = await service_layer.offer_order(uow, dispatch, "p-1", order.order_id, None)

    cancelled = await service_layer.cancel_order(
        uow, "p-1", order.order_id, domain.Party.CONSUMER, "no longer needed"
    )

    assert cancelled.cancellation_fee_fen == 0
    assert (await uow.offers.get(offer.offer_id)).state is domain.OfferState.WITHDRAWN  # type: ignore[union-attr]
    assert uow.timers.pending == {}


async def test_a_workers_second_no_show_within_28_days_is_a_serious_breach(
    uow: FakeOrdersUnitOfWork, dispatch: service_layer.Dispatch
) -> None:
    first, _ = await _assigned(uow, dispatch)
    second, _ = await _assigned(uow, dispatch)
    uow.clock.advance(timedelta(days=3))

    before_start_refused = await _order(uow, scheduled_start=NOW + timedelta(days=10))
    one = await service_layer.report_no_show(uow, "p-1", first.order_id, domain.Party.WORKER)
    two = await service_layer.report_no_show(uow, "p-1", second.order_id, domain.Party.WORKER)

    assert (one.worker_no_shows_28d, one.serious_breach) == (1, False)
    assert (two.worker_no_shows_28d, two.serious_breach) == (2, True)
    assert [e.serious_breach for e in _published(uow, ev.NoShowReported)] == [False, True]
    with pytest.raises(FailedPrecondition, match="created"):
        await service_layer.report_no_show(uow, "p-1", before_start_refused.order_id, domain.Party.WORKER)


async def test_replacing_the_worker_links_the_next_contract_and_restarts_the_trial(
    uow: FakeOrdersUnitOfWork, dispatch: service_layer.Dispatch
) -> None:
    live_in = {"service_type": domain.ServiceType.LIVE_IN_HOUSEKEEPER, "duration_hours": 26 * 24}
    workers = [
        _worker(w, trades=frozenset({Trade.HOUSEKEEPER}), health_tier=HealthTier.LIVE_IN) for w in ("a", "b")
    ]
    dispatch = service_layer.Dispatch(MatchingIndex(workers), timedelta(minutes=15))
    order = await _order(uow, **live_in)
    offer = await service_layer.offer_order(uow, dispatch, "p-1", order.order_id, "a")
    _first, first_contract = await service_layer.accept_offer(
        uow, PLATFORM, order.order_id, offer.offer_id, None
    )
    uow.clock.advance(timedelta(days=3))

    waiting, replace_by = await service_layer.replace_worker(uow, "p-1", order.order_id, "consumer asked")
    offer = await service_layer.offer_order(uow, dispatch, "p-1", order.order_id, None)
    second, second_contract = await service_layer.accept_offer(
        uow, PLATFORM, order.order_id, offer.offer_id, None
    )

    assert waiting.state is domain.OrderState.CREATED
    assert replace_by == NOW + timedelta(days=6)
    assert offer.worker_id == "b"  # the replaced worker is not offered the order again
    assert second_contract.replaces_contract_id == first_contract.contract_id
    assert second_contract.trial_ends_at == NOW + timedelta(days=3 + 7)  # from the replacement
    ended = await uow.contracts.get(first_contract.contract_id)
    assert ended is not None
    assert ended.ended_at == NOW + timedelta(days=3)
    assert second.contract_id == second_contract.contract_id


async def test_an_operator_changes_the_catalogue_and_a_stale_change_is_aborted(
    uow: FakeOrdersUnitOfWork,
) -> None:
    entry = dataclasses.replace(
        domain.DEFAULT_CATALOGUE.entry(domain.ServiceType.CLEANING), price=domain.HourlyRate(5_000)
    )

    changed = await service_layer.update_catalogue_entry(uow, entry, 1)
    with pytest.raises(Aborted):
        await service_layer.update_catalogue_entry(uow, entry, 1)
    order = await _order(uow, service_type=domain.ServiceType.CLEANING, duration_hours=3)

    assert changed.version == 2
    assert (order.catalogue_version, order.price_fen) == (2, 15_000)
    [event] = _published(uow, ev.CatalogueChanged)
    assert event.version == 2
    assert event.entry.price.fen_per_hour == 5_000


async def test_the_side_charged_disputes_the_fee_once(
    uow: FakeOrdersUnitOfWork, dispatch: service_layer.Dispatch
) -> None:
    assigned, _ = await _assigned(uow, dispatch)
    uow.clock.advance(timedelta(days=1, hours=23))  # an hour before the start: 20 %
    await service_layer.cancel_order(uow, "p-1", assigned.order_id, domain.Party.CONSUMER, "plans changed")

    with pytest.raises(FailedPrecondition, match="only the side charged"):
        await service_layer.dispute_charge(uow, "p-1", assigned.order_id, domain.Party.WORKER, "not me")
    await service_layer.dispute_charge(
        uow, "p-1", assigned.order_id, domain.Party.CONSUMER, "the worker was late"
    )
    with pytest.raises(FailedPrecondition, match="already disputed"):
        await service_layer.dispute_charge(uow, "p-1", assigned.order_id, domain.Party.CONSUMER, "again")

    [event] = _published(uow, ev.ChargeDisputed)
    assert (event.charge, event.amount_fen, event.worker_id) == ("cancellation_fee", 4_800, "w-best")


async def test_a_charge_of_an_order_still_running_cannot_be_disputed(
    uow: FakeOrdersUnitOfWork, dispatch: service_layer.Dispatch
) -> None:
    assigned, _ = await _assigned(uow, dispatch)

    with pytest.raises(FailedPrecondition, match="assigned"):
        await service_layer.dispute_charge(uow, "p-1", assigned.order_id, domain.Party.CONSUMER, "why")
