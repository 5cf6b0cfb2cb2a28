"""The insurance service's gRPC APIs: PolicyService (api/policies.py) and ClaimService
(api/claims.py), each with its policy of roles per method."""

from services.insurance.api.policies import POLICY as POLICY_POLICY
from services.insurance.api.policies import SERVICE as POLICY_SERVICE
from services.insurance.api.policies import PolicyServicer

__all__ = ["POLICY_POLICY", "POLICY_SERVICE", "PolicyServicer"]
