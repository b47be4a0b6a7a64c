"""Claim notes (a user's reason for a claim change, encrypted) and the patient account number encrypted.

- ``claim_notes``: free text a user wrote about a claim (kind ``reason``: why a claim was
  voided, replaced, reopened...), ``TEXT`` holding AES-GCM ciphertext bound to the row's
  ``public_id``. Until now a reason typed in the API or the workspace went into
  ``audit_events.details`` in clear, and audit rows are never rewritten; from here the
  audit event only names the note (``"note": <claim_notes.public_id>``). Reasons audited
  before this revision stay where they are: the hash chain forbids editing them.
- Append-only like ``journal_notes`` (``0006_journal_notes``): DELETE (and TRUNCATE on
  PostgreSQL) is refused, and so is an UPDATE of any column but ``note``, which key
  rotation re-encrypts in place. The SQL is a copy of ``claims_server.security.immutability``
  (a revision may not import application code); ``claims_refuse_change`` comes from
  ``0002_security``.
- ``patients.account_number``: the practice's own account number for the patient (from
  its practice-management or EHR system, printed on statements), a patient identifier
  under HIPAA, so it becomes ciphertext in a ``VARCHAR(512)``. Matching by it (the unique
  number per practice, the list filter) uses the new blind index
  ``account_number_index``. Values written before this revision are still clear text and
  their index is NULL: ``claims-server db upgrade`` seals them and fills the index right
  after this revision (a revision has no key to do it; ``keys rotate --seal-clear`` does the
  same for a database upgraded another way).

Revision ID: 0009_claim_notes
Revises: 0008_auth_hardening
Create Date: 2026-11-24
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009_claim_notes"
down_revision: str | None = "0008_auth_hardening"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TABLE = "claim_notes"
#: Every column but the encrypted ``note``.
FROZEN = "id, public_id, claim_id, author_user_id, kind, created_at"
OLD_ACCOUNT_LENGTH = 38


def upgrade() -> None:
    op.create_table(
        TABLE,
        sa.Column("id", ID, nullable=False),
        sa.Column("claim_id", ID, nullable=False),
        sa.Column("author_user_id", ID, nullable=True),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("public_id", sa.String(length=32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("kind IN ('reason')", name=op.f("ck_claim_notes_kind")),
        sa.ForeignKeyConstraint(
            ["author_user_id"], ["users.id"], name=op.f("fk_claim_notes_author_user_id_users")
        ),
        sa.ForeignKeyConstraint(["claim_id"], ["claims.id"], name=op.f("fk_claim_notes_claim_id_claims")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_claim_notes")),
        sa.UniqueConstraint("public_id", name=op.f("uq_claim_notes_public_id")),
    )
    op.create_index(op.f("ix_claim_notes_claim_id"), TABLE, ["claim_id"], unique=False)
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            f"CREATE TRIGGER trg_{TABLE}_append_only BEFORE UPDATE OF {FROZEN} OR DELETE ON {TABLE} "
            "FOR EACH ROW EXECUTE FUNCTION claims_refuse_change()"
        )
        op.execute(
            f"CREATE TRIGGER trg_{TABLE}_no_truncate BEFORE TRUNCATE ON {TABLE} "
            "FOR EACH STATEMENT EXECUTE FUNCTION claims_refuse_change()"
        )
    else:
        op.execute(
            f"CREATE TRIGGER trg_{TABLE}_no_update BEFORE UPDATE OF {FROZEN} ON {TABLE} "
            f"BEGIN SELECT RAISE(ABORT, '{TABLE} is append-only: UPDATE refused'); END"
        )
        op.execute(
            f"CREATE TRIGGER trg_{TABLE}_no_delete BEFORE DELETE ON {TABLE} "
            f"BEGIN SELECT RAISE(ABORT, '{TABLE} is append-only: DELETE refused'); END"
        )

    with op.batch_alter_table("patients") as batch:
        batch.drop_constraint(op.f("uq_patients_practice_id_account_number"), type_="unique")
        batch.alter_column(
            "account_number",
            existing_type=sa.String(length=OLD_ACCOUNT_LENGTH),
            type_=sa.String(length=512),
            existing_nullable=False,
        )
        batch.add_column(sa.Column("account_number_index", sa.String(length=64), nullable=True))
        batch.create_index(op.f("ix_patients_account_number_index"), ["account_number_index"], unique=False)
        batch.create_unique_constraint(
            op.f("uq_patients_practice_id_account_number_index"), ["practice_id", "account_number_index"]
        )


def downgrade() -> None:
    # Ciphertext does not fit the old VARCHAR(38) and cannot be decrypted here (no key):
    # refuse rather than truncate it or lose the practice's account numbers.
    bind = op.get_bind()
    longest = bind.execute(sa.text("SELECT max(length(account_number)) FROM patients")).scalar()
    if longest is not None and longest > OLD_ACCOUNT_LENGTH:
        raise RuntimeError(
            "patients.account_number holds encrypted values; export the patients before downgrading"
        )
    with op.batch_alter_table("patients") as batch:
        batch.drop_constraint(op.f("uq_patients_practice_id_account_number_index"), type_="unique")
        batch.drop_index(op.f("ix_patients_account_number_index"))
        batch.drop_column("account_number_index")
        batch.alter_column(
            "account_number",
            existing_type=sa.String(length=512),
            type_=sa.String(length=OLD_ACCOUNT_LENGTH),
            existing_nullable=False,
        )
        batch.create_unique_constraint(
            op.f("uq_patients_practice_id_account_number"), ["practice_id", "account_number"]
        )
    # Dropping the table drops its triggers (SQLite removes them before its implicit DELETE).
    op.drop_index(op.f("ix_claim_notes_claim_id"), table_name=TABLE)
    op.drop_table(TABLE)
