"""Patient and coverage services (no Flask).

Changes to PHI columns are audited by the security module on flush (``patients.update``
with the field names); reads of PHI are audited here, one ``patient.read`` per patient
returned.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from claims_server.api_common.audit import audit
from claims_server.api_common.crud import apply_fields, get_by_public_id, reference
from claims_server.api_common.pagination import Page, paginate
from claims_server.errors import Conflict, Unprocessable
from claims_server.models import AuditAction, Coverage, Patient, Payer, Practice, RelationshipToSubscriber
from claims_server.security.search import account_number_is, find_patients_by_last_name

PATIENT_FIELDS = [
    "account_number",
    "last_name",
    "first_name",
    "middle_name",
    "name_suffix",
    "birth_date",
    "sex",
    "address_line1",
    "address_line2",
    "city",
    "state",
    "zip_code",
    "phone",
    "email",
    "active",
]
COVERAGE_FIELDS = [
    "coverage_order",
    "member_id",
    "group_number",
    "group_name",
    "plan_name",
    "insurance_type_code",
    "relationship_code",
    "subscriber_last_name",
    "subscriber_first_name",
    "subscriber_middle_name",
    "subscriber_birth_date",
    "subscriber_sex",
    "subscriber_address_line1",
    "subscriber_address_line2",
    "subscriber_city",
    "subscriber_state",
    "subscriber_zip_code",
    "effective_start",
    "effective_end",
    "active",
]


def _audit(
    session: Session, action: AuditAction, kind: str, row: Any, patient_id: int, fields: Sequence[str]
) -> None:
    verb = {AuditAction.CREATE: "create", AuditAction.UPDATE: "update", AuditAction.READ: "read"}[action]
    audit(
        session,
        action=action,
        event_type=f"{kind}.{verb}",
        entity_type=kind,
        entity_id=row.public_id,
        patient_id=patient_id,
        details={"fields": sorted(fields)} if fields else None,
    )


# -- patients -----------------------------------------------------------------------------------


def create_patient(session: Session, data: Mapping[str, Any]) -> Patient:
    practice = reference(session, Practice, data["practice"], "practice", "practice")
    clash = session.scalar(
        select(Patient.id).where(
            Patient.practice_id == practice.id, account_number_is(session, data["account_number"])
        )
    )
    if clash is not None:
        raise Conflict(
            "the practice already has a patient with this account number",
            errors=[
                {"field": "account_number", "rule": "unique", "message": "already used in this practice"}
            ],
        )
    patient = Patient(practice_id=practice.id)
    apply_fields(patient, data, PATIENT_FIELDS)
    session.add(patient)
    session.flush()
    return patient


def update_patient(session: Session, patient: Patient, data: Mapping[str, Any]) -> Patient:
    if "practice" in data and data["practice"] != patient.practice.public_id:
        raise Unprocessable(
            "a patient cannot move to another practice",
            errors=[{"field": "practice", "rule": "immutable", "message": "cannot change"}],
        )
    if "account_number" in data and data["account_number"] != patient.account_number:
        clash = session.scalar(
            select(Patient.id).where(
                Patient.practice_id == patient.practice_id,
                Patient.id != patient.id,
                account_number_is(session, data["account_number"]),
            )
        )
        if clash is not None:
            raise Conflict(
                "the practice already has a patient with this account number",
                errors=[
                    {"field": "account_number", "rule": "unique", "message": "already used in this practice"}
                ],
            )
    apply_fields(patient, data, PATIENT_FIELDS)
    session.flush()
    return patient


def get_patient(session: Session, public_id: str, *, audit_read: bool = True) -> Patient:
    patient = get_by_public_id(session, Patient, public_id, "patient")
    if audit_read:
        _audit(session, AuditAction.READ, "patient", patient, patient.id, ())
    return patient


def list_patients(
    session: Session, filters: Mapping[str, Any], *, limit: int, cursor: str | None
) -> Page[Patient]:
    query = select(Patient)
    if filters.get("practice"):
        practice_id = select(Practice.id).where(Practice.public_id == filters["practice"]).scalar_subquery()
        query = query.where(Patient.practice_id == practice_id)
    page = paginate(session, query, Patient.id, limit=limit, cursor=cursor, filters=filters)
    for patient in page.items:
        _audit(session, AuditAction.READ, "patient", patient, patient.id, ())
    return page


def search_patients(session: Session, criteria: Mapping[str, Any]) -> list[Patient]:
    """Patients by member id, by account number (exact), or by last name, narrowed by first name
    and birth date when given (case and spaces ignored; all three: the name/birth-date index)."""
    if criteria.get("member_id"):
        found = find_by_member_id(session, criteria["member_id"])
    elif criteria.get("account_number"):
        by_account = select(Patient).where(account_number_is(session, criteria["account_number"]))
        found = list(session.scalars(by_account.order_by(Patient.id)))
    elif criteria.get("first_name") and criteria.get("birth_date"):
        found = find_by_name_dob(
            session, criteria["last_name"], criteria["first_name"], criteria["birth_date"]
        )
    else:
        found = find_patients_by_last_name(
            session, criteria["last_name"], criteria.get("first_name"), criteria.get("birth_date")
        )
    for patient in found:
        _audit(session, AuditAction.READ, "patient", patient, patient.id, ())
    return found


def find_by_member_id(session: Session, member_id: str) -> list[Patient]:
    """Patients with a coverage carrying ``member_id`` (the blind index when the security module provides it)."""
    try:
        from claims_server.security.search import find_patients_by_member_id
    except ModuleNotFoundError:
        return _exact_match_by_member_id(session, member_id)
    return list(find_patients_by_member_id(session, member_id))


def find_by_name_dob(session: Session, last_name: str, first_name: str, birth_date: date) -> list[Patient]:
    """Patients by name and birth date (the blind index when the security module provides it)."""
    try:
        from claims_server.security.search import find_patients_by_name_dob
    except ModuleNotFoundError:
        return _exact_match_by_name_dob(session, last_name, first_name, birth_date)
    return list(find_patients_by_name_dob(session, last_name, first_name, birth_date))


# Interim exact-match lookups on plain columns, used only until the security module's
# blind-index functions exist: once PHI columns are encrypted these cannot match.


def _normal(text: str) -> str:
    return " ".join(text.split()).upper()


def _exact_match_by_member_id(session: Session, member_id: str) -> list[Patient]:
    wanted = _normal(member_id)
    query = (
        select(Patient)
        .join(Coverage, Coverage.patient_id == Patient.id)
        .where(func.upper(func.trim(Coverage.member_id)) == wanted)
        .distinct()
        .order_by(Patient.id)
    )
    return list(session.scalars(query))


def _exact_match_by_name_dob(
    session: Session, last_name: str, first_name: str, birth_date: date
) -> list[Patient]:
    query = (
        select(Patient)
        .where(
            func.upper(func.trim(Patient.last_name)) == _normal(last_name),
            func.upper(func.trim(Patient.first_name)) == _normal(first_name),
            Patient.birth_date == birth_date,
        )
        .order_by(Patient.id)
    )
    return list(session.scalars(query))


def patient_to_json(patient: Patient) -> dict[str, Any]:
    out = {name: getattr(patient, name) for name in PATIENT_FIELDS}
    out.update(
        public_id=patient.public_id,
        practice=patient.practice.public_id,
        created_at=patient.created_at,
        updated_at=patient.updated_at,
    )
    return out


# -- coverages ----------------------------------------------------------------------------------


def _check_subscriber(merged: Mapping[str, Any]) -> None:
    """When the patient is not the subscriber, 2010BA needs the subscriber's name."""
    if merged["relationship_code"] == RelationshipToSubscriber.SELF.value:
        return
    missing = [k for k in ("subscriber_last_name", "subscriber_first_name") if not merged.get(k)]
    if missing:
        raise Unprocessable(
            "a coverage whose subscriber is not the patient needs the subscriber's name (2010BA NM1)",
            errors=[{"field": k, "rule": "required_for_dependent", "message": "required"} for k in missing],
        )


def _apply_coverage(
    session: Session, coverage: Coverage, patient: Patient, data: Mapping[str, Any]
) -> list[str]:
    changed = []
    if "payer" in data:
        payer = reference(session, Payer, data["payer"], "payer", "payer")
        if coverage.payer_id != payer.id:
            coverage.payer_id, coverage.payer = payer.id, payer
            changed.append("payer")
    if "subscriber_patient" in data:
        subscriber = reference(session, Patient, data["subscriber_patient"], "subscriber_patient", "patient")
        if subscriber is not None and subscriber.practice_id != patient.practice_id:
            raise Unprocessable(
                "subscriber_patient: the subscriber is not a patient of the same practice",
                errors=[
                    {"field": "subscriber_patient", "rule": "same_practice", "message": "other practice"}
                ],
            )
        coverage.subscriber_patient_id = subscriber.id if subscriber is not None else None
        changed.append("subscriber_patient")
    changed += apply_fields(coverage, data, COVERAGE_FIELDS)
    merged = {k: getattr(coverage, k) for k in COVERAGE_FIELDS}
    merged["relationship_code"] = RelationshipToSubscriber(merged["relationship_code"]).value
    _check_subscriber(merged)
    # The schema compares the two dates only when a request sends both; a PATCH of one is
    # checked against the stored other here (the table's CHECK would otherwise be a 500).
    start, end = merged["effective_start"], merged["effective_end"]
    if start is not None and end is not None and end < start:
        raise Unprocessable(
            "effective_end: must not be before effective_start",
            errors=[
                {"field": "effective_end", "rule": "effective_range", "message": "before effective_start"}
            ],
        )
    clash = session.scalar(
        select(Coverage.id).where(
            Coverage.patient_id == patient.id,
            Coverage.coverage_order == coverage.coverage_order,
            Coverage.effective_start == coverage.effective_start,
        )
    )
    if clash is not None and clash != coverage.id:
        raise Conflict(
            "the patient already has a coverage of this order starting on this date",
            errors=[
                {"field": "effective_start", "rule": "unique", "message": "order and start already used"}
            ],
        )
    _check_one_active_per_order(session, coverage, patient)
    return changed


def _check_one_active_per_order(session: Session, coverage: Coverage, patient: Patient) -> None:
    """A patient has at most one active coverage of each order (primary, secondary, tertiary) on
    any day: an active coverage whose dates overlap another active one of the same order is a 409.

    The patient's row is locked first (PostgreSQL ``FOR UPDATE``; SQLite serialises writers),
    so two requests adding a primary coverage at once cannot both pass the check.
    """
    if coverage.active is False:  # None: a new row, active by default
        return
    session.execute(select(Patient.id).where(Patient.id == patient.id).with_for_update())
    query = select(Coverage.public_id).where(
        Coverage.patient_id == patient.id,
        Coverage.coverage_order == coverage.coverage_order,
        Coverage.active.is_(True),
        or_(Coverage.effective_end.is_(None), Coverage.effective_end >= coverage.effective_start),
    )
    if coverage.effective_end is not None:
        query = query.where(Coverage.effective_start <= coverage.effective_end)
    if coverage.id is not None:
        query = query.where(Coverage.id != coverage.id)
    overlapping = session.scalar(query.limit(1))
    if overlapping is not None:
        order = {1: "primary", 2: "secondary", 3: "tertiary"}.get(coverage.coverage_order, "this order")
        raise Conflict(
            f"the patient already has an active {order} coverage for these dates; end it "
            "(effective_end) or make it inactive first",
            errors=[
                {
                    "field": "coverage_order",
                    "rule": "one_active_per_order",
                    "message": f"overlaps the active {order} coverage {overlapping}",
                }
            ],
        )


def create_coverage(session: Session, patient: Patient, data: Mapping[str, Any]) -> Coverage:
    coverage = Coverage(patient_id=patient.id)
    with session.no_autoflush:
        _apply_coverage(session, coverage, patient, data)
    session.add(coverage)
    session.flush()
    return coverage


def update_coverage(session: Session, coverage: Coverage, data: Mapping[str, Any]) -> Coverage:
    with session.no_autoflush:
        _apply_coverage(session, coverage, coverage.patient, data)
    session.flush()
    return coverage


def get_coverage(session: Session, public_id: str) -> Coverage:
    coverage = get_by_public_id(session, Coverage, public_id, "coverage")
    _audit(session, AuditAction.READ, "coverage", coverage, coverage.patient_id, ())
    return coverage


def list_coverages(session: Session, patient: Patient) -> list[Coverage]:
    coverages = list(
        session.scalars(
            select(Coverage)
            .where(Coverage.patient_id == patient.id)
            .order_by(Coverage.coverage_order, Coverage.effective_start)
        )
    )
    return coverages


def coverage_to_json(coverage: Coverage) -> dict[str, Any]:
    out = {name: getattr(coverage, name) for name in COVERAGE_FIELDS}
    out.update(
        public_id=coverage.public_id,
        patient=coverage.patient.public_id,
        payer=coverage.payer.public_id,
        relationship_code=RelationshipToSubscriber(coverage.relationship_code).value,
        subscriber_patient=coverage.subscriber_patient.public_id if coverage.subscriber_patient else None,
    )
    return out
