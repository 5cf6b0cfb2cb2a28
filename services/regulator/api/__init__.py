"""The regulator service's gRPC API: RegulatorService (api/regulator.py) with its policy of roles."""

from services.regulator.api.regulator import POLICY, SERVICE, RegulatorServicer

SERVICES = (SERVICE,)

__all__ = ["POLICY", "SERVICE", "SERVICES", "RegulatorServicer"]
