"""PHI gaps: diagnosis codes, work-item comments and resolutions, appeal letters encrypted.

- ``claim_diagnoses.public_id`` and ``work_item_comments.public_id``: the row identity the
  AES-GCM associated data binds a ciphertext to must be known before the INSERT, and these
  two tables had none. Existing rows get a fresh random id here.
- ``claim_diagnoses.code`` widens from ``VARCHAR(8)`` to ``VARCHAR(512)`` to hold the
  ciphertext (``work_item_comments.body``, ``work_items.resolution`` and
  ``appeals.letter_text`` are ``TEXT`` already).

Values written before this revision are still clear text: seal them once with
``claims-server keys rotate --seal-clear`` (a revision may not import application code,
so it cannot encrypt them itself).

Revision ID: 0003_phi_gaps
Revises: 0002_security
Create Date: 2026-11-21
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003_phi_gaps"
down_revision: str | None = "0002_security"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NEW_PUBLIC_IDS = ("claim_diagnoses", "work_item_comments")


def _fill_public_ids(table: str) -> None:
    bind = op.get_bind()
    ids = [row[0] for row in bind.execute(sa.text(f"SELECT id FROM {table} WHERE public_id IS NULL"))]
    stmt = sa.text(f"UPDATE {table} SET public_id = :public_id WHERE id = :id")
    for row_id in ids:
        bind.execute(stmt, {"public_id": uuid.uuid4().hex, "id": row_id})


def upgrade() -> None:
    for table in NEW_PUBLIC_IDS:
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("public_id", sa.String(length=32), nullable=True))
        _fill_public_ids(table)
        with op.batch_alter_table(table) as batch:
            batch.alter_column("public_id", existing_type=sa.String(length=32), nullable=False)
            batch.create_unique_constraint(op.f(f"uq_{table}_public_id"), ["public_id"])
    with op.batch_alter_table("claim_diagnoses") as batch:
        batch.alter_column(
            "code", existing_type=sa.String(length=8), type_=sa.String(length=512), existing_nullable=False
        )


def downgrade() -> None:
    # Ciphertext does not fit the old VARCHAR(8): refuse rather than truncate it silently.
    bind = op.get_bind()
    longest = bind.execute(sa.text("SELECT max(length(code)) FROM claim_diagnoses")).scalar()
    if longest is not None and longest > 8:
        raise RuntimeError(
            "claim_diagnoses.code holds encrypted values; export the claims before downgrading"
        )
    with op.batch_alter_table("claim_diagnoses") as batch:
        batch.alter_column(
            "code", existing_type=sa.String(length=512), type_=sa.String(length=8), existing_nullable=False
        )
    for table in reversed(NEW_PUBLIC_IDS):
        with op.batch_alter_table(table) as batch:
            batch.drop_constraint(op.f(f"uq_{table}_public_id"), type_="unique")
            batch.drop_column("public_id")
