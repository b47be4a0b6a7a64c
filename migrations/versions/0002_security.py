"""Security: key ring, patient access links, TOTP flag, append-only triggers.

- ``encryption_keys``: data, blind-index, audit and signing keys, wrapped by the master key.
- ``patient_access_links``: one-time statement links for patients (token hashes only).
- ``users.totp_enabled``.
- Triggers refusing UPDATE and DELETE (and TRUNCATE on PostgreSQL) on ``audit_events``,
  ``journal_entries`` and ``postings``. The SQL is a copy of
  ``claims_server.security.immutability`` (a revision may not import application code);
  see that module for the maintenance bypass and why the app role cannot use it.

PHI columns keep their types (``VARCHAR(512)``, ``TEXT``, ``BLOB``/``BYTEA``): the
ciphertext fits the sizes reserved in ``0001_initial``.

Revision ID: 0002_security
Revises: 0001_initial
Create Date: 2026-11-21
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

revision: str = "0002_security"
down_revision: str | None = "0001_initial"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

APPEND_ONLY_TABLES = ("audit_events", "journal_entries", "postings")

PG_FUNCTION_SQL = """
CREATE OR REPLACE FUNCTION claims_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF coalesce(current_setting('claims.maintenance', true), '') = 'on'
       AND pg_has_role(current_user, (SELECT relowner FROM pg_class WHERE oid = TG_RELID), 'MEMBER') THEN
        IF TG_LEVEL = 'STATEMENT' THEN
            RETURN NULL;
        ELSIF TG_OP = 'DELETE' THEN
            RETURN OLD;
        END IF;
        RETURN NEW;
    END IF;
    RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$
"""


def _pg_triggers(table: str) -> list[str]:
    return [
        f"CREATE TRIGGER trg_{table}_append_only BEFORE UPDATE OR DELETE ON {table} "
        "FOR EACH ROW EXECUTE FUNCTION claims_refuse_change()",
        f"CREATE TRIGGER trg_{table}_no_truncate BEFORE TRUNCATE ON {table} "
        "FOR EACH STATEMENT EXECUTE FUNCTION claims_refuse_change()",
    ]


def _sqlite_triggers(table: str) -> list[str]:
    return [
        f"CREATE TRIGGER trg_{table}_no_update BEFORE UPDATE ON {table} "
        f"BEGIN SELECT RAISE(ABORT, '{table} is append-only: UPDATE refused'); END",
        f"CREATE TRIGGER trg_{table}_no_delete BEFORE DELETE ON {table} "
        f"BEGIN SELECT RAISE(ABORT, '{table} is append-only: DELETE refused'); END",
    ]


def upgrade() -> None:
    op.create_table(
        "encryption_keys",
        sa.Column("id", ID, nullable=False),
        sa.Column("key_id", sa.String(length=16), nullable=False),
        sa.Column("purpose", sa.String(length=16), nullable=False),
        sa.Column("provider", sa.String(length=40), nullable=False),
        sa.Column("wrapped_key", sa.Text(), nullable=False),
        sa.Column("retired_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "purpose IN ('data', 'blind_index', 'audit', 'audit_signing')",
            name=op.f("ck_encryption_keys_purpose"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_encryption_keys")),
        sa.UniqueConstraint("key_id", name=op.f("uq_encryption_keys_key_id")),
    )
    op.create_index(op.f("ix_encryption_keys_purpose"), "encryption_keys", ["purpose"], unique=False)
    op.create_table(
        "patient_access_links",
        sa.Column("id", ID, nullable=False),
        sa.Column("patient_id", ID, nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("failed_attempts", sa.Integer(), nullable=False),
        sa.Column("created_by_user_id", ID, nullable=True),
        sa.Column("session_token_hash", sa.String(length=64), nullable=True),
        sa.Column("session_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("session_last_seen_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("public_id", sa.String(length=32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "failed_attempts >= 0", name=op.f("ck_patient_access_links_failed_attempts_nonnegative")
        ),
        sa.ForeignKeyConstraint(
            ["created_by_user_id"],
            ["users.id"],
            name=op.f("fk_patient_access_links_created_by_user_id_users"),
        ),
        sa.ForeignKeyConstraint(
            ["patient_id"],
            ["patients.id"],
            name=op.f("fk_patient_access_links_patient_id_patients"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_patient_access_links")),
        sa.UniqueConstraint("public_id", name=op.f("uq_patient_access_links_public_id")),
        sa.UniqueConstraint("session_token_hash", name=op.f("uq_patient_access_links_session_token_hash")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_patient_access_links_token_hash")),
    )
    op.create_index(
        op.f("ix_patient_access_links_patient_id"), "patient_access_links", ["patient_id"], unique=False
    )
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("totp_enabled", sa.Boolean(), nullable=False, server_default=sa.false()))

    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        op.execute(PG_FUNCTION_SQL)
        for table in APPEND_ONLY_TABLES:
            for statement in _pg_triggers(table):
                op.execute(statement)
    else:
        for table in APPEND_ONLY_TABLES:
            for statement in _sqlite_triggers(table):
                op.execute(statement)


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        for table in APPEND_ONLY_TABLES:
            op.execute(f"DROP TRIGGER IF EXISTS trg_{table}_append_only ON {table}")
            op.execute(f"DROP TRIGGER IF EXISTS trg_{table}_no_truncate ON {table}")
        op.execute("DROP FUNCTION IF EXISTS claims_refuse_change()")
    else:
        for table in APPEND_ONLY_TABLES:
            op.execute(f"DROP TRIGGER IF EXISTS trg_{table}_no_update")
            op.execute(f"DROP TRIGGER IF EXISTS trg_{table}_no_delete")
    with op.batch_alter_table("users") as batch:
        batch.drop_column("totp_enabled")
    op.drop_index(op.f("ix_patient_access_links_patient_id"), table_name="patient_access_links")
    op.drop_table("patient_access_links")
    op.drop_index(op.f("ix_encryption_keys_purpose"), table_name="encryption_keys")
    op.drop_table("encryption_keys")
