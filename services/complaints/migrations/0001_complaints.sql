-- Complaints and disputes (投诉/纠纷) with their workflow state, legal-aid referrals, and the
-- orders the service knows of from the orders service's events.
-- Personal data is sealed (libs.common.pii): the description, and the whole mediation agreement
-- (its facts are free text).
CREATE TABLE cases (
    case_id                   uuid PRIMARY KEY,
    filer                     text NOT NULL,         -- the filing principal's tenant
    request_id                uuid NOT NULL,
    kind                      text NOT NULL,
    category                  text NOT NULL,
    severity                  integer NOT NULL,
    complainant               text NOT NULL,
    respondent                text NOT NULL,
    description_sealed        bytea NOT NULL,
    platform_id               text NOT NULL DEFAULT '',
    order_id                  text NOT NULL DEFAULT '',
    worker_id                 text NOT NULL DEFAULT '',
    company_id                text NOT NULL DEFAULT '',
    district_code             text NOT NULL DEFAULT '',
    evidence_refs             text[] NOT NULL DEFAULT '{}',
    employee_model            boolean,               -- worker disputes only: 员工制 (true) or 中介制
    filed_by                  text NOT NULL DEFAULT '',
    state                     text NOT NULL,
    filed_at                  timestamptz NOT NULL,
    deadline_kind             text,
    deadline_at               timestamptz,
    responded_at              timestamptz,
    body                      text,
    mediator                  text,
    lease_until               timestamptz,
    outcome_result            text,
    outcome_at_fault          text,
    outcome_compensation_fen  bigint,
    agreement_sealed          bytea,
    route                     text,
    resolved_by               text,
    -- Who closed the case: resolved_by when it was resolved, the mediator who held it when it
    -- was escalated (escalation clears mediator); a mediator's workload counts these.
    closed_by                 text,
    updated_at                timestamptz NOT NULL DEFAULT now(),
    UNIQUE (filer, request_id)
);
-- A mediation body's queue: the most severe first, then the earliest deadline.
CREATE INDEX cases_mediation_queue ON cases (body, severity DESC, deadline_at) WHERE state = 'in_mediation';
CREATE INDEX cases_closed_by ON cases (body, closed_by) WHERE closed_by IS NOT NULL;

-- A worker's dispute referred to legal aid (法律援助).
CREATE TABLE referrals (
    case_id         uuid PRIMARY KEY REFERENCES cases,
    labour_dispute  boolean NOT NULL,
    deadline        timestamptz NOT NULL,
    created_at      timestamptz NOT NULL,
    accepted_at     timestamptz,
    overdue         boolean NOT NULL DEFAULT false
);
-- The listing: open referrals first, oldest first.
CREATE INDEX referrals_listing ON referrals ((accepted_at IS NOT NULL), created_at);

-- What complaints keeps of an order (plain ids; '' while unknown).
CREATE TABLE known_orders (
    order_id       text PRIMARY KEY,
    platform_id    text NOT NULL DEFAULT '',
    district_code  text NOT NULL DEFAULT '',
    worker_id      text NOT NULL DEFAULT '',
    company_id     text NOT NULL DEFAULT ''
);
