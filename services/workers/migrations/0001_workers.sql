-- The workers service's records. Personal data (resident ID number, name, mobile) is stored only
-- sealed (libs.common.pii: AES-GCM, key id inside each value) beside a masked form for responses
-- and, for the ID number, a keyed hash that makes "already registered?" an indexed lookup.
CREATE TABLE companies (
    company_id          uuid PRIMARY KEY,
    request_id          uuid NOT NULL UNIQUE,
    request_fingerprint text NOT NULL,
    social_credit_code  text NOT NULL UNIQUE,
    display_name        text NOT NULL,
    premises_m2         integer NOT NULL,
    employment_model    text NOT NULL,
    outlets             jsonb NOT NULL,
    created_at          timestamptz NOT NULL
);

CREATE TABLE workers (
    worker_id           uuid PRIMARY KEY,
    request_id          uuid NOT NULL UNIQUE,
    request_fingerprint text NOT NULL,
    company_id          uuid NOT NULL REFERENCES companies,
    id_number_sealed    bytea NOT NULL,
    id_number_hash      bytea NOT NULL UNIQUE,
    id_number_masked    text NOT NULL,
    name_sealed         bytea NOT NULL,
    name_masked         text NOT NULL,
    mobile_sealed       bytea NOT NULL,
    mobile_masked       text NOT NULL,
    photo_ref           text NOT NULL,
    service_districts   text[] NOT NULL,
    trades              text[] NOT NULL,
    origin_province     text,
    skill_level         integer NOT NULL DEFAULT 0,
    registered_at       timestamptz NOT NULL
);
CREATE INDEX workers_by_company ON workers (company_id, worker_id);
CREATE INDEX workers_by_district ON workers USING gin (service_districts);

CREATE TABLE employments (
    worker_id   uuid NOT NULL REFERENCES workers,
    company_id  uuid NOT NULL REFERENCES companies,
    started_at  timestamptz NOT NULL,
    ended_at    timestamptz,
    PRIMARY KEY (worker_id, started_at)
);

CREATE TABLE background_checks (
    worker_id                   uuid NOT NULL REFERENCES workers,
    recorded_at                 timestamptz NOT NULL,
    identity_genuine            boolean NOT NULL,
    listed_crime_within_5_years boolean NOT NULL,
    severe_mental_illness       boolean NOT NULL,
    drug_offence_within_3_years boolean NOT NULL,
    checked_on                  date NOT NULL,
    PRIMARY KEY (worker_id, recorded_at)
);

CREATE TABLE health_checks (
    worker_id       uuid NOT NULL REFERENCES workers,
    recorded_at     timestamptz NOT NULL,
    tier            integer NOT NULL,
    issued_on       date NOT NULL,
    valid_until     date NOT NULL,
    hospital        text NOT NULL,
    certificate_no  text NOT NULL,
    PRIMARY KEY (worker_id, recorded_at)
);

CREATE TABLE trainings (
    worker_id     uuid NOT NULL REFERENCES workers,
    recorded_at   timestamptz NOT NULL,
    course        text NOT NULL,
    provider      text NOT NULL,
    hours         integer NOT NULL,
    completed_on  date NOT NULL,
    exam_passed   boolean NOT NULL,
    PRIMARY KEY (worker_id, recorded_at)
);

CREATE TABLE skill_certificates (
    worker_id          uuid NOT NULL REFERENCES workers,
    recorded_at        timestamptz NOT NULL,
    trade              text NOT NULL,
    level              integer NOT NULL,
    certificate_no     text NOT NULL,
    issued_on          date NOT NULL,
    special_abilities  text[] NOT NULL,
    PRIMARY KEY (worker_id, recorded_at)
);

CREATE TABLE availability (
    worker_id     uuid PRIMARY KEY REFERENCES workers,
    weekly_slots  jsonb NOT NULL,
    leaves        jsonb NOT NULL,
    updated_at    timestamptz NOT NULL
);

-- What the card colour depends on beyond this service's own records (from credit's and
-- insurance's events), and the colour last published.
CREATE TABLE card_status (
    worker_id      uuid PRIMARY KEY REFERENCES workers,
    colour         text NOT NULL,
    reasons        text[] NOT NULL,
    credit_level   text,
    suspended      boolean NOT NULL DEFAULT false,
    insured_until  date,
    updated_at     timestamptz NOT NULL
);
CREATE INDEX card_status_by_colour ON card_status (colour);

CREATE TABLE cards (
    card_id        uuid PRIMARY KEY,
    worker_id      uuid NOT NULL REFERENCES workers,
    issued_at      timestamptz NOT NULL,
    expires_at     timestamptz NOT NULL,
    revoked_at     timestamptz,
    revoke_reason  text
);
-- One person, one card: at most one card not revoked per worker.
CREATE UNIQUE INDEX cards_one_valid_per_worker ON cards (worker_id) WHERE revoked_at IS NULL;

CREATE TABLE consent_codes (
    code_hash    bytea PRIMARY KEY,
    worker_id    uuid NOT NULL REFERENCES workers,
    grant_hours  integer NOT NULL,
    expires_at   timestamptz NOT NULL,
    used_at      timestamptz
);

CREATE TABLE consent_grants (
    grant_id      uuid PRIMARY KEY,
    worker_id     uuid NOT NULL REFERENCES workers,
    platform_id   text NOT NULL,
    consumer_ref  text NOT NULL,
    granted_at    timestamptz NOT NULL,
    expires_at    timestamptz NOT NULL,
    revoked_at    timestamptz
);
CREATE INDEX consent_grants_by_worker ON consent_grants (worker_id, granted_at);
