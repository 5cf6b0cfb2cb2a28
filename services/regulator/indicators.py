"""The indicators as a faust agent and tables (docs/regulators.md, "Indicators"): one agent over
the regulator topics applies each event's rules (domain/indicators.py) to faust tables, publishes
the figures of every district day it changed on the indicators topic, and keeps them for
``indicators_between``, which ``ListIndicators`` answers from.

The tables, each backed by its changelog topic: ``indicator-counted`` (the ``ce_id``s counted),
``indicator-days`` (each district's flows in tumbling one-day windows, expiring after the grace
period), ``indicator-records`` (workers, cases, orders and districts as the rules know them) and
``indicator-figures`` (``<district>/<date>`` -> the last figures published).
"""

from __future__ import annotations

import json
import logging
import uuid
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any

import faust
from faust.types.tables import TableT
from google.protobuf import json_format

from jiazheng.regulator.v1 import regulator_pb2 as pb
from libs.common.errors import PermanentEventError
from libs.common.events import EventEnvelope, envelope_from_kafka
from services.regulator.domain.indicators import (
    DayFacts,
    DistrictDay,
    EventChanges,
    IndicatorStore,
    R,
    Record,
    RegulatorEvent,
    district_day,
    observe,
)
from services.regulator.domain.projection import JSON_CONTENT_TYPE, REGULATOR_NAMESPACE, REGULATOR_SOURCE
from services.regulator.skipped import skipped_records
from services.regulator.stall import BrokerOffsets
from services.regulator.topics import INDICATORS_TOPIC, SOURCE_SERVICES, regulator_topic

if TYPE_CHECKING:  # the composition root imports this module
    from services.regulator.app import RegulatorSettings

log = logging.getLogger(__name__)

DISTRICT_DAY_TYPE = pb.DistrictDay.DESCRIPTOR.full_name
# Where ListIndicators reads: the figures table of the app registered in this process.
_FIGURES: dict[str, TableT[str, dict[str, Any]]] = {}


def window_time(day: date) -> float:
    """Where a Beijing day's facts sit in faust's windows. Those are aligned to the epoch (UTC
    midnight): shifting Beijing times by +8 h puts day D exactly in [D 00:00 UTC, D+1 00:00 UTC)."""
    return datetime.combine(day, time(), UTC).timestamp()


def table_options(settings: RegulatorSettings) -> dict[str, Any]:
    """Every key's changes in one changelog partition, chosen by the key: a district's day (or a
    worker, a case) is changed by events of every source partition, and faust would otherwise write
    each change to the changelog partition of its event. Recovery reads the partitions in no
    order of ours, so an older value in one partition could land after the newest in another."""
    return {"partitions": settings.topic_partitions, "use_partitioner": True}


class TableStore:
    """The indicators' state (the domain's ``IndicatorStore``) in faust tables."""

    def __init__(self, app: faust.App, settings: RegulatorSettings) -> None:
        self.counted_ids = app.Table("indicator-counted", default=bool, **table_options(settings))
        # The grace period, and an hour: faust expires a window from its shifted end.
        expires = timedelta(days=settings.grace_days, hours=1)
        self.days = app.Table("indicator-days", default=dict, **table_options(settings)).tumbling(
            timedelta(days=1), expires=expires
        )
        self.records = app.Table("indicator-records", **table_options(settings))

    def counted(self, event_id: str) -> bool:
        return bool(self.counted_ids[event_id])

    def count(self, event_id: str) -> None:
        self.counted_ids[event_id] = True

    def day(self, district: str, day: date) -> DayFacts:
        return DayFacts.from_json(self.days.clone(relative_to=window_time(day))[district].value())

    def put_day(self, district: str, day: date, facts: DayFacts) -> None:
        self.days.clone(relative_to=window_time(day))[district] = facts.to_json()

    def load(self, kind: type[R], key: str) -> R:
        return kind.from_json(self.records.get(key))

    def save(self, key: str, record: Record) -> None:
        self.records[key] = record.to_json()


def register_indicators(app: faust.App, settings: RegulatorSettings, offsets: BrokerOffsets) -> None:
    """The indicators' agent over the regulator topics, and their tables."""
    Indicators(app, settings, offsets).register()


def indicators_between(start: date, end: date, districts: frozenset[str]) -> list[DistrictDay]:
    """The figures of each district day from ``start`` to ``end`` (of ``districts``; all when
    empty), by date then district."""
    figures = _FIGURES["figures"]
    chosen = sorted((*_day_and_district(key), key) for key in figures)
    return [
        DistrictDay.from_json(figures[key])
        for day, district, key in chosen
        if start <= day <= end and (district in districts or not districts)
    ]


def _day_and_district(key: str) -> tuple[date, str]:
    district, _, day = key.partition("/")
    return date.fromisoformat(day), district


class Indicators:
    """The agent that counts the regulator topics' events into the figures."""

    def __init__(self, app: faust.App, settings: RegulatorSettings, offsets: BrokerOffsets) -> None:
        self.app = app
        self.grace = timedelta(days=settings.grace_days)
        self.store = TableStore(app, settings)
        self.figures = app.Table("indicator-figures", **table_options(settings))
        topics = [regulator_topic(service) for service in SOURCE_SERVICES]
        self.source = app.topic(*topics, key_serializer="raw", value_serializer="raw")
        self.target = app.topic(INDICATORS_TOPIC, key_serializer="raw", value_serializer="raw")
        watched = (topics, offsets)
        self.records = skipped_records(app, "regulator-indicators", "indicator-offsets", settings, watched)

    def register(self) -> None:
        _FIGURES["figures"] = self.figures
        self.app.agent(self.source, name="regulator-indicators")(self.consume)

    async def consume(self, stream: faust.StreamT[Any]) -> None:
        async for event in stream.events():
            await self.records.deliver(event.message, self.handle)

    async def handle(self, value: bytes | None, headers: Any) -> None:
        """Count one regulator record and publish the figures it changed; a record that is not a
        CloudEvent with a JSON object would fail the same way every time: logged and skipped."""
        try:
            event = regulator_event(envelope_from_kafka(headers or [], value))
        except (PermanentEventError, ValueError) as exc:
            log.error("regulator record not counted", extra={"fields": {"error": str(exc)}})
            return
        changes = EventChanges(self.store)  # all of them, or none when a rule fails midway
        touched = counted(event, changes, datetime.now(UTC), self.grace)
        changes.apply()
        for district, day in sorted(touched):
            await self.publish(district_day(self.store, district, day))

    async def publish(self, figures: DistrictDay) -> None:
        key = f"{figures.district_code}/{figures.date}"
        self.figures[key] = figures.to_json()
        record = indicators_record(figures, datetime.now(UTC))
        sent = await self.target.send(
            key=key.encode(), value=record.data, headers=record.kafka_headers(), force=True
        )
        await sent


def counted(
    event: RegulatorEvent, store: IndicatorStore, now: datetime, grace: timedelta
) -> set[tuple[str, date]]:
    """The district days ``event`` changed; none, logged, for a payload the rules cannot read (a
    missing or malformed field): it would fail the same way every time, and raising would stop
    the agent for good on it (a poison message)."""
    try:
        return observe(event, store, now, grace)
    except (KeyError, TypeError, ValueError) as exc:
        log.error(
            "regulator record not counted",
            extra={"fields": {"event_id": event.id, "type": event.type, "error": str(exc)}},
        )
        return set()


def regulator_event(envelope: EventEnvelope) -> RegulatorEvent:
    """A regulator topic's record as the indicators read it."""
    data = json.loads(envelope.data or b"{}")
    if not isinstance(data, dict):
        raise ValueError(f"{envelope.type} {envelope.id}: the payload is not a JSON object")
    return RegulatorEvent(id=envelope.id, type=envelope.type, time=envelope.time, data=data)


def indicators_record(figures: DistrictDay, now: datetime) -> EventEnvelope:
    """The figures of a district day as the indicators topic carries them: the contract's
    DistrictDay in protobuf's JSON mapping; the same figures always have the same ``ce_id``."""
    message = json_format.ParseDict(figures.to_json(), pb.DistrictDay())
    data = json.dumps(json_format.MessageToDict(message), sort_keys=True).encode()
    subject = f"{figures.district_code}/{figures.date}"
    return EventEnvelope(
        id=str(uuid.uuid5(REGULATOR_NAMESPACE, subject + data.decode())),
        type=DISTRICT_DAY_TYPE,
        source=REGULATOR_SOURCE,
        subject=subject,
        time=now,
        data=data,
        extra_headers={"content-type": JSON_CONTENT_TYPE},
    )
