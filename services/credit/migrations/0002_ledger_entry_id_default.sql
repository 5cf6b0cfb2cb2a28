-- Entry ids are drawn by the database, so a batch of entries is inserted without them.
ALTER TABLE ledger_entries ALTER COLUMN entry_id SET DEFAULT gen_random_uuid();
