"""complaints: complaints, worker disputes, mediation queues (调解), agreements, SLA clocks,
legal-aid referrals."""
