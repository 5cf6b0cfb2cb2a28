-- Matching's copy of each worker (issue 7): what the workers and credit services publish of them,
-- kept from their events so that a match calls no other service, and the ratings orders records.
-- Every change of a row draws a new revision; the in-memory index reads the rows changed since the
-- last revision it applied. Writers take a transaction-scoped advisory lock before they draw one
-- (services/orders/eligibility_store.py), so revisions become visible in their order.
CREATE SEQUENCE worker_eligibility_revision;

CREATE TABLE worker_eligibility (
    worker_id           text PRIMARY KEY,
    company_id          text,
    home_district       text NOT NULL DEFAULT '',
    districts           text[] NOT NULL DEFAULT '{}',
    trades              text[] NOT NULL DEFAULT '{}',
    skill_level         integer NOT NULL DEFAULT 0,          -- 0: no certificate yet
    health_tier         integer,
    health_valid_until  date,                                -- the last day the health check is valid
    card_id             text,
    card_colour         text NOT NULL DEFAULT 'yellow',      -- not dispatched before workers says GREEN
    card_revoked        boolean NOT NULL DEFAULT false,
    credit_level        text,
    rating_total        integer NOT NULL DEFAULT 0,
    rating_count        integer NOT NULL DEFAULT 0,
    weekly_slots        jsonb NOT NULL DEFAULT '[]',         -- [[day_of_week, start_minute, end_minute], ...]
    leaves              jsonb NOT NULL DEFAULT '[]',         -- [[start, end], ...], ISO 8601 with offset
    revision            bigint NOT NULL,
    updated_at          timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX worker_eligibility_by_revision ON worker_eligibility (revision);
