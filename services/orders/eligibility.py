"""Workers' eligibility as orders keeps it (the matching projection), and the index that follows it.

Matching calls no other service: orders keeps what it needs of each worker in ``worker_eligibility``,
set by the effects of the workers and credit events (``services.orders.handlers``) and by orders'
own use cases (ratings, bookings). Every change of a row draws a new revision; ``EligibilityIndex``
holds the ``MatchingIndex`` of every worker and catches up with the rows changed since the last
revision it applied.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Protocol

from libs.common.beijing import BEIJING
from libs.common.outages import backoff, is_outage
from libs.common.uow import Clock, UnitOfWork
from services.orders.domain.catalogue import Catalogue
from services.orders.domain.matching import (
    DEFAULT_TOP_N,
    Interval,
    MatchingIndex,
    MatchRequest,
    MatchResult,
    WeeklySlot,
    WorkerEligibility,
)
from services.orders.domain.vocabulary import CardColour, CreditLevel, HealthTier, SkillLevel, Trade

log = logging.getLogger(__name__)

# A few thousand rows a query: the initial load of 100,000 workers in a few dozen of them.
FEED_BATCH_SIZE = 5_000
_MAX_RETRY_S = 30.0


@dataclass(frozen=True)
class CardOnFile:
    """The service card (居家上门服务证) orders last heard of for a worker, checked at check-in."""

    card_id: str
    colour: CardColour
    revoked: bool


@dataclass(frozen=True)
class EligibilityRecord:
    """What orders keeps of a worker: a row of ``worker_eligibility``, with the table's defaults.

    ``skill_level`` 0 means no certificate yet; the health tier is the latest recorded with the last
    day it is valid; the card is YELLOW until the workers service says otherwise.
    """

    worker_id: str
    company_id: str | None = None
    home_district: str = ""
    districts: tuple[str, ...] = ()
    trades: tuple[Trade, ...] = ()
    skill_level: int = 0
    health_tier: HealthTier | None = None
    health_valid_until: date | None = None
    card_id: str | None = None
    card_colour: CardColour = CardColour.YELLOW
    card_revoked: bool = False
    credit_level: CreditLevel | None = None
    rating_total: int = 0
    rating_count: int = 0
    weekly_slots: tuple[WeeklySlot, ...] = ()
    leaves: tuple[Interval, ...] = ()

    @property
    def card_on_file(self) -> CardOnFile | None:
        if self.card_id is None:
            return None
        return CardOnFile(self.card_id, self.card_colour, self.card_revoked)


def beijing_today(clock: Clock) -> date:
    return clock.now().astimezone(BEIJING).date()


def eligibility_of(record: EligibilityRecord, bookings: Sequence[Interval], today: date) -> WorkerEligibility:
    """The worker as matching sees them on ``today`` (Beijing), booked for ``bookings``: the health
    tier counts only while its check is valid, the load is the number of bookings."""
    valid = record.health_valid_until is not None and record.health_valid_until >= today
    return WorkerEligibility(
        worker_id=record.worker_id,
        home_district=record.home_district,
        districts=frozenset(record.districts),
        trades=frozenset(record.trades),
        skill_level=SkillLevel(record.skill_level) if record.skill_level else None,
        health_tier=record.health_tier if valid else None,
        card_colour=record.card_colour,
        credit_level=record.credit_level,
        rating_total=record.rating_total,
        rating_count=record.rating_count,
        load=len(bookings),
        weekly_slots=record.weekly_slots,
        leaves=record.leaves,
        bookings=tuple(bookings),
    )


class EligibilityRepository(Protocol):
    """``worker_eligibility`` inside a unit of work. Each setter creates the worker's row with the
    defaults when it is missing (a credit event may come before the registration) and draws a new
    revision for the row."""

    async def set_registration(
        self, worker_id: str, company_id: str, districts: Sequence[str], trades: Sequence[Trade]
    ) -> None:
        """The company, the districts served (the first is the home district) and the trades."""
        ...

    async def set_company(self, worker_id: str, company_id: str) -> None: ...

    async def set_health_check(self, worker_id: str, tier: HealthTier, valid_until: date) -> None:
        """The latest health check's tier and its last valid day."""
        ...

    async def set_skill_level(self, worker_id: str, level: SkillLevel) -> None: ...

    async def set_availability(
        self, worker_id: str, weekly_slots: Sequence[WeeklySlot], leaves: Sequence[Interval]
    ) -> None: ...

    async def issue_card(self, worker_id: str, card_id: str) -> None:
        """``card_id`` is the worker's card now, not revoked."""
        ...

    async def revoke_card(self, worker_id: str, card_id: str) -> None:
        """Revokes the card on file if it is ``card_id``; an older card changes nothing."""
        ...

    async def set_card_colour(self, worker_id: str, colour: CardColour) -> None: ...

    async def set_credit_level(self, worker_id: str, level: CreditLevel) -> None: ...

    async def record_rating(self, worker_id: str, stars: int) -> None:
        """A consumer's rating of the worker, added to the total and the count."""
        ...

    async def touch(self, worker_id: str) -> None:
        """The worker's bookings changed: a new revision, so the index reloads them."""
        ...

    def hold(self) -> None:
        """The writes made from now on are held until ``flush`` (reads do not see them yet)."""
        ...

    async def flush(self) -> None:
        """Send the held writes together, with the effect of sending them one by one in order
        (a few statements for many workers), and stop holding; nothing when none is held."""
        ...

    async def company_of(self, worker_id: str) -> str | None: ...

    async def card_on_file(self, worker_id: str) -> CardOnFile | None: ...


class EligibilityUnitOfWork(UnitOfWork, Protocol):
    @property
    def eligibility(self) -> EligibilityRepository: ...


class EligibilityFeed(Protocol):
    async def changed_since(self, revision: int, limit: int) -> list[tuple[int, WorkerEligibility]]:
        """Up to ``limit`` workers whose row changed after ``revision``, by revision, each with it."""
        ...


class EligibilityIndex:
    """The ``MatchingIndex`` of every worker orders keeps, following ``worker_eligibility``."""

    def __init__(self, feed: EligibilityFeed, batch_size: int = FEED_BATCH_SIZE) -> None:
        self._feed = feed
        self._batch_size = batch_size
        self._index = MatchingIndex()
        self.revision = 0

    def __len__(self) -> int:
        return len(self._index)

    def get(self, worker_id: str) -> WorkerEligibility | None:
        return self._index.get(worker_id)

    async def catch_up(self) -> int:
        """Apply the rows changed since the last revision applied (all of them the first time);
        how many were applied."""
        applied = 0
        while True:
            changed = await self._feed.changed_since(self.revision, self._batch_size)
            for revision, worker in changed:
                self._index.upsert(worker)
                self.revision = revision
            applied += len(changed)
            if len(changed) < self._batch_size:
                return applied

    def match(self, request: MatchRequest, catalogue: Catalogue, top_n: int = DEFAULT_TOP_N) -> MatchResult:
        return self._index.match(request, catalogue, top_n)

    async def run(self, interval_s: float) -> None:
        """Catch up every ``interval_s`` until cancelled; while PostgreSQL does not answer, log and
        try again with backoff. Any other error ends it (and the process, which is restarted)."""
        longest = max(interval_s, _MAX_RETRY_S)
        delays = backoff(interval_s, longest)
        while True:
            try:
                await self.catch_up()
            except Exception as exc:
                if not is_outage(exc):
                    raise
                wait = next(delays)
                fields = {"error": repr(exc), "retry_in_s": wait, "revision": self.revision}
                log.warning("eligibility unavailable; the index waits", extra={"fields": fields})
            else:
                delays, wait = backoff(interval_s, longest), interval_s
            await asyncio.sleep(wait)
