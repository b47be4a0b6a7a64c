"""The billing day through the product: scheduled jobs, the fee schedule, charge imports.

- ``scheduled_jobs``: one row per periodic job; the in-process runner of ``claims-server
  serve`` takes a job with a conditional UPDATE of its lease, so several gunicorn workers
  run it once; last run, outcome (counts, never PHI) and next run for supervisors.
- ``fee_schedule_entries``: the practice's charge per procedure code and modifier ('' for
  none), the default charge of charge entry and charge import.
- ``charge_imports``: one imported charge file by the SHA-256 of its bytes, unique per
  practice (the same file twice imports nothing); ``claims.charge_import_id`` names the
  file a claim came from.

Revision ID: 0011_billing_day
Revises: 0010_statement_run_plan
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0011_billing_day"
down_revision: str | None = "0010_statement_run_plan"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
WHEN = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "scheduled_jobs",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("next_run_at", WHEN, nullable=True),
        sa.Column("lease_owner", sa.String(length=100), nullable=True),
        sa.Column("lease_expires_at", WHEN, nullable=True),
        sa.Column("last_started_at", WHEN, nullable=True),
        sa.Column("last_finished_at", WHEN, nullable=True),
        sa.Column("last_outcome", sa.String(length=16), nullable=True),
        sa.Column("last_detail", JSON, nullable=True),
        sa.Column("last_error", sa.String(length=500), nullable=True),
        sa.Column("last_success_at", WHEN, nullable=True),
        sa.Column("run_count", sa.Integer(), nullable=False),
        sa.Column("failure_count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_scheduled_jobs")),
    )
    op.create_table(
        "charge_imports",
        sa.Column("id", ID, nullable=False),
        sa.Column("practice_id", ID, nullable=False),
        sa.Column("file_sha256", sa.String(length=64), nullable=False),
        sa.Column("owner_integration", sa.String(length=100), nullable=True),
        sa.Column("created_by", sa.String(length=100), nullable=True),
        sa.Column("row_count", sa.Integer(), nullable=False),
        sa.Column("claim_count", sa.Integer(), nullable=False),
        sa.Column("ready_count", sa.Integer(), nullable=False),
        sa.Column("line_count", sa.Integer(), nullable=False),
        sa.Column("total_charge_cents", sa.BigInteger(), nullable=False),
        sa.Column("summary", JSON, nullable=True),
        sa.Column("public_id", sa.String(length=32), nullable=False),
        sa.Column("updated_at", WHEN, nullable=False),
        sa.Column("created_at", WHEN, nullable=False),
        sa.CheckConstraint(
            "total_charge_cents >= 0", name=op.f("ck_charge_imports_total_charge_nonnegative")
        ),
        sa.ForeignKeyConstraint(
            ["practice_id"], ["practices.id"], name=op.f("fk_charge_imports_practice_id_practices")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_charge_imports")),
        sa.UniqueConstraint(
            "practice_id", "file_sha256", name=op.f("uq_charge_imports_practice_id_file_sha256")
        ),
        sa.UniqueConstraint("public_id", name=op.f("uq_charge_imports_public_id")),
    )
    op.create_index(
        op.f("ix_charge_imports_owner_integration"), "charge_imports", ["owner_integration"], unique=False
    )
    op.create_index(op.f("ix_charge_imports_practice_id"), "charge_imports", ["practice_id"], unique=False)
    op.create_table(
        "fee_schedule_entries",
        sa.Column("id", ID, nullable=False),
        sa.Column("practice_id", ID, nullable=False),
        sa.Column("procedure_code", sa.String(length=5), nullable=False),
        sa.Column("modifier", sa.String(length=2), nullable=False),
        sa.Column("charge_cents", sa.BigInteger(), nullable=False),
        sa.Column("description", sa.String(length=80), nullable=True),
        sa.Column("updated_at", WHEN, nullable=False),
        sa.Column("created_at", WHEN, nullable=False),
        sa.CheckConstraint("charge_cents >= 0", name=op.f("ck_fee_schedule_entries_charge_nonnegative")),
        sa.ForeignKeyConstraint(
            ["practice_id"], ["practices.id"], name=op.f("fk_fee_schedule_entries_practice_id_practices")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_fee_schedule_entries")),
        sa.UniqueConstraint(
            "practice_id",
            "procedure_code",
            "modifier",
            name=op.f("uq_fee_schedule_entries_practice_id_procedure_code_modifier"),
        ),
    )
    op.create_index(
        op.f("ix_fee_schedule_entries_practice_id"), "fee_schedule_entries", ["practice_id"], unique=False
    )
    with op.batch_alter_table("claims") as batch:
        batch.add_column(sa.Column("charge_import_id", ID, nullable=True))
        batch.create_index(op.f("ix_claims_charge_import_id"), ["charge_import_id"], unique=False)
        batch.create_foreign_key(
            op.f("fk_claims_charge_import_id_charge_imports"), "charge_imports", ["charge_import_id"], ["id"]
        )


def downgrade() -> None:
    with op.batch_alter_table("claims") as batch:
        batch.drop_constraint(op.f("fk_claims_charge_import_id_charge_imports"), type_="foreignkey")
        batch.drop_index(op.f("ix_claims_charge_import_id"))
        batch.drop_column("charge_import_id")
    op.drop_index(op.f("ix_fee_schedule_entries_practice_id"), table_name="fee_schedule_entries")
    op.drop_table("fee_schedule_entries")
    op.drop_index(op.f("ix_charge_imports_practice_id"), table_name="charge_imports")
    op.drop_index(op.f("ix_charge_imports_owner_integration"), table_name="charge_imports")
    op.drop_table("charge_imports")
    op.drop_table("scheduled_jobs")
