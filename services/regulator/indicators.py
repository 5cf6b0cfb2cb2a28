"""The indicators as a faust agent and tables (docs/regulators.md, "Indicators"): one agent over
the regulator topics applies each event's rules (domain/indicators.py) to faust tables, publishes
the figures of every district day it changed on the indicators topic, and keeps them for
``indicators_between``, which ``ListIndicators`` answers from.

The tables, each backed by its changelog topic: ``indicator-counted`` (the ``ce_id``s counted),
``indicator-days`` (each district's flows in tumbling one-day windows, expiring after the grace
period), ``indicator-records`` (workers, cases, orders and districts as the rules know them),
``indicator-figures`` (``<district>/<date>`` -> the last figures published) and
``indicator-expected`` (the offsets of skipped.py). The agent takes records in batches and writes
a batch's changes as one (versioned.py): ``indicator-commits`` says which batches count, so a
crash midway through a batch's writes leaves none of them in effect.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any, cast

import faust
from google.protobuf import json_format

from jiazheng.regulator.v1 import regulator_pb2 as pb
from libs.common.errors import PermanentEventError
from libs.common.events import EventEnvelope, envelope_from_kafka
from services.regulator.domain.indicators import (
    DayFacts,
    DistrictDate,
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
from services.regulator.stall import BrokerOffsets, HandledOffsets
from services.regulator.topics import INDICATORS_TOPIC, SOURCE_SERVICES, regulator_topic
from services.regulator.versioned import Batches, Cells

if TYPE_CHECKING:  # the composition root imports this module
    from services.regulator.app import RegulatorSettings

log = logging.getLogger(__name__)

DISTRICT_DAY_TYPE = pb.DistrictDay.DESCRIPTOR.full_name
# Where ListIndicators reads: the figures table of the app registered in this process, and its batches.
_FIGURES: dict[str, Any] = {}
BATCH_RECORDS = 500
BATCH_WAIT_S = 0.05


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


class AcknowledgedTable(faust.Table[Any, Any]):
    """A table whose changelog writes can be waited for, until Kafka acknowledges them."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.sent: list[asyncio.Future[Any]] = []

    def send_changelog(self, *args: Any, **kwargs: Any) -> Any:
        sent = super().send_changelog(*args, **kwargs)
        self.sent.append(sent)
        return sent

    async def acknowledged(self) -> None:
        """Waits for every write since the last call; a write that failed raises."""
        sent, self.sent = self.sent, []
        await asyncio.gather(*sent)


def acknowledged_table(
    app: faust.App, name: str, settings: RegulatorSettings, **kwargs: Any
) -> AcknowledgedTable:
    """One of the indicators' tables, registered with ``app`` as ``app.Table`` would."""
    table = AcknowledgedTable(app, name=name, beacon=app.tables.beacon, **table_options(settings), **kwargs)
    app.tables.add(table)
    return table


class DayCells:
    """The days' windowed table as cells keyed by (district, day)."""

    def __init__(self, table: Any) -> None:
        self.table = table

    def get(self, key: DistrictDate) -> Any:
        district, day = key
        return self.table.clone(relative_to=window_time(day))[district].value()

    def __setitem__(self, key: DistrictDate, value: Any) -> None:
        district, day = key
        self.table.clone(relative_to=window_time(day))[district] = value


@dataclass
class TableStore:
    """The indicators' state (the domain's ``IndicatorStore``) in tables, read as their committed
    batches left it and written as part of the open batch."""

    batches: Batches
    counted_ids: Cells
    days: Cells
    records: Cells

    def counted(self, event_id: str) -> bool:
        return self.batches.marked(self.counted_ids, event_id)

    def count(self, event_id: str) -> None:
        self.batches.mark(self.counted_ids, event_id)

    def day(self, district: str, day: date) -> DayFacts:
        return DayFacts.from_json(self.batches.read(self.days, (district, day)))

    def put_day(self, district: str, day: date, facts: DayFacts) -> None:
        self.batches.write(self.days, (district, day), facts.to_json())

    def load(self, kind: type[R], key: str) -> R:
        return kind.from_json(self.batches.read(self.records, key))

    def save(self, key: str, record: Record) -> None:
        self.batches.write(self.records, key, record.to_json())


@dataclass
class CommittedOffsets:
    """The expected offsets committed batches wrote; before the first, those of the table the
    agent kept them in before it wrote in batches (``indicator-offsets``, read only)."""

    batches: Batches
    cells: Cells
    earlier: HandledOffsets

    def get(self, key: str, /) -> int | None:
        value = self.batches.read(self.cells, key)
        return self.earlier.get(key) if value is None else int(value)


@dataclass
class BatchedOffsets:
    """The expected offsets as the records of the open batch move them, written with the batch."""

    committed: CommittedOffsets
    moved: dict[str, int] = field(default_factory=dict)

    def get(self, key: str, /) -> int | None:
        return self.moved[key] if key in self.moved else self.committed.get(key)

    def __setitem__(self, key: str, value: int, /) -> None:
        self.moved[key] = value

    def write(self) -> None:
        for key, offset in self.moved.items():
            self.committed.batches.write(self.committed.cells, key, offset)
        self.moved.clear()


@dataclass
class Batch:
    """The changes of the records taken so far, apart from the tables, and the days they touched."""

    changes: EventChanges
    touched: set[DistrictDate] = field(default_factory=set)

    def count(self, event: RegulatorEvent, now: datetime, grace: timedelta) -> None:
        changes = EventChanges(self.changes)  # all of them, or none when a rule fails midway
        self.touched |= counted(event, changes, now, grace)
        changes.apply()

    def write(self) -> list[DistrictDay]:
        """Writes the changes to the store underneath; returns the figures of the days touched."""
        figures = [district_day(self.changes, district, day) for district, day in sorted(self.touched)]
        self.changes.apply()
        return figures


def register_indicators(app: faust.App, settings: RegulatorSettings, offsets: BrokerOffsets) -> None:
    """The indicators' agent over the regulator topics, and their tables."""
    Indicators(app, settings, offsets).register()


def indicators_between(start: date, end: date, districts: frozenset[str]) -> list[DistrictDay]:
    """The figures of each district day from ``start`` to ``end`` (of ``districts``; all when
    empty), by date then district."""
    figures, batches = _FIGURES["figures"], _FIGURES["batches"]
    chosen = sorted((*_day_and_district(key), key) for key in figures)
    published = (
        batches.read(figures, key)
        for day, district, key in chosen
        if start <= day <= end and (district in districts or not districts)
    )
    return [DistrictDay.from_json(raw) for raw in published if raw is not None]


def _day_and_district(key: str) -> tuple[date, str]:
    district, _, day = key.partition("/")
    return date.fromisoformat(day), district


class Indicators:
    """The agent that counts the regulator topics' events into the figures, a batch at a time:
    a batch's changes are written together, acknowledged, then committed (versioned.py), and its
    records acknowledged to faust only after that."""

    def __init__(self, app: faust.App, settings: RegulatorSettings, offsets: BrokerOffsets) -> None:
        self.app = app
        self.grace = timedelta(days=settings.grace_days)
        self.commits = acknowledged_table(app, "indicator-commits", settings)
        self.batches = Batches(self.commits)
        counted_ids = acknowledged_table(app, "indicator-counted", settings)
        days = acknowledged_table(app, "indicator-days", settings, default=dict)
        records = acknowledged_table(app, "indicator-records", settings)
        self.figures = acknowledged_table(app, "indicator-figures", settings)
        expected = acknowledged_table(app, "indicator-expected", settings)
        self.tables = [counted_ids, days, records, self.figures, expected]  # a batch writes these
        # The grace period, and an hour: faust expires a window from its shifted end.
        windows = days.tumbling(timedelta(days=1), expires=timedelta(days=settings.grace_days, hours=1))
        self.store = TableStore(self.batches, counted_ids, DayCells(windows), records)
        earlier = app.Table("indicator-offsets", partitions=settings.topic_partitions)
        self.offsets = BatchedOffsets(CommittedOffsets(self.batches, expected, earlier))
        self.batch = Batch(EventChanges(self.store))
        topics = [regulator_topic(service) for service in SOURCE_SERVICES]
        self.source = app.topic(*topics, key_serializer="raw", value_serializer="raw")
        self.target = app.topic(INDICATORS_TOPIC, key_serializer="raw", value_serializer="raw")
        watched = (topics, offsets)
        self.records = skipped_records(
            app, "regulator-indicators", self.offsets, settings, watched, self.offsets.committed
        )

    def register(self) -> None:
        _FIGURES.update(figures=self.figures, batches=self.batches)
        self.app.agent(self.source, name="regulator-indicators")(self.consume)

    async def consume(self, stream: faust.StreamT[Any]) -> None:
        taken = cast(faust.Stream[Any], stream)  # what faust hands an agent; StreamT lacks take_events
        async for events in taken.take_events(BATCH_RECORDS, within=BATCH_WAIT_S):
            try:
                messages = [event.message for event in events]
                await self.records.deliver_batch(messages, self.handle, self.commit)
            except BaseException:
                self.discard()
                raise

    def discard(self) -> None:
        """Drops the batch under way after a failure, and gives up the epoch: writes of the batch
        may have landed, and a later batch of the same epoch, committed, would bring them into
        effect. The next batch takes a new epoch, and sends the last committed batch's figures
        again; the records of this one are read again from the committed expected offsets
        (skipped.py), whatever faust acknowledged of them when the batch ended."""
        self.batch = Batch(EventChanges(self.store))
        self.offsets.moved.clear()
        self.batches.abandon()

    async def handle(self, value: bytes | None, headers: Any) -> None:
        """Count one regulator record into the open batch; a record that is not a CloudEvent with
        a JSON object would fail the same way every time: logged and skipped."""
        try:
            event = regulator_event(envelope_from_kafka(headers or [], value))
        except (PermanentEventError, ValueError) as exc:
            log.error("regulator record not counted", extra={"fields": {"error": str(exc)}})
            return
        self.batch.count(event, datetime.now(UTC), self.grace)

    async def commit(self) -> None:
        """Write the open batch and the figures it changed; once Kafka has acknowledged all of it,
        commit it, then send the figures on the indicators topic (a reader told of a change finds
        it in ``ListIndicators``). A crash before the commit leaves none of the batch in effect,
        and its records, not yet acknowledged to faust, are delivered again; after it, the next
        process sends the last batch's figures again (the same figures keep their ``ce_id``)."""
        if not self.batches.epoch:
            self.batches.open_epoch()
            await self.commits.acknowledged()
            await self.send(self.batches.follow_up() or [])
        batch, self.batch = self.batch, Batch(EventChanges(self.store))
        changed = [self.keep(day) for day in batch.write()]
        self.offsets.write()
        await asyncio.gather(*(table.acknowledged() for table in self.tables))
        self.batches.commit(follow_up=changed)
        await self.commits.acknowledged()
        await self.send(changed)

    def keep(self, figures: DistrictDay) -> str:
        """Writes the figures of a district day with the open batch; returns their key."""
        key = f"{figures.district_code}/{figures.date}"
        self.batches.write(self.figures, key, figures.to_json())
        return key

    async def send(self, keys: list[str]) -> None:
        """Sends the committed figures under ``keys`` on the indicators topic, and waits for Kafka."""
        now, sent = datetime.now(UTC), []
        for key in keys:
            record = indicators_record(DistrictDay.from_json(self.batches.read(self.figures, key)), now)
            sent.append(
                await self.target.send(
                    key=key.encode(), value=record.data, headers=record.kafka_headers(), force=True
                )
            )
        await asyncio.gather(*sent)


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
