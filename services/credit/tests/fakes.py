"""In-memory credit storage for unit tests of the event effects and the use cases."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Collection, Mapping, Sequence
from datetime import datetime
from typing import Self, TypeVar

from libs.common.testing import FakeUnitOfWork, FixedClock
from services.credit.companies import REGRADE_DELAY, CaseHandling, CompanyCase, RecordedDecision
from services.credit.domain import LedgerEntry
from services.credit.lookups import Profile
from services.credit.model import CompanyGrade, Fact
from services.credit.scoring import Grant, StoredScore

T = TypeVar("T")


class FakeLedgerRepository:
    def __init__(self) -> None:
        self.entries: list[LedgerEntry] = []

    async def add_many(self, entries: Sequence[LedgerEntry]) -> None:
        assert not {(e.worker_id, e.event_id) for e in entries} & {
            (e.worker_id, e.event_id) for e in self.entries
        }
        self.entries += entries

    def facts_of(self, worker_id: str) -> list[Fact]:
        return [e.fact() for e in self.entries if e.worker_id == worker_id]

    async def facts_of_many(self, worker_ids: Sequence[str]) -> dict[str, list[Fact]]:
        facts = {worker_id: self.facts_of(worker_id) for worker_id in worker_ids}
        return {worker_id: of for worker_id, of in facts.items() if of}


class FakeScores:
    """The stored scores; ``puts`` lists the worker of each write, in order."""

    def __init__(self) -> None:
        self.by_worker: dict[str, StoredScore] = {}
        self.puts: list[str] = []

    async def get_many(self, worker_ids: Sequence[str]) -> dict[str, StoredScore]:
        return {w: self.by_worker[w] for w in worker_ids if w in self.by_worker}

    async def put_many(self, scores: Mapping[str, StoredScore]) -> None:
        self.by_worker.update(scores)
        self.puts += scores


class FakeProfiles:
    def __init__(self) -> None:
        self.companies: dict[str, str] = {}
        self.colours: dict[str, str] = {}
        self.grants: dict[str, Grant] = {}
        self.revoked: set[str] = set()

    async def set_company(self, worker_id: str, company_id: str) -> None:
        self.companies[worker_id] = company_id

    async def companies_of(self, worker_ids: Collection[str]) -> set[str]:
        return {self.companies[w] for w in worker_ids if self.companies.get(w)}

    async def set_card_colours(self, colours: Mapping[str, str]) -> None:
        self.colours.update(colours)

    async def grant(self, grant: Grant) -> None:
        self.grants.setdefault(grant.grant_id, grant)

    async def revoke(self, grant_id: str) -> None:
        self.revoked.add(grant_id)


Staff = Callable[[str], list[int | None]]


def _staff(profiles: FakeProfiles, scores: FakeScores) -> Staff:
    """The scores of a company's workers (None for one not scored), read from the fakes when called:
    a function, so that the unit of work's snapshots copy it as it is."""

    def of(company_id: str) -> list[int | None]:
        employed = [w for w, c in profiles.companies.items() if c == company_id]
        return [s.score if (s := scores.by_worker.get(w)) else None for w in employed]

    return of


def _present(grouped: dict[str, list[T]]) -> dict[str, list[T]]:
    """As the SQL groups rows: a company with none is left out."""
    return {c: items for c, items in grouped.items() if items}


class FakeCompanies:
    """Companies' decisions, complaint handling and grades; ``locks`` lists the companies locked."""

    def __init__(self, staff: Staff) -> None:
        self._staff = staff
        self.decisions: list[RecordedDecision] = []
        self.cases: dict[str, tuple[str, CaseHandling]] = {}
        self.grades: dict[str, CompanyGrade] = {}
        self.locks: list[str] = []

    async def lock(self, company_ids: Sequence[str]) -> None:
        self.locks += company_ids

    async def decision_by_request(self, request_id: uuid.UUID) -> RecordedDecision | None:
        return next((d for d in self.decisions if d.request_id == request_id), None)

    async def add_decision(self, decision: RecordedDecision) -> RecordedDecision | None:
        earlier = await self.decision_by_request(decision.request_id)
        if earlier is None:
            self.decisions.append(decision)
        return earlier

    async def decisions_of(self, company_ids: Sequence[str]) -> dict[str, list[RecordedDecision]]:
        ordered = sorted(self.decisions, key=lambda d: (d.decision.decided_on, d.recorded_at))
        return _present({c: [d for d in ordered if d.company_id == c] for c in company_ids})

    async def cases_filed(self, cases: Sequence[CompanyCase]) -> None:
        for c in cases:
            self.cases.setdefault(c.case_id, (c.company_id, CaseHandling(c.case_id, c.filed_at, None, False)))

    async def cases_answered(self, answers: Sequence[tuple[str, int]]) -> list[str | None]:
        return [self._answered(case_id, response_seconds) for case_id, response_seconds in answers]

    def _answered(self, case_id: str, response_seconds: int) -> str | None:
        if case_id not in self.cases:
            return None
        company_id, case = self.cases[case_id]
        first = case.response_seconds if case.response_seconds is not None else response_seconds
        self.cases[case_id] = (company_id, CaseHandling(case_id, case.filed_at, first, case.resolved))
        return company_id

    async def cases_resolved(self, cases: Sequence[CompanyCase]) -> None:
        for c in cases:
            new = (c.company_id, CaseHandling(c.case_id, c.filed_at, None, False))
            owner, case = self.cases.get(c.case_id, new)
            self.cases[c.case_id] = (
                owner,
                CaseHandling(c.case_id, case.filed_at, case.response_seconds, True),
            )

    async def cases_of(self, company_ids: Sequence[str]) -> dict[str, list[CaseHandling]]:
        return _present({c: [case for owner, case in self.cases.values() if owner == c] for c in company_ids})

    async def worker_scores(self, company_ids: Sequence[str]) -> dict[str, list[int]]:
        return _present({c: [score for score in self._staff(c) if score is not None] for c in company_ids})

    async def put_grades(self, grades: Mapping[str, CompanyGrade]) -> None:
        self.grades.update(grades)

    async def known(self, company_id: str) -> bool:
        return bool(
            await self.decisions_of([company_id])
            or await self.cases_of([company_id])
            or self._staff(company_id)
            or company_id in self.grades
        )


class FakeLookups:
    """What a lookup reads, from the fakes of the tables the SQL reads; it keeps nothing of its own,
    so a rollback has nothing of it to undo."""

    def __init__(
        self,
        ledger: FakeLedgerRepository,
        scores: FakeScores,
        profiles: FakeProfiles,
        companies: FakeCompanies,
    ) -> None:
        self._ledger, self._scores, self._profiles, self._companies = ledger, scores, profiles, companies

    async def record_of(self, worker_id: str) -> tuple[Profile, list[Fact]] | None:
        p = self._profiles
        known = {
            *p.companies,
            *p.colours,
            *self._scores.by_worker,
            *(e.worker_id for e in self._ledger.entries),
        }
        if worker_id not in known:
            return None
        company = p.companies.get(worker_id, "")
        grade = self._companies.grades.get(company)
        profile = Profile(company, p.colours.get(worker_id, ""), grade.grade.value if grade else "")
        return profile, self._ledger.facts_of(worker_id)

    async def grant_valid(self, worker_id: str, platform_id: str, consumer_ref: str, at: datetime) -> bool:
        return any(
            (g.worker_id, g.platform_id, g.consumer_ref) == (worker_id, platform_id, consumer_ref)
            and g.expires_at > at
            and g.grant_id not in self._profiles.revoked
            for g in self._profiles.grants.values()
        )


class FakeOperatorEntries:
    def __init__(self) -> None:
        self.workers: dict[uuid.UUID, str] = {}

    async def claim(self, request_id: uuid.UUID, worker_id: str, at: datetime) -> str | None:
        earlier = self.workers.get(request_id)
        if earlier is None:
            self.workers[request_id] = worker_id
        return earlier


class FakeCreditUnitOfWork(FakeUnitOfWork):
    def __init__(self, clock: FixedClock | None = None) -> None:
        super().__init__(clock)
        self.company_regrade_delay = REGRADE_DELAY
        self.ledger = FakeLedgerRepository()
        self.facts = self.ledger
        self.scores = FakeScores()
        self.profiles = FakeProfiles()
        self.companies = FakeCompanies(_staff(self.profiles, self.scores))
        self.lookups = FakeLookups(self.ledger, self.scores, self.profiles, self.companies)
        self.operator_entries = FakeOperatorEntries()
        self.to_rescore: dict[str, dict[str, str]] = {}
        self.to_regrade: set[str] = set()

    async def __aenter__(self) -> Self:
        self.to_rescore, self.to_regrade = {}, set()  # each unit of work notes its own
        return await super().__aenter__()

    def _stores(self) -> list[object]:
        return [
            *super()._stores(),
            self.ledger,
            self.scores,
            self.profiles,
            self.companies,
            self.operator_entries,
        ]
