"""Finding patients without decrypting the table: exact matches on blind indexes.

The index is HMAC-SHA256 (blind-index key) of the normalised value (case and
whitespace folded, see ``claims_server.security.fields``), so the database sees
neither the member id nor the name, only equal-or-not. The practice's account number is
matched the same way (``account_number_is``), exactly but for Unicode form and outer space.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import ColumnElement, inspect, select
from sqlalchemy.orm import Session

from claims_server.models import Coverage, Patient
from claims_server.models.encrypted import EncryptedAttr, Sealed, encrypted_attributes
from claims_server.security.fields import (
    FieldCipher,
    account_number_index,
    cipher_for,
    member_id_index,
    name_dob_index,
    normalize_text,
)


def find_patients_by_member_id(session: Session, member_id: str) -> list[Patient]:
    """Patients with a coverage whose member id equals ``member_id`` (normalised)."""
    digest = member_id_index(cipher_for(session), member_id)
    stmt = (
        select(Patient)
        .join(Coverage, Coverage.patient_id == Patient.id)
        .where(Coverage.member_id_index == digest)
        .distinct()
        .order_by(Patient.id)
    )
    return list(session.scalars(stmt))


def find_patients_by_name_dob(session: Session, last: str, first: str, dob: date) -> list[Patient]:
    """Patients whose last name, first name and birth date all match (names normalised)."""
    digest = name_dob_index(cipher_for(session), last, first, dob)
    return list(session.scalars(select(Patient).where(Patient.name_dob_index == digest).order_by(Patient.id)))


#: At most this many patients answer a last-name search (the page asks for more of the name then).
LAST_NAME_LIMIT = 100


def find_patients_by_last_name(
    session: Session, last: str, first: str | None = None, dob: date | None = None
) -> list[Patient]:
    """Patients whose last name matches (normalised, exactly), narrowed by first name and birth
    date when given; at most ``LAST_NAME_LIMIT``.

    The blind indexes cover last|first|birth date together, not the last name alone, and a new
    index column is a schema change: until one exists the last names are read as ciphertext
    (Core, so no patient row is loaded or audited), opened here and compared in memory. Only the
    patients that match are loaded as rows (the caller audits those reads). Linear in the
    number of patients: fine for a practice's few thousand; a ``last_name_index`` column is the
    way past that.
    """
    cipher = cipher_for(session)
    attrs = {a.key: a for a in encrypted_attributes(inspect(Patient))}
    wanted_last, wanted_first = normalize_text(last), normalize_text(first) if first else None
    query = select(Patient.id, Patient.public_id, Patient.last_name, Patient.first_name, Patient.birth_date)
    ids: list[int] = []
    for row_id, public_id, last_sealed, first_sealed, dob_sealed in session.execute(
        query.order_by(Patient.id)
    ):
        if normalize_text(_opened(cipher, attrs["last_name"], public_id, last_sealed)) != wanted_last:
            continue
        first_name = _opened(cipher, attrs["first_name"], public_id, first_sealed) if wanted_first else ""
        if wanted_first is not None and normalize_text(first_name) != wanted_first:
            continue
        if dob is not None and _opened(cipher, attrs["birth_date"], public_id, dob_sealed) != dob:
            continue
        ids.append(row_id)
        if len(ids) >= LAST_NAME_LIMIT:
            break
    if not ids:
        return []
    return list(session.scalars(select(Patient).where(Patient.id.in_(ids)).order_by(Patient.id)))


def _opened(cipher: FieldCipher, attr: EncryptedAttr, public_id: str, value: Any) -> Any:
    if value is None:
        return ""
    return cipher.open(attr, public_id, value.stored if isinstance(value, Sealed) else value)


def account_number_is(session: Session, account_number: str) -> ColumnElement[bool]:
    """The condition ``Patient.account_number == account_number``, on the blind index."""
    return Patient.account_number_index == account_number_index(cipher_for(session), account_number)
