"""Database plumbing: the declarative base, engine and session factory.

One engine per application. SQLite gets foreign keys and WAL switched on at connect,
so the embedded default enforces the same integrity rules as PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from sqlalchemy import MetaData, Table, create_engine, event, insert, text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker

# Stable constraint names so Alembic autogenerate and downgrade are deterministic on
# both SQLite (batch mode) and PostgreSQL.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Declarative base for every model in ``claims_server``."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def make_engine(url: str, **kwargs: Any) -> Engine:
    """Create the engine for ``url`` with the settings each backend needs."""
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False}, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_pre_ping=True, **kwargs)


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(bind=engine, expire_on_commit=False)


@contextmanager
def unit_of_work(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One transaction: commit everything on success, roll everything back on error."""
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def bulk_insert(
    session: Session, table: Table, rows: Sequence[dict[str, Any]], *, returning_ids: bool = False
) -> list[int]:
    """INSERT ``rows`` (all with the same keys) into ``table`` in the session's transaction.

    PostgreSQL: ids are drawn from the table's sequence first (when wanted) and the rows are
    sent with COPY, which is several times faster than a multi-row INSERT for the hundreds
    of thousands of rows a large remittance produces (psycopg re-parses every long INSERT
    text). Elsewhere: one executemany INSERT (with RETURNING when ids are wanted). Values
    go through each column's type (enums to text, JSON to text), as an INSERT would do.
    """
    if not rows:
        return []
    connection = session.connection()
    dialect = connection.dialect
    if dialect.name != "postgresql":
        # Through the connection, not the session: a session execute would autoflush pending
        # ORM objects first, and a flush that audits (PHI changes) must see these rows.
        if returning_ids:
            stmt = insert(table).returning(table.c.id, sort_by_parameter_order=True)
            return list(connection.scalars(stmt, list(rows)).all())
        connection.execute(insert(table), list(rows))
        return []
    ids: list[int] = []
    if returning_ids:
        ids = list(
            connection.scalars(
                text("SELECT nextval(pg_get_serial_sequence(:table, 'id')) FROM generate_series(1, :n)"),
                {"table": table.name, "n": len(rows)},
            )
        )
    names = list(rows[0])
    if returning_ids:
        names = ["id", *names]
    processors = [table.c[name].type._cached_bind_processor(dialect) for name in names]
    columns = ", ".join(f'"{name}"' for name in names)
    cursor = connection.connection.driver_connection.cursor()  # type: ignore[union-attr]
    with cursor.copy(f'COPY "{table.name}" ({columns}) FROM STDIN') as copy:
        for n, row in enumerate(rows):
            values = [ids[n], *row.values()] if returning_ids else list(row.values())
            copy.write_row(
                [
                    processor(value) if processor is not None and value is not None else value
                    for processor, value in zip(processors, values, strict=True)
                ]
            )
    return ids
