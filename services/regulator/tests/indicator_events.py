"""Regulator events for the indicator tests, built as the projection writes them (the source
protobuf in protobuf's JSON mapping), and a store of the indicators' state in dictionaries that
keeps every value as JSON, as the faust tables do."""

from __future__ import annotations

import json
import uuid
from datetime import date, datetime, timedelta
from typing import Any

from google.protobuf import json_format
from google.protobuf.message import Message

from libs.common.beijing import beijing_midnight
from services.regulator.domain.indicators import DayFacts, R, Record, RegulatorEvent

DAY = date(2026, 11, 29)
NOW = beijing_midnight(DAY + timedelta(days=1)) + timedelta(hours=12)
GRACE = timedelta(days=7)


def at(hour: float, day: date = DAY) -> datetime:
    """``hour`` hours after 00:00 Beijing on ``day``."""
    return beijing_midnight(day) + timedelta(hours=hour)


def event(message: Message, moment: datetime, event_id: str | None = None) -> RegulatorEvent:
    """``message`` as a regulator topic carries it, at ``moment`` (its ce_time)."""
    return RegulatorEvent(
        id=event_id or str(uuid.uuid4()),
        type=message.DESCRIPTOR.full_name,
        time=moment,
        data=json_format.MessageToDict(message),
    )


class MemoryStore:
    """The indicators' state in dictionaries, every value kept as a JSON string."""

    def __init__(self) -> None:
        self.ids: set[str] = set()
        self.days: dict[tuple[str, date], str] = {}
        self.records: dict[str, str] = {}

    def counted(self, event_id: str) -> bool:
        return event_id in self.ids

    def count(self, event_id: str) -> None:
        self.ids.add(event_id)

    def day(self, district: str, day: date) -> DayFacts:
        return DayFacts.from_json(_loads(self.days.get((district, day))))

    def put_day(self, district: str, day: date, facts: DayFacts) -> None:
        self.days[(district, day)] = json.dumps(facts.to_json())

    def load(self, kind: type[R], key: str) -> R:
        return kind.from_json(_loads(self.records.get(key)))

    def save(self, key: str, record: Record) -> None:
        self.records[key] = json.dumps(record.to_json())


def _loads(raw: str | None) -> dict[str, Any] | None:
    return None if raw is None else dict(json.loads(raw))
