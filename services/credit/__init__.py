"""credit: the credit ledger (信用档案), scores, levels, company grades, red and black lists."""
