"""Household-service companies (家政企业) and their community outlets (社区网点)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from libs.common.errors import InvalidArgument
from services.workers.domain.identity import district, social_credit_code

MIN_PREMISES_M2 = 50  # Beijing's 2022 rules for household-service companies


class EmploymentModel(StrEnum):
    """How a company engages its workers."""

    EMPLOYEE = "employee"  # 员工制: the company employs the worker
    INTERMEDIARY = "intermediary"  # 中介制: the company brokers the worker


@dataclass(frozen=True)
class Outlet:
    """A community outlet (社区网点) of a company, in one district."""

    name: str
    district_code: str


@dataclass(frozen=True)
class CompanyDraft:
    social_credit_code: str
    name: str
    premises_m2: int
    outlets: tuple[Outlet, ...]
    employment_model: EmploymentModel


@dataclass(frozen=True)
class Company:
    company_id: uuid.UUID
    social_credit_code: str
    name: str
    premises_m2: int
    outlets: tuple[Outlet, ...]
    employment_model: EmploymentModel
    registered_at: datetime


def register_company(draft: CompanyDraft, now: datetime, company_id: uuid.UUID | None = None) -> Company:
    code = social_credit_code(draft.social_credit_code)
    name = draft.name.strip()
    if not 1 <= len(name) <= 100:
        raise InvalidArgument("name", "must be 1 to 100 characters")
    if draft.premises_m2 < MIN_PREMISES_M2:
        raise InvalidArgument("premises_m2", f"must be at least {MIN_PREMISES_M2} m² (Beijing 2022 rules)")
    outlets = tuple(_outlet(o, i) for i, o in enumerate(draft.outlets))
    return Company(
        company_id or uuid.uuid4(), code, name, draft.premises_m2, outlets, draft.employment_model, now
    )


def _outlet(outlet: Outlet, index: int) -> Outlet:
    name = outlet.name.strip()
    if not 1 <= len(name) <= 100:
        raise InvalidArgument(f"outlets[{index}].name", "must be 1 to 100 characters")
    return Outlet(name, district(outlet.district_code, f"outlets[{index}].district_code"))
