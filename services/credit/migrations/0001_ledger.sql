CREATE TABLE ledger_entries (
    seq           bigserial PRIMARY KEY,
    entry_id      uuid NOT NULL UNIQUE,
    worker_id     text NOT NULL,
    event_id      text NOT NULL,
    event_type    text NOT NULL,
    score_delta   integer NOT NULL,
    reason        text NOT NULL,
    rule_version  text NOT NULL,
    trace_id      text NOT NULL,
    occurred_at   timestamptz NOT NULL,
    recorded_at   timestamptz NOT NULL DEFAULT now(),
    -- one event changes one worker's record at most once, whatever the inbox says
    UNIQUE (worker_id, event_id)
);
CREATE INDEX ledger_entries_worker ON ledger_entries (worker_id, seq);
