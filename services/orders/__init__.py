"""orders: the service catalogue, orders placed by platforms, matching, contracts, check-ins."""
