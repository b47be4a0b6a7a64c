"""Finding patients without decrypting the table: exact matches on blind indexes.

The index is HMAC-SHA256 (blind-index key) of the normalised value (case and
whitespace folded, see ``claims_server.security.fields``), so the database sees
neither the member id nor the name, only equal-or-not. The practice's account number is
matched the same way (``account_number_is``), exactly but for Unicode form and outer space.
"""

from __future__ import annotations

from datetime import date

from sqlalchemy import ColumnElement, select
from sqlalchemy.orm import Session

from claims_server.models import Coverage, Patient
from claims_server.security.fields import account_number_index, cipher_for, member_id_index, name_dob_index


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


def account_number_is(session: Session, account_number: str) -> ColumnElement[bool]:
    """The condition ``Patient.account_number == account_number``, on the blind index."""
    return Patient.account_number_index == account_number_index(cipher_for(session), account_number)
