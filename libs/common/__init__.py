"""Infrastructure shared by every service: settings, database, outbox/inbox, Kafka, gRPC, telemetry.

No domain rules live here.
"""
