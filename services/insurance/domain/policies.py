"""Group policies (团体保单) and their endorsements (批单): who a company's policy insures from
which day to which, and what each change costs (docs/insurance.md, "Group policies and
endorsements"). Dates are Beijing dates; money is integer fen."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import IntEnum, StrEnum

from libs.common.errors import AlreadyExists, FailedPrecondition, InvalidArgument
from services.insurance.domain.cover import Cover, InsuredWorker
from services.insurance.domain.products import Product, age_on, pro_rata
from services.insurance.domain.vocabulary import ServiceType, job_class_needed

ONE_DAY = timedelta(days=1)


def year_after(start: date) -> date:
    """The same day a year later; 1 March for 29 February, so that a year from 29 February ends on
    28 February, its last day (a year less a day), and holds that 29 February: 366 days."""
    try:
        return start.replace(year=start.year + 1)
    except ValueError:
        return date(start.year + 1, 3, 1)


def default_end(start: date) -> date:
    """The last day of a one-year term from ``start``: a year less a day."""
    return year_after(start) - ONE_DAY


class PolicyState(StrEnum):
    ACTIVE = "active"
    EXPIRED = "expired"  # past its end date: covers nothing


class EndorsementKind(IntEnum):
    """How an endorsement changes the list; values as jiazheng.insurance.v1.EndorsementKind."""

    ADD = 1  # 批增
    REPLACE = 2  # 批改
    REMOVE = 3  # 批减


@dataclass(frozen=True)
class Applicant:
    """A worker a company asks to insure: birth date, the service types and the job class."""

    worker_id: str
    birth_date: date
    service_types: frozenset[ServiceType]
    job_class: int


@dataclass(frozen=True)
class Enrolment:
    """One stint of a worker on a policy, with what insurance keeps beside it: the birth date
    (personal data, never published) and the annual premium of the stint, by the age band on its
    first day. A worker removed on the day they were added keeps a stint that ends before it starts."""

    insured: InsuredWorker
    birth_date: date
    annual_premium_fen: int

    @property
    def worker_id(self) -> str:
        return self.insured.worker_id


@dataclass(frozen=True)
class Endorsement:
    """A change of the insured list from ``effective_date``, with its premium charged (positive)
    or refunded (negative); ``request_id`` is the caller's, for retries."""

    endorsement_id: uuid.UUID
    request_id: uuid.UUID
    kind: EndorsementKind
    effective_date: date
    added: tuple[str, ...]
    removed: tuple[str, ...]
    premium_delta_fen: int
    created_at: datetime


@dataclass(frozen=True)
class Change:
    """What an endorsement asks: workers to add and worker ids to remove from ``effective_date``."""

    kind: EndorsementKind
    effective_date: date
    add: tuple[Applicant, ...] = ()
    remove: tuple[str, ...] = ()


@dataclass(frozen=True)
class GroupPolicy:
    """A company's group policy for one product, from ``start`` to ``end`` (inclusive), with every
    stint of every worker it has listed and the endorsements that changed the list."""

    policy_id: uuid.UUID
    company_id: str
    product_id: str
    insurer: str
    start: date
    end: date
    premium_fen: int  # charged at issue
    issued_at: datetime
    enrolments: tuple[Enrolment, ...]
    endorsements: tuple[Endorsement, ...] = ()
    state: PolicyState = PolicyState.ACTIVE

    @property
    def year_days(self) -> int:
        """The days of the policy year from the start: the denominator of every pro-rata premium."""
        return (year_after(self.start) - self.start).days

    @property
    def worker_ids(self) -> list[str]:
        """Every worker the policy has listed, in the order they were first listed."""
        return list(dict.fromkeys(e.worker_id for e in self.enrolments))

    def covers(self) -> list[Cover]:
        expired = self.state is PolicyState.EXPIRED
        return [
            Cover(e.insured, self.product_id, self.insurer, self.company_id, expired) for e in self.enrolments
        ]

    def stint_on(self, worker_id: str, day: date) -> Enrolment | None:
        """The worker's stint that covers ``day``, if any."""
        return next(
            (e for e in self.enrolments if e.worker_id == worker_id and e.insured.covers_day(day)), None
        )

    def endorsement(self, request_id: uuid.UUID) -> Endorsement | None:
        """The endorsement a request created, for a retry."""
        return next((e for e in self.endorsements if e.request_id == request_id), None)

    def premium_for(self, enrolment: Enrolment) -> int:
        """The pro-rata premium of the stint from its start to the end of the term."""
        days = (self.end - enrolment.insured.start).days + 1
        return pro_rata(enrolment.annual_premium_fen, days, self.year_days)

    def endorse(
        self,
        product: Product,
        change: Change,
        today: date,
        endorsement_id: uuid.UUID,
        request_id: uuid.UUID,
        now: datetime,
    ) -> GroupPolicy:
        """The policy with ``change`` applied and recorded as its last endorsement."""
        self._check_endorsable(change, today)
        day = change.effective_date
        added = [self._enrol_new(product, a, day, f"add_workers[{i}]") for i, a in enumerate(change.add)]
        ended = [self._stint_to_end(worker_id, day) for worker_id in change.remove]
        charged = sum(self.premium_for(e) for e in added)
        refunded = sum(
            pro_rata(e.annual_premium_fen, (self.end - day).days + 1, self.year_days) for e in ended
        )
        endorsement = Endorsement(
            endorsement_id,
            request_id,
            change.kind,
            day,
            tuple(a.worker_id for a in change.add),
            change.remove,
            charged - refunded,
            now,
        )
        enrolments = tuple(_ended(e, day) if e in ended else e for e in self.enrolments) + tuple(added)
        return dataclasses.replace(
            self, enrolments=enrolments, endorsements=(*self.endorsements, endorsement)
        )

    def expire(self) -> GroupPolicy:
        return dataclasses.replace(self, state=PolicyState.EXPIRED)

    def _check_endorsable(self, change: Change, today: date) -> None:
        if self.state is PolicyState.EXPIRED:
            raise FailedPrecondition(f"policy {self.policy_id} has expired")
        day = change.effective_date
        if not self.start <= day <= self.end:
            raise InvalidArgument("effective_date", f"{day} is outside the term {self.start} to {self.end}")
        if day < today:
            raise InvalidArgument("effective_date", f"{day} is before today ({today}): no back-dating")
        _check_shape(change)

    def _enrol_new(self, product: Product, applicant: Applicant, day: date, where: str) -> Enrolment:
        if any(e.worker_id == applicant.worker_id and e.insured.end >= day for e in self.enrolments):
            raise AlreadyExists(
                f"worker {applicant.worker_id} is already on policy {self.policy_id} on {day}"
            )
        return enrol(product, self.policy_id, applicant, day, self.end, where)

    def _stint_to_end(self, worker_id: str, day: date) -> Enrolment:
        stint = self.stint_on(worker_id, day)
        if stint is None:
            raise FailedPrecondition(f"worker {worker_id} is not on policy {self.policy_id} on {day}")
        return stint


def _ended(enrolment: Enrolment, day: date) -> Enrolment:
    """The stint ending the day before ``day``."""
    return dataclasses.replace(enrolment, insured=dataclasses.replace(enrolment.insured, end=day - ONE_DAY))


def _check_shape(change: Change) -> None:
    """ADD adds, REMOVE removes, REPLACE takes one worker out and one in; nobody twice."""
    adds, removes = len(change.add), len(change.remove)
    wanted = {
        EndorsementKind.ADD: adds > 0 and removes == 0,
        EndorsementKind.REMOVE: removes > 0 and adds == 0,
        EndorsementKind.REPLACE: adds == 1 and removes == 1,
    }
    if not wanted[change.kind]:
        shape = f"{adds} workers to add and {removes} to remove"
        raise InvalidArgument("kind", f"{change.kind.name} cannot take {shape}")
    _check_unique([a.worker_id for a in change.add], "add_workers")
    _check_unique(list(change.remove), "remove_worker_ids")
    if set(change.remove) & {a.worker_id for a in change.add}:
        raise InvalidArgument("add_workers", "a worker cannot be removed and added by one endorsement")


def _check_unique(worker_ids: Sequence[str], field: str) -> None:
    for i, worker_id in enumerate(worker_ids):
        if worker_id in worker_ids[:i]:
            raise InvalidArgument(f"{field}[{i}]", f"worker {worker_id} is named twice")


def enrol(
    product: Product, policy_id: uuid.UUID, applicant: Applicant, start: date, end: date, where: str
) -> Enrolment:
    """A stint of ``applicant`` from ``start`` to ``end``, priced by the age on ``start``; bad
    ages or job classes are InvalidArgument naming ``<where>.birth_date`` or ``<where>.job_class``."""
    try:
        annual = product.annual_premium(applicant.job_class, age_on(applicant.birth_date, start))
        check_job_class(applicant.job_class, applicant.service_types)
    except InvalidArgument as error:
        raise InvalidArgument(f"{where}.{error.field}", error.description) from None
    insured = InsuredWorker(
        policy_id, applicant.worker_id, applicant.job_class, applicant.service_types, start, end
    )
    return Enrolment(insured, applicant.birth_date, annual)


def check_job_class(job_class: int, service_types: frozenset[ServiceType]) -> None:
    """Insuring a worker under a class below one of their service types would void cover (DOMAIN §8)."""
    needed = job_class_needed(service_types)
    if job_class < needed:
        kinds = ", ".join(s.name.lower() for s in sorted(service_types))
        raise InvalidArgument(
            "job_class", f"job class {job_class} is below class {needed} needed for {kinds}"
        )


def check_term(start: date, end: date, today: date) -> None:
    """A term starts today or later and lasts at most a year."""
    if start < today:
        raise InvalidArgument("start_date", f"{start} is before today ({today})")
    if not start <= end <= default_end(start):
        raise InvalidArgument("end_date", f"{end} must lie between {start} and {default_end(start)}")


@dataclass(frozen=True)
class Issue:
    """What a policy is issued with: the product, term and the workers insured from the start."""

    company_id: str
    product: Product
    start: date
    end: date | None
    workers: tuple[Applicant, ...]


def issue(request: Issue, policy_id: uuid.UUID, today: date, now: datetime) -> GroupPolicy:
    """A new group policy; its premium is the sum of each worker's pro-rata annual premium."""
    end = request.end or default_end(request.start)
    check_term(request.start, end, today)
    if not request.workers:
        raise InvalidArgument("workers", "a group policy insures at least one worker")
    _check_unique([w.worker_id for w in request.workers], "workers")
    product = request.product
    enrolments = tuple(
        enrol(product, policy_id, w, request.start, end, f"workers[{i}]")
        for i, w in enumerate(request.workers)
    )
    policy = GroupPolicy(
        policy_id, request.company_id, product.id, product.insurer, request.start, end, 0, now, enrolments
    )
    return dataclasses.replace(policy, premium_fen=sum(policy.premium_for(e) for e in enrolments))
