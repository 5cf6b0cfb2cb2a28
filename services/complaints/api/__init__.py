"""The complaints service's gRPC APIs: ComplaintService and MediationService, each with its policy."""

from services.complaints.api.cases import POLICY as COMPLAINT_POLICY
from services.complaints.api.cases import SERVICE as COMPLAINT_SERVICE
from services.complaints.api.cases import ComplaintServicer
from services.complaints.api.convert import agreement_from_proto, case_to_proto, referral_to_proto
from services.complaints.api.mediation import POLICY as MEDIATION_POLICY
from services.complaints.api.mediation import SERVICE as MEDIATION_SERVICE
from services.complaints.api.mediation import MediationServicer

SERVICES = (COMPLAINT_SERVICE, MEDIATION_SERVICE)
POLICY = {**COMPLAINT_POLICY, **MEDIATION_POLICY}

__all__ = [
    "COMPLAINT_SERVICE",
    "MEDIATION_SERVICE",
    "POLICY",
    "SERVICES",
    "ComplaintServicer",
    "MediationServicer",
    "agreement_from_proto",
    "case_to_proto",
    "referral_to_proto",
]
