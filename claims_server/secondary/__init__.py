"""Secondary and tertiary claims: the next payer billed with the prior payers' adjudication (COB)."""
