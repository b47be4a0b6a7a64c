"""/api/v1/claims over HTTP: create, read, validate, list, update, transitions, idempotency, bad input."""

from __future__ import annotations

from sqlalchemy import func, select

from claims_server.models import Claim, IdempotencyRecord
from tests.integration.claims.support import claim_json


def _count(session, model) -> int:
    session.rollback()
    return session.scalar(select(func.count()).select_from(model))


def test_create_ready_read_and_list(api, ids):
    created = api.post("/api/v1/claims", json=claim_json(ids, ready=True))
    assert created.status_code == 201, created.get_json()
    body = created.get_json()
    assert body["state"] == "ready"
    assert body["total_charge"] == "220.50"
    assert [line["charge"] for line in body["lines"]] == ["175.00", "45.50"]
    assert body["diagnoses"] == ["E119", "I10"]
    assert body["allowed_transitions"] == ["draft", "batched", "voided"]
    assert all(f["severity"] != "error" for f in body["findings"])
    read = api.get(f"/api/v1/claims/{body['id']}")
    assert read.status_code == 200 and read.get_json()["id"] == body["id"]
    listed = api.get("/api/v1/claims?state=ready").get_json()
    assert [c["id"] for c in listed["items"]] == [body["id"]]
    assert api.get("/api/v1/claims?state=draft").get_json()["items"] == []


def test_scrub_errors_keep_a_created_claim_draft_and_block_ready(api, ids):
    doc = claim_json(ids, ready=True, diagnoses=["Z99.999"])
    body = api.post("/api/v1/claims", json=doc).get_json()
    assert body["state"] == "draft"
    assert any(f["path"] == "diagnoses[0]" and f["severity"] == "error" for f in body["findings"])
    refused = api.post(f"/api/v1/claims/{body['id']}/ready")
    assert refused.status_code == 422
    assert refused.mimetype == "application/problem+json"
    assert any(e["field"] == "diagnoses[0]" for e in refused.get_json()["errors"])
    assert api.get(f"/api/v1/claims/{body['id']}").get_json()["state"] == "draft"


def test_validate_only_returns_findings_with_json_paths_and_saves_nothing(api, ids, session):
    doc = claim_json(ids, diagnoses=["E11.9", "I10"])
    doc["lines"][1]["diagnosis_pointers"] = [2]
    doc["lines"][0]["modifiers"] = ["ZZ"]
    answer = api.post("/api/v1/claims/validate", json=doc)
    assert answer.status_code == 200, answer.get_json()
    result = answer.get_json()
    assert result["valid"] is False and result["errors"] >= 1
    assert "lines[0].modifiers[0]" in {f["path"] for f in result["findings"] if f["severity"] == "error"}
    assert _count(session, Claim) == 0
    clean = api.post("/api/v1/claims/validate", json=claim_json(ids)).get_json()
    assert clean["valid"] is True and clean["errors"] == 0


def test_bad_inputs_are_422_naming_the_field_and_change_nothing(api, ids, session):
    cases = {
        "lines.0.charge": claim_json(ids, lines=[{**claim_json(ids)["lines"][0], "charge": 175.5}]),
        "lines.0.units": claim_json(ids, lines=[{**claim_json(ids)["lines"][0], "units": 1.5}]),
        "diagnoses.0": claim_json(ids, diagnoses=["not-icd"]),
        "lines.0.procedure": claim_json(ids, lines=[{**claim_json(ids)["lines"][0], "procedure": "99*13"}]),
        "prior_authorization": claim_json(ids, prior_authorization="AUTH~1"),
        "lines.0.service_date": claim_json(
            ids, lines=[{**claim_json(ids)["lines"][0], "service_date": 20250101}]
        ),
        "patient": claim_json(ids, patient="0" * 32),
        "rendering_provider": claim_json(ids, rendering_provider="1234567890"),
    }
    for field, doc in cases.items():
        answer = api.post("/api/v1/claims", json=doc)
        assert answer.status_code == 422, (field, answer.get_json())
        assert answer.mimetype == "application/problem+json"
        fields = {e["field"] for e in answer.get_json()["errors"]}
        assert field in fields, (field, fields)
    charge = api.post("/api/v1/claims", json=cases["lines.0.charge"]).get_json()["errors"][0]["message"]
    assert "string" in charge
    assert _count(session, Claim) == 0


def test_delimiters_in_a_patient_name_are_refused(api, ids):
    for name in ("O*Brien", "Smith~", "A:B", "Caret^"):
        answer = api.patch(f"/api/v1/patients/{ids['patient']}", json={"last_name": name})
        assert answer.status_code == 422
        error = answer.get_json()["errors"][0]
        assert error["field"] == "last_name" and "delimiter" in error["message"]
        assert name not in answer.get_data(as_text=True)  # PHI is not echoed


def test_idempotency_key_replays_and_refuses_a_different_body(api, ids, session):
    doc = claim_json(ids)
    first = api.post("/api/v1/claims", json=doc, headers={"Idempotency-Key": "k-1"})
    again = api.post("/api/v1/claims", json=doc, headers={"Idempotency-Key": "k-1"})
    assert first.status_code == again.status_code == 201
    assert again.get_json() == first.get_json()
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert _count(session, Claim) == 1
    other = api.post(
        "/api/v1/claims", json=claim_json(ids, place_of_service="22"), headers={"Idempotency-Key": "k-1"}
    )
    assert other.status_code == 422
    assert other.get_json()["errors"][0]["field"] == "Idempotency-Key"
    assert _count(session, Claim) == 1
    assert _count(session, IdempotencyRecord) == 1
    fresh = api.post("/api/v1/claims", json=doc, headers={"Idempotency-Key": "k-2"})
    assert fresh.status_code == 201 and fresh.get_json()["id"] != first.get_json()["id"]


def test_failed_request_does_not_burn_the_key(api, ids, session):
    bad = api.post("/api/v1/claims", json=claim_json(ids, diagnoses=[]), headers={"Idempotency-Key": "k-3"})
    assert bad.status_code == 422
    assert _count(session, IdempotencyRecord) == 0
    good = api.post("/api/v1/claims", json=claim_json(ids), headers={"Idempotency-Key": "k-3"})
    assert good.status_code == 201


def test_pagination_is_stable_under_inserts(api, ids):
    created = [api.post("/api/v1/claims", json=claim_json(ids)).get_json()["id"] for _ in range(5)]
    page1 = api.get("/api/v1/claims?limit=2").get_json()
    assert [c["id"] for c in page1["items"]] == created[:2] and page1["next_cursor"]
    newest = api.post("/api/v1/claims", json=claim_json(ids)).get_json()["id"]
    seen = [c["id"] for c in page1["items"]]
    cursor = page1["next_cursor"]
    while cursor:
        page = api.get(f"/api/v1/claims?limit=2&cursor={cursor}").get_json()
        seen += [c["id"] for c in page["items"]]
        cursor = page["next_cursor"]
    assert seen == [*created, newest]  # no row skipped or repeated
    assert api.get("/api/v1/claims?limit=201").status_code == 422
    other_filters = api.get(f"/api/v1/claims?limit=2&state=draft&cursor={page1['next_cursor']}")
    assert other_filters.status_code == 422
    assert api.get("/api/v1/claims?cursor=forged").status_code == 422


def test_update_and_transitions(api, api_client, ids):
    body = api.post("/api/v1/claims", json=claim_json(ids)).get_json()
    claim_id = body["id"]
    updated = api.put(
        f"/api/v1/claims/{claim_id}",
        json=claim_json(
            ids,
            diagnoses=["E11.9"],
            lines=[
                {"procedure": "99213", "charge": "90.00", "service_date": body["lines"][0]["service_date"]}
            ],
            version=body["version"],
        ),
    )
    assert updated.status_code == 200, updated.get_json()
    assert updated.get_json()["total_charge"] == "90.00" and len(updated.get_json()["lines"]) == 1
    stale = api.put(f"/api/v1/claims/{claim_id}", json=claim_json(ids, version=body["version"]))
    assert stale.status_code == 409
    ready = api.post(f"/api/v1/claims/{claim_id}/ready")
    assert ready.status_code == 200 and ready.get_json()["state"] == "ready"
    supervisor = api_client("billing_supervisor")  # the policy gives reopen to supervisors
    refused = supervisor.post(f"/api/v1/claims/{claim_id}/reopen", json={"reason": "try"})
    assert refused.status_code == 409
    problem = refused.get_json()
    assert problem["current_state"] == "ready" and problem["requested_state"] == "draft"
    assert problem["allowed_next_states"] == ["draft", "batched", "voided"]
    assert api.post(f"/api/v1/claims/{claim_id}/return-to-draft").get_json()["state"] == "draft"
    assert api.get("/api/v1/claims/" + "f" * 32).status_code == 404


def test_auditor_reads_but_cannot_write(api_client, ids):
    auditor = api_client("auditor")
    assert auditor.get("/api/v1/claims").status_code == 200
    assert auditor.post("/api/v1/claims", json=claim_json(ids)).status_code == 403
