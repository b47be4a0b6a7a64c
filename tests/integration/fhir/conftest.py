"""Fixtures of the FHIR facade tests: the demo practice, a folder route, FHIR documents."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import func, select

from claims_server.app import state
from claims_server.models import ClearinghouseRoute, Payer, Practice
from tests.integration.claims.support import seed

FHIR = "application/fhir+json"
CPT = "http://www.ama-assn.org/go/cpt"
HCPCS = "https://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets"
POS = "https://www.cms.gov/Medicare/Coding/place-of-service-codes/Place_of_Service_Code_Set"
SERVICE_DAY = date.today() - timedelta(days=10)  # inside every payer's filing limit


@pytest.fixture
def factory(app):
    return state(app).session_factory


@pytest.fixture
def ids(session) -> dict[str, Any]:
    found = seed(session)
    payer = session.scalar(select(Payer).where(Payer.payer_id == "DEMOACME"))
    found["payer_id"] = payer.payer_id
    found["practice_npi"] = session.scalar(select(Practice.npi))
    return found


@pytest.fixture
def folder_route(session, ids, tmp_path) -> ClearinghouseRoute:
    """The demo route pointed at folders under tmp_path."""
    route = session.scalar(select(ClearinghouseRoute))
    route.settings = {"outbox": str(tmp_path / "ch" / "outbox"), "inbox": str(tmp_path / "ch" / "inbox")}
    session.commit()
    return route


def body(response) -> dict[str, Any]:
    """A FHIR JSON answer with decimals kept exact."""
    return json.loads(response.get_data(as_text=True), parse_float=Decimal)


def post(client, path: str, document: Any, content_type: str = FHIR):
    data = document if isinstance(document, (str, bytes)) else json.dumps(document, default=str)
    return client.post(path, data=data, headers={"Content-Type": content_type})


def fhir_claim(ids: dict[str, Any], patient_ref: str, coverage_ref: str, **overrides: Any) -> dict[str, Any]:
    """A clean professional Claim (two lines, two diagnoses) for the given references."""
    doc: dict[str, Any] = {
        "resourceType": "Claim",
        "status": "active",
        "type": {
            "coding": [{"system": "http://terminology.hl7.org/CodeSystem/claim-type", "code": "professional"}]
        },
        "use": "claim",
        "patient": {"reference": patient_ref},
        "created": date.today().isoformat(),
        "provider": {
            "identifier": {"system": "http://hl7.org/fhir/sid/us-npi", "value": ids["practice_npi"]}
        },
        "priority": {
            "coding": [{"system": "http://terminology.hl7.org/CodeSystem/processpriority", "code": "normal"}]
        },
        "careTeam": [
            {
                "sequence": 1,
                "provider": {
                    "identifier": {"system": "http://hl7.org/fhir/sid/us-npi", "value": ids["rendering_npi"]}
                },
                "role": {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/claimcareteamrole",
                            "code": "primary",
                        }
                    ]
                },
            }
        ],
        "diagnosis": [
            {
                "sequence": 1,
                "diagnosisCodeableConcept": {
                    "coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "E11.9"}]
                },
            },
            {
                "sequence": 2,
                "diagnosisCodeableConcept": {
                    "coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "I10"}]
                },
            },
        ],
        "insurance": [{"sequence": 1, "focal": True, "coverage": {"reference": coverage_ref}}],
        "item": [
            {
                "sequence": 1,
                "careTeamSequence": [1],
                "diagnosisSequence": [1, 2],
                "productOrService": {"coding": [{"system": CPT, "code": "99214"}]},
                "servicedDate": SERVICE_DAY.isoformat(),
                "locationCodeableConcept": {"coding": [{"system": POS, "code": "11"}]},
                "quantity": {"value": 1},
                "net": {"value": Decimal("175.00"), "currency": "USD"},
            },
            {
                "sequence": 2,
                "careTeamSequence": [1],
                "diagnosisSequence": [1],
                "productOrService": {"coding": [{"system": CPT, "code": "83036"}]},
                "servicedDate": SERVICE_DAY.isoformat(),
                "quantity": {"value": 1},
                "net": {"value": Decimal("45.50"), "currency": "USD"},
            },
        ],
        "total": {"value": Decimal("220.50"), "currency": "USD"},
    }
    doc.update(overrides)
    return doc


def claim_items(lines: Sequence[tuple[str, str]]) -> dict[str, Any]:
    """``Claim.item`` and ``Claim.total`` for ``(procedure, charge)`` lines on :data:`SERVICE_DAY`, office
    (POS 11), each pointing at diagnosis 1; HCPCS Level II codes (a letter first) get the HCPCS system."""
    items = []
    for sequence, (code, charge) in enumerate(lines, start=1):
        system = HCPCS if code[0].isalpha() else CPT
        item: dict[str, Any] = {
            "sequence": sequence,
            "careTeamSequence": [1],
            "diagnosisSequence": [1],
            "productOrService": {"coding": [{"system": system, "code": code}]},
            "servicedDate": SERVICE_DAY.isoformat(),
            "quantity": {"value": 1},
            "net": {"value": Decimal(charge), "currency": "USD"},
        }
        if sequence == 1:
            item["locationCodeableConcept"] = {"coding": [{"system": POS, "code": "11"}]}
        items.append(item)
    return {"item": items, "total": {"value": sum(Decimal(c) for _, c in lines), "currency": "USD"}}


def transaction_bundle(
    ids: dict[str, Any],
    *,
    account: str | None = None,
    payer_id: str | None = None,
    claims: Sequence[Sequence[tuple[str, str]]] | None = None,
) -> dict[str, Any]:
    """A transaction Bundle: a new patient, their coverage (ACME unless ``payer_id``) and a claim (the
    two-line :func:`fhir_claim`, or one per entry of ``claims``: see :func:`claim_items`), linked by urn:uuid."""
    patient_url, coverage_url = f"urn:uuid:{uuid.uuid4()}", f"urn:uuid:{uuid.uuid4()}"
    patient = {
        "resourceType": "Patient",
        "identifier": [
            {
                "system": "https://claims-server.dev/fhir/sid/account-number",
                "value": account or f"F-{uuid.uuid4().hex[:8]}",
            }
        ],
        "name": [{"family": "Testperson", "given": ["Fhira"]}],
        "gender": "female",
        "birthDate": "1980-04-12",
        "address": [
            {"line": ["12 Synthetic Way"], "city": "Springfield", "state": "IL", "postalCode": "627011234"}
        ],
    }
    coverage = {
        "resourceType": "Coverage",
        "status": "active",
        "subscriberId": f"FHIR{uuid.uuid4().hex[:8].upper()}",
        "beneficiary": {"reference": patient_url},
        "relationship": {
            "coding": [
                {"system": "http://terminology.hl7.org/CodeSystem/subscriber-relationship", "code": "self"}
            ]
        },
        "period": {"start": (SERVICE_DAY - timedelta(days=365)).isoformat()},
        "payor": [
            {
                "identifier": {
                    "system": "https://claims-server.dev/fhir/sid/payer-id",
                    "value": payer_id or ids["payer_id"],
                }
            }
        ],
        "order": 1,
    }
    documents = (
        [fhir_claim(ids, patient_url, coverage_url, **claim_items(lines)) for lines in claims]
        if claims is not None
        else [fhir_claim(ids, patient_url, coverage_url)]
    )
    return {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"fullUrl": patient_url, "resource": patient, "request": {"method": "POST", "url": "Patient"}},
            {"fullUrl": coverage_url, "resource": coverage, "request": {"method": "POST", "url": "Coverage"}},
            *(
                {
                    "fullUrl": f"urn:uuid:{uuid.uuid4()}",
                    "resource": claim,
                    "request": {"method": "POST", "url": "Claim"},
                }
                for claim in documents
            ),
        ],
    }


def row_counts(session) -> dict[str, int]:
    """Rows of every table a FHIR write may touch (a refused write must change none)."""
    from claims_server.models import Claim, ClaimDiagnosis, Coverage, Patient, ServiceLine

    session.expire_all()
    return {
        m.__tablename__: session.scalar(select(func.count()).select_from(m))
        for m in (Patient, Coverage, Claim, ClaimDiagnosis, ServiceLine)
    }


@pytest.fixture
def demo_world(app, factory, tmp_path) -> None:
    """The whole demo day in the test database: claims, 277CAs, 835s, eligibility, statements."""
    from claims_server.db import unit_of_work
    from claims_server.demo_day import run_billing_day
    from claims_server.demo_seed import seed_practice
    from claims_server.eligibility.demo import run_eligibility_day
    from claims_server.reports.demo_day import continue_day
    from claims_server.security.principal import acting_as, system_principal
    from claims_server.statements.delivery_demo import run_statement_day

    out = tmp_path / "demo"
    with app.app_context(), acting_as(system_principal("test:demo")):
        with unit_of_work(factory) as session:
            seed_practice(session)
        run_billing_day(factory, out)
        continue_day(factory, out)
        run_eligibility_day(factory, out)
        run_statement_day(factory, out)
