"""Alembic environment: configured in code by ``claims_server.migrate.alembic_config``.

SQLite runs in batch mode (``render_as_batch``): it cannot ALTER most things, so
Alembic rebuilds the table. Foreign keys are switched off for the duration (a rebuild
drops and re-creates a referenced table) and checked with ``PRAGMA foreign_key_check``
before the transaction commits, so a migration can never leave a dangling reference.
"""

from __future__ import annotations

from typing import Any

from alembic import context
from alembic.autogenerate.api import AutogenContext
from sqlalchemy import pool, text
from sqlalchemy.engine import Connection

import claims_server.models  # noqa: F401  (registers every table on Base.metadata)
from claims_server.db import Base, make_engine
from claims_server.models.common import EnumText, PhiDate, UTCDateTime

config = context.config
target_metadata = Base.metadata


class ForeignKeyViolation(RuntimeError):
    """A SQLite migration left rows pointing at rows that do not exist."""


def render_item(type_: str, obj: Any, autogen_context: AutogenContext) -> str | bool:
    """Render our column types as the plain SQL types they store.

    Revisions then never import application code, whose enums and types may change
    after the revision is written.
    """
    if type_ != "type":
        return False
    if isinstance(obj, EnumText):
        return f"sa.String(length={obj.impl_instance.length})"
    if isinstance(obj, PhiDate):
        return f"sa.String(length={obj.impl_instance.length})"
    if isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


def _configure(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        render_item=render_item,
    )


def _run_sqlite(connection: Connection) -> None:
    # PRAGMA foreign_keys is a no-op inside a transaction: set it before BEGIN.
    connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
    connection.commit()
    try:
        _configure(connection)
        with context.begin_transaction():
            context.run_migrations()
            problems = connection.execute(text("PRAGMA foreign_key_check")).fetchall()
            if problems:
                tables = sorted({str(row[0]) for row in problems})
                raise ForeignKeyViolation(f"foreign key check failed after migration in: {', '.join(tables)}")
    finally:
        connection.exec_driver_sql("PRAGMA foreign_keys=ON")


def run_migrations_offline() -> None:
    """Emit SQL to stdout instead of running it (``alembic upgrade --sql``)."""
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        target_metadata=target_metadata,
        literal_binds=True,
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection: Connection | None = config.attributes.get("connection")
    if connection is not None:
        _configure(connection)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = make_engine(config.get_main_option("sqlalchemy.url") or "", poolclass=pool.NullPool)
    try:
        with engine.connect() as conn:
            if conn.dialect.name == "sqlite":
                _run_sqlite(conn)
            else:
                _configure(conn)
                with context.begin_transaction():
                    context.run_migrations()
                conn.commit()
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
