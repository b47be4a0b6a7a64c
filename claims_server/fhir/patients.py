"""Patient and Coverage ↔ our patients and coverages (837 loops 2010BA/2010CA, 2000B SBR).

Inbound resources become the patients API's JSON and go through the same marshmallow
schemas and services (``claims_server.patients``), so the rules are one set.
"""

from __future__ import annotations

from typing import Any

from marshmallow import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from claims_server.fhir import search
from claims_server.fhir.common import (
    ACCOUNT_SYSTEM,
    FHIR_ID,
    NPI_SYSTEM,
    PAYER_ID_SYSTEM,
    SUBSCRIBER_RELATIONSHIP_SYSTEM,
    concept,
    day,
    identifier,
    instant,
    parse_reference_param,
    prune,
    reference,
)
from claims_server.fhir.outcome import FhirError, Issue
from claims_server.models import Coverage, Patient, Payer, Practice, RelationshipToSubscriber
from claims_server.patients import services as patient_services
from claims_server.patients.schemas import CoverageSchema, PatientSchema

_GENDER = {"F": "female", "M": "male", "U": "unknown"}
_SEX = {"female": "F", "male": "M", "unknown": "U", "other": "U"}
#: subscriber-relationship (http://terminology.hl7.org/CodeSystem/subscriber-relationship) ↔ SBR02/PAT01.
_RELATIONSHIP = {
    RelationshipToSubscriber.SELF: "self",
    RelationshipToSubscriber.SPOUSE: "spouse",
    RelationshipToSubscriber.CHILD: "child",
    RelationshipToSubscriber.LIFE_PARTNER: "common",
}
_RELATIONSHIP_IN = {"self": "18", "spouse": "01", "child": "19", "common": "53", "other": "G8"}
_ORDER = {1: 1, 2: 2, 3: 3}


def practice_ref(practice: Practice) -> dict[str, Any]:
    """The billing practice as a logical reference (we serve no Organization resource)."""
    return {"identifier": identifier(NPI_SYSTEM, practice.npi), "display": practice.name}


def payer_ref(payer: Payer) -> dict[str, Any]:
    return {"identifier": identifier(PAYER_ID_SYSTEM, payer.payer_id), "display": payer.name}


# -- outbound ---------------------------------------------------------------------------------------


def patient_to_fhir(patient: Patient) -> dict[str, Any]:
    return prune(
        {
            "resourceType": "Patient",
            "id": patient.public_id,
            "meta": {"lastUpdated": instant(patient.updated_at)},
            "identifier": [identifier(ACCOUNT_SYSTEM, patient.account_number)],
            "active": patient.active,
            "name": [
                {
                    "use": "official",
                    "family": patient.last_name,
                    "given": [n for n in (patient.first_name, patient.middle_name) if n],
                    "suffix": [patient.name_suffix] if patient.name_suffix else None,
                }
            ],
            "telecom": [
                {"system": "phone", "value": patient.phone} if patient.phone else None,
                {"system": "email", "value": patient.email} if patient.email else None,
            ],
            "gender": _GENDER.get(patient.sex or "U", "unknown"),
            "birthDate": day(patient.birth_date),
            "address": [
                {
                    "line": [a for a in (patient.address_line1, patient.address_line2) if a],
                    "city": patient.city,
                    "state": patient.state,
                    "postalCode": patient.zip_code,
                    "country": "US",
                }
            ]
            if patient.address_line1 or patient.city
            else None,
            "managingOrganization": practice_ref(patient.practice),
        }
    )


def coverage_to_fhir(coverage: Coverage) -> dict[str, Any]:
    relationship = _RELATIONSHIP.get(RelationshipToSubscriber(coverage.relationship_code), "other")
    subscriber = None
    if coverage.subscriber_patient is not None:
        subscriber = reference("Patient", coverage.subscriber_patient.public_id)
    elif coverage.is_self:
        subscriber = reference("Patient", coverage.patient.public_id)
    return prune(
        {
            "resourceType": "Coverage",
            "id": coverage.public_id,
            "meta": {"lastUpdated": instant(coverage.updated_at)},
            "status": "active" if coverage.active else "cancelled",
            "subscriber": subscriber,
            "subscriberId": coverage.member_id,
            "beneficiary": reference("Patient", coverage.patient.public_id),
            "relationship": concept(SUBSCRIBER_RELATIONSHIP_SYSTEM, relationship),
            "period": {"start": day(coverage.effective_start), "end": day(coverage.effective_end)},
            "payor": [payer_ref(coverage.payer)],
            "class": [
                {
                    "type": concept("http://terminology.hl7.org/CodeSystem/coverage-class", "group"),
                    "value": coverage.group_number,
                    "name": coverage.group_name,
                }
                if coverage.group_number
                else None,
                {
                    "type": concept("http://terminology.hl7.org/CodeSystem/coverage-class", "plan"),
                    "value": coverage.plan_name,
                }
                if coverage.plan_name
                else None,
            ],
            "order": _ORDER.get(coverage.coverage_order),
        }
    )


def read_patient(session: Session, public_id: str) -> dict[str, Any]:
    patient = session.scalar(select(Patient).where(Patient.public_id == public_id))
    if patient is None:
        raise search.not_found("Patient")
    return patient_to_fhir(patient)


def read_coverage(session: Session, public_id: str) -> dict[str, Any]:
    coverage = session.scalar(select(Coverage).where(Coverage.public_id == public_id))
    if coverage is None:
        raise search.not_found("Coverage")
    return coverage_to_fhir(coverage)


def patient_filter(column: Any, name: str = "patient") -> search.Handler:
    """``patient=<id>``: rows whose ``column`` is that patient's row id."""

    def handler(query: Any, value: str) -> Any:
        public_id = parse_reference_param(name, value, "Patient")
        return query.where(
            column == select(Patient.id).where(Patient.public_id == public_id).scalar_subquery()
        )

    return handler


def id_filter(column: Any) -> search.Handler:
    return lambda query, value: query.where(column.in_(value.split(",")))


ID_PARAM = search.SearchParam("_id", "token", "the resource id")
PATIENT_PARAM = search.SearchParam("patient", "reference", "the patient (Patient/<id>)")


def search_patients(session: Session, args: search.SearchArgs) -> tuple[list[dict[str, Any]], str | None]:
    query = search.apply(select(Patient), args, {"_id": id_filter(Patient.public_id)})
    found = search.page(session, query, Patient.id, args)
    return [patient_to_fhir(p) for p in found.items], found.next_cursor


def search_coverages(session: Session, args: search.SearchArgs) -> tuple[list[dict[str, Any]], str | None]:
    handlers = {
        "_id": id_filter(Coverage.public_id),
        "patient": patient_filter(Coverage.patient_id),
        "beneficiary": patient_filter(Coverage.patient_id, "beneficiary"),
    }
    query = search.apply(select(Coverage), args, handlers)
    found = search.page(session, query, Coverage.id, args)
    return [coverage_to_fhir(c) for c in found.items], found.next_cursor


PATIENT = search.ResourceKind("Patient", read_patient, search_patients, (ID_PARAM,), create=True)
COVERAGE = search.ResourceKind(
    "Coverage",
    read_coverage,
    search_coverages,
    (ID_PARAM, PATIENT_PARAM, search.SearchParam("beneficiary", "reference", "the covered patient")),
    create=True,
)


# -- inbound ----------------------------------------------------------------------------------------

#: Patients API field -> FHIRPath (relative to the resource) of the element it came from.
_PATIENT_PATHS = {
    "account_number": "identifier",
    "last_name": "name[0].family",
    "first_name": "name[0].given[0]",
    "middle_name": "name[0].given[1]",
    "name_suffix": "name[0].suffix[0]",
    "birth_date": "birthDate",
    "sex": "gender",
    "address_line1": "address[0].line[0]",
    "address_line2": "address[0].line[1]",
    "city": "address[0].city",
    "state": "address[0].state",
    "zip_code": "address[0].postalCode",
    "phone": "telecom",
    "email": "telecom",
    "practice": "managingOrganization",
}
_COVERAGE_PATHS = {
    "payer": "payor[0]",
    "coverage_order": "order",
    "member_id": "subscriberId",
    "group_number": "class",
    "group_name": "class",
    "plan_name": "class",
    "relationship_code": "relationship",
    "effective_start": "period.start",
    "effective_end": "period.end",
    "subscriber_last_name": "subscriber",
    "subscriber_first_name": "subscriber",
}


def schema_issues(exc: ValidationError, prefix: str, paths: dict[str, str]) -> FhirError:
    """Marshmallow messages of the API schema -> issues naming the FHIR element they came from."""
    from claims_server.claims.services import flatten_errors

    issues = []
    for err in flatten_errors(exc.messages):
        name = str(err.get("field") or "")
        head = name.split(".")[0].split("[")[0]
        path = paths.get(head)
        expression = f"{prefix}.{path}" if path else prefix
        issues.append(Issue(f"{expression}: {err['message']}", "value", expression, rule=f"api:{head}"))
    return FhirError(422, issues)


def api_error_issues(exc: Any, prefix: str, paths: dict[str, str]) -> FhirError:
    """A service's ApiError (422/409 with field errors) -> issues on FHIR elements."""
    issues = []
    for err in exc.errors or [{"field": None, "message": exc.detail}]:
        head = str(err.get("field") or "").split(".")[0].split("[")[0]
        path = paths.get(head)
        expression = f"{prefix}.{path}" if path else prefix
        issues.append(
            Issue(
                f"{expression}: {err.get('message') or exc.detail}",
                "business-rule",
                expression,
                rule=err.get("rule"),
            )
        )
    return FhirError(422 if exc.status != 409 else 409, issues)


def _one_practice(session: Session, resource: dict[str, Any], prefix: str) -> str:
    """managingOrganization by NPI; without one, the installation's only practice."""
    wanted = ((resource.get("managingOrganization") or {}).get("identifier") or {}).get("value")
    query = select(Practice).where(Practice.active.is_(True))
    if wanted:
        query = query.where(Practice.npi == wanted)
    practices = session.scalars(query.limit(2)).all()
    if len(practices) != 1:
        raise FhirError(
            422,
            [
                Issue(
                    "name the practice by its NPI in managingOrganization.identifier"
                    if not wanted
                    else "no practice has this NPI",
                    "invalid",
                    f"{prefix}.managingOrganization",
                )
            ],
        )
    return practices[0].public_id


def patient_from_fhir(session: Session, resource: dict[str, Any], prefix: str = "Patient") -> Patient:
    """A new patient from a validated Patient resource (the patients service creates it)."""
    account = next(
        (i.get("value") for i in resource.get("identifier") or [] if i.get("system") == ACCOUNT_SYSTEM), None
    )
    if not account:
        raise FhirError(
            422,
            [
                Issue(
                    f"the practice's account number is required as an identifier with system {ACCOUNT_SYSTEM}",
                    "required",
                    f"{prefix}.identifier",
                )
            ],
        )
    name = (resource.get("name") or [{}])[0]
    given = name.get("given") or []
    address = (resource.get("address") or [{}])[0]
    lines = address.get("line") or []
    telecom = {t.get("system"): t.get("value") for t in resource.get("telecom") or []}
    raw = {
        "practice": _one_practice(session, resource, prefix),
        "account_number": account,
        "last_name": name.get("family"),
        "first_name": given[0] if given else None,
        "middle_name": given[1] if len(given) > 1 else None,
        "name_suffix": (name.get("suffix") or [None])[0],
        "birth_date": resource.get("birthDate"),
        "sex": _SEX.get(resource.get("gender") or ""),
        "address_line1": lines[0] if lines else None,
        "address_line2": lines[1] if len(lines) > 1 else None,
        "city": address.get("city"),
        "state": address.get("state"),
        "zip_code": address.get("postalCode"),
        "phone": telecom.get("phone"),
        "email": telecom.get("email"),
        "active": resource.get("active", True),
    }
    try:
        data = PatientSchema().load({k: v for k, v in raw.items() if v is not None})
    except ValidationError as exc:
        raise schema_issues(exc, prefix, _PATIENT_PATHS) from None
    from claims_server.errors import ApiError

    try:
        return patient_services.create_patient(session, data)
    except ApiError as exc:
        raise api_error_issues(exc, prefix, _PATIENT_PATHS) from None


def coverage_from_fhir(
    session: Session,
    resource: dict[str, Any],
    patient: Patient,
    subscriber: Patient | None,
    prefix: str = "Coverage",
) -> Coverage:
    """A new coverage of ``patient`` from a validated Coverage resource."""
    payor = (resource.get("payor") or [{}])[0]
    payer_id = (payor.get("identifier") or {}).get("value")
    payer = None
    if payer_id:
        payer = session.scalar(select(Payer).where(Payer.payer_id == payer_id))
    elif FHIR_ID.match((payor.get("reference") or "").removeprefix("Organization/")):
        payer = session.scalar(
            select(Payer).where(Payer.public_id == payor["reference"].removeprefix("Organization/"))
        )
    if payer is None:
        raise FhirError(
            422,
            [
                Issue(
                    f"name a payer we bill by its payer id (identifier system {PAYER_ID_SYSTEM})",
                    "invalid",
                    f"{prefix}.payor[0]",
                )
            ],
        )
    relationship = next(
        (
            c.get("code")
            for c in (resource.get("relationship") or {}).get("coding") or []
            if c.get("system") == SUBSCRIBER_RELATIONSHIP_SYSTEM
        ),
        "self",
    )
    if relationship not in _RELATIONSHIP_IN:
        raise FhirError(
            422,
            [Issue("not a subscriber-relationship code we bill", "code-invalid", f"{prefix}.relationship")],
        )
    classes = {
        (c.get("type") or {}).get("coding", [{}])[0].get("code"): c for c in resource.get("class") or []
    }
    period = resource.get("period") or {}
    raw: dict[str, Any] = {
        "payer": payer.public_id,
        "coverage_order": resource.get("order", 1),
        "member_id": resource.get("subscriberId"),
        "group_number": (classes.get("group") or {}).get("value"),
        "group_name": (classes.get("group") or {}).get("name"),
        "plan_name": (classes.get("plan") or {}).get("value"),
        "relationship_code": _RELATIONSHIP_IN[relationship],
        "effective_start": period.get("start"),
        "effective_end": period.get("end"),
        "active": resource.get("status") == "active",
    }
    if relationship != "self":
        if subscriber is None:
            raise FhirError(
                422,
                [
                    Issue(
                        "a dependent's coverage must reference the subscriber as a Patient",
                        "required",
                        f"{prefix}.subscriber",
                    )
                ],
            )
        raw.update(
            subscriber_patient=subscriber.public_id,
            subscriber_last_name=subscriber.last_name,
            subscriber_first_name=subscriber.first_name,
            subscriber_birth_date=subscriber.birth_date.isoformat(),
            subscriber_sex=subscriber.sex,
        )
    try:
        data = CoverageSchema().load({k: v for k, v in raw.items() if v is not None})
    except ValidationError as exc:
        raise schema_issues(exc, prefix, _COVERAGE_PATHS) from None
    from claims_server.errors import ApiError

    try:
        return patient_services.create_coverage(session, patient, data)
    except ApiError as exc:
        raise api_error_issues(exc, prefix, _COVERAGE_PATHS) from None
