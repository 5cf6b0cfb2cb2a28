"""Household-service workers (家政服务员): registration under a company and moves between companies."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, replace
from datetime import date, datetime

from libs.common.errors import FailedPrecondition, InvalidArgument
from services.workers.domain.identity import ResidentId, district, mobile_number, resident_id
from services.workers.domain.qualifications import Trade

MIN_AGE, MAX_AGE = 16, 70
# GB/T 2260 province-level codes: two digits then 0000 (e.g. 510000 四川).
_PROVINCE_SHAPE = re.compile(r"^[1-8]\d0000$")


@dataclass(frozen=True)
class WorkerDraft:
    """What a company submits to register a worker; the first three fields are personal data."""

    id_number: str
    name: str
    mobile: str
    photo_ref: str
    service_districts: tuple[str, ...]
    trades: tuple[Trade, ...]
    origin_province: str | None = None  # set when the worker came through 劳务对接


@dataclass(frozen=True)
class Employment:
    """A period with one company; ``ended_at`` is None for the current one."""

    company_id: uuid.UUID
    started_at: datetime
    ended_at: datetime | None = None


@dataclass(frozen=True)
class Worker:
    worker_id: uuid.UUID  # pseudonymous: the only worker id that leaves the service
    identity: ResidentId
    name: str
    mobile: str
    photo_ref: str
    service_districts: tuple[str, ...]
    trades: tuple[Trade, ...]
    origin_province: str | None
    employments: tuple[Employment, ...]
    registered_at: datetime

    @property
    def company_id(self) -> uuid.UUID:
        return self.employments[-1].company_id


def register_worker(draft: WorkerDraft, company_id: uuid.UUID, now: datetime) -> Worker:
    identity = resident_id(draft.id_number)
    _check_age(identity, now.date())
    return Worker(
        worker_id=uuid.uuid4(),
        identity=identity,
        name=_name(draft.name),
        mobile=mobile_number(draft.mobile),
        photo_ref=_photo_ref(draft.photo_ref),
        service_districts=_districts(draft.service_districts),
        trades=_trades(draft.trades),
        origin_province=_province(draft.origin_province),
        employments=(Employment(company_id, now),),
        registered_at=now,
    )


def move_worker(worker: Worker, to_company: uuid.UUID, now: datetime) -> Worker:
    """The worker joins ``to_company``; the employment history keeps the previous company."""
    return replace(worker, employments=move_worker_history(worker.employments, to_company, now))


def move_worker_history(
    history: tuple[Employment, ...], to_company: uuid.UUID, now: datetime
) -> tuple[Employment, ...]:
    *earlier, current = history
    if to_company == current.company_id:
        raise FailedPrecondition("the worker is already registered with this company")
    return (*earlier, replace(current, ended_at=now), Employment(to_company, now))


def _check_age(identity: ResidentId, today: date) -> None:
    age = identity.age_on(today)
    if not MIN_AGE <= age <= MAX_AGE:
        raise InvalidArgument("id_number", f"the worker must be {MIN_AGE} to {MAX_AGE} years old (is {age})")


def _name(raw: str) -> str:
    name = raw.strip()
    if not 1 <= len(name) <= 50:
        raise InvalidArgument("name", "must be 1 to 50 characters")
    return name


def _photo_ref(raw: str) -> str:
    if not 1 <= len(raw) <= 200 or any(c.isspace() for c in raw):
        raise InvalidArgument("photo_ref", "must be a reference of 1 to 200 characters without spaces")
    return raw


def _districts(codes: tuple[str, ...]) -> tuple[str, ...]:
    if not codes:
        raise InvalidArgument("service_districts", "must name at least one district")
    return tuple(sorted({district(c, f"service_districts[{i}]") for i, c in enumerate(codes)}))


def _trades(trades: tuple[Trade, ...]) -> tuple[Trade, ...]:
    if not trades:
        raise InvalidArgument("trades", "must name at least one trade")
    return tuple(sorted(set(trades)))


def _province(code: str | None) -> str | None:
    if code is None or code == "":
        return None
    if not _PROVINCE_SHAPE.match(code):
        raise InvalidArgument("origin_province", "must be a GB/T 2260 province code such as 510000")
    return code
