"""Shared pieces of the REST API: fields, cursor pagination, Idempotency-Key, transactions, audit."""
