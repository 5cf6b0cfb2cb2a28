"""Workers' eligibility in memory for unit tests: the repository, a unit of work with it, and a feed
over the same rows (with the bookings a test gives)."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import date
from typing import Any

from libs.common.testing import FakeUnitOfWork, FixedClock
from services.orders.domain.matching import Interval, WeeklySlot, WorkerEligibility
from services.orders.domain.vocabulary import CardColour, CreditLevel, HealthTier, SkillLevel, Trade
from services.orders.eligibility import CardOnFile, EligibilityRecord, beijing_today, eligibility_of


class FakeEligibilityRepository:
    """``EligibilityRepository`` in memory: a record and the revision of its last change per worker."""

    def __init__(self) -> None:
        self.records: dict[str, EligibilityRecord] = {}
        self.revisions: dict[str, int] = {}
        self.last_revision = 0

    def _set(self, worker_id: str, **fields: Any) -> None:
        record = self.records.get(worker_id, EligibilityRecord(worker_id))
        self.records[worker_id] = dataclasses.replace(record, **fields)
        self._touched(worker_id)

    def _touched(self, worker_id: str) -> None:
        self.last_revision += 1
        self.revisions[worker_id] = self.last_revision

    async def set_registration(
        self, worker_id: str, company_id: str, districts: Sequence[str], trades: Sequence[Trade]
    ) -> None:
        self._set(
            worker_id,
            company_id=company_id,
            home_district=districts[0],
            districts=tuple(districts),
            trades=tuple(trades),
        )

    async def set_company(self, worker_id: str, company_id: str) -> None:
        self._set(worker_id, company_id=company_id)

    async def set_health_check(self, worker_id: str, tier: HealthTier, valid_until: date) -> None:
        self._set(worker_id, health_tier=tier, health_valid_until=valid_until)

    async def set_skill_level(self, worker_id: str, level: SkillLevel) -> None:
        self._set(worker_id, skill_level=int(level))

    async def set_availability(
        self, worker_id: str, weekly_slots: Sequence[WeeklySlot], leaves: Sequence[Interval]
    ) -> None:
        self._set(worker_id, weekly_slots=tuple(weekly_slots), leaves=tuple(leaves))

    def hold(self) -> None:
        """Writes apply at once here: in memory there is no round trip to save."""

    async def flush(self) -> None:
        pass

    async def issue_card(self, worker_id: str, card_id: str) -> None:
        self._set(worker_id, card_id=card_id, card_revoked=False)

    async def revoke_card(self, worker_id: str, card_id: str) -> None:
        record = self.records.get(worker_id)
        if record is None:
            self._set(worker_id, card_id=card_id, card_revoked=True)
        elif record.card_id == card_id:
            self._set(worker_id, card_revoked=True)

    async def set_card_colour(self, worker_id: str, colour: CardColour) -> None:
        self._set(worker_id, card_colour=colour)

    async def set_credit_level(self, worker_id: str, level: CreditLevel) -> None:
        self._set(worker_id, credit_level=level)

    async def record_rating(self, worker_id: str, stars: int) -> None:
        record = self.records.get(worker_id, EligibilityRecord(worker_id))
        self._set(worker_id, rating_total=record.rating_total + stars, rating_count=record.rating_count + 1)

    async def touch(self, worker_id: str) -> None:
        if worker_id in self.records:
            self._touched(worker_id)

    async def company_of(self, worker_id: str) -> str | None:
        record = self.records.get(worker_id)
        return record.company_id if record else None

    async def card_on_file(self, worker_id: str) -> CardOnFile | None:
        record = self.records.get(worker_id)
        return record.card_on_file if record else None


class FakeEligibilityUnitOfWork(FakeUnitOfWork):
    def __init__(self, clock: FixedClock | None = None) -> None:
        super().__init__(clock)
        self.eligibility = FakeEligibilityRepository()

    def _stores(self) -> list[object]:
        return [*super()._stores(), self.eligibility]


class FakeEligibilityFeed:
    """``EligibilityFeed`` over a fake repository's committed rows; ``bookings`` are the test's;
    ``asked`` the revisions it was asked about."""

    def __init__(self, repository: FakeEligibilityRepository, clock: FixedClock) -> None:
        self._repository = repository
        self._clock = clock
        self.bookings: dict[str, list[Interval]] = {}
        self.asked: list[int] = []

    async def changed_since(self, revision: int, limit: int) -> list[tuple[int, WorkerEligibility]]:
        self.asked.append(revision)
        changed = sorted((r, w) for w, r in self._repository.revisions.items() if r > revision)[:limit]
        today = beijing_today(self._clock)
        return [(r, self._eligibility(worker_id, today)) for r, worker_id in changed]

    def _eligibility(self, worker_id: str, today: date) -> WorkerEligibility:
        record = self._repository.records[worker_id]
        return eligibility_of(record, self.bookings.get(worker_id, []), today)
