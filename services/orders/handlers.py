"""Event effects: what the workers and credit services publish of a worker, kept for matching.

Each effect reads an event into plain values and sets them in ``worker_eligibility`` through the
consumer's unit of work. One worker's events arrive in order on a topic, but workers' and credit's
topics are not ordered with each other, so every setter creates a missing row (an upsert). A
malformed event (no worker id, an unspecified or unknown enum, an impossible slot) raises
``PermanentEventError``: it goes to the dead-letter topic at once.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from datetime import UTC, date
from enum import Enum
from typing import TypeVar

from google.protobuf.descriptor import EnumDescriptor

from jiazheng.credit.events.v1 import events_pb2 as credit_events
from jiazheng.workers.events.v1 import events_pb2 as worker_events
from jiazheng.workers.v1 import workers_pb2 as workers_pb
from libs.common.errors import PermanentEventError
from libs.common.events import EventEnvelope, event_type_of
from libs.common.inbox import Effect, SettledEffects
from services.orders.domain.matching import Interval, WeeklySlot
from services.orders.domain.vocabulary import CardColour, CreditLevel, HealthTier, SkillLevel, Trade
from services.orders.eligibility import EligibilityRepository, EligibilityUnitOfWork

E = TypeVar("E", bound=Enum)
# What an event sets in the worker's row.
SetFields = Callable[[EligibilityRepository], Awaitable[None]]


def _eligibility_effect(read: Callable[[EventEnvelope], SetFields]) -> Effect[EligibilityUnitOfWork]:
    async def apply(uow: EligibilityUnitOfWork, events: Sequence[EventEnvelope]) -> None:
        uow.eligibility.hold()  # sent by the settle step, a few statements for the whole poll
        for event in events:
            await read(event)(uow.eligibility)

    return apply


class _EligibilityEffects(SettledEffects[EligibilityUnitOfWork]):
    """The effects of the types orders keeps; a poll settles by sending their writes together."""

    def __init__(self, effects: Mapping[str, Effect[EligibilityUnitOfWork]]) -> None:
        self._effects = dict(effects)

    def __getitem__(self, event_type: str) -> Effect[EligibilityUnitOfWork]:
        return self._effects[event_type]

    def __contains__(self, event_type: object) -> bool:
        return event_type in self._effects  # asked of every event: not Mapping's try/except

    def __iter__(self) -> Iterator[str]:
        return iter(self._effects)

    def __len__(self) -> int:
        return len(self._effects)

    async def settle(self, uow: EligibilityUnitOfWork) -> None:
        await uow.eligibility.flush()


def _registered(event: EventEnvelope) -> SetFields:
    registered = event.parse(worker_events.WorkerRegistered)
    worker = _required(event, "worker_id", registered.worker_id)
    company = _required(event, "company_id", registered.company_id)
    if not registered.service_districts:
        raise PermanentEventError(f"{event.type} {event.id}: no service district")
    districts = list(registered.service_districts)
    trades = [_enum(event, Trade, workers_pb.Trade.DESCRIPTOR, "TRADE_", t) for t in registered.trades]
    return lambda repo: repo.set_registration(worker, company, districts, trades)


def _transferred(event: EventEnvelope) -> SetFields:
    transferred = event.parse(worker_events.WorkerTransferred)
    worker = _required(event, "worker_id", transferred.worker_id)
    company = _required(event, "to_company_id", transferred.to_company_id)
    return lambda repo: repo.set_company(worker, company)


def _health_check(event: EventEnvelope) -> SetFields:
    checked = event.parse(worker_events.HealthCheckRecorded)
    worker = _required(event, "worker_id", checked.worker_id)
    tier = _enum(event, HealthTier, workers_pb.HealthTier.DESCRIPTOR, "HEALTH_TIER_", checked.tier)
    valid_until = _day(event, "valid_until", checked.valid_until)
    return lambda repo: repo.set_health_check(worker, tier, valid_until)


def _certificate(event: EventEnvelope) -> SetFields:
    certified = event.parse(worker_events.SkillCertificateRecorded)
    worker = _required(event, "worker_id", certified.worker_id)
    level = _enum(event, SkillLevel, workers_pb.SkillLevel.DESCRIPTOR, "SKILL_", certified.highest_level)
    return lambda repo: repo.set_skill_level(worker, level)


def _availability(event: EventEnvelope) -> SetFields:
    changed = event.parse(worker_events.AvailabilityChanged)
    worker = _required(event, "worker_id", changed.worker_id)
    slots = [_slot(event, s) for s in changed.weekly_slots]
    leaves = [_leave(event, v) for v in changed.leaves]
    return lambda repo: repo.set_availability(worker, slots, leaves)


def _card_issued(event: EventEnvelope) -> SetFields:
    issued = event.parse(worker_events.CardIssued)
    worker = _required(event, "worker_id", issued.worker_id)
    card = _required(event, "card_id", issued.card_id)
    return lambda repo: repo.issue_card(worker, card)


def _card_revoked(event: EventEnvelope) -> SetFields:
    revoked = event.parse(worker_events.CardRevoked)
    worker = _required(event, "worker_id", revoked.worker_id)
    card = _required(event, "card_id", revoked.card_id)
    return lambda repo: repo.revoke_card(worker, card)


def _card_status(event: EventEnvelope) -> SetFields:
    changed = event.parse(worker_events.CardStatusChanged)
    worker = _required(event, "worker_id", changed.worker_id)
    colour = _enum(event, CardColour, workers_pb.CardColour.DESCRIPTOR, "CARD_COLOUR_", changed.colour)
    return lambda repo: repo.set_card_colour(worker, colour)


def _credit_level(event: EventEnvelope) -> SetFields:
    changed = event.parse(credit_events.CreditLevelChanged)
    worker = _required(event, "worker_id", changed.worker_id)
    level = _enum(event, CreditLevel, credit_events.CreditLevel.DESCRIPTOR, "CREDIT_LEVEL_", changed.level)
    return lambda repo: repo.set_credit_level(worker, level)


def _required(event: EventEnvelope, field: str, value: str) -> str:
    if not value:
        raise PermanentEventError(f"{event.type} {event.id}: no {field}")
    return value


def _enum(event: EventEnvelope, ours: type[E], theirs: EnumDescriptor, prefix: str, value: int) -> E:
    """Orders' member of the same name as the contract's ``value`` (names equal after ``prefix``)."""
    known = theirs.values_by_number.get(value)
    if value == 0 or known is None:
        raise PermanentEventError(f"{event.type} {event.id}: {theirs.name} {value} unknown")
    return ours[known.name.removeprefix(prefix)]


def _day(event: EventEnvelope, field: str, value: str) -> date:
    """``value`` exactly as the contract writes it, YYYY-MM-DD."""
    try:
        day = date.fromisoformat(value)
    except ValueError:
        day = None
    if day is None or day.isoformat() != value:
        raise PermanentEventError(f"{event.type} {event.id}: {field} {value!r} is not YYYY-MM-DD")
    return day


def _slot(event: EventEnvelope, slot: workers_pb.WeeklySlot) -> WeeklySlot:
    if not 1 <= slot.day_of_week <= 7 or not 0 <= slot.start_minute < slot.end_minute <= 1440:
        raise PermanentEventError(f"{event.type} {event.id}: weekly slot {slot} is not within one day")
    return WeeklySlot(slot.day_of_week, slot.start_minute, slot.end_minute)


def _leave(event: EventEnvelope, leave: workers_pb.Leave) -> Interval:
    start, end = leave.start_time.ToDatetime(UTC), leave.end_time.ToDatetime(UTC)
    if not (leave.HasField("start_time") and leave.HasField("end_time")) or end <= start:
        raise PermanentEventError(f"{event.type} {event.id}: leave {start}..{end} is empty")
    return Interval(start, end)


EFFECTS: Mapping[str, Effect[EligibilityUnitOfWork]] = _EligibilityEffects(
    {
        event_type_of(message): _eligibility_effect(read)
        for message, read in (
            (worker_events.WorkerRegistered(), _registered),
            (worker_events.WorkerTransferred(), _transferred),
            (worker_events.HealthCheckRecorded(), _health_check),
            (worker_events.SkillCertificateRecorded(), _certificate),
            (worker_events.AvailabilityChanged(), _availability),
            (worker_events.CardIssued(), _card_issued),
            (worker_events.CardRevoked(), _card_revoked),
            (worker_events.CardStatusChanged(), _card_status),
            (credit_events.CreditLevelChanged(), _credit_level),
        )
    }
)
