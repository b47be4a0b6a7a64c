"""Database plumbing: the declarative base, engine and session factory.

One engine per application. SQLite gets foreign keys and WAL switched on at connect,
so the embedded default enforces the same integrity rules as PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from itertools import chain
from typing import Any

from sqlalchemy import MetaData, Table, create_engine, event, insert, text
from sqlalchemy.engine import Connection, Engine
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
    session: Session, table: Table, rows: Iterable[dict[str, Any]], *, returning_ids: bool = False
) -> list[int]:
    """INSERT ``rows`` (all with the same keys, in the same order) into ``table`` in the session's transaction.

    PostgreSQL: ids are drawn from the table's sequence first (when wanted) and the rows are
    sent with COPY, which is several times faster than a multi-row INSERT for the hundreds
    of thousands of rows a large remittance produces (psycopg re-parses every long INSERT
    text). Elsewhere: one executemany INSERT (with RETURNING when ids are wanted). Values
    go through each column's type (enums to text, JSON to text), as an INSERT would do.

    ``rows`` may be a generator (not with ``returning_ids``): on PostgreSQL each row is then
    made while the server is still storing the ones before it, instead of all of them first.
    """
    if isinstance(rows, Sequence) and not rows:
        return []
    connection = session.connection()
    if connection.dialect.name != "postgresql":
        # Through the connection, not the session: a session execute would autoflush pending
        # ORM objects first, and a flush that audits (PHI changes) must see these rows.
        rows = list(rows)
        if not rows:
            return []
        if returning_ids:
            stmt = insert(table).returning(table.c.id, sort_by_parameter_order=True)
            return list(connection.scalars(stmt, rows).all())
        connection.execute(insert(table), rows)
        return []
    ids: list[int] | None = None
    if returning_ids:
        rows = rows if isinstance(rows, Sequence) else list(rows)
        ids = _next_ids(connection, table, len(rows))
    _copy_rows(connection, table, rows, ids)
    return ids or []


def _next_ids(connection: Connection, table: Table, count: int) -> list[int]:
    """``count`` ids drawn from ``table``'s sequence (PostgreSQL), in order."""
    if not count:
        return []
    return list(
        connection.scalars(
            text("SELECT nextval(pg_get_serial_sequence(:table, 'id')) FROM generate_series(1, :n)"),
            {"table": table.name, "n": count},
        )
    )


def _copy_rows(
    connection: Connection, table: Table, rows: Iterable[dict[str, Any]], ids: list[int] | None
) -> None:
    """COPY ``rows`` (with ``ids``, if given, as their ``id``) into ``table`` (PostgreSQL)."""
    iterator = iter(rows)
    first = next(iterator, None)
    if first is None:
        return
    dialect = connection.dialect
    names = list(first)
    if ids is not None:
        names = ["id", *names]
    # Only the columns whose type converts a value (enums, JSON, times, sealed values).
    processors = [
        (position, processor)
        for position, name in enumerate(names)
        if (processor := table.c[name].type._cached_bind_processor(dialect)) is not None
    ]
    columns = ", ".join(f'"{name}"' for name in names)
    cursor = connection.connection.driver_connection.cursor()  # type: ignore[union-attr]
    with cursor.copy(f'COPY "{table.name}" ({columns}) FROM STDIN') as copy:
        write_row = copy.write_row
        for n, row in enumerate(chain((first,), iterator)):
            values = [ids[n], *row.values()] if ids is not None else [*row.values()]
            for position, processor in processors:
                value = values[position]
                if value is not None:
                    values[position] = processor(value)
            write_row(values)
