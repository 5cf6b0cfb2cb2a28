"""In-memory credit storage for unit tests of the event effects and the use cases."""

from __future__ import annotations

from collections.abc import Sequence

from libs.common.testing import FakeUnitOfWork, FixedClock
from services.credit.domain import LedgerEntry
from services.credit.model import Fact
from services.credit.scoring import Grant, StoredScore


class FakeLedgerRepository:
    def __init__(self) -> None:
        self.entries: list[LedgerEntry] = []

    async def add_many(self, entries: Sequence[LedgerEntry]) -> None:
        assert not {(e.worker_id, e.event_id) for e in entries} & {
            (e.worker_id, e.event_id) for e in self.entries
        }
        self.entries += entries

    async def facts_of(self, worker_id: str) -> list[Fact]:
        return [e.fact() for e in self.entries if e.worker_id == worker_id]


class FakeScores:
    def __init__(self) -> None:
        self.by_worker: dict[str, StoredScore] = {}

    async def get(self, worker_id: str) -> StoredScore | None:
        return self.by_worker.get(worker_id)

    async def put(self, worker_id: str, score: StoredScore) -> None:
        self.by_worker[worker_id] = score


class FakeProfiles:
    def __init__(self) -> None:
        self.companies: dict[str, str] = {}
        self.colours: dict[str, str] = {}
        self.grants: dict[str, Grant] = {}
        self.revoked: set[str] = set()

    async def set_company(self, worker_id: str, company_id: str) -> None:
        self.companies[worker_id] = company_id

    async def set_card_colour(self, worker_id: str, colour: str) -> None:
        self.colours[worker_id] = colour

    async def grant(self, grant: Grant) -> None:
        self.grants.setdefault(grant.grant_id, grant)

    async def revoke(self, grant_id: str) -> None:
        self.revoked.add(grant_id)


class FakeCreditUnitOfWork(FakeUnitOfWork):
    def __init__(self, clock: FixedClock | None = None) -> None:
        super().__init__(clock)
        self.ledger = FakeLedgerRepository()
        self.facts = self.ledger
        self.scores = FakeScores()
        self.profiles = FakeProfiles()

    def _stores(self) -> list[object]:
        return [*super()._stores(), self.ledger, self.scores, self.profiles]
