"""In-memory credit ledger for unit tests of the event effects."""

from __future__ import annotations

from collections.abc import Sequence

from libs.common.testing import FakeUnitOfWork
from services.credit.domain import LedgerEntry


class FakeLedgerRepository:
    def __init__(self) -> None:
        self.entries: list[LedgerEntry] = []

    async def add_many(self, entries: Sequence[LedgerEntry]) -> None:
        assert not {(e.worker_id, e.event_id) for e in entries} & {
            (e.worker_id, e.event_id) for e in self.entries
        }
        self.entries += entries


class FakeCreditUnitOfWork(FakeUnitOfWork):
    def __init__(self) -> None:
        super().__init__()
        self.ledger = FakeLedgerRepository()

    def _stores(self) -> list[object]:
        return [*super()._stores(), self.ledger]
