"""Column types for field-level encryption, and the ORM hooks that seal and open them.

ORM code reads and writes plain values (``patient.last_name = "Doe"``). On flush, the
``before_insert``/``before_update`` hooks replace each encrypted attribute's value by a
``Sealed`` holding the AES-256-GCM ciphertext, bound (associated data) to the table,
column, the row's ``public_id`` and the key id; after the statement runs the plain
value is put back. On load the hooks open the ciphertext with the same binding, so a
ciphertext copied to another row or column, or with a bit flipped, fails to decrypt.

The column types accept only ``Sealed`` values: a plain value reaching the database
through Core (``insert(Patient).values(last_name=...)``, ``WHERE last_name = ...``)
is refused instead of being stored or compared in clear. Look rows up through their
blind index (``claims_server.security.search``). Core ``select(Patient.last_name)``
returns ``Sealed`` objects: read encrypted columns through ORM entities.

The cryptography itself lives in ``claims_server.security.fields``; this module only
knows which columns are encrypted and when to call it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import Dialect, LargeBinary, String, Text, event
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Mapper, QueryContext, Session, object_session
from sqlalchemy.orm.attributes import instance_state
from sqlalchemy.types import TypeDecorator

from claims_server.db import Base


class PlaintextWriteError(ValueError):
    """A plain value was about to reach an encrypted column outside the ORM flush."""


@dataclass(frozen=True, slots=True)
class Sealed:
    """What an encrypted column holds in SQL: the stored form, and the plain value when known.

    Deliberately not a ``str``: code that forgets to go through the ORM gets an obvious
    object instead of silently handling ciphertext as if it were a name.
    """

    stored: str | bytes
    plain: Any = None

    def __repr__(self) -> str:
        return "<Sealed>"

    __str__ = __repr__


class _EncryptedType(TypeDecorator[Any]):
    """Base of the encrypted column types: passes ``Sealed.stored`` through, refuses the rest."""

    cache_ok = True
    #: How plain values are encoded before encryption: "text", "date" or "bytes".
    codec = "text"

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        if isinstance(value, Sealed):
            return value.stored
        raise PlaintextWriteError(
            "an encrypted column may only be written by an ORM flush and searched by its blind index"
        )

    def process_result_value(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        if isinstance(value, memoryview):
            value = bytes(value)
        return Sealed(value)


class EncryptedString(_EncryptedType):
    """Encrypted text in a ``VARCHAR(n)`` (``n`` sized for the ciphertext, see PHI_LENGTH)."""

    impl = String
    # SQLAlchemy reads cache_ok from each class's own namespace, not from its bases.
    cache_ok = True


class EncryptedText(_EncryptedType):
    """Encrypted free text (notes) in a ``TEXT`` column."""

    impl = Text
    cache_ok = True


class EncryptedDate(_EncryptedType):
    """An encrypted ``datetime.date`` (birth dates) in a ``VARCHAR(n)``."""

    impl = String
    codec = "date"
    cache_ok = True


class EncryptedBytes(_EncryptedType):
    """Encrypted bytes (raw EDI files) in a binary column."""

    impl = LargeBinary
    codec = "bytes"
    cache_ok = True


def encode_plain(codec: str, value: Any) -> bytes:
    """The bytes encrypted for a plain ``value``."""
    if codec == "bytes":
        if not isinstance(value, bytes | bytearray | memoryview):
            raise TypeError("an encrypted binary column takes bytes")
        return bytes(value)
    if codec == "date":
        if isinstance(value, datetime) or not isinstance(value, date):
            if isinstance(value, str):
                return date.fromisoformat(value).isoformat().encode()
            raise TypeError("an encrypted date column takes a datetime.date")
        return value.isoformat().encode()
    if not isinstance(value, str):
        raise TypeError("an encrypted text column takes str")
    return value.encode("utf-8")


def decode_plain(codec: str, data: bytes) -> Any:
    """The plain value for decrypted ``data``."""
    if codec == "bytes":
        return data
    text = data.decode("utf-8")
    return date.fromisoformat(text) if codec == "date" else text


@dataclass(frozen=True, slots=True)
class EncryptedAttr:
    """One encrypted mapped attribute: attribute key, table and column names, codec.

    ``aad_prefix`` (``table | column |`` as bytes) is computed once: the field cipher's
    hot path only appends the row id and key id to it.
    """

    key: str
    table: str
    column: str
    codec: str
    aad_prefix: bytes = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "aad_prefix", f"{self.table}\x1f{self.column}\x1f".encode())


_ATTRS: dict[Mapper[Any], tuple[EncryptedAttr, ...]] = {}


def encrypted_attributes(mapper: Mapper[Any]) -> tuple[EncryptedAttr, ...]:
    """The encrypted attributes of ``mapper`` (cached; empty for most tables)."""
    found = _ATTRS.get(mapper)
    if found is None:
        found = tuple(
            EncryptedAttr(prop.key, col.table.name, col.name, col.type.codec)
            for prop in mapper.column_attrs
            for col in prop.columns[:1]
            if isinstance(col.type, _EncryptedType)
        )
        _ATTRS[mapper] = found
    return found


def _security_fields() -> Any:
    from claims_server.security import fields

    return fields


@event.listens_for(Base, "before_insert", propagate=True)
def _seal_before_insert(mapper: Mapper[Any], connection: Connection, target: Any) -> None:
    attrs = encrypted_attributes(mapper)
    fields = _security_fields()
    fields.update_blind_indexes(target, connection, insert=True)
    if attrs:
        fields.seal_instance(target, attrs, connection, changed=None)


@event.listens_for(Base, "before_update", propagate=True)
def _seal_before_update(mapper: Mapper[Any], connection: Connection, target: Any) -> None:
    attrs = encrypted_attributes(mapper)
    fields = _security_fields()
    fields.update_blind_indexes(target, connection, insert=False)
    if attrs:
        state = instance_state(target)
        changed = None if "public_id" in state.committed_state else set(state.committed_state)
        fields.seal_instance(target, attrs, connection, changed=changed)


@event.listens_for(Base, "after_insert", propagate=True)
@event.listens_for(Base, "after_update", propagate=True)
def _unseal_after_write(mapper: Mapper[Any], connection: Connection, target: Any) -> None:
    for attr in encrypted_attributes(mapper):
        value = target.__dict__.get(attr.key)
        if isinstance(value, Sealed):
            target.__dict__[attr.key] = value.plain


@event.listens_for(Base, "load", propagate=True)
def _open_on_load(target: Any, context: QueryContext) -> None:
    attrs = encrypted_attributes(instance_state(target).mapper)
    if attrs:
        _security_fields().open_instance(target, attrs, context.session)


@event.listens_for(Base, "refresh", propagate=True)
def _open_on_refresh(target: Any, context: QueryContext, keys: Any) -> None:
    attrs = encrypted_attributes(instance_state(target).mapper)
    if attrs:
        _security_fields().open_instance(target, attrs, context.session)


def session_of(target: Any) -> Session | None:
    """The session ``target`` belongs to (None while detached)."""
    return object_session(target)
