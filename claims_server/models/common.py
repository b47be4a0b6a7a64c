"""Column types, mixins and helpers shared by every model module.

Portability rules (SQLite embedded, PostgreSQL in production):
- primary and foreign keys are ``BIGINT`` on PostgreSQL and ``INTEGER`` on SQLite, the
  only type SQLite autoincrements as a rowid alias;
- enumerations are short strings guarded by a named CHECK constraint, never a native
  ENUM type, so adding a value is a one-line migration on both backends;
- timestamps are timezone-aware UTC on both backends (SQLite stores no offset, so
  ``UTCDateTime`` re-attaches UTC when reading);
- money is ``BigInteger`` cents in columns whose names end in ``_cents``.

PHI columns carry ``info={"phi": True}`` so the field-level encryption work can find
every one of them with ``phi_columns()`` instead of a hand-kept list.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Any, TypeVar

from sqlalchemy import JSON, BigInteger, CheckConstraint, DateTime, Dialect, Integer, String, Table
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.types import TypeDecorator, TypeEngine

E = TypeVar("E", bound=StrEnum)

#: Primary/foreign key type: BIGINT on PostgreSQL, INTEGER (rowid alias) on SQLite.
IdType: TypeEngine[int] = BigInteger().with_variant(Integer(), "sqlite")

#: JSON documents: JSONB on PostgreSQL (indexable, compact), JSON text elsewhere.
JsonType: TypeEngine[Any] = JSON().with_variant(JSONB(), "postgresql")

#: Length of PHI text columns: room for the ciphertext once they are encrypted.
PHI_LENGTH = 512

#: Marker placed in ``Column.info`` of every column holding protected health information.
PHI_INFO: dict[str, Any] = {"phi": True}


def utcnow() -> datetime:
    """The current instant as an aware UTC datetime (the default of every timestamp)."""
    return datetime.now(UTC)


def new_public_id() -> str:
    """A random public identifier (uuid4 hex): URLs never show row ids or PHI."""
    return uuid.uuid4().hex


class UTCDateTime(TypeDecorator[datetime]):
    """``TIMESTAMP WITH TIME ZONE`` that always hands back aware UTC datetimes.

    Naive datetimes are refused on the way in: a naive value is ambiguous, and a
    timely-filing deadline computed from one can be off by a day.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError("timestamps must be timezone-aware (UTC)")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class PhiDate(TypeDecorator[date]):
    """A date kept as ISO-8601 text in a PHI-sized column.

    Birth dates are PHI and will be encrypted field by field; an encrypted value is
    text, so the column is text from the start and no later migration has to change
    its type. Python code still sees ``datetime.date``.
    """

    impl = String(PHI_LENGTH)
    cache_ok = True

    def process_bind_param(self, value: date | str | None, dialect: Dialect) -> str | None:
        if value is None:
            return None
        if isinstance(value, datetime):
            raise ValueError("a date is expected here, not a datetime")
        if isinstance(value, str):
            return date.fromisoformat(value).isoformat()
        return value.isoformat()

    def process_result_value(self, value: str | None, dialect: Dialect) -> date | None:
        if value is None:
            return None
        return date.fromisoformat(value)


class EnumText(TypeDecorator[E]):
    """A ``StrEnum`` stored as its string value (``VARCHAR``), read back as the enum.

    Validation is the table's CHECK constraint (see ``enum_check``), so a bad value is
    refused by the database whether it comes from the ORM or from raw SQL.
    """

    impl = String
    cache_ok = True

    def __init__(self, enum_class: type[E], length: int | None = None) -> None:
        self.enum_class = enum_class
        super().__init__(length or max(len(m.value) for m in enum_class))

    def process_bind_param(self, value: E | str | None, dialect: Dialect) -> str | None:
        if value is None:
            return None
        return str(value.value if isinstance(value, StrEnum) else value)

    def process_result_value(self, value: str | None, dialect: Dialect) -> E | None:
        if value is None:
            return None
        return self.enum_class(value)

    def __repr__(self) -> str:
        return f"EnumText({self.enum_class.__name__}, length={self.impl_instance.length})"


def sql_in(column: str, values: list[str] | tuple[str, ...]) -> str:
    """SQL text ``column IN ('a', 'b')`` for a CHECK constraint (values are our constants)."""
    quoted = ", ".join("'" + v.replace("'", "''") + "'" for v in values)
    return f"{column} IN ({quoted})"


def enum_check(column: str, enum_class: type[StrEnum], name: str | None = None) -> CheckConstraint:
    """CHECK constraint limiting ``column`` to the values of ``enum_class``.

    Named ``ck_<table>_<column>`` through the metadata naming convention. A NULL passes
    (SQL CHECK semantics), so nullability is decided by the column alone.
    """
    return CheckConstraint(sql_in(column, [m.value for m in enum_class]), name=name or column)


class PublicIdMixin:
    """A ``public_id`` for objects exposed through the API (never the row id)."""

    public_id: Mapped[str] = mapped_column(String(32), unique=True, default=new_public_id)


class CreatedMixin:
    """``created_at`` for rows that are written once (events, records)."""

    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class TimestampMixin(CreatedMixin):
    """``created_at`` and ``updated_at`` for mutable entities."""

    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


def phi_columns(tables: list[Table]) -> list[tuple[str, str]]:
    """(table, column) for every column marked as PHI, in table order."""
    return [(t.name, c.name) for t in tables for c in t.columns if c.info.get("phi")]
