-- Orders grow their lifecycle (issue 7): personal data sealed (libs.common.pii: AES-GCM, key id
-- inside each value) beside the masked forms responses show; the price in integer fen; offers,
-- immutable contracts and the versioned catalogue. request_fingerprint becomes a keyed hash:
-- the fingerprint covers the consumer's contact.
ALTER TABLE orders
    ADD COLUMN contact_sealed       bytea,
    ADD COLUMN name_masked          text NOT NULL DEFAULT '',
    ADD COLUMN mobile_masked        text NOT NULL DEFAULT '',
    ADD COLUMN address_sealed       bytea,
    ADD COLUMN address_masked       text NOT NULL DEFAULT '',
    ADD COLUMN price_fen            bigint NOT NULL DEFAULT 0,
    ADD COLUMN special_needs        text[] NOT NULL DEFAULT '{}',
    ADD COLUMN catalogue_version    integer NOT NULL DEFAULT 0,
    ADD COLUMN assigned_worker_id   text,
    ADD COLUMN contract_id          uuid,
    ADD COLUMN pending_offer_id     uuid,
    ADD COLUMN check_in_at          timestamptz,
    ADD COLUMN check_out_at         timestamptz,
    ADD COLUMN card_id              text,
    ADD COLUMN ended_by             text,
    ADD COLUMN ended_at             timestamptz,
    ADD COLUMN cancellation_fee_fen bigint NOT NULL DEFAULT 0,
    ADD COLUMN consumer_rating      integer,
    ADD COLUMN worker_rating        integer;

-- A worker's bookings (matching's free-slot rule and load) and no-shows (the 28-day rule).
CREATE INDEX orders_by_assigned_worker ON orders (assigned_worker_id, state) WHERE assigned_worker_id IS NOT NULL;

CREATE TABLE offers (
    offer_id    uuid PRIMARY KEY,
    order_id    uuid NOT NULL REFERENCES orders,
    worker_id   text NOT NULL,
    state       text NOT NULL,
    rank        integer NOT NULL,
    score       integer NOT NULL,
    created_at  timestamptz NOT NULL,
    expires_at  timestamptz NOT NULL
);
CREATE INDEX offers_by_order ON offers (order_id, created_at);

-- Contracts are written once and never updated but for ended_at; content is the canonical JSON,
-- sealed, and content_sha256 its hash.
CREATE TABLE contracts (
    contract_id     uuid PRIMARY KEY,
    order_id        uuid NOT NULL REFERENCES orders,
    worker_id       text NOT NULL,
    content_sealed  bytea NOT NULL,
    content_sha256  text NOT NULL,
    replaces        uuid REFERENCES contracts,
    trial_ends_at   timestamptz NOT NULL,
    created_at      timestamptz NOT NULL,
    ended_at        timestamptz
);
CREATE INDEX contracts_by_order ON contracts (order_id, created_at);

CREATE TABLE catalogue_versions (
    version     integer PRIMARY KEY,
    entries     jsonb NOT NULL,
    created_at  timestamptz NOT NULL
);
