"""The workers service's gRPC APIs: WorkerService and CardService, each with its policy."""

from services.workers.api.cards import POLICY as CARD_POLICY
from services.workers.api.cards import SERVICE as CARD_SERVICE
from services.workers.api.cards import CardServicer
from services.workers.api.workers import POLICY as WORKER_POLICY
from services.workers.api.workers import SERVICE as WORKER_SERVICE
from services.workers.api.workers import WorkerServicer

SERVICES = (WORKER_SERVICE, CARD_SERVICE)
POLICY = {**WORKER_POLICY, **CARD_POLICY}

__all__ = ["CARD_SERVICE", "POLICY", "SERVICES", "WORKER_SERVICE", "CardServicer", "WorkerServicer"]
