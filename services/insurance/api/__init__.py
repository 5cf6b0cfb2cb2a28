"""The insurance service's gRPC APIs: PolicyService (api/policies.py) and ClaimService
(api/claims.py), each with its policy of roles per method."""

from services.insurance.api.claims import POLICY as CLAIM_POLICY
from services.insurance.api.claims import SERVICE as CLAIM_SERVICE
from services.insurance.api.claims import ClaimServicer
from services.insurance.api.policies import POLICY as POLICY_POLICY
from services.insurance.api.policies import SERVICE as POLICY_SERVICE
from services.insurance.api.policies import PolicyServicer

SERVICES = (POLICY_SERVICE, CLAIM_SERVICE)
POLICY = {**POLICY_POLICY, **CLAIM_POLICY}

__all__ = ["CLAIM_SERVICE", "POLICY", "POLICY_SERVICE", "SERVICES", "ClaimServicer", "PolicyServicer"]
