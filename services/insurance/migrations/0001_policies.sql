-- Group policies (团体保单): the policy, every stint of every worker it lists, and the
-- endorsements (批单) that changed the list. Dates are Beijing dates; money is fen.
-- A worker's birth date is personal data: sealed (libs.common.pii).
CREATE TABLE policies (
    policy_id     uuid PRIMARY KEY,
    requester     text NOT NULL,         -- the creating principal's tenant
    request_id    uuid NOT NULL,
    company_id    text NOT NULL,
    product_id    text NOT NULL,
    insurer       text NOT NULL,
    start_date    date NOT NULL,
    end_date      date NOT NULL,
    premium_fen   bigint NOT NULL,
    issued_at     timestamptz NOT NULL,
    state         text NOT NULL,
    UNIQUE (requester, request_id)
);
CREATE INDEX policies_company ON policies (company_id, policy_id);
CREATE INDEX policies_insurer ON policies (insurer, policy_id);

-- One worker's stint on a policy, in the order the policy listed them (seq).
CREATE TABLE insured_workers (
    policy_id            uuid NOT NULL REFERENCES policies,
    seq                  integer NOT NULL,
    worker_id            text NOT NULL,
    job_class            integer NOT NULL,
    service_types        integer[] NOT NULL,
    start_date           date NOT NULL,
    end_date             date NOT NULL,
    birth_date_sealed    bytea NOT NULL,
    annual_premium_fen   bigint NOT NULL,
    PRIMARY KEY (policy_id, seq)
);
CREATE INDEX insured_workers_worker ON insured_workers (worker_id);

CREATE TABLE endorsements (
    endorsement_id      uuid PRIMARY KEY,
    policy_id           uuid NOT NULL REFERENCES policies,
    seq                 integer NOT NULL,
    request_id          uuid NOT NULL,
    kind                integer NOT NULL,
    effective_date      date NOT NULL,
    added_worker_ids    text[] NOT NULL,
    removed_worker_ids  text[] NOT NULL,
    premium_delta_fen   bigint NOT NULL,
    created_at          timestamptz NOT NULL,
    UNIQUE (policy_id, seq),
    UNIQUE (policy_id, request_id)
);
