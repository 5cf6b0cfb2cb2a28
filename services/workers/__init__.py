"""workers: companies, outlets, workers, identity and background checks, health checks,
training, skill certificates, service cards (居家上门服务证), consent grants."""
