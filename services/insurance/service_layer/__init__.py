"""Insurance's use cases over the unit-of-work ports: policies (policies.py, policy_ports.py)
and claims with order coverage (claims.py, coverage.py, claim_ports.py)."""
