"""Workers use cases: each runs in one unit of work, state, events and timers committed together."""

from typing import Protocol

from services.workers.service_layer.availability import AvailabilityUnitOfWork, set_availability
from services.workers.service_layer.cards import (
    Card,
    CardHolder,
    CardHolders,
    CardRepository,
    CardSigner,
    CardsUnitOfWork,
    CardVerdict,
    PublicWorkerView,
    RevokeReason,
    get_card,
    issue_card,
    reissue_card,
    revoke_card,
    verify_card,
)
from services.workers.service_layer.consent import (
    ConsentUnitOfWork,
    create_consent_code,
    list_consent_grants,
    redeem_consent_code,
    revoke_consent_grant,
)
from services.workers.service_layer.workers import (
    BEIJING,
    CARD_STATUS_TIMER,
    HealthCheckForm,
    StoredStatus,
    WorkersUnitOfWork,
    beijing_today,
    create_company,
    create_worker,
    fingerprint,
    may_manage,
    record_background_check,
    record_certificate,
    record_health_check,
    record_training,
    refresh_status,
    refresh_statuses,
    transfer_worker,
    worker_company,
)


class ServiceUnitOfWork(ConsentUnitOfWork, AvailabilityUnitOfWork, Protocol):
    """Everything the workers APIs touch in one unit of work."""


__all__ = [
    "BEIJING",
    "CARD_STATUS_TIMER",
    "AvailabilityUnitOfWork",
    "Card",
    "CardHolder",
    "CardHolders",
    "CardRepository",
    "CardSigner",
    "CardVerdict",
    "CardsUnitOfWork",
    "ConsentUnitOfWork",
    "HealthCheckForm",
    "PublicWorkerView",
    "RevokeReason",
    "ServiceUnitOfWork",
    "StoredStatus",
    "WorkersUnitOfWork",
    "beijing_today",
    "create_company",
    "create_consent_code",
    "create_worker",
    "fingerprint",
    "get_card",
    "issue_card",
    "list_consent_grants",
    "may_manage",
    "record_background_check",
    "record_certificate",
    "record_health_check",
    "record_training",
    "redeem_consent_code",
    "refresh_status",
    "refresh_statuses",
    "reissue_card",
    "revoke_card",
    "revoke_consent_grant",
    "set_availability",
    "transfer_worker",
    "verify_card",
    "worker_company",
]
