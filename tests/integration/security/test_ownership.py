"""Integration tokens see and change only what they own (issue 15, finding 5).

ONE table-driven test: every endpoint of the policy table that admits integration tokens
has a case below (a new one without a case fails the test). A case calls the route as the
owning integration (it succeeds) and as another integration holding every scope: reads of
the owner's objects are 404, writes naming them get the answer a nonexistent id gets (404
for a path id, the 422 naming the field for an id in the body) and change nothing. Shared
reference data (practice, providers, payers: no PHI) is readable by every integration, as
``security.ownership.OWNERSHIP`` declares.
"""

from __future__ import annotations

import copy
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from claims_server.models import (
    Claim,
    Coverage,
    EdiFile,
    Patient,
    Payer,
    Practice,
    Provider,
    Remittance,
)
from claims_server.patients import services as patient_services
from claims_server.security.ownership import OWNERSHIP
from claims_server.security.policy import INTEGRATION, POLICY
from tests.integration.claims.support import claim_json, seed
from tests.integration.remittance.support import Clp, Svc, build_835

X12 = {"Content-Type": "application/edi-x12"}
FHIR = {"Content-Type": "application/fhir+json"}
MISSING = uuid.uuid4().hex  # a well-formed id of nothing


@dataclass
class Ctx:
    session: Any
    ids: dict[str, Any]
    owner: Any  # the integration that created the objects
    other: Any  # another integration, every scope
    staff: Any  # a biller
    patient: str  # the owner's patient, coverage, claim, remittance (public ids)
    coverage: str
    claim: str
    remittance: str
    staff_remittance: str

    def counts(self) -> dict[str, int]:
        self.session.expire_all()
        return {
            m.__tablename__: self.session.scalar(select(func.count()).select_from(m))
            for m in (Patient, Coverage, Claim, EdiFile, Remittance)
        }


CASES: dict[str, Callable[[Ctx], None]] = {}


def case(*endpoints: str) -> Callable[[Callable[[Ctx], None]], Callable[[Ctx], None]]:
    def register(check: Callable[[Ctx], None]) -> Callable[[Ctx], None]:
        for endpoint in endpoints:
            CASES[endpoint] = check
        return check

    return register


def _same_as_missing(ctx: Ctx, send: Callable[[str], Any], real: str, what: str) -> None:
    """``send(id)`` by the other integration: the owner's ``real`` id is answered like a missing one."""
    before = ctx.counts()
    refused, missing = send(real), send(MISSING)
    assert refused.status_code in (403, 404, 422), (what, refused.status_code, refused.get_data(as_text=True))
    assert refused.status_code == missing.status_code, (what, refused.status_code, missing.status_code)
    assert ctx.counts() == before, what


def _835(trace: str) -> bytes:
    return build_835(
        [Clp(f"PCN-{trace}", "4", 5000, 0, 0, lines=[Svc("99212", 5000, 0, [("CO", "16", 5000)])])],
        trace=trace,
    )


def _patient_json(ids: dict[str, Any]) -> dict[str, Any]:
    return {
        "practice": ids["practice"],
        "account_number": f"OWN-{uuid.uuid4().hex[:8]}",
        "last_name": "Ownerly",
        "first_name": "Ida",
        "birth_date": "1979-05-06",
        "sex": "F",
        "address_line1": "3 Oak St",
        "city": "Springfield",
        "state": "IL",
        "zip_code": "62704",
    }


def _coverage_json(ids: dict[str, Any], start: date, **overrides: Any) -> dict[str, Any]:
    return {
        "payer": ids["payer"],
        "coverage_order": 1,
        "member_id": f"M{uuid.uuid4().hex[:9].upper()}",
        "relationship_code": "18",
        "effective_start": start.isoformat(),
        **overrides,
    }


# -- shared reference data: every integration reads it -------------------------------------------


@case("practice.list_practices", "practice.get_practice", "practice.list_providers", "practice.get_provider")
def _practice(ctx: Ctx) -> None:
    assert OWNERSHIP[Practice].shared and OWNERSHIP[Provider].shared
    for client in (ctx.owner, ctx.other):
        assert client.get(f"/api/v1/practices/{ctx.ids['practice']}").status_code == 200
        assert client.get("/api/v1/practices").status_code == 200
        assert client.get(f"/api/v1/providers/{ctx.ids['rendering_id']}").status_code == 200
        assert client.get("/api/v1/providers").status_code == 200


@case("payers.list_payers", "payers.get_payer")
def _payers(ctx: Ctx) -> None:
    assert OWNERSHIP[Payer].shared
    for client in (ctx.owner, ctx.other):
        assert client.get(f"/api/v1/payers/{ctx.ids['payer']}").status_code == 200
        assert client.get("/api/v1/payers").status_code == 200


# -- patients and coverages --------------------------------------------------------------------------


@case("patients.create_patient")
def _create_patient(ctx: Ctx) -> None:
    created = ctx.owner.post("/api/v1/patients", json=_patient_json(ctx.ids))
    assert created.status_code == 201
    row = ctx.session.scalar(select(Patient).where(Patient.public_id == created.get_json()["id"]))
    assert row.owner_integration == ctx.owner.principal_info["integration_name"]
    # ... and it is the owner's alone: the other integration cannot hang a coverage on it.
    start = date.today() - timedelta(days=30)
    assert (
        ctx.other.post(f"/api/v1/patients/{row.public_id}/coverages", json=_coverage_json(ctx.ids, start))
    ).status_code == 404


@case("patients.create_coverage")
def _create_coverage(ctx: Ctx) -> None:
    start = date.today() - timedelta(days=10)
    _same_as_missing(
        ctx,
        lambda pid: ctx.other.post(f"/api/v1/patients/{pid}/coverages", json=_coverage_json(ctx.ids, start)),
        ctx.patient,
        "create_coverage",
    )
    # The staff's patients are no integration's either (the finding's second case).
    _same_as_missing(
        ctx,
        lambda pid: ctx.owner.post(f"/api/v1/patients/{pid}/coverages", json=_coverage_json(ctx.ids, start)),
        ctx.ids["patient"],
        "create_coverage on a staff patient",
    )
    # The owner may add one, but never a second active primary for the same days.
    second = ctx.owner.post(f"/api/v1/patients/{ctx.patient}/coverages", json=_coverage_json(ctx.ids, start))
    assert second.status_code == 409 and second.get_json()["errors"][0]["rule"] == "one_active_per_order"
    later = ctx.owner.post(
        f"/api/v1/patients/{ctx.patient}/coverages",
        json=_coverage_json(ctx.ids, start, coverage_order=2),
    )
    assert later.status_code == 201
    ctx.session.expire_all()
    patient = ctx.session.scalar(select(Patient).where(Patient.public_id == ctx.patient))
    primaries = [c for c in patient.coverages if c.coverage_order == 1 and c.active]
    assert len(primaries) == 1


@case("patients.create_encounter")
def _create_encounter(ctx: Ctx) -> None:
    visit = {"date_of_service": date.today().isoformat(), "rendering_provider": ctx.ids["rendering_npi"]}
    _same_as_missing(
        ctx,
        lambda pid: ctx.other.post(f"/api/v1/patients/{pid}/encounters", json=visit),
        ctx.patient,
        "create_encounter",
    )
    booked = ctx.owner.post(f"/api/v1/patients/{ctx.patient}/encounters", json=visit)
    assert booked.status_code == 201, booked.get_json()
    # Booked on the owner's own patient, it is on the staff's schedule.
    assert ctx.staff.get(f"/api/v1/encounters/{booked.get_json()['id']}").status_code == 200


@case("practice.get_fee_schedule")
def _fee_schedule(ctx: Ctx) -> None:
    # The practice's prices are reference data (no PHI): every integration with the scope reads them.
    for client in (ctx.owner, ctx.other):
        answer = client.get(f"/api/v1/fee-schedule?practice={ctx.ids['practice']}")
        assert answer.status_code == 200, answer.get_json()


# -- claims ------------------------------------------------------------------------------------------


def _claim_doc(ctx: Ctx, patient: str, coverage: str | None = None) -> dict[str, Any]:
    doc = claim_json(ctx.ids, patient=patient, coverage=coverage or MISSING)
    if coverage is None:
        doc.pop("coverage")
    return doc


@case("claims.create_claim")
def _create_claim(ctx: Ctx) -> None:
    _same_as_missing(
        ctx, lambda pid: ctx.other.post("/api/v1/claims", json=_claim_doc(ctx, pid)), ctx.patient, "patient"
    )
    _same_as_missing(
        ctx,
        lambda cid: ctx.other.post("/api/v1/claims", json=_claim_doc(ctx, ctx.ids["patient"], cid)),
        ctx.ids["coverage"],
        "staff patient's coverage",
    )
    created = ctx.owner.post("/api/v1/claims", json=_claim_doc(ctx, ctx.patient, ctx.coverage))
    assert created.status_code == 201, created.get_json()
    claim = ctx.session.scalar(select(Claim).where(Claim.public_id == created.get_json()["id"]))
    assert claim.owner_integration == ctx.owner.principal_info["integration_name"]


@case("claims.validate_claim")
def _validate_claim(ctx: Ctx) -> None:
    _same_as_missing(
        ctx,
        lambda pid: ctx.other.post("/api/v1/claims/validate", json=_claim_doc(ctx, pid)),
        ctx.patient,
        "validate",
    )
    assert (
        ctx.owner.post("/api/v1/claims/validate", json=_claim_doc(ctx, ctx.patient, ctx.coverage)).status_code
        == 200
    )


# -- auth: tokens and the caller ---------------------------------------------------------------------


@case("auth.whoami")
def _whoami(ctx: Ctx) -> None:
    for client in (ctx.owner, ctx.other):  # no object: the caller itself
        answer = client.get("/api/v1/auth/session").get_json()
        assert answer["name"] == f"token:{client.principal_info['token'][:12]}"


@case("auth.list_tokens", "auth.get_token")
def _tokens(ctx: Ctx) -> None:
    mine = ctx.owner.principal_info["public_id"]
    assert [t["id"] for t in ctx.owner.get("/api/v1/auth/tokens").get_json()["items"]] == [mine]
    assert ctx.owner.get(f"/api/v1/auth/tokens/{mine}").status_code == 200
    _same_as_missing(ctx, lambda tid: ctx.other.get(f"/api/v1/auth/tokens/{tid}"), mine, "get_token")


# -- X12 and remittances -----------------------------------------------------------------------------


@case("edi_inbound.post_x12")
def _post_x12(ctx: Ctx) -> None:
    body = _835(f"X{uuid.uuid4().hex[:8].upper()}")
    answer = ctx.owner.post("/api/v1/edi/x12", data=body, headers=X12)
    assert answer.status_code == 200
    stored = ctx.session.scalar(select(EdiFile).where(EdiFile.public_id == answer.headers["X-EDI-File"]))
    assert stored.owner_integration == ctx.owner.principal_info["integration_name"]
    before = ctx.counts()
    again = ctx.other.post("/api/v1/edi/x12", data=body, headers=X12)  # the same bytes: a replay
    assert again.status_code == 200 and ctx.counts() == before
    ctx.session.refresh(stored)
    assert stored.owner_integration == ctx.owner.principal_info["integration_name"]


@case("remittances.upload_remittance")
def _upload_remittance(ctx: Ctx) -> None:
    body = _835(f"U{uuid.uuid4().hex[:8].upper()}")
    assert ctx.owner.post("/api/v1/remittances", data=body, headers=X12).status_code == 201
    before = ctx.counts()
    duplicate = ctx.other.post("/api/v1/remittances", data=body, headers=X12)
    assert duplicate.status_code == 200 and duplicate.get_json()["status"] == "duplicate"
    assert ctx.counts() == before
    ids = {r["id"] for r in ctx.other.get("/api/v1/remittances").get_json()["items"]}
    assert ids == set()  # posting the same bytes again gives no access to the owner's remittance


@case("remittances.list_remittances")
def _list_remittances(ctx: Ctx) -> None:
    def listed(client: Any) -> set[str]:
        answer = client.get("/api/v1/remittances?limit=200")
        assert answer.status_code == 200
        return {r["id"] for r in answer.get_json()["items"]}

    assert ctx.remittance in listed(ctx.owner) and ctx.staff_remittance not in listed(ctx.owner)
    assert listed(ctx.other) == set()
    assert {ctx.remittance, ctx.staff_remittance} <= listed(ctx.staff)


@case("remittances.get_remittance")
def _get_remittance(ctx: Ctx) -> None:
    assert ctx.owner.get(f"/api/v1/remittances/{ctx.remittance}").status_code == 200
    for real in (ctx.remittance, ctx.staff_remittance):
        _same_as_missing(ctx, lambda rid: ctx.other.get(f"/api/v1/remittances/{rid}"), real, "get_remittance")
    assert ctx.staff.get(f"/api/v1/remittances/{ctx.remittance}").status_code == 200


# -- charge imports ------------------------------------------------------------------------------------


def _charge_csv(ctx: Ctx, patient: str) -> bytes:
    dos = (date.today() - timedelta(days=5)).isoformat()
    ref = "OWN" + patient[:10].upper()
    return (
        "claim_ref,patient_id,rendering_npi,service_date,procedure,charge,diagnoses\r\n"
        f"{ref},{patient},{ctx.ids['rendering_npi']},{dos},99213,125.00,I10\r\n"
    ).encode()


@case(
    "charge_imports.import_charges",
    "charge_imports.list_charge_imports",
    "charge_imports.get_charge_import",
)
def _charge_imports(ctx: Ctx) -> None:
    csv_type = {"Content-Type": "text/csv"}
    _same_as_missing(
        ctx,
        lambda pid: ctx.other.post("/api/v1/charge-imports", data=_charge_csv(ctx, pid), headers=csv_type),
        ctx.patient,
        "charge import",
    )
    mine = ctx.owner.post("/api/v1/charge-imports", data=_charge_csv(ctx, ctx.patient), headers=csv_type)
    assert mine.status_code in (200, 201), mine.get_data(as_text=True)  # 200: imported by an earlier run
    import_id = mine.get_json()["import_id"]
    claim = ctx.session.scalar(select(Claim).where(Claim.public_id == mine.get_json()["claim_ids"][0]))
    assert claim.owner_integration == ctx.owner.principal_info["integration_name"]
    assert [i["id"] for i in ctx.owner.get("/api/v1/charge-imports").get_json()["items"]] == [import_id]
    assert ctx.other.get("/api/v1/charge-imports").get_json()["items"] == []
    assert ctx.owner.get(f"/api/v1/charge-imports/{import_id}").status_code == 200
    _same_as_missing(ctx, lambda iid: ctx.other.get(f"/api/v1/charge-imports/{iid}"), import_id, "get import")
    assert ctx.staff.get(f"/api/v1/charge-imports/{import_id}").status_code == 200


# -- FHIR --------------------------------------------------------------------------------------------


def _fhir_claim(ctx: Ctx, patient: str, coverage: str) -> str:
    from tests.integration.fhir.conftest import fhir_claim

    ids = {**ctx.ids, "practice_npi": ctx.session.scalar(select(Practice.npi))}
    return json.dumps(fhir_claim(ids, f"Patient/{patient}", f"Coverage/{coverage}"), default=str)


@case("fhir.create_claim")
def _fhir_create_claim(ctx: Ctx) -> None:
    _same_as_missing(
        ctx,
        lambda pid: ctx.other.post("/fhir/R4/Claim", data=_fhir_claim(ctx, pid, ctx.coverage), headers=FHIR),
        ctx.patient,
        "fhir claim",
    )
    answer = ctx.owner.post("/fhir/R4/Claim", data=_fhir_claim(ctx, ctx.patient, ctx.coverage), headers=FHIR)
    assert answer.status_code == 201, answer.get_data(as_text=True)


@case("fhir.transaction")
def _fhir_transaction(ctx: Ctx) -> None:
    payer_id = ctx.session.scalar(select(Payer.payer_id).where(Payer.public_id == ctx.ids["payer"]))

    def bundle(patient: str) -> str:
        coverage = {
            "resourceType": "Coverage",
            "status": "active",
            "subscriberId": f"T{uuid.uuid4().hex[:8].upper()}",
            "beneficiary": {"reference": f"Patient/{patient}"},
            "relationship": {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/subscriber-relationship",
                        "code": "self",
                    }
                ]
            },
            "period": {"start": date.today().isoformat()},
            "payor": [
                {"identifier": {"system": "https://claims-server.dev/fhir/sid/payer-id", "value": payer_id}}
            ],
            "order": 3,  # patients.create_coverage adds the secondary
        }
        entry = {"resource": coverage, "request": {"method": "POST", "url": "Coverage"}}
        return json.dumps({"resourceType": "Bundle", "type": "transaction", "entry": [entry]})

    _same_as_missing(
        ctx, lambda pid: ctx.other.post("/fhir/R4", data=bundle(pid), headers=FHIR), ctx.patient, "bundle"
    )
    answer = ctx.owner.post("/fhir/R4", data=bundle(ctx.patient), headers=FHIR)
    assert answer.status_code == 200, answer.get_data(as_text=True)


# -- the one test ------------------------------------------------------------------------------------


def test_every_integration_route_keeps_to_what_the_token_owns(api_client, session):
    integration_routes = {e for e, rule in POLICY.items() if INTEGRATION in rule.roles}
    assert set(CASES) == integration_routes, "add a case for each route integrations may call"

    ids = seed(session)
    staff = api_client("biller")
    owner, other = api_client("integration"), api_client("integration")  # every scope (TOKEN_SCOPES)
    patient = owner.post("/api/v1/patients", json=_patient_json(ids))
    assert patient.status_code == 201, patient.get_json()
    patient_id = patient.get_json()["id"]
    start = date.today() - timedelta(days=90)
    coverage = owner.post(f"/api/v1/patients/{patient_id}/coverages", json=_coverage_json(ids, start))
    assert coverage.status_code == 201, coverage.get_json()
    coverage_id = coverage.get_json()["id"]
    doc = claim_json(ids, patient=patient_id, coverage=coverage_id)
    claim = owner.post("/api/v1/claims", json=doc)
    assert claim.status_code == 201, claim.get_json()
    remittance = owner.post("/api/v1/remittances", data=_835("OWNER1"), headers=X12)
    assert remittance.status_code == 201, remittance.get_json()
    # The file names no claim of ours: a person's upload of it needs a supervisor's confirmation.
    supervisor = api_client("billing_supervisor")
    staff_upload = supervisor.post(
        "/api/v1/remittances?confirm_foreign=true", data=_835("STAFF1"), headers=X12
    )
    assert staff_upload.status_code == 201
    session.expire_all()

    def remittance_of(report: Any) -> str:
        file_id = report.get_json()["edi_file"]
        return session.scalar(select(Remittance.public_id).join(EdiFile).where(EdiFile.public_id == file_id))

    ctx = Ctx(
        session=session,
        ids=ids,
        owner=owner,
        other=other,
        staff=staff,
        patient=patient_id,
        coverage=coverage_id,
        claim=claim.get_json()["id"],
        remittance=remittance_of(remittance),
        staff_remittance=remittance_of(staff_upload),
    )
    for endpoint in sorted(integration_routes):
        CASES[endpoint](ctx)


def test_the_coverage_service_refuses_a_second_active_primary(session):
    """The business rule holds for every caller (UI, FHIR, CSV), not just integrations."""
    from claims_server.errors import Conflict

    ids = seed(session)
    patient = session.scalar(select(Patient).where(Patient.public_id == ids["patient"]))
    payer = session.scalar(select(Payer).where(Payer.public_id == ids["payer"]))
    existing = next(c for c in patient.coverages if c.coverage_order == 1 and c.active)
    data = {
        "payer": payer.public_id,
        "coverage_order": 1,
        "member_id": "MSECOND01",
        "relationship_code": "18",
        "effective_start": existing.effective_start + timedelta(days=1),
    }
    with pytest.raises(Conflict) as refused:
        patient_services.create_coverage(session, patient, data)
    assert refused.value.errors[0]["field"] == "coverage_order"
    session.rollback()
    # Ending the old one first (or starting after its end) is how a patient changes plans.
    existing = session.get(Coverage, existing.id)
    existing.effective_end = existing.effective_start + timedelta(days=10)
    later = copy.deepcopy(data) | {"effective_start": existing.effective_end + timedelta(days=1)}
    patient = session.get(Patient, patient.id)
    assert patient_services.create_coverage(session, patient, later).coverage_order == 1
    overlapping = data | {"member_id": "MTHIRD01", "effective_start": existing.effective_end}
    with pytest.raises(Conflict):
        patient_services.create_coverage(session, patient, overlapping)
