"""835 remittances: store, parse, post to the ledger exactly once, show what was posted."""
