-- ListClaims pages in filing order (oldest first), not by the random claim id.
DROP INDEX claims_company;
DROP INDEX claims_insurer;
CREATE INDEX claims_company_filed ON claims (company_id, filed_at, claim_id);
CREATE INDEX claims_insurer_filed ON claims (insurer, filed_at, claim_id);
CREATE INDEX claims_filed ON claims (filed_at, claim_id);
