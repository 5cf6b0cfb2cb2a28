-- Durable timers: a deadline committed with the state change that set it, fired once in effect
-- by libs.common.timers.TimerWorker. A row is pending while fired_at is null; parked_at marks
-- a pending timer whose handler failed timer_max_attempts times (kept, never fired, never lost).
CREATE TABLE timers (
    timer_id    uuid PRIMARY KEY,
    kind        text NOT NULL,
    key         text NOT NULL,
    due_at      timestamptz NOT NULL,
    payload     jsonb NOT NULL DEFAULT '{}',
    created_at  timestamptz NOT NULL DEFAULT now(),
    fired_at    timestamptz,
    attempts    integer NOT NULL DEFAULT 0,
    last_error  text,
    parked_at   timestamptz
);
-- One pending timer per (kind, key): scheduling again replaces it (INSERT .. ON CONFLICT).
CREATE UNIQUE INDEX timers_pending_per_key ON timers (kind, key) WHERE fired_at IS NULL;
-- The worker's claim and its "when is the next one due".
CREATE INDEX timers_due ON timers (due_at) WHERE fired_at IS NULL AND parked_at IS NULL;
