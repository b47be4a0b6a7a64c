"""Each payer's adjudication of a claim as a history; PLB references; held remittances.

- ``claim_payments``: ``payer_id`` and ``ledger_claim_id`` (the claim whose A/R the
  payment moves) key the history; ``adjudication_kind`` (original, correction, reversal,
  unmatched, informational), ``adjudication_state`` (current, reversed, superseded,
  applied, held, rejected, unmatched, none), ``hold_reason``, the reversal's
  ``reverses_claim_payment_id`` and a supervisor's decision (``decided_at``/``decided_by``).
  Existing rows are backfilled: matched CLPs current (reversals applied), others unmatched.
- ``remittances.state`` may be ``held`` (a re-issued 835: every claim already posted).
- ``work_items``: queues ``possible_duplicate`` and ``reconciliation``; ``remittance_id``
  and ``provider_adjustment_id`` name what an item is about.
- ``provider_adjustments``: ``reference_kind``, ``claim_id``, ``claim_payment_id`` (what
  PLB03-2 names).

Revision ID: 0012_adjudication_history
Revises: 0011_billing_day
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012_adjudication_history"
down_revision: str | None = "0011_billing_day"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
WHEN = sa.DateTime(timezone=True)

KINDS = "'original', 'correction', 'reversal', 'unmatched', 'informational'"
STATES = "'current', 'reversed', 'superseded', 'applied', 'held', 'rejected', 'unmatched', 'none'"
HOLDS = "'possible_duplicate', 'would_overdraw', 'reversal_unmatched'"
OLD_QUEUES = "'rejected', 'denied', 'unmatched', 'unpaid', 'needs_secondary', 'patient_balance', 'other'"
NEW_QUEUES = (
    "'rejected', 'denied', 'unmatched', 'unpaid', 'needs_secondary', 'patient_balance', "
    "'possible_duplicate', 'reconciliation', 'other'"
)


def upgrade() -> None:
    with op.batch_alter_table("claim_payments") as batch:
        batch.add_column(sa.Column("payer_id", ID, nullable=True))
        batch.add_column(sa.Column("ledger_claim_id", ID, nullable=True))
        batch.add_column(sa.Column("adjudication_kind", sa.String(length=16), nullable=True))
        batch.add_column(sa.Column("adjudication_state", sa.String(length=16), nullable=True))
        batch.add_column(sa.Column("hold_reason", sa.String(length=24), nullable=True))
        batch.add_column(sa.Column("reverses_claim_payment_id", ID, nullable=True))
        batch.add_column(sa.Column("decided_at", WHEN, nullable=True))
        batch.add_column(sa.Column("decided_by", sa.String(length=100), nullable=True))
        batch.create_foreign_key(op.f("fk_claim_payments_payer_id_payers"), "payers", ["payer_id"], ["id"])
        batch.create_foreign_key(
            op.f("fk_claim_payments_ledger_claim_id_claims"), "claims", ["ledger_claim_id"], ["id"]
        )
        batch.create_foreign_key(
            op.f("fk_claim_payments_reverses_claim_payment_id_claim_payments"),
            "claim_payments",
            ["reverses_claim_payment_id"],
            ["id"],
        )
        batch.create_check_constraint(
            op.f("ck_claim_payments_adjudication_kind"), f"adjudication_kind IN ({KINDS})"
        )
        batch.create_check_constraint(
            op.f("ck_claim_payments_adjudication_state"), f"adjudication_state IN ({STATES})"
        )
        batch.create_check_constraint(op.f("ck_claim_payments_hold_reason"), f"hold_reason IN ({HOLDS})")
        batch.create_index("ix_claim_payments_history", ["ledger_claim_id", "payer_id"])
        batch.create_index(op.f("ix_claim_payments_reverses_claim_payment_id"), ["reverses_claim_payment_id"])
    # Backfill: the payer of each row's remittance, our claim as the ledger's claim (a
    # next-payer or replacement claim's own id: the engine resolves its original when it
    # reads the history), matched rows current (a reversal applied), unmatched ones unmatched.
    op.execute(
        "UPDATE claim_payments SET payer_id = "
        "(SELECT remittances.payer_id FROM remittances WHERE remittances.id = claim_payments.remittance_id)"
    )
    op.execute(
        "UPDATE claim_payments SET ledger_claim_id = claim_id, "
        "adjudication_kind = CASE WHEN status_code = '22' THEN 'reversal' "
        "WHEN status_code IN ('23', '25') THEN 'informational' ELSE 'original' END, "
        "adjudication_state = CASE WHEN status_code = '22' THEN 'applied' "
        "WHEN status_code IN ('23', '25') THEN 'none' ELSE 'current' END "
        "WHERE claim_id IS NOT NULL"
    )
    op.execute(
        "UPDATE claim_payments SET adjudication_kind = 'unmatched', adjudication_state = 'unmatched' "
        "WHERE claim_id IS NULL"
    )
    with op.batch_alter_table("remittances") as batch:
        batch.drop_constraint(op.f("ck_remittances_state"), type_="check")
        batch.create_check_constraint(
            op.f("ck_remittances_state"), "state IN ('received', 'posted', 'failed', 'held')"
        )
    with op.batch_alter_table("work_items") as batch:
        batch.add_column(sa.Column("remittance_id", ID, nullable=True))
        batch.add_column(sa.Column("provider_adjustment_id", ID, nullable=True))
        batch.create_foreign_key(
            op.f("fk_work_items_remittance_id_remittances"), "remittances", ["remittance_id"], ["id"]
        )
        batch.create_foreign_key(
            op.f("fk_work_items_provider_adjustment_id_provider_adjustments"),
            "provider_adjustments",
            ["provider_adjustment_id"],
            ["id"],
        )
        batch.create_index(op.f("ix_work_items_remittance_id"), ["remittance_id"])
        batch.drop_constraint(op.f("ck_work_items_queue"), type_="check")
        batch.create_check_constraint(op.f("ck_work_items_queue"), f"queue IN ({NEW_QUEUES})")
    with op.batch_alter_table("provider_adjustments") as batch:
        batch.add_column(sa.Column("reference_kind", sa.String(length=16), nullable=True))
        batch.add_column(sa.Column("claim_id", ID, nullable=True))
        batch.add_column(sa.Column("claim_payment_id", ID, nullable=True))
        batch.create_foreign_key(
            op.f("fk_provider_adjustments_claim_id_claims"), "claims", ["claim_id"], ["id"]
        )
        batch.create_foreign_key(
            op.f("fk_provider_adjustments_claim_payment_id_claim_payments"),
            "claim_payments",
            ["claim_payment_id"],
            ["id"],
        )
        batch.create_index(op.f("ix_provider_adjustments_claim_id"), ["claim_id"])


def downgrade() -> None:
    with op.batch_alter_table("provider_adjustments") as batch:
        batch.drop_index(op.f("ix_provider_adjustments_claim_id"))
        batch.drop_constraint(
            op.f("fk_provider_adjustments_claim_payment_id_claim_payments"), type_="foreignkey"
        )
        batch.drop_constraint(op.f("fk_provider_adjustments_claim_id_claims"), type_="foreignkey")
        batch.drop_column("claim_payment_id")
        batch.drop_column("claim_id")
        batch.drop_column("reference_kind")
    op.execute("DELETE FROM work_items WHERE queue IN ('possible_duplicate', 'reconciliation')")
    with op.batch_alter_table("work_items") as batch:
        batch.drop_constraint(op.f("ck_work_items_queue"), type_="check")
        batch.create_check_constraint(op.f("ck_work_items_queue"), f"queue IN ({OLD_QUEUES})")
        batch.drop_index(op.f("ix_work_items_remittance_id"))
        batch.drop_constraint(
            op.f("fk_work_items_provider_adjustment_id_provider_adjustments"), type_="foreignkey"
        )
        batch.drop_constraint(op.f("fk_work_items_remittance_id_remittances"), type_="foreignkey")
        batch.drop_column("provider_adjustment_id")
        batch.drop_column("remittance_id")
    op.execute("UPDATE remittances SET state = 'posted' WHERE state = 'held'")
    with op.batch_alter_table("remittances") as batch:
        batch.drop_constraint(op.f("ck_remittances_state"), type_="check")
        batch.create_check_constraint(
            op.f("ck_remittances_state"), "state IN ('received', 'posted', 'failed')"
        )
    with op.batch_alter_table("claim_payments") as batch:
        batch.drop_index(op.f("ix_claim_payments_reverses_claim_payment_id"))
        batch.drop_index("ix_claim_payments_history")
        batch.drop_constraint(op.f("ck_claim_payments_hold_reason"), type_="check")
        batch.drop_constraint(op.f("ck_claim_payments_adjudication_state"), type_="check")
        batch.drop_constraint(op.f("ck_claim_payments_adjudication_kind"), type_="check")
        batch.drop_constraint(
            op.f("fk_claim_payments_reverses_claim_payment_id_claim_payments"), type_="foreignkey"
        )
        batch.drop_constraint(op.f("fk_claim_payments_ledger_claim_id_claims"), type_="foreignkey")
        batch.drop_constraint(op.f("fk_claim_payments_payer_id_payers"), type_="foreignkey")
        for column in (
            "decided_by",
            "decided_at",
            "reverses_claim_payment_id",
            "hold_reason",
            "adjudication_state",
            "adjudication_kind",
            "ledger_claim_id",
            "payer_id",
        ):
            batch.drop_column(column)
