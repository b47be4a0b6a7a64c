"""The same role policy, audit and isolation as the REST API; every refusal is an OperationOutcome."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from claims_server.models import AuditEvent, Patient
from tests.integration.fhir.conftest import body, fhir_claim, post, row_counts, transaction_bundle


def _outcome_code(response) -> str:
    assert response.mimetype == "application/fhir+json"
    outcome = body(response)
    assert outcome["resourceType"] == "OperationOutcome"
    return outcome["issue"][0]["code"]


def test_anonymous_gets_401_as_operation_outcome(client, ids):
    response = client.get(f"/fhir/R4/Patient/{ids['patient']}")
    assert response.status_code == 401 and _outcome_code(response) == "login"
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert client.get("/fhir/R4/metadata").status_code == 200  # public, like health


@pytest.mark.parametrize("role", ["biller", "billing_supervisor", "auditor", "admin"])
def test_staff_read(api_client, ids, role):
    response = api_client(role).get(f"/fhir/R4/Patient/{ids['patient']}")
    assert response.status_code == 200 and body(response)["id"] == ids["patient"]


@pytest.mark.parametrize(
    ("role", "status"), [("biller", 403), ("billing_supervisor", 403), ("auditor", 200), ("admin", 200)]
)
def test_audit_events_are_for_auditors_and_admins(api_client, ids, role, status):
    response = api_client(role).get("/fhir/R4/AuditEvent?_count=5")
    assert response.status_code == status
    if status == 403:
        assert _outcome_code(response) == "forbidden"


def test_integrations_write_with_the_scope_and_never_read(api_client, session, ids):
    claim = fhir_claim(ids, f"Patient/{ids['patient']}", f"Coverage/{ids['coverage']}")
    unscoped = api_client("integration", scopes=["claims:write"])
    before = row_counts(session)
    refused = post(unscoped, "/fhir/R4/Claim", claim)
    assert refused.status_code == 403 and _outcome_code(refused) == "forbidden"
    assert row_counts(session) == before
    writer = api_client("integration", scopes=["fhir:write"])
    # A patient the integration did not create is not its own (issue 15): as if missing.
    foreign = post(writer, "/fhir/R4/Claim", claim)
    assert foreign.status_code == 422 and row_counts(session) == before
    entries = body(post(writer, "/fhir/R4", transaction_bundle(ids, claims=[])))["entry"]
    own = fhir_claim(ids, entries[0]["response"]["location"], entries[1]["response"]["location"])
    assert post(writer, "/fhir/R4/Claim", own).status_code == 201
    # Like the REST API: integrations have no read routes (their own writes answer with the resource).
    for path in (f"/fhir/R4/Patient/{ids['patient']}", "/fhir/R4/Claim", "/fhir/R4/ExplanationOfBenefit"):
        assert writer.get(path).status_code == 403


def test_auditors_cannot_write(api_client, session, ids):
    claim = fhir_claim(ids, f"Patient/{ids['patient']}", f"Coverage/{ids['coverage']}")
    before = row_counts(session)
    assert post(api_client("auditor"), "/fhir/R4/Claim", claim).status_code == 403
    assert row_counts(session) == before


def test_patient_link_sessions_are_refused_everywhere(api_client, session, ids):
    own = session.scalar(select(Patient).where(Patient.public_id == ids["patient"]))
    patient = api_client("patient", patient_id=own.id)
    for path in (
        f"/fhir/R4/Patient/{ids['patient']}",
        "/fhir/R4/Claim",
        "/fhir/R4/Invoice",
        "/fhir/R4/ExplanationOfBenefit",
    ):
        response = patient.get(path)
        assert response.status_code == 403 and _outcome_code(response) == "forbidden"


def test_reads_are_audited_and_visible_as_audit_events(api_client, session, ids):
    biller = api_client("biller")
    assert biller.get(f"/fhir/R4/Patient/{ids['patient']}").status_code == 200
    assert biller.get(f"/fhir/R4/Coverage?patient=Patient/{ids['patient']}").status_code == 200
    session.expire_all()
    events = session.scalars(
        select(AuditEvent).where(
            AuditEvent.action == "R", AuditEvent.actor_user_id == biller.principal_info["user_id"]
        )
    ).all()
    read = {(e.event_type, e.entity_id) for e in events}
    assert ("patient.read", ids["patient"]) in read
    assert ("coverage.read", ids["coverage"]) in read
    assert all(e.details.get("endpoint", "").startswith("fhir.") for e in events)
    # An auditor finds them over FHIR, by patient and action.
    auditor = api_client("auditor")
    found = body(auditor.get(f"/fhir/R4/AuditEvent?patient=Patient/{ids['patient']}&action=R&_count=50"))
    whats = {
        entity["what"].get("reference")
        for entry in found["entry"]
        for entity in entry["resource"].get("entity", [])
    }
    assert f"Patient/{ids['patient']}" in whats and f"Coverage/{ids['coverage']}" in whats
    one = found["entry"][0]["resource"]
    assert body(auditor.get(f"/fhir/R4/AuditEvent/{one['id']}")) == one


def test_refused_reads_leave_no_read_event(api_client, session, ids):
    integration = api_client("integration", scopes=["fhir:write"])
    assert integration.get(f"/fhir/R4/Patient/{ids['patient']}").status_code == 403
    session.expire_all()
    assert not session.scalars(
        select(AuditEvent).where(AuditEvent.action == "R", AuditEvent.entity_id == ids["patient"])
    ).all()


@pytest.mark.parametrize(
    ("method", "path", "status", "code"),
    [
        ("get", "/fhir/R4/Foo/1", 404, "not-supported"),
        ("get", "/fhir/R4/Foo", 404, "not-supported"),
        ("get", "/fhir/R4/Patient/0000000000000000000000000000dead", 404, "not-found"),
        ("get", "/fhir/R4/Patient/not!an!id", 404, "not-found"),
        ("get", "/fhir/R4/ExplanationOfBenefit/nothing-1", 404, "not-found"),
        ("get", "/fhir/R4/ClaimResponse/ack-x-y", 404, "not-found"),
        ("get", "/fhir/R4/Patient?name=Smith", 400, "not-supported"),  # no PHI in URLs
        ("get", "/fhir/R4/Claim?created=yesterday", 400, "value"),
        ("get", "/fhir/R4/Claim?_count=0", 400, "value"),
        ("get", "/fhir/R4/Claim?_cursor=forged", 422, "processing"),
        ("post", "/fhir/R4/Patient", 405, "not-supported"),
        ("get", "/fhir/R4/Patient/a/b/c", 404, "not-found"),
    ],
)
def test_errors_are_operation_outcomes(api_client, ids, method, path, status, code):
    response = getattr(api_client("biller"), method)(path)
    assert response.status_code == status, response.get_data(as_text=True)
    assert _outcome_code(response) == code


def test_search_by_identifier_and_patient(api_client, session, ids):
    biller = api_client("biller")
    claim = fhir_claim(ids, f"Patient/{ids['patient']}", f"Coverage/{ids['coverage']}")
    created = body(post(biller, "/fhir/R4/Claim", claim))
    pcn = next(i["value"] for i in created["identifier"] if i["system"].endswith("patient-control-number"))
    system = "https://claims-server.dev/fhir/sid/patient-control-number"
    for query in (
        f"identifier={system}|{pcn}",
        f"identifier={pcn}",
        f"patient=Patient/{ids['patient']}",
        f"_id={created['id']}",
    ):
        found = body(biller.get(f"/fhir/R4/Claim?{query}"))
        assert [e["resource"]["id"] for e in found["entry"]] == [created["id"]], query
    assert "entry" not in body(biller.get(f"/fhir/R4/Claim?patient=Patient/{ids['dependent_patient']}"))
    assert biller.get("/fhir/R4/Claim?identifier=http://other|x").status_code == 400
