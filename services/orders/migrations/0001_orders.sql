CREATE TABLE orders (
    order_id             uuid PRIMARY KEY,
    platform_id          text NOT NULL,
    request_id           uuid NOT NULL,
    request_fingerprint  text NOT NULL,
    service_type         text NOT NULL,
    district_code        text NOT NULL,
    consumer_ref         text NOT NULL,
    worker_id            text,
    scheduled_start      timestamptz NOT NULL,
    duration_hours       integer NOT NULL,
    state                text NOT NULL,
    created_at           timestamptz NOT NULL,
    UNIQUE (platform_id, request_id)
);
