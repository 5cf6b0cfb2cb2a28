-- Issue 9: the ledger records facts (what happened, model-free: kind, magnitude, detail); scores
-- are a versioned function of them. Entries from before (bookings) are facts of no score.
ALTER TABLE ledger_entries
    ADD COLUMN kind      text NOT NULL DEFAULT 'unscored',
    ADD COLUMN magnitude integer NOT NULL DEFAULT 1,
    ADD COLUMN detail    text NOT NULL DEFAULT '';

-- The live evaluation of each worker: what lookups answer and what level changes compare with.
CREATE TABLE worker_scores (
    worker_id      text PRIMARY KEY,
    score          integer NOT NULL,
    level          text NOT NULL,
    model_version  text NOT NULL,
    evaluated_at   timestamptz NOT NULL
);

-- What credit keeps of a worker from the workers service's events: the employer and the card.
CREATE TABLE worker_profiles (
    worker_id    text PRIMARY KEY,
    company_id   text NOT NULL DEFAULT '',
    card_colour  text NOT NULL DEFAULT ''
);

-- The workers service's consent grants (授权查询): a platform's consumer sees the full record
-- while one is valid.
CREATE TABLE consent_grants (
    grant_id      text PRIMARY KEY,
    worker_id     text NOT NULL,
    platform_id   text NOT NULL,
    consumer_ref  text NOT NULL,
    expires_at    timestamptz NOT NULL,
    revoked       boolean NOT NULL DEFAULT false
);
CREATE INDEX consent_grants_lookup ON consent_grants (worker_id, platform_id, consumer_ref);
