-- The relay claims whole aggregates: find an aggregate's unpublished rows in order.
CREATE INDEX outbox_unpublished_by_aggregate ON outbox (aggregate_id, seq) WHERE published_at IS NULL;
