-- ListPolicies pages oldest issued first, and ListUncoveredOrders soonest due first, not by
-- the random policy id or the order id.
DROP INDEX policies_company;
DROP INDEX policies_insurer;
CREATE INDEX policies_company_issued ON policies (company_id, issued_at, policy_id);
CREATE INDEX policies_insurer_issued ON policies (insurer, issued_at, policy_id);
CREATE INDEX policies_issued ON policies (issued_at, policy_id);
DROP INDEX insured_orders_uncovered;
CREATE INDEX insured_orders_uncovered ON insured_orders (company_id, scheduled_start, order_id)
    WHERE cover_found_at IS NOT NULL AND cover_policy_id IS NULL AND NOT cancelled;
CREATE INDEX insured_orders_uncovered_due ON insured_orders (scheduled_start, order_id)
    WHERE cover_found_at IS NOT NULL AND cover_policy_id IS NULL AND NOT cancelled;
