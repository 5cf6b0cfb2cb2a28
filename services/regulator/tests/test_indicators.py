"""The indicator rules (domain/indicators.py): which event moves which figure of which district
and Beijing day, the state they join across topics, late events and redeliveries."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from jiazheng.complaints.events.v1 import events_pb2 as complaints
from jiazheng.credit.events.v1 import events_pb2 as credit
from jiazheng.insurance.events.v1 import events_pb2 as insurance
from jiazheng.orders.events.v1 import events_pb2 as orders
from jiazheng.type.v1 import service_type_pb2 as st
from jiazheng.workers.events.v1 import events_pb2 as workers
from jiazheng.workers.v1 import workers_pb2 as wpb
from libs.common.protoutil import timestamp
from services.regulator.domain.indicators import (
    DistrictDay,
    LevelCount,
    RegulatorEvent,
    SkillLevelCount,
    district_day,
    observe,
)
from services.regulator.tests.indicator_events import DAY, GRACE, NOW, MemoryStore, at, event

CHAOYANG, HAIDIAN = "110105", "110108"
NEXT = DAY + timedelta(days=1)


def _feed(store: MemoryStore, *events: RegulatorEvent, now: datetime = NOW) -> set[tuple[str, date]]:
    return set().union(*(observe(e, store, now, GRACE) for e in events))


def _created(order: str, moment: datetime, service: int = st.SERVICE_TYPE_CLEANING) -> RegulatorEvent:
    message = orders.OrderCreated(order_id=order, district_code=CHAOYANG, service_type=service)  # type: ignore[arg-type]
    return event(message, moment)


def _assigned(order: str, worker: str, moment: datetime) -> RegulatorEvent:
    return event(orders.OrderAssigned(order_id=order, worker_id=worker, district_code=CHAOYANG), moment)


def _colour(worker: str, colour: int, moment: datetime) -> RegulatorEvent:
    return event(workers.CardStatusChanged(worker_id=worker, colour=colour), moment)  # type: ignore[arg-type]


def _filed(case: str, moment: datetime) -> RegulatorEvent:
    return event(
        complaints.CaseFiled(case_id=case, district_code=CHAOYANG, file_time=timestamp(moment)), moment
    )


def _registered(worker: str, *districts: str) -> RegulatorEvent:
    return event(workers.WorkerRegistered(worker_id=worker, service_districts=districts), at(1))


def _level(worker: str, level: int, moment: datetime) -> RegulatorEvent:
    return event(credit.CreditLevelChanged(worker_id=worker, level=level), moment)  # type: ignore[arg-type]


def test_orders_count_in_the_beijing_day_of_their_time() -> None:
    store = MemoryStore()
    _feed(
        store,
        _created("o-1", at(0.5)),  # 00:30 Beijing is still the 29th's, though 16:30 UTC on the 28th
        _created("o-2", at(23.9), st.SERVICE_TYPE_ELDERLY_CARE),
        _created("o-3", at(24.1), st.SERVICE_TYPE_AGE_FRIENDLY_ADAPTATION),
        event(orders.OrderCompleted(order_id="o-1", district_code=CHAOYANG), at(12)),
    )

    day, next_day = district_day(store, CHAOYANG, DAY), district_day(store, CHAOYANG, NEXT)

    assert (day.orders_placed, day.elderly_care_orders, day.age_friendly_orders, day.orders_completed) == (
        2,
        1,
        0,
        1,
    )
    assert (next_day.orders_placed, next_day.age_friendly_orders, next_day.orders_completed) == (1, 1, 0)
    assert district_day(store, HAIDIAN, DAY).orders_placed == 0


def test_a_dispatch_is_green_by_the_card_colour_at_its_time_even_when_the_colour_arrives_later() -> None:
    store = MemoryStore()
    _feed(store, _colour("w-1", wpb.CARD_COLOUR_GREEN, at(8)), _colour("w-2", wpb.CARD_COLOUR_YELLOW, at(8)))
    _feed(
        store, _assigned("o-1", "w-1", at(9)), _assigned("o-2", "w-2", at(9)), _assigned("o-3", "w-1", at(11))
    )
    assert district_day(store, CHAOYANG, DAY).dispatched_green == 2

    touched = _feed(store, _colour("w-1", wpb.CARD_COLOUR_RED, at(10)))  # delivered late, timed between

    figures = district_day(store, CHAOYANG, DAY)
    assert (figures.orders_dispatched, figures.dispatched_green) == (3, 1)
    assert touched == {(CHAOYANG, DAY)}


def test_first_response_counts_once_per_case_and_resolution_runs_from_filing() -> None:
    store = MemoryStore()
    _feed(store, _filed("k-1", at(8)), _filed("k-2", at(9)), *(_created(f"o-{n}", at(7)) for n in range(4)))
    _feed(
        store,
        event(complaints.CaseAnswered(case_id="k-1", response_seconds=600), at(8.2)),
        event(complaints.CaseAnswered(case_id="k-1", response_seconds=9999), at(10)),  # accepted after it
        event(complaints.CaseAnswered(case_id="k-2", response_seconds=1800), at(9.5)),
        event(
            complaints.CaseResolved(case_id="k-1", file_time=timestamp(at(8)), time=timestamp(at(11))), at(11)
        ),
        event(complaints.SlaBreached(case_id="k-2", deadline_kind="decision"), at(12)),
    )

    figures = district_day(store, CHAOYANG, DAY)

    assert (figures.complaints_filed, figures.complaints_per_thousand_orders) == (2, 500.0)
    assert figures.median_first_response_seconds == 1200
    assert figures.median_resolution_seconds == 3 * 3600
    assert figures.sla_breaches == 1


def test_the_mediation_backlog_is_the_cases_in_mediation_at_the_end_of_each_day() -> None:
    store = MemoryStore()
    left_on = DAY + timedelta(days=2)
    now = at(12, left_on)
    _feed(
        store,
        _filed("k-1", at(8)),
        event(complaints.CaseEscalatedToMediation(case_id="k-1"), at(20)),
        now=now,
    )

    touched = _feed(store, event(complaints.AgreementReached(case_id="k-1"), at(9, left_on)), now=now)

    backlog = [district_day(store, CHAOYANG, DAY + timedelta(days=n)).mediation_backlog for n in range(3)]
    assert backlog == [1, 1, 0]
    assert touched == {(CHAOYANG, left_on)}


def test_credit_levels_count_each_worker_in_every_district_they_serve_at_the_end_of_the_day() -> None:
    store = MemoryStore()
    _feed(store, _level("w-1", credit.CREDIT_LEVEL_B, at(2)), _registered("w-1", CHAOYANG, HAIDIAN))
    _feed(store, _registered("w-2", CHAOYANG), _level("w-2", credit.CREDIT_LEVEL_C, at(3)))
    touched = _feed(store, _level("w-1", credit.CREDIT_LEVEL_A, at(1, NEXT)))

    on_day, next_day = district_day(store, CHAOYANG, DAY), district_day(store, CHAOYANG, NEXT)

    assert on_day.credit_levels == (
        LevelCount("A", 0),
        LevelCount("B", 1),
        LevelCount("C", 1),
        LevelCount("D", 0),
    )
    assert next_day.credit_levels == (
        LevelCount("A", 1),
        LevelCount("B", 0),
        LevelCount("C", 1),
        LevelCount("D", 0),
    )
    assert district_day(store, HAIDIAN, NEXT).credit_levels[0] == LevelCount("A", 1)
    assert touched == {(CHAOYANG, NEXT), (HAIDIAN, NEXT)}


def test_certified_workers_count_by_their_highest_skill_level() -> None:
    store = MemoryStore()
    certificate = workers.SkillCertificateRecorded(worker_id="w-1", highest_level=wpb.SKILL_LEVEL_3)
    _feed(store, _registered("w-1", CHAOYANG), _registered("w-2", CHAOYANG), event(certificate, at(5)))

    figures = district_day(store, CHAOYANG, DAY)

    assert figures.certified_workers == tuple(SkillLevelCount(s, int(s == 3)) for s in (5, 4, 3, 2))


def test_cover_recorded_before_the_order_is_known_counts_once_it_is() -> None:
    store = MemoryStore()
    covered = event(insurance.OrderCoverageRecorded(order_id="o-1"), at(9))
    uncovered = event(insurance.OrderUncovered(order_id="o-2", district_code=CHAOYANG), at(9))

    early = _feed(store, covered, uncovered)
    _feed(store, _created("o-1", at(8)))

    figures = district_day(store, CHAOYANG, DAY)
    assert early == {(CHAOYANG, DAY)}  # only the uncovered order's district was known
    assert (figures.orders_insured, figures.orders_uninsured) == (1, 1)


def test_an_event_counts_in_its_window_only_until_the_grace_period_after_its_day_ends() -> None:
    store = MemoryStore()
    day_end = at(24)

    kept = _feed(store, _created("o-1", at(1)), now=day_end + GRACE - timedelta(minutes=1))
    closed = _feed(store, _created("o-2", at(2)), now=day_end + GRACE)

    assert (kept, closed) == ({(CHAOYANG, DAY)}, set())
    assert district_day(store, CHAOYANG, DAY).orders_placed == 1


def test_a_redelivered_event_counts_once() -> None:
    store = MemoryStore()
    created = _created("o-1", at(1))

    _feed(store, created, created)
    touched_again = _feed(store, created)

    assert district_day(store, CHAOYANG, DAY).orders_placed == 1
    assert touched_again == set()


def test_fields_are_read_by_their_json_name_or_their_proto_name() -> None:
    camel = RegulatorEvent("1", "jiazheng.orders.events.v1.OrderCreated", at(1), {"districtCode": CHAOYANG})
    snake = RegulatorEvent("2", "jiazheng.orders.events.v1.OrderCreated", at(1), {"district_code": HAIDIAN})
    store = MemoryStore()

    _feed(store, camel, snake)

    assert (
        district_day(store, CHAOYANG, DAY).orders_placed
        == district_day(store, HAIDIAN, DAY).orders_placed
        == 1
    )


def test_a_district_day_survives_json() -> None:
    store = MemoryStore()
    _feed(
        store, _registered("w-1", CHAOYANG), _level("w-1", credit.CREDIT_LEVEL_D, at(3)), _created("o", at(3))
    )
    figures = district_day(store, CHAOYANG, DAY)

    assert DistrictDay.from_json(figures.to_json()) == figures
    assert figures.credit_levels[3] == LevelCount("D", 1)
