"""The journal service and balance queries over the double-entry ledger (see ``services``)."""

from claims_server.ledger.services import (
    UNAPPLIED_PAYMENTS,
    EntrySpec,
    LedgerError,
    Leg,
    account_ids,
    account_totals,
    balance,
    balances_by,
    consolidate,
    ensure_claims_receivable,
    ensure_ledger_accounts,
    mirror_legs,
    post_entries,
    post_entry,
    unbalanced_entries,
)

__all__ = [
    "UNAPPLIED_PAYMENTS",
    "EntrySpec",
    "LedgerError",
    "Leg",
    "account_ids",
    "account_totals",
    "balance",
    "balances_by",
    "consolidate",
    "ensure_claims_receivable",
    "ensure_ledger_accounts",
    "mirror_legs",
    "post_entries",
    "post_entry",
    "unbalanced_entries",
]
