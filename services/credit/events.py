"""The events credit publishes (its contract, protos/jiazheng/credit/events/v1/events.proto):
keyed by the worker's resource name, so one worker's level changes stay in order."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from jiazheng.credit.events.v1 import events_pb2 as ev
from libs.common.events import EventEnvelope, new_event
from libs.common.kafka import events_topic
from libs.common.protoutil import timestamp
from services.credit import model

SOURCE = "/jiazheng/credit"
TOPIC = events_topic("credit")
LEVEL_TO_PROTO: dict[model.Level | None, ev.CreditLevel.ValueType] = {
    None: ev.CREDIT_LEVEL_UNSPECIFIED,
    **{level: ev.CreditLevel.Value(f"CREDIT_LEVEL_{level.value}") for level in model.Level},
}


class _Scored(Protocol):
    """What a level change says of the evaluation (the scoring module's StoredScore)."""

    @property
    def score(self) -> int: ...

    @property
    def level(self) -> model.Level: ...

    @property
    def model_version(self) -> str: ...


def level_changed(worker_id: str, now: _Scored, before: _Scored | None, at: datetime) -> EventEnvelope:
    message = ev.CreditLevelChanged(
        worker_id=worker_id,
        level=LEVEL_TO_PROTO[now.level],
        previous_level=LEVEL_TO_PROTO[before.level if before else None],
        score=now.score,
        model_version=now.model_version,
        change_time=timestamp(at),
    )
    return new_event(message, source=SOURCE, subject=f"workers/{worker_id}", time=at)
