-- A disputed cancellation fee or no-show (DisputeCharge): once per order.
ALTER TABLE orders ADD COLUMN charge_disputed boolean NOT NULL DEFAULT false;
