"""orders' effects of the workers and credit events, driven as in production: Kafka records through
the IdempotentConsumer into the fake unit of work.

The workers events are built by the workers service's own producer (``services.workers.events``),
credit's as its contract says, so these are consumer contract tests for matching's copy of a worker.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta

import pytest
from google.protobuf.message import Message

from jiazheng.credit.events.v1 import events_pb2 as credit_events
from jiazheng.workers.events.v1 import events_pb2 as worker_events
from jiazheng.workers.v1 import workers_pb2 as workers_pb
from libs.common.events import EventEnvelope, new_event
from libs.common.inbox import IdempotentConsumer, KafkaRecord
from libs.common.kafka import events_topic
from libs.common.protoutil import timestamp
from libs.common.testing import FakeDeadLetters, FixedClock
from services.orders.domain.matching import Interval, WeeklySlot
from services.orders.domain.vocabulary import CardColour, CreditLevel, HealthTier, SkillLevel, Trade
from services.orders.eligibility import CardOnFile, EligibilityRecord
from services.orders.handlers import EFFECTS
from services.orders.tests.fake_eligibility import FakeEligibilityRepository, FakeEligibilityUnitOfWork
from services.workers import domain as wd
from services.workers import events as workers_events
from services.workers.tests.test_domain import id_born

NOW = datetime(2026, 3, 2, 2, tzinfo=UTC)  # 10:00 in Beijing
WORKER = str(uuid.UUID(int=7))
COMPANY, OTHER_COMPANY = uuid.UUID(int=0xC001), uuid.UUID(int=0xC002)
CREDIT_SOURCE = "/jiazheng/credit"
CHAOYANG, HAIDIAN = "110105", "110108"
HOUSEKEEPER = workers_pb.TRADE_HOUSEKEEPER

Consumer = IdempotentConsumer[FakeEligibilityUnitOfWork]


def _record(event: EventEnvelope) -> KafkaRecord:
    topic = events_topic("credit" if event.source == CREDIT_SOURCE else "workers")
    return KafkaRecord(topic, event.key, event.data, event.kafka_headers())


def _raw(message: Message, source: str = workers_events.SOURCE) -> EventEnvelope:
    """An event built by hand: what no producer of ours would send."""
    return new_event(message, source=source, subject=f"workers/{WORKER}")


def _credit_level(worker_id: str, level: credit_events.CreditLevel.ValueType) -> EventEnvelope:
    message = credit_events.CreditLevelChanged(
        worker_id=worker_id, level=level, previous_level=credit_events.CREDIT_LEVEL_B, score=700
    )
    return _raw(message, CREDIT_SOURCE)


def _registered() -> tuple[str, EventEnvelope]:
    draft = wd.WorkerDraft(
        id_born(date(1985, 4, 12)),
        "王芳",
        "13912345678",
        "p.jpg",
        (HAIDIAN, CHAOYANG),
        (wd.Trade.HOUSEKEEPER, wd.Trade.FAMILY_CARER),
    )
    worker = wd.register_worker(draft, COMPANY, NOW)
    return str(worker.worker_id), workers_events.worker_registered(worker)


def _health_check(tier: wd.HealthTier, valid_until: date) -> EventEnvelope:
    check = wd.HealthCheck(tier, date(2025, 9, 1), valid_until, "北京协和医院", "TJ-1")
    return workers_events.health_check_recorded(WORKER, check, NOW)


def _colour(colour: wd.CardColour) -> EventEnvelope:
    return workers_events.card_status_changed(WORKER, colour, wd.CardColour.YELLOW, (), NOW)


@pytest.fixture
def uow() -> FakeEligibilityUnitOfWork:
    return FakeEligibilityUnitOfWork(FixedClock(NOW))


@pytest.fixture
def dead_letters() -> FakeDeadLetters:
    return FakeDeadLetters()


@pytest.fixture
def consumer(uow: FakeEligibilityUnitOfWork, dead_letters: FakeDeadLetters) -> Consumer:
    async def healthy() -> bool:
        return True

    return IdempotentConsumer("orders", lambda: uow, EFFECTS, dead_letters, healthy, backoff_s=0)


async def _consume(consumer: Consumer, *events: EventEnvelope) -> None:
    assert await consumer.handle_batch([_record(e) for e in events]) == ["applied"] * len(events)


async def test_a_registration_sets_company_districts_home_district_and_trades(
    uow: FakeEligibilityUnitOfWork, consumer: Consumer
) -> None:
    worker_id, event = _registered()

    await _consume(consumer, event)

    record = uow.eligibility.records[worker_id]
    # workers publishes the districts sorted: the first, the home district, is the lowest code
    assert (record.company_id, record.home_district, record.districts) == (
        str(COMPANY),
        CHAOYANG,
        (CHAOYANG, HAIDIAN),
    )
    assert set(record.trades) == {Trade.HOUSEKEEPER, Trade.FAMILY_CARER}


async def test_the_home_district_is_the_first_district_of_the_event(
    uow: FakeEligibilityUnitOfWork, consumer: Consumer
) -> None:
    message = worker_events.WorkerRegistered(
        worker_id=WORKER, company_id="c", service_districts=[HAIDIAN, CHAOYANG], trades=[HOUSEKEEPER]
    )

    await _consume(consumer, _raw(message))

    assert uow.eligibility.records[WORKER].home_district == HAIDIAN


async def test_a_transfer_sets_the_new_company(uow: FakeEligibilityUnitOfWork, consumer: Consumer) -> None:
    worker_id, registered = _registered()
    transferred = workers_events.worker_transferred(worker_id, COMPANY, OTHER_COMPANY, NOW)

    await _consume(consumer, registered, transferred)

    assert uow.eligibility.records[worker_id].company_id == str(OTHER_COMPANY)
    assert await uow.eligibility.company_of(worker_id) == str(OTHER_COMPANY)


async def test_the_latest_health_check_is_kept_with_its_last_day_even_at_a_lower_tier(
    uow: FakeEligibilityUnitOfWork, consumer: Consumer
) -> None:
    await _consume(consumer, _health_check(wd.HealthTier.MATERNAL_INFANT, date(2026, 8, 31)))
    await _consume(consumer, _health_check(wd.HealthTier.GENERAL, date(2027, 2, 28)))

    record = uow.eligibility.records[WORKER]
    assert (record.health_tier, record.health_valid_until) == (HealthTier.GENERAL, date(2027, 2, 28))


async def test_a_certificate_sets_the_highest_level_after_it(
    uow: FakeEligibilityUnitOfWork, consumer: Consumer
) -> None:
    certificate = wd.SkillCertificate(wd.Trade.HOUSEKEEPER, wd.SkillLevel.LEVEL_4, "C-1", date(2025, 1, 1))
    event = workers_events.certificate_recorded(WORKER, certificate, wd.SkillLevel.LEVEL_3, NOW)

    await _consume(consumer, event)

    assert uow.eligibility.records[WORKER].skill_level == SkillLevel.LEVEL_3


async def test_availability_replaces_the_weekly_slots_and_the_leaves(
    uow: FakeEligibilityUnitOfWork, consumer: Consumer
) -> None:
    leave = wd.Leave(NOW + timedelta(days=1), NOW + timedelta(days=3))
    first = wd.Availability((wd.WeeklySlot(1, 480, 1080), wd.WeeklySlot(3, 0, 1440)), (leave,))
    second = wd.Availability((wd.WeeklySlot(5, 540, 720),), ())

    await _consume(consumer, workers_events.availability_changed(WORKER, first, NOW))
    record = uow.eligibility.records[WORKER]
    assert record.weekly_slots == (WeeklySlot(1, 480, 1080), WeeklySlot(3, 0, 1440))
    assert record.leaves == (Interval(leave.start, leave.end),)

    await _consume(consumer, workers_events.availability_changed(WORKER, second, NOW))
    record = uow.eligibility.records[WORKER]
    assert (record.weekly_slots, record.leaves) == ((WeeklySlot(5, 540, 720),), ())


async def test_a_card_issued_is_on_file_and_its_revocation_revokes_it(
    uow: FakeEligibilityUnitOfWork, consumer: Consumer
) -> None:
    await _consume(consumer, workers_events.card_issued(WORKER, "card-1", NOW + timedelta(days=365), NOW))
    assert await uow.eligibility.card_on_file(WORKER) == CardOnFile("card-1", CardColour.YELLOW, False)

    await _consume(consumer, workers_events.card_revoked(WORKER, "card-1", "withdrawn", NOW))
    assert await uow.eligibility.card_on_file(WORKER) == CardOnFile("card-1", CardColour.YELLOW, True)


async def test_a_reissue_leaves_the_new_card_valid_and_a_late_revocation_of_the_old_changes_nothing(
    uow: FakeEligibilityUnitOfWork, consumer: Consumer
) -> None:
    expires = NOW + timedelta(days=365)
    await _consume(
        consumer,
        workers_events.card_issued(WORKER, "card-1", expires, NOW),
        workers_events.card_revoked(WORKER, "card-1", "reissued", NOW),
        workers_events.card_issued(WORKER, "card-2", expires, NOW),
    )
    revision = uow.eligibility.revisions[WORKER]

    await _consume(consumer, workers_events.card_revoked(WORKER, "card-1", "reissued", NOW))

    assert await uow.eligibility.card_on_file(WORKER) == CardOnFile("card-2", CardColour.YELLOW, False)
    assert uow.eligibility.revisions[WORKER] == revision


async def test_the_card_status_sets_the_colour(uow: FakeEligibilityUnitOfWork, consumer: Consumer) -> None:
    await _consume(consumer, _colour(wd.CardColour.GREEN))
    assert uow.eligibility.records[WORKER].card_colour is CardColour.GREEN

    await _consume(consumer, _colour(wd.CardColour.RED))
    assert uow.eligibility.records[WORKER].card_colour is CardColour.RED


async def test_a_credit_level_for_a_worker_not_yet_registered_creates_the_row_with_defaults(
    uow: FakeEligibilityUnitOfWork, consumer: Consumer
) -> None:
    await _consume(consumer, _credit_level(WORKER, credit_events.CREDIT_LEVEL_C))

    assert uow.eligibility.records[WORKER] == EligibilityRecord(WORKER, credit_level=CreditLevel.C)
    assert uow.eligibility.records[WORKER].card_colour is CardColour.YELLOW  # not dispatched yet

    worker_id, registered = _registered()
    await _consume(consumer, registered, _credit_level(worker_id, credit_events.CREDIT_LEVEL_A))
    record = uow.eligibility.records[worker_id]
    assert (record.credit_level, record.company_id) == (CreditLevel.A, str(COMPANY))  # registration kept


async def test_each_change_draws_a_new_revision_and_a_redelivery_none(
    uow: FakeEligibilityUnitOfWork, consumer: Consumer
) -> None:
    event = _colour(wd.CardColour.GREEN)
    await _consume(consumer, event, _credit_level(WORKER, credit_events.CREDIT_LEVEL_B))
    first = uow.eligibility.revisions[WORKER]

    assert await consumer.handle_batch([_record(event)]) == ["duplicate"]
    assert uow.eligibility.revisions[WORKER] == first

    await _consume(consumer, _colour(wd.CardColour.YELLOW))
    assert uow.eligibility.revisions[WORKER] > first


@pytest.mark.parametrize(
    "event",
    [
        _raw(
            worker_events.WorkerRegistered(company_id="c", service_districts=[CHAOYANG], trades=[HOUSEKEEPER])
        ),
        _raw(
            worker_events.WorkerRegistered(
                worker_id=WORKER, service_districts=[CHAOYANG], trades=[HOUSEKEEPER]
            )
        ),
        _raw(worker_events.WorkerRegistered(worker_id=WORKER, company_id="c", trades=[HOUSEKEEPER])),
        _raw(
            worker_events.WorkerRegistered(
                worker_id=WORKER,
                company_id="c",
                service_districts=[CHAOYANG],
                trades=[workers_pb.TRADE_UNSPECIFIED],
            )
        ),
        _raw(
            worker_events.WorkerRegistered(
                worker_id=WORKER,
                company_id="c",
                service_districts=[CHAOYANG],
                trades=[workers_pb.Trade.ValueType(9)],
            )
        ),
        _raw(worker_events.WorkerTransferred(worker_id=WORKER, from_company_id="c")),
        _raw(worker_events.HealthCheckRecorded(worker_id=WORKER, valid_until="2027-01-01")),
        _raw(
            worker_events.HealthCheckRecorded(
                worker_id=WORKER, tier=workers_pb.HEALTH_TIER_GENERAL, valid_until="2027/01/01"
            )
        ),
        _raw(
            worker_events.SkillCertificateRecorded(
                worker_id=WORKER, trade=HOUSEKEEPER, level=workers_pb.SKILL_LEVEL_5
            )
        ),
        _raw(
            worker_events.AvailabilityChanged(
                worker_id=WORKER, weekly_slots=[workers_pb.WeeklySlot(day_of_week=8, end_minute=60)]
            )
        ),
        _raw(
            worker_events.AvailabilityChanged(
                worker_id=WORKER,
                weekly_slots=[workers_pb.WeeklySlot(day_of_week=1, start_minute=600, end_minute=600)],
            )
        ),
        _raw(
            worker_events.AvailabilityChanged(
                worker_id=WORKER,
                leaves=[workers_pb.Leave(start_time=timestamp(NOW), end_time=timestamp(NOW))],
            )
        ),
        _raw(
            worker_events.AvailabilityChanged(
                worker_id=WORKER, leaves=[workers_pb.Leave(end_time=timestamp(NOW))]
            )
        ),
        _raw(worker_events.CardIssued(worker_id=WORKER)),
        _raw(worker_events.CardRevoked(card_id="card-1")),
        _raw(worker_events.CardStatusChanged(worker_id=WORKER)),
        _credit_level(WORKER, credit_events.CREDIT_LEVEL_UNSPECIFIED),
        _credit_level("", credit_events.CREDIT_LEVEL_A),
    ],
    ids=[
        "registered-no-worker",
        "registered-no-company",
        "registered-no-district",
        "registered-trade-unspecified",
        "registered-trade-unknown",
        "transferred-no-company",
        "health-tier-unspecified",
        "health-valid-until-slashes",
        "certificate-no-highest-level",
        "slot-day-8",
        "slot-empty",
        "leave-empty",
        "leave-without-start",
        "card-issued-no-card-id",
        "card-revoked-no-worker",
        "colour-unspecified",
        "credit-level-unspecified",
        "credit-no-worker",
    ],
)
async def test_a_malformed_event_is_dead_lettered_at_once_and_sets_nothing(
    uow: FakeEligibilityUnitOfWork, consumer: Consumer, dead_letters: FakeDeadLetters, event: EventEnvelope
) -> None:
    assert await consumer.handle_batch([_record(event)]) == ["dead_lettered"]

    [(_, error, attempts)] = dead_letters.sent
    assert error.startswith("PermanentEventError")
    assert attempts == 1
    assert uow.eligibility.records == {}


class NotingRepository(FakeEligibilityRepository):
    """Notes when writes are held and flushed among the writes themselves."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[str] = []

    def hold(self) -> None:
        self.calls.append("hold")

    async def flush(self) -> None:
        self.calls.append("flush")

    async def set_card_colour(self, worker_id: str, colour: CardColour) -> None:
        self.calls.append(f"colour {worker_id}")
        await super().set_card_colour(worker_id, colour)

    async def set_credit_level(self, worker_id: str, level: CreditLevel) -> None:
        self.calls.append(f"credit {worker_id}")
        await super().set_credit_level(worker_id, level)


async def test_a_polls_writes_are_held_and_sent_together_once_after_every_effect(
    uow: FakeEligibilityUnitOfWork, consumer: Consumer
) -> None:
    uow.eligibility = repo = NotingRepository()
    await _consume(
        consumer,
        _colour(wd.CardColour.GREEN),
        _credit_level(WORKER, credit_events.CREDIT_LEVEL_A),
        _colour(wd.CardColour.RED),
    )
    assert repo.calls == [
        "hold",
        f"colour {WORKER}",
        "hold",
        f"credit {WORKER}",
        "hold",
        f"colour {WORKER}",
        "flush",
    ]
    assert repo.records[WORKER].card_colour is CardColour.RED
    assert repo.records[WORKER].credit_level is CreditLevel.A
