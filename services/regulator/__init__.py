"""The regulator service (监管): every domain event a regulator may see, re-published without
personal data on the regulator topics, the indicators per district and day, and the gRPC feed.
One faust-streaming worker process that also serves gRPC; it owns no database (docs/regulators.md)."""
