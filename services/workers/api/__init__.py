"""The workers service's gRPC APIs: WorkerService and CardService, each with its policy."""

from services.workers.api.workers import POLICY as WORKER_POLICY
from services.workers.api.workers import SERVICE as WORKER_SERVICE
from services.workers.api.workers import WorkerServicer

SERVICES = (WORKER_SERVICE,)
POLICY = {**WORKER_POLICY}

__all__ = ["POLICY", "SERVICES", "WORKER_SERVICE", "WorkerServicer"]
