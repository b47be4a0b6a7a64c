"""Statement runs with progress, statement holds, and the rendered statement kept encrypted.

- ``statement_runs``: one row per run (as-of date, state, done/total and outcome counts),
  read by the API and ``claims-server statements run --progress``.
- ``statement_holds``: statements stop for a patient while a hold is not released; a run
  places a ``collections`` hold after the final notice, for a person to review.
- ``statements``: the run that made it (one statement per patient per run), its dunning
  step, the part waiting on insurance, and the PDF and HTML (encrypted like PHI: they
  carry the guarantor's name and address) with the PDF's SHA-256.

Existing statements get ``dunning_step`` 1 and no pending-insurance amount.

Revision ID: 0005_statements
Revises: 0004_payments
Create Date: 2026-11-21
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0005_statements"
down_revision: str | None = "0004_payments"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "statement_runs",
        sa.Column("id", ID, nullable=False),
        sa.Column("as_of", sa.Date(), nullable=False),
        sa.Column("state", sa.String(length=10), nullable=False),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column("done", sa.Integer(), nullable=False),
        sa.Column("issued", sa.Integer(), nullable=False),
        sa.Column("skipped", sa.Integer(), nullable=False),
        sa.Column("held", sa.Integer(), nullable=False),
        sa.Column("failed", sa.Integer(), nullable=False),
        sa.Column("skip_reasons", JSON, nullable=False),
        sa.Column("errors", JSON, nullable=True),
        sa.Column("chunks_done", JSON, nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_by_user_id", ID, nullable=True),
        sa.Column("public_id", sa.String(length=32), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "state IN ('queued', 'running', 'done', 'failed')", name=op.f("ck_statement_runs_state")
        ),
        sa.CheckConstraint("done >= 0 AND done <= total", name=op.f("ck_statement_runs_progress_range")),
        sa.ForeignKeyConstraint(
            ["created_by_user_id"], ["users.id"], name=op.f("fk_statement_runs_created_by_user_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_statement_runs")),
        sa.UniqueConstraint("public_id", name=op.f("uq_statement_runs_public_id")),
    )
    op.create_table(
        "statement_holds",
        sa.Column("id", ID, nullable=False),
        sa.Column("patient_id", ID, nullable=False),
        sa.Column("reason", sa.String(length=12), nullable=False),
        sa.Column("balance_cents", sa.BigInteger(), nullable=True),
        sa.Column("dunning_step", sa.SmallInteger(), nullable=True),
        sa.Column("run_id", ID, nullable=True),
        sa.Column("work_item_id", ID, nullable=True),
        sa.Column("placed_by_user_id", ID, nullable=True),
        sa.Column("released_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("released_by_user_id", ID, nullable=True),
        sa.Column("public_id", sa.String(length=32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "reason IN ('collections', 'dispute', 'hardship', 'other')",
            name=op.f("ck_statement_holds_reason"),
        ),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patients.id"], name=op.f("fk_statement_holds_patient_id_patients")
        ),
        sa.ForeignKeyConstraint(
            ["placed_by_user_id"], ["users.id"], name=op.f("fk_statement_holds_placed_by_user_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["released_by_user_id"], ["users.id"], name=op.f("fk_statement_holds_released_by_user_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["run_id"], ["statement_runs.id"], name=op.f("fk_statement_holds_run_id_statement_runs")
        ),
        sa.ForeignKeyConstraint(
            ["work_item_id"], ["work_items.id"], name=op.f("fk_statement_holds_work_item_id_work_items")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_statement_holds")),
        sa.UniqueConstraint("public_id", name=op.f("uq_statement_holds_public_id")),
    )
    op.create_index(op.f("ix_statement_holds_patient_id"), "statement_holds", ["patient_id"], unique=False)
    op.create_index(op.f("ix_statement_holds_run_id"), "statement_holds", ["run_id"], unique=False)
    with op.batch_alter_table("statements") as batch:
        batch.add_column(sa.Column("run_id", ID, nullable=True))
        batch.add_column(sa.Column("dunning_step", sa.SmallInteger(), nullable=False, server_default="1"))
        batch.add_column(
            sa.Column("pending_insurance_cents", sa.BigInteger(), nullable=False, server_default="0")
        )
        batch.add_column(sa.Column("pdf_sha256", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("pdf_content", sa.LargeBinary(), nullable=True))
        batch.add_column(sa.Column("html_content", sa.LargeBinary(), nullable=True))
        batch.create_index(batch.f("ix_statements_run_id"), ["run_id"], unique=False)
        batch.create_unique_constraint(batch.f("uq_statements_run_id_patient_id"), ["run_id", "patient_id"])
        batch.create_foreign_key(
            batch.f("fk_statements_run_id_statement_runs"), "statement_runs", ["run_id"], ["id"]
        )
        batch.create_check_constraint("dunning_step_positive", "dunning_step >= 1")
    # The defaults only filled existing rows; the model sets both on every insert.
    with op.batch_alter_table("statements") as batch:
        batch.alter_column("dunning_step", server_default=None)
        batch.alter_column("pending_insurance_cents", server_default=None)


def downgrade() -> None:
    with op.batch_alter_table("statements") as batch:
        batch.drop_constraint(batch.f("ck_statements_dunning_step_positive"), type_="check")
        batch.drop_constraint(batch.f("fk_statements_run_id_statement_runs"), type_="foreignkey")
        batch.drop_constraint(batch.f("uq_statements_run_id_patient_id"), type_="unique")
        batch.drop_index(batch.f("ix_statements_run_id"))
        for column in (
            "html_content",
            "pdf_content",
            "pdf_sha256",
            "pending_insurance_cents",
            "dunning_step",
            "run_id",
        ):
            batch.drop_column(column)
    op.drop_index(op.f("ix_statement_holds_run_id"), table_name="statement_holds")
    op.drop_index(op.f("ix_statement_holds_patient_id"), table_name="statement_holds")
    op.drop_table("statement_holds")
    op.drop_table("statement_runs")
