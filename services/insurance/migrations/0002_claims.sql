-- Insurance's copies of accepted orders (from the orders service's events) with the coverage found
-- for them, and claims (理赔). Money is fen. A claim's description is personal data: sealed
-- (libs.common.pii).
CREATE TABLE insured_orders (
    order_id          text PRIMARY KEY,
    platform_id       text NOT NULL,
    company_id        text NOT NULL,
    worker_id         text NOT NULL,
    service_type      integer NOT NULL,
    district_code     text NOT NULL,
    scheduled_start   timestamptz NOT NULL,
    scheduled_end     timestamptz NOT NULL,
    check_in          timestamptz,
    check_out         timestamptz,
    cancelled         boolean NOT NULL DEFAULT false,
    -- The coverage found when the order was accepted or its worker replaced.
    cover_worker_id   text,
    cover_policy_id   uuid,
    cover_product_id  text,
    cover_insurer     text,
    cover_reason      text,
    cover_found_at    timestamptz
);
CREATE INDEX insured_orders_uncovered ON insured_orders (company_id, order_id)
    WHERE cover_found_at IS NOT NULL AND cover_policy_id IS NULL AND NOT cancelled;

CREATE TABLE claims (
    claim_id             uuid PRIMARY KEY,
    filer                text NOT NULL,        -- the filing principal's tenant, or cases/{id}
    request_id           uuid NOT NULL,
    order_id             text NOT NULL,
    kind                 integer NOT NULL,
    incident_time        timestamptz,
    claimed_fen          bigint NOT NULL,
    description_sealed   bytea NOT NULL,
    circumstances        integer[] NOT NULL,
    worker_id            text NOT NULL,
    company_id           text NOT NULL,
    service_type         integer,
    policy_id            uuid,
    product_id           text NOT NULL,
    insurer              text NOT NULL,
    filed_by             text NOT NULL,
    report_time          timestamptz NOT NULL,
    filed_at             timestamptz NOT NULL,
    case_id              text NOT NULL,
    defect               text NOT NULL,
    state                text NOT NULL,
    worker_at_fault      boolean NOT NULL,
    decision             integer,
    assessed_fen         bigint,
    exclusions           integer[],
    payable_fen          bigint,
    reasons              text[],
    adjudicated_at       timestamptz,
    adjudication_request uuid,
    paid_at              timestamptz,
    payment_request      uuid,
    contest_reason       text,
    contested_at         timestamptz,
    contest_request      uuid,
    UNIQUE (filer, request_id)
);
CREATE INDEX claims_company ON claims (company_id, claim_id);
CREATE INDEX claims_insurer ON claims (insurer, claim_id);
-- What earlier claims used of a worker's limit on a policy.
CREATE INDEX claims_limit ON claims (policy_id, worker_id, kind) WHERE state IN ('adjudicated', 'paid');
