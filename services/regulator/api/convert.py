"""Protobuf ↔ domain for RegulatorService: the feed's events and cursors, the indicators' days,
and the request's dates."""

from __future__ import annotations

from datetime import date

from jiazheng.regulator.v1 import regulator_pb2 as pb
from libs.common.errors import InvalidArgument
from libs.common.protoutil import calendar_date, timestamp
from services.regulator.domain.indicators import DistrictDay
from services.regulator.feed import FeedEvent, Start

MAX_DAYS = 366  # the most days end_date may be after start_date

START = {
    pb.START_POSITION_UNSPECIFIED: Start.EARLIEST,
    pb.START_POSITION_EARLIEST: Start.EARLIEST,
    pb.START_POSITION_LATEST: Start.LATEST,
}


def subscribe_response(event: FeedEvent, cursor: str) -> pb.SubscribeResponse:
    return pb.SubscribeResponse(
        event=pb.RegulatorEvent(
            id=event.id,
            type=event.type,
            topic=event.topic,
            subject=event.subject,
            time=timestamp(event.time),
            data_json=event.data_json,
        ),
        cursor=cursor,
    )


def district_day_to_proto(day: DistrictDay) -> pb.DistrictDay:
    return pb.DistrictDay(
        district_code=day.district_code,
        date=day.date,
        orders_placed=day.orders_placed,
        orders_completed=day.orders_completed,
        orders_dispatched=day.orders_dispatched,
        dispatched_green=day.dispatched_green,
        complaints_filed=day.complaints_filed,
        complaints_per_thousand_orders=day.complaints_per_thousand_orders,
        median_first_response_seconds=day.median_first_response_seconds,
        median_resolution_seconds=day.median_resolution_seconds,
        mediation_backlog=day.mediation_backlog,
        sla_breaches=day.sla_breaches,
        orders_insured=day.orders_insured,
        orders_uninsured=day.orders_uninsured,
        elderly_care_orders=day.elderly_care_orders,
        age_friendly_orders=day.age_friendly_orders,
        credit_levels=[pb.LevelCount(level=c.level, workers=c.workers) for c in day.credit_levels],
        certified_workers=[
            pb.SkillLevelCount(skill_level=s.skill_level, workers=s.workers) for s in day.certified_workers
        ],
    )


def date_range(request: pb.ListIndicatorsRequest) -> tuple[date, date]:
    """The request's first and last day: real dates, the last not before the first and at most
    ``MAX_DAYS`` after it."""
    start, end = calendar_date(request.start_date, "start_date"), calendar_date(request.end_date, "end_date")
    if end < start:
        raise InvalidArgument("end_date", "must not be before start_date")
    if (end - start).days > MAX_DAYS:
        raise InvalidArgument("end_date", f"must be at most {MAX_DAYS} days after start_date")
    return start, end
