"""Workers domain: pure rules, no I/O, no protobuf."""

from services.workers.domain.card import CardColour, CardStatusInputs, Reason, card_status
from services.workers.domain.company import (
    Company,
    CompanyDraft,
    EmploymentModel,
    Outlet,
    register_company,
)
from services.workers.domain.consent import ConsentGrant, grant_consent, revoke_consent
from services.workers.domain.identity import (
    BEIJING_DISTRICTS,
    ResidentId,
    mobile_number,
    resident_id,
    social_credit_code,
)
from services.workers.domain.qualifications import (
    DEFAULT_PAY_BANDS,
    BackgroundCheck,
    HealthCheck,
    HealthTier,
    PayBand,
    SkillCertificate,
    SkillLevel,
    SpecialAbility,
    Trade,
    Training,
    check_pay_bands,
    record_certificate,
    record_health_check,
    record_training,
)
from services.workers.domain.worker import Employment, Worker, WorkerDraft, move_worker, register_worker

__all__ = [
    "BEIJING_DISTRICTS",
    "DEFAULT_PAY_BANDS",
    "BackgroundCheck",
    "CardColour",
    "CardStatusInputs",
    "Company",
    "CompanyDraft",
    "ConsentGrant",
    "Employment",
    "EmploymentModel",
    "HealthCheck",
    "HealthTier",
    "Outlet",
    "PayBand",
    "Reason",
    "ResidentId",
    "SkillCertificate",
    "SkillLevel",
    "SpecialAbility",
    "Trade",
    "Training",
    "Worker",
    "WorkerDraft",
    "card_status",
    "check_pay_bands",
    "grant_consent",
    "mobile_number",
    "move_worker",
    "record_certificate",
    "record_health_check",
    "record_training",
    "register_company",
    "register_worker",
    "resident_id",
    "revoke_consent",
    "social_credit_code",
]
