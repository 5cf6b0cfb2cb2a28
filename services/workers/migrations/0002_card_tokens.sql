-- The signed token of each card, so that the QR code of an existing card can be rendered again.
-- It names the card and the worker's pseudonymous id only: no personal data.
-- No card was stored before this migration (the card API arrives with it).
ALTER TABLE cards ADD COLUMN token text NOT NULL;
-- Verification looks a card up by its id (the primary key); the company's view by worker.
CREATE INDEX cards_by_worker ON cards (worker_id);
