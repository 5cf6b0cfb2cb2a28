-- Issue 9: companies' credit (decisions, complaint handling, grades) and operators' entries.

-- Operators' decisions about companies: penalties, red and black list entries and their end,
-- brand designations (北京市巾帼家政服务企业, 家政服务"领跑者").
CREATE TABLE company_decisions (
    decision_id    uuid PRIMARY KEY,
    company_id     text NOT NULL,
    request_id     uuid NOT NULL UNIQUE,
    kind           text NOT NULL,
    reason         text NOT NULL,
    decision_date  date NOT NULL,
    recorded_at    timestamptz NOT NULL
);
CREATE INDEX company_decisions_by_company ON company_decisions (company_id, decision_date, recorded_at);

-- Each company's complaint handling, from the complaints service's events: received, resolved,
-- and the response times (seconds) of the cases it answered.
CREATE TABLE company_complaints (
    case_id           text PRIMARY KEY,
    company_id        text NOT NULL,
    filed_at          timestamptz NOT NULL,
    response_seconds  bigint,
    resolved          boolean NOT NULL DEFAULT false
);
CREATE INDEX company_complaints_by_company ON company_complaints (company_id);

-- The latest grade of each company, as the lookups answer it.
CREATE TABLE company_grades (
    company_id     text PRIMARY KEY,
    grade          text NOT NULL,
    points         integer NOT NULL,
    model_version  text NOT NULL,
    graded_at      timestamptz NOT NULL
);

-- Operators' entries on a worker's record (awards, skills-competition results): idempotent by
-- request id; the ledger entry's event id is the request id.
CREATE TABLE operator_entries (
    request_id   uuid PRIMARY KEY,
    worker_id    text NOT NULL,
    recorded_at  timestamptz NOT NULL
);

-- A company's workers (their scores count in its grade).
CREATE INDEX worker_profiles_by_company ON worker_profiles (company_id);
