"""Eligibility checks (270/271) → CoverageEligibilityRequest and, once answered, CoverageEligibilityResponse.

Both carry the check's public id; the response exists only when a 271 (or an error)
came back. Benefits come from the stored summary (``eligibility.summary``): copays,
coinsurance and deductibles per service type (EB01 B, A, C) as insurance.item.benefit.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from claims_server.fhir import search
from claims_server.fhir.claims import date_filter, identifier_filter
from claims_server.fhir.common import (
    ELIGIBILITY_TRACE_SYSTEM,
    concept,
    identifier,
    instant,
    parse_reference_param,
    prune,
    reference,
)
from claims_server.fhir.patients import ID_PARAM, PATIENT_PARAM, id_filter, payer_ref, practice_ref
from claims_server.models import Coverage, EligibilityCheck, Patient
from claims_server.models.eligibility import EligibilityStatus

SERVICE_TYPE_SYSTEM = "https://x12.org/codes/service-type-codes"
BENEFIT_TYPE_SYSTEM = "http://terminology.hl7.org/CodeSystem/benefit-type"
_ANSWERED = (
    EligibilityStatus.ACTIVE,
    EligibilityStatus.INACTIVE,
    EligibilityStatus.ERROR,
    EligibilityStatus.TIMEOUT,
)


def _common(check: EligibilityCheck, resource_type: str) -> dict[str, Any]:
    """What the 270 and the 271 resource share: id, trace number, purpose, patient."""
    return {
        "resourceType": resource_type,
        "id": check.public_id,
        "identifier": [identifier(ELIGIBILITY_TRACE_SYSTEM, check.trace_number)],
        "status": "active",
        "purpose": ["benefits", "validation"],
        "patient": reference("Patient", check.coverage.patient.public_id),
    }


def request_to_fhir(check: EligibilityCheck) -> dict[str, Any]:
    coverage = check.coverage
    return prune(
        {
            **_common(check, "CoverageEligibilityRequest"),
            "created": instant(check.requested_at),
            "provider": practice_ref(coverage.patient.practice),
            "insurer": payer_ref(coverage.payer),
            "insurance": [{"focal": True, "coverage": reference("Coverage", coverage.public_id)}],
            "item": [
                {"category": concept(SERVICE_TYPE_SYSTEM, code)} for code in check.service_type_codes or []
            ],
        }
    )


def _money_value(text: str | None) -> dict[str, Any] | None:
    return {"value": Decimal(text), "currency": "USD"} if text is not None else None


def _benefits(service: dict[str, Any]) -> list[dict[str, Any]]:
    benefits: list[dict[str, Any]] = []
    for copay in service.get("copays") or []:
        benefits.append(
            {"type": concept(BENEFIT_TYPE_SYSTEM, "copay"), "allowedMoney": _money_value(copay.get("amount"))}
        )
    for share in service.get("coinsurance") or []:
        if share.get("percent") is None:
            continue
        percent = Decimal(share["percent"])
        value = (
            {"allowedUnsignedInt": int(percent)}
            if percent == percent.to_integral()
            else {"allowedString": f"{percent}%"}
        )
        benefits.append({"type": {"text": "coinsurance percent"}, **value})
    for deductible in service.get("deductibles") or []:
        benefits.append(
            {
                "type": concept(BENEFIT_TYPE_SYSTEM, "deductible"),
                "allowedMoney": _money_value(deductible.get("total")),
                "usedMoney": _money_value(deductible.get("met")),
            }
        )
    return benefits


def response_to_fhir(check: EligibilityCheck) -> dict[str, Any]:
    coverage = check.coverage
    summary = check.benefits_summary or {}
    active = check.status is EligibilityStatus.ACTIVE
    return prune(
        {
            **_common(check, "CoverageEligibilityResponse"),
            "created": instant(check.responded_at or check.requested_at),
            "request": reference("CoverageEligibilityRequest", check.public_id),
            "outcome": "complete"
            if check.status in (EligibilityStatus.ACTIVE, EligibilityStatus.INACTIVE)
            else "error",
            "disposition": check.status.value,
            "insurer": payer_ref(coverage.payer),
            "insurance": [
                {
                    "coverage": reference("Coverage", coverage.public_id),
                    "inforce": active
                    if check.status in (EligibilityStatus.ACTIVE, EligibilityStatus.INACTIVE)
                    else None,
                    "item": [
                        {
                            "category": concept(SERVICE_TYPE_SYSTEM, service.get("service_type")),
                            "excluded": bool(service.get("not_covered")),
                            "authorizationRequired": service.get("prior_authorization_required"),
                            "benefit": _benefits(service),
                        }
                        for service in summary.get("services") or []
                    ],
                }
            ],
            "error": [{"code": {"text": "the payer or the transport answered with an error"}}]
            if check.status in (EligibilityStatus.ERROR, EligibilityStatus.TIMEOUT)
            else None,
        }
    )


def _check(session: Session, public_id: str, kind: str, *, answered: bool) -> EligibilityCheck:
    query = select(EligibilityCheck).where(EligibilityCheck.public_id == public_id)
    if answered:
        query = query.where(EligibilityCheck.status.in_(_ANSWERED))
    check = session.scalar(query)
    if check is None:
        raise search.not_found(kind)
    return check


def read_request(session: Session, public_id: str) -> dict[str, Any]:
    return request_to_fhir(_check(session, public_id, "CoverageEligibilityRequest", answered=False))


def read_response(session: Session, public_id: str) -> dict[str, Any]:
    return response_to_fhir(_check(session, public_id, "CoverageEligibilityResponse", answered=True))


def _patient_filter(query: Any, raw: str) -> Any:
    public_id = parse_reference_param("patient", raw, "Patient")
    patient = select(Patient.id).where(Patient.public_id == public_id).scalar_subquery()
    return query.where(
        EligibilityCheck.coverage_id.in_(select(Coverage.id).where(Coverage.patient_id == patient))
    )


def _handlers(created: Any) -> dict[str, search.Handler]:
    return {
        "_id": id_filter(EligibilityCheck.public_id),
        "patient": _patient_filter,
        "created": date_filter(created, "created"),
        "identifier": identifier_filter({ELIGIBILITY_TRACE_SYSTEM: EligibilityCheck.trace_number}),
    }


def search_requests(session: Session, args: search.SearchArgs) -> tuple[list[dict[str, Any]], str | None]:
    query = search.apply(select(EligibilityCheck), args, _handlers(EligibilityCheck.requested_at))
    found = search.page(session, query, EligibilityCheck.id, args)
    return [request_to_fhir(c) for c in found.items], found.next_cursor


def search_responses(session: Session, args: search.SearchArgs) -> tuple[list[dict[str, Any]], str | None]:
    handlers = _handlers(EligibilityCheck.responded_at)
    handlers["request"] = lambda query, raw: query.where(
        EligibilityCheck.public_id == parse_reference_param("request", raw, "CoverageEligibilityRequest")
    )
    base = select(EligibilityCheck).where(EligibilityCheck.status.in_(_ANSWERED))
    found = search.page(session, search.apply(base, args, handlers), EligibilityCheck.id, args)
    return [response_to_fhir(c) for c in found.items], found.next_cursor


_PARAMS = (
    ID_PARAM,
    PATIENT_PARAM,
    search.SearchParam("created", "date", "when the 270 was sent (request) or the 271 read (response)"),
    search.SearchParam("identifier", "token", f"the 270/271 trace number ({ELIGIBILITY_TRACE_SYSTEM})"),
)
ELIGIBILITY_REQUEST = search.ResourceKind(
    "CoverageEligibilityRequest", read_request, search_requests, _PARAMS
)
ELIGIBILITY_RESPONSE = search.ResourceKind(
    "CoverageEligibilityResponse",
    read_response,
    search_responses,
    (*_PARAMS, search.SearchParam("request", "reference", "the CoverageEligibilityRequest answered")),
)
