"""Every resource type the facade serves, by name (what the views dispatch on and metadata lists)."""

from __future__ import annotations

from claims_server.fhir.audit import AUDIT_EVENT
from claims_server.fhir.claims import CLAIM
from claims_server.fhir.eligibility import ELIGIBILITY_REQUEST, ELIGIBILITY_RESPONSE
from claims_server.fhir.patients import COVERAGE, PATIENT
from claims_server.fhir.remittance import CLAIM_RESPONSE, EOB, PAYMENT_RECONCILIATION
from claims_server.fhir.search import ResourceKind
from claims_server.fhir.statements import INVOICE

KINDS: dict[str, ResourceKind] = {
    kind.name: kind
    for kind in (
        PATIENT,
        COVERAGE,
        CLAIM,
        CLAIM_RESPONSE,
        EOB,
        ELIGIBILITY_REQUEST,
        ELIGIBILITY_RESPONSE,
        INVOICE,
        PAYMENT_RECONCILIATION,
        AUDIT_EVENT,
    )
}
