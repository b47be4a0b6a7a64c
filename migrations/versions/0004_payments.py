"""Patient payments: receipts (source, Idempotency-Key, posting) and payment plans.

- ``payment_receipts``: one row per ``patient_payments`` row; ``idempotency_key`` is
  unique so a payment submitted twice (a double click, a retried request) posts once.
- ``payment_plans`` and ``payment_plan_items``: a monthly amount over the patient
  balances of selected claims.

Revision ID: 0004_payments
Revises: 0003_phi_gaps
Create Date: 2026-11-21
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004_payments"
down_revision: str | None = "0003_phi_gaps"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "payment_plans",
        sa.Column("id", ID, nullable=False),
        sa.Column("patient_id", ID, nullable=False),
        sa.Column("state", sa.String(length=10), nullable=False),
        sa.Column("monthly_amount_cents", sa.BigInteger(), nullable=False),
        sa.Column("total_cents", sa.BigInteger(), nullable=False),
        sa.Column("start_date", sa.Date(), nullable=False),
        sa.Column("first_due_date", sa.Date(), nullable=False),
        sa.Column("missed_installments", sa.SmallInteger(), nullable=False),
        sa.Column("last_checked_on", sa.Date(), nullable=True),
        sa.Column("created_by_user_id", ID, nullable=True),
        sa.Column("public_id", sa.String(length=32), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "state IN ('active', 'completed', 'defaulted', 'cancelled')", name=op.f("ck_payment_plans_state")
        ),
        sa.CheckConstraint("missed_installments >= 0", name=op.f("ck_payment_plans_missed_nonnegative")),
        sa.CheckConstraint("monthly_amount_cents > 0", name=op.f("ck_payment_plans_monthly_amount_positive")),
        sa.CheckConstraint("total_cents > 0", name=op.f("ck_payment_plans_total_positive")),
        sa.ForeignKeyConstraint(
            ["created_by_user_id"], ["users.id"], name=op.f("fk_payment_plans_created_by_user_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patients.id"], name=op.f("fk_payment_plans_patient_id_patients")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payment_plans")),
        sa.UniqueConstraint("public_id", name=op.f("uq_payment_plans_public_id")),
    )
    op.create_index(op.f("ix_payment_plans_patient_id"), "payment_plans", ["patient_id"], unique=False)

    op.create_table(
        "payment_plan_items",
        sa.Column("id", ID, nullable=False),
        sa.Column("payment_plan_id", ID, nullable=False),
        sa.Column("claim_id", ID, nullable=False),
        sa.Column("amount_cents", sa.BigInteger(), nullable=False),
        sa.CheckConstraint("amount_cents > 0", name=op.f("ck_payment_plan_items_amount_positive")),
        sa.ForeignKeyConstraint(
            ["claim_id"], ["claims.id"], name=op.f("fk_payment_plan_items_claim_id_claims")
        ),
        sa.ForeignKeyConstraint(
            ["payment_plan_id"],
            ["payment_plans.id"],
            name=op.f("fk_payment_plan_items_payment_plan_id_payment_plans"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payment_plan_items")),
        sa.UniqueConstraint(
            "payment_plan_id", "claim_id", name=op.f("uq_payment_plan_items_payment_plan_id_claim_id")
        ),
    )
    op.create_index(op.f("ix_payment_plan_items_claim_id"), "payment_plan_items", ["claim_id"], unique=False)
    op.create_index(
        op.f("ix_payment_plan_items_payment_plan_id"), "payment_plan_items", ["payment_plan_id"], unique=False
    )

    op.create_table(
        "payment_receipts",
        sa.Column("id", ID, nullable=False),
        sa.Column("patient_payment_id", ID, nullable=False),
        sa.Column("idempotency_key", sa.String(length=255), nullable=False),
        sa.Column("source", sa.String(length=10), nullable=False),
        sa.Column("payment_plan_id", ID, nullable=True),
        sa.Column("journal_entry_id", ID, nullable=False),
        sa.Column("applied_cents", sa.BigInteger(), nullable=False),
        sa.Column("credit_cents", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "source IN ('link', 'front_desk', 'mail')", name=op.f("ck_payment_receipts_source")
        ),
        sa.CheckConstraint("applied_cents >= 0", name=op.f("ck_payment_receipts_applied_nonnegative")),
        sa.CheckConstraint("credit_cents >= 0", name=op.f("ck_payment_receipts_credit_nonnegative")),
        sa.ForeignKeyConstraint(
            ["journal_entry_id"],
            ["journal_entries.id"],
            name=op.f("fk_payment_receipts_journal_entry_id_journal_entries"),
        ),
        sa.ForeignKeyConstraint(
            ["patient_payment_id"],
            ["patient_payments.id"],
            name=op.f("fk_payment_receipts_patient_payment_id_patient_payments"),
        ),
        sa.ForeignKeyConstraint(
            ["payment_plan_id"],
            ["payment_plans.id"],
            name=op.f("fk_payment_receipts_payment_plan_id_payment_plans"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payment_receipts")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_payment_receipts_idempotency_key")),
        sa.UniqueConstraint("patient_payment_id", name=op.f("uq_payment_receipts_patient_payment_id")),
    )
    op.create_index(
        op.f("ix_payment_receipts_payment_plan_id"), "payment_receipts", ["payment_plan_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_payment_receipts_payment_plan_id"), table_name="payment_receipts")
    op.drop_table("payment_receipts")
    op.drop_index(op.f("ix_payment_plan_items_payment_plan_id"), table_name="payment_plan_items")
    op.drop_index(op.f("ix_payment_plan_items_claim_id"), table_name="payment_plan_items")
    op.drop_table("payment_plan_items")
    op.drop_index(op.f("ix_payment_plans_patient_id"), table_name="payment_plans")
    op.drop_table("payment_plans")
