"""The vocabulary both halves of insurance share: the kinds of cover, a product's terms for each,
and one worker's place on a group policy (被保险人)."""

from __future__ import annotations

import enum
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

from services.insurance.domain.vocabulary import JOB_CLASS, ServiceType


class CoverKind(enum.IntEnum):
    """A kind of cover (险种); values as jiazheng.insurance.v1.CoverKind."""

    EMPLOYER_LIABILITY = 1  # 雇主责任险
    ACCIDENT = 2  # 意外伤害险
    PROFESSIONAL_LIABILITY = 3  # 职业责任险


class Exclusion(enum.IntEnum):
    """A circumstance a product excludes (除外责任); values as jiazheng.insurance.v1.Exclusion."""

    INTENTIONAL_ACT = 1
    INTOXICATION = 2
    PRE_EXISTING_CONDITION = 3
    UNINSURED_WORK = 4
    UNDECLARED_VALUABLES = 5
    WAR_OR_NUCLEAR = 6


@dataclass(frozen=True)
class CoverTerms:
    """What a product pays for one kind of cover: per insured worker and policy year, the limit
    (保额, all claims together), and the deductible (免赔额) taken from each claim, in fen."""

    kind: CoverKind
    limit_fen: int
    deductible_fen: int


@dataclass(frozen=True)
class InsuredWorker:
    """One worker on a group policy from ``start`` to ``end`` (both inclusive, Beijing dates),
    insured under ``job_class`` for ``service_types``."""

    policy_id: uuid.UUID
    worker_id: str
    job_class: int
    service_types: frozenset[ServiceType]
    start: date
    end: date

    def covers_day(self, day: date) -> bool:
        return self.start <= day <= self.end


@dataclass(frozen=True)
class Cover:
    """A worker's cover: their place on a group policy, with the policy's product, insurer,
    company and whether the policy has expired (an expired policy covers nothing)."""

    insured: InsuredWorker
    product_id: str
    insurer: str
    company_id: str
    policy_expired: bool

    def why_not(self, service_type: ServiceType, day: date) -> str | None:
        """Why this cover does not insure ``service_type`` on ``day``; None when it does."""
        if self.policy_expired:
            return f"policy {self.insured.policy_id} has expired"
        if day < self.insured.start:
            return f"cover not yet effective on {day} (starts {self.insured.start})"
        if day > self.insured.end:
            return f"cover ended on {self.insured.end}"
        if service_type not in self.insured.service_types:
            return f"not insured for {service_type.name.lower()}"
        needed = JOB_CLASS[service_type]
        if self.insured.job_class < needed:
            kind = service_type.name.lower()
            return f"insured job class {self.insured.job_class} is below class {needed} of {kind}"
        return None


def find_cover(covers: Iterable[Cover], service_type: ServiceType, day: date) -> Cover | str:
    """The cover that insures ``service_type`` on ``day`` (the one lasting longest when several
    do), or the reason none does."""
    reasons: list[str] = []
    insuring: list[Cover] = []
    for cover in covers:
        reason = cover.why_not(service_type, day)
        if reason is None:
            insuring.append(cover)
        else:
            reasons.append(reason)
    if insuring:
        return max(insuring, key=lambda c: (c.insured.end, str(c.insured.policy_id)))
    return "; ".join(sorted(set(reasons))) or "no policy lists the worker"


def covered_until(covers: Iterable[Cover], today: date) -> date | None:
    """The last day of the cover that holds ``today`` (the latest when several do), or None when
    the worker is not covered today: what ``WorkerCoverageChanged`` says."""
    ends = [c.insured.end for c in covers if not c.policy_expired and c.insured.covers_day(today)]
    return max(ends, default=None)
