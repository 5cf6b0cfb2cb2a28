"""insurance: insurance products, policies, insured workers, order coverage, claims."""
