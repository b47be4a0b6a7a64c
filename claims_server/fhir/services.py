"""Writes through FHIR: ``POST Claim`` and a transaction Bundle of Patient, Coverage and Claim.

Both run in the caller's session and never commit (the view commits on success, rolls
back on any error): a Bundle is all or nothing. Each resource is validated with
:func:`~claims_server.fhir.validation.validate_resource` first, then turned into the
server's own records by the existing services (patients, coverages, ``create_claim``
with its scrub), so FHIR input obeys exactly the rules of the REST API.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from claims_server.fhir.claims import claim_to_fhir, create_claim_from_fhir
from claims_server.fhir.common import FHIR_ID, reference_id
from claims_server.fhir.outcome import FhirError, Issue
from claims_server.fhir.patients import (
    coverage_from_fhir,
    coverage_to_fhir,
    patient_from_fhir,
    patient_to_fhir,
)
from claims_server.fhir.validation import validate_resource
from claims_server.models import Claim, Patient
from claims_server.security.ownership import find_owned

#: What a transaction may create, in the order the entries are applied (references point backwards).
TRANSACTION_ORDER = ("Patient", "Coverage", "Claim")


def create_claim(session: Session, body: Any) -> Claim:
    resource = validate_resource(body, expected="Claim")
    return create_claim_from_fhir(session, resource, lambda ref: ref)


def _patient(session: Session, ref: Any, expression: str) -> Patient:
    public_id = reference_id(ref, "Patient", expression)
    patient = find_owned(session, Patient, public_id)  # another integration's patient: as missing
    if patient is None:
        raise FhirError(422, [Issue("the referenced Patient does not exist", "not-found", expression)])
    return patient


def transaction(session: Session, body: Any, base: str) -> dict[str, Any]:
    """Apply a transaction Bundle; the transaction-response Bundle, entries in request order."""
    bundle = validate_resource(body, expected="Bundle")
    if bundle.get("type") != "transaction":
        raise FhirError(422, [Issue("only transaction Bundles are accepted", "not-supported", "Bundle.type")])
    entries = bundle.get("entry") or []
    issues: list[Issue] = []
    for index, entry in enumerate(entries):
        at = f"Bundle.entry[{index}]"
        resource = entry.get("resource") or {}
        kind = resource.get("resourceType")
        request = entry.get("request") or {}
        if kind not in TRANSACTION_ORDER:
            issues.append(
                Issue(
                    f"a transaction may create {', '.join(TRANSACTION_ORDER)} only",
                    "not-supported",
                    f"{at}.resource",
                )
            )
        if request.get("method") != "POST" or request.get("url") != kind:
            issues.append(Issue(f"request must be POST {kind}", "not-supported", f"{at}.request"))
        full_url = entry.get("fullUrl")
        if full_url is not None and not str(full_url).startswith("urn:uuid:"):
            issues.append(
                Issue("a created entry's fullUrl must be urn:uuid:<uuid>", "invalid", f"{at}.fullUrl")
            )
    if not entries:
        issues.append(Issue("the Bundle has no entries", "required", "Bundle.entry"))
    if issues:
        raise FhirError(422, issues)

    created: dict[str, str] = {}  # fullUrl -> "Type/id"

    def resolve(ref: Any) -> Any:
        if isinstance(ref, dict) and ref.get("reference") in created:
            return {"reference": created[ref["reference"]]}
        return ref

    results: dict[int, tuple[str, dict[str, Any]]] = {}
    order = sorted(
        range(len(entries)), key=lambda i: TRANSACTION_ORDER.index(entries[i]["resource"]["resourceType"])
    )
    for index in order:
        entry = entries[index]
        resource = entry["resource"]
        kind = resource["resourceType"]
        prefix = f"Bundle.entry[{index}].resource"
        if kind == "Patient":
            patient = patient_from_fhir(session, resource, prefix)
            location, out = f"Patient/{patient.public_id}", patient_to_fhir(patient)
        elif kind == "Coverage":
            beneficiary = _patient(session, resolve(resource.get("beneficiary")), f"{prefix}.beneficiary")
            subscriber = None
            if (
                resource.get("subscriber")
                and resolve(resource["subscriber"]).get("reference") != f"Patient/{beneficiary.public_id}"
            ):
                subscriber = _patient(session, resolve(resource["subscriber"]), f"{prefix}.subscriber")
            coverage = coverage_from_fhir(session, resource, beneficiary, subscriber, prefix)
            location, out = f"Coverage/{coverage.public_id}", coverage_to_fhir(coverage)
        else:
            claim = create_claim_from_fhir(session, resource, resolve, prefix)
            session.flush()
            location, out = f"Claim/{claim.public_id}", claim_to_fhir(claim)
        if entry.get("fullUrl"):
            created[entry["fullUrl"]] = location
        results[index] = (location, out)
    return {
        "resourceType": "Bundle",
        "type": "transaction-response",
        "entry": [
            {
                "fullUrl": f"{base}/{results[i][0]}",
                "resource": results[i][1],
                "response": {"status": "201 Created", "location": results[i][0]},
            }
            for i in range(len(entries))
        ],
    }


def valid_id(value: str) -> bool:
    return bool(FHIR_ID.match(value))
