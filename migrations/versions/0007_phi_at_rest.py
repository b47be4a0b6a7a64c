"""PHI at rest outside the PHI columns: idempotency replays and print batches.

- ``idempotency_records``: the replayed answer (a created patient, coverage or claim) was
  stored as clear JSON. It becomes ``TEXT`` holding AES-GCM ciphertext bound to a new
  ``public_id``. The stored answers are deleted, not converted: a revision cannot encrypt
  (it has no key), and they only serve a client's retry within a day; a retry after the
  upgrade runs as a new request (the unique principal+key rows go too).
- ``statement_print_batches``: a mail-house batch's merged PDF and manifest, encrypted,
  instead of clear files under ``INSTANCE_PATH/statements/print`` (files written there
  before this revision are removed by ``claims-server maintenance purge`` after
  ``OUTBOUND_FILE_RETENTION_HOURS``).

Revision ID: 0007_phi_at_rest
Revises: 0006_journal_notes
Create Date: 2026-11-24
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0007_phi_at_rest"
down_revision: str | None = "0006_journal_notes"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
TABLE = "idempotency_records"


def upgrade() -> None:
    op.execute(sa.text(f"DELETE FROM {TABLE}"))
    with op.batch_alter_table(TABLE) as batch:
        batch.drop_column("response_body")
    with op.batch_alter_table(TABLE) as batch:
        batch.add_column(sa.Column("response_body", sa.Text(), nullable=True))
        batch.add_column(sa.Column("public_id", sa.String(length=32), nullable=False))
        batch.create_unique_constraint(op.f(f"uq_{TABLE}_public_id"), ["public_id"])

    op.create_table(
        "statement_print_batches",
        sa.Column("id", ID, nullable=False),
        sa.Column("statements", sa.Integer(), nullable=False),
        sa.Column("pages", sa.Integer(), nullable=False),
        sa.Column("sheets", sa.Integer(), nullable=False),
        sa.Column("pdf_sha256", sa.String(length=64), nullable=False),
        sa.Column("pdf_content", sa.LargeBinary(), nullable=True),
        sa.Column("manifest_content", sa.LargeBinary(), nullable=True),
        sa.Column("created_by_user_id", ID, nullable=True),
        sa.Column("purged_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("public_id", sa.String(length=32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["created_by_user_id"],
            ["users.id"],
            name=op.f("fk_statement_print_batches_created_by_user_id_users"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_statement_print_batches")),
        sa.UniqueConstraint("public_id", name=op.f("uq_statement_print_batches_public_id")),
    )


def downgrade() -> None:
    op.drop_table("statement_print_batches")
    # The encrypted answers cannot become clear JSON again here (no key): they are dropped.
    op.execute(sa.text(f"DELETE FROM {TABLE}"))
    with op.batch_alter_table(TABLE) as batch:
        batch.drop_constraint(op.f(f"uq_{TABLE}_public_id"), type_="unique")
        batch.drop_column("public_id")
        batch.drop_column("response_body")
    with op.batch_alter_table(TABLE) as batch:
        batch.add_column(sa.Column("response_body", JSON, nullable=True))
