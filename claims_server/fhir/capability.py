"""The CapabilityStatement: exactly the types, interactions and search parameters we serve."""

from __future__ import annotations

from typing import Any

from claims_server import __version__
from claims_server.fhir.outcome import FHIR_JSON
from claims_server.fhir.resources import KINDS
from claims_server.fhir.search import PAGING

#: The date of this statement's content (changes when the served capabilities change).
STATEMENT_DATE = "2026-03-01"


def capability_statement(base: str) -> dict[str, Any]:
    resources = []
    for kind in KINDS.values():
        interactions = [{"code": "read"}, {"code": "search-type"}]
        if kind.name == "Claim":
            interactions.append({"code": "create"})
        entry: dict[str, Any] = {
            "type": kind.name,
            "interaction": interactions,
            "searchParam": [
                {"name": p.name, "type": p.type, "documentation": p.documentation} for p in kind.params
            ]
            + [
                {"name": "_count", "type": "number", "documentation": "page size, 1-200 (default 50)"},
            ],
        }
        if kind.profiles:
            entry["supportedProfile"] = list(kind.profiles)
        if kind.name == "AuditEvent":
            entry["documentation"] = "auditor and admin roles only"
        resources.append(entry)
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": STATEMENT_DATE,
        "publisher": "claims-server",
        "kind": "instance",
        "software": {"name": "claims-server", "version": __version__},
        "implementation": {"description": "claims-server FHIR R4 facade", "url": base},
        "fhirVersion": "4.0.1",
        "format": [FHIR_JSON, "json"],
        "rest": [
            {
                "mode": "server",
                "documentation": (
                    "Search parameters carry identifiers only (ids, control and trace numbers, dates), never "
                    f"names, birth dates or member ids (PHI in URLs). Paging: _count and the opaque {PAGING[1]} "
                    "of the Bundle's next link. Staff roles read; API tokens with the fhir:write scope create "
                    "Claims and transaction Bundles (Patient, Coverage, Claim); patients are not served."
                ),
                "security": {
                    "cors": False,
                    "description": "Bearer API token or staff session with a confirmed second factor.",
                },
                "resource": resources,
                "interaction": [{"code": "transaction"}],
            }
        ],
    }
