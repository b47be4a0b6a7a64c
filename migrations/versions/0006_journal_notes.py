"""Journal notes: a free-text note on a journal entry (a write-off's reason in words), encrypted.

- ``journal_notes``: the entry it belongs to, who wrote it, when, and the note (``TEXT``
  holding AES-GCM ciphertext: the note may name the patient, and ``journal_entries.memo``
  is not encrypted). Until now a write-off's note was the comment of a work item opened
  and resolved with it in the ``other`` queue; those items stay where they are (a
  revision cannot decrypt them to move them), new notes come here.
- Append-only like the journal: DELETE (and TRUNCATE on PostgreSQL) is refused, and so is
  an UPDATE of any column but ``note``, which key rotation re-encrypts in place. The SQL is
  a copy of ``claims_server.security.immutability`` (a revision may not import application
  code); the trigger function ``claims_refuse_change`` comes from ``0002_security``.

Revision ID: 0006_journal_notes
Revises: 0005_statements
Create Date: 2026-11-21
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006_journal_notes"
down_revision: str | None = "0005_statements"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TABLE = "journal_notes"
#: Every column but the encrypted ``note``.
FROZEN = "id, public_id, journal_entry_id, author_user_id, created_at"


def upgrade() -> None:
    op.create_table(
        TABLE,
        sa.Column("id", ID, nullable=False),
        sa.Column("journal_entry_id", ID, nullable=False),
        sa.Column("author_user_id", ID, nullable=True),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("public_id", sa.String(length=32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["author_user_id"], ["users.id"], name=op.f("fk_journal_notes_author_user_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["journal_entry_id"],
            ["journal_entries.id"],
            name=op.f("fk_journal_notes_journal_entry_id_journal_entries"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_journal_notes")),
        sa.UniqueConstraint("public_id", name=op.f("uq_journal_notes_public_id")),
    )
    op.create_index(op.f("ix_journal_notes_journal_entry_id"), TABLE, ["journal_entry_id"], unique=False)
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


def downgrade() -> None:
    # Dropping the table drops its triggers (and SQLite removes them before its implicit
    # DELETE, so they do not fire); the notes go with it.
    op.drop_index(op.f("ix_journal_notes_journal_entry_id"), table_name=TABLE)
    op.drop_table(TABLE)
