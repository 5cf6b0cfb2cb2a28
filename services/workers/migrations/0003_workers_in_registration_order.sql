-- ListWorkers pages oldest registered first, not by the random worker id.
DROP INDEX workers_by_company;
CREATE INDEX workers_by_company ON workers (company_id, registered_at, worker_id);
CREATE INDEX workers_by_registration ON workers (registered_at, worker_id);
