"""Append-only tables: the database itself refuses UPDATE and DELETE on audit and ledger rows.

HIPAA 164.312(c)(1)-(2) (integrity, mechanism to authenticate ePHI): ``audit_events``,
``journal_entries`` and ``postings`` are written once. Migration ``0002_security``
installs the triggers (the SQL there is a copy of ``pg_trigger_sql`` /
``sqlite_trigger_sql``: revisions may not import application code).

``journal_notes`` (``0006_journal_notes``) and ``claim_notes`` (``0009_claim_notes``) are
append-only too, except that their encrypted ``note`` may be updated: key rotation
re-encrypts it in place (``security/rotation.py``). Their triggers fire on DELETE and on an
UPDATE of any other column (``FROZEN_COLUMNS``); a note rewritten in place would still need
the data key to be sealed for its row.

Maintenance bypass (test cleanup, a legally required purge), ``ledger_maintenance``:

- PostgreSQL: ``SET LOCAL claims.maintenance = 'on'`` inside one transaction, and the
  trigger honours it only when ``current_user`` is a member of the table's owner role.
  Run the application as a role that does not own the tables (migrations run as the
  owner; grant the app role SELECT, INSERT on these three tables and no UPDATE,
  DELETE, TRUNCATE), and the bypass gives it nothing: the owner could drop the trigger
  anyway. Custom GUCs can be set by anyone, so the ownership test is what matters.
- SQLite: the triggers cannot read a session-local flag (a trigger may not reference
  the temp schema), so the bypass drops and re-creates them inside the caller's
  transaction; a rollback restores them. An embedded SQLite file has no roles: whoever
  can write the file can do anything, which the audit chain and checkpoints detect.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import text
from sqlalchemy.engine import Connection

APPEND_ONLY_TABLES: tuple[str, ...] = ("audit_events", "journal_entries", "postings")
#: Append-only tables with an encrypted column key rotation rewrites: table -> the columns
#: an UPDATE may not touch (all but the encrypted ones).
FROZEN_COLUMNS: dict[str, tuple[str, ...]] = {
    "journal_notes": ("id", "public_id", "journal_entry_id", "author_user_id", "created_at"),
    "claim_notes": ("id", "public_id", "claim_id", "author_user_id", "kind", "created_at"),
    "notes": (
        "id",
        "public_id",
        "kind",
        "claim_id",
        "patient_id",
        "work_item_id",
        "author_user_id",
        "follow_up_on",
        "created_at",
    ),
}
MAINTENANCE_SETTING = "claims.maintenance"

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


def _update_event(table: str) -> str:
    frozen = FROZEN_COLUMNS.get(table)
    return f"UPDATE OF {', '.join(frozen)}" if frozen else "UPDATE"


def pg_trigger_sql(table: str) -> list[str]:
    """Row triggers for UPDATE/DELETE and a statement trigger for TRUNCATE on ``table``."""
    return [
        f"CREATE TRIGGER trg_{table}_append_only BEFORE {_update_event(table)} OR DELETE ON {table} "
        "FOR EACH ROW EXECUTE FUNCTION claims_refuse_change()",
        f"CREATE TRIGGER trg_{table}_no_truncate BEFORE TRUNCATE ON {table} "
        "FOR EACH STATEMENT EXECUTE FUNCTION claims_refuse_change()",
    ]


def sqlite_trigger_sql(table: str) -> list[str]:
    return [
        f"CREATE TRIGGER trg_{table}_no_update BEFORE {_update_event(table)} ON {table} "
        f"BEGIN SELECT RAISE(ABORT, '{table} is append-only: UPDATE refused'); END",
        f"CREATE TRIGGER trg_{table}_no_delete BEFORE DELETE ON {table} "
        f"BEGIN SELECT RAISE(ABORT, '{table} is append-only: DELETE refused'); END",
    ]


def sqlite_trigger_names(table: str) -> list[str]:
    return [f"trg_{table}_no_update", f"trg_{table}_no_delete"]


@contextmanager
def ledger_maintenance(connection: Connection) -> Iterator[Connection]:
    """Allow UPDATE/DELETE on the append-only tables inside ``connection``'s current transaction."""
    if connection.dialect.name == "postgresql":
        connection.execute(text(f"SET LOCAL {MAINTENANCE_SETTING} = 'on'"))
        try:
            yield connection
        finally:
            connection.execute(text(f"SET LOCAL {MAINTENANCE_SETTING} = 'off'"))
        return
    tables = (*APPEND_ONLY_TABLES, *FROZEN_COLUMNS)
    for table in tables:
        for name in sqlite_trigger_names(table):
            connection.execute(text(f"DROP TRIGGER IF EXISTS {name}"))
    try:
        yield connection
    finally:
        for table in tables:
            for statement in sqlite_trigger_sql(table):
                connection.execute(text(statement))
