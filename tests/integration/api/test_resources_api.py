"""Practice, providers, payers, routes, patients, coverages over HTTP: happy paths and bad input."""

from __future__ import annotations

PRACTICE = {
    "name": "Synthetic Clinic",
    "npi": "1234567893",
    "tax_id": "123456789",
    "address_line1": "1 Main St",
    "city": "Springfield",
    "state": "IL",
    "zip_code": "62701-1234",
    "phone": "2175550100",
    "submitter_id": "SUB01",
}


def test_practice_provider_payer_patient_coverage_chain(api_client):
    admin = api_client("admin")
    practice = admin.post("/api/v1/practices", json=PRACTICE)
    assert practice.status_code == 201, practice.get_json()
    practice_id = practice.get_json()["id"]
    assert practice.get_json()["zip_code"] == "627011234"
    provider = admin.post(
        "/api/v1/providers",
        json={
            "practice": practice_id,
            "last_name": "Doe",
            "first_name": "Ann",
            "npi": "1245319599",
            "is_rendering": True,
        },
    )
    assert provider.status_code == 201, provider.get_json()
    assert (
        admin.get("/api/v1/providers?npi=1245319599").get_json()["items"][0]["id"]
        == provider.get_json()["id"]
    )
    route = admin.post(
        "/api/v1/clearinghouse-routes",
        json={
            "name": "Test CH",
            "transport": "folder",
            "settings": {"outbox": "out"},
            "sender_id": "SUB01",
            "receiver_id": "CH01",
            "application_sender_code": "SUB01",
            "application_receiver_code": "CH01",
        },
    )
    assert route.status_code == 201, route.get_json()
    payer = admin.post(
        "/api/v1/payers",
        json={
            "name": "Test Plan",
            "payer_id": "TP001",
            "claim_filing_indicator": "CI",
            "route": route.get_json()["id"],
        },
    )
    assert payer.status_code == 201 and payer.get_json()["route"] == route.get_json()["id"]
    patient = admin.post(
        "/api/v1/patients",
        json={
            "practice": practice_id,
            "account_number": "A-1",
            "last_name": "Testperson",
            "first_name": "Pat",
            "birth_date": "1980-02-29",
            "sex": "F",
            "address_line1": "2 Elm St",
            "city": "Springfield",
            "state": "IL",
            "zip_code": "62704",
        },
    )
    assert patient.status_code == 201, patient.get_json()
    patient_id = patient.get_json()["id"]
    coverage = admin.post(
        f"/api/v1/patients/{patient_id}/coverages",
        json={"payer": payer.get_json()["id"], "member_id": "MEM123", "effective_start": "2024-01-01"},
    )
    assert coverage.status_code == 201, coverage.get_json()
    found = admin.post("/api/v1/patients/search", json={"member_id": "mem123"})
    assert [p["id"] for p in found.get_json()["items"]] == [patient_id]
    by_name = admin.post(
        "/api/v1/patients/search",
        json={"last_name": "TESTPERSON", "first_name": "pat", "birth_date": "1980-02-29"},
    )
    assert [p["id"] for p in by_name.get_json()["items"]] == [patient_id]
    assert (
        admin.get(f"/api/v1/patients/{patient_id}/coverages").get_json()["items"][0]["member_id"] == "MEM123"
    )


def test_bad_identifiers_are_422_naming_the_field(api_client):
    admin = api_client("admin")
    cases = {
        "npi": {**PRACTICE, "npi": "1234567890"},  # check digit wrong
        "tax_id": {**PRACTICE, "tax_id": "12-3456789"},
        "zip_code": {**PRACTICE, "zip_code": "62701"},  # 2010AA needs ZIP+4
        "state": {**PRACTICE, "state": "XX"},
        "name": {**PRACTICE, "name": "Clinic*One"},
        "phone": {**PRACTICE, "phone": "555-0100"},
    }
    for field, doc in cases.items():
        answer = admin.post("/api/v1/practices", json=doc)
        assert answer.status_code == 422, (field, answer.get_json())
        assert field in {e["field"] for e in answer.get_json()["errors"]}, field
    assert admin.get("/api/v1/practices").get_json()["items"] == []
    secret_route = admin.post(
        "/api/v1/clearinghouse-routes",
        json={
            "name": "X",
            "transport": "sftp",
            "settings": {"password": "hunter2"},
            "sender_id": "S",
            "receiver_id": "R",
            "application_sender_code": "SS",  # GS02/GS03: 2 to 15 characters
            "application_receiver_code": "RR",
        },
    )
    assert secret_route.status_code == 422 and secret_route.get_json()["errors"][0]["field"] == "settings"
    assert "hunter2" not in secret_route.get_data(as_text=True)


def test_patient_search_needs_complete_criteria_and_biller_cannot_create_payers(api_client):
    biller = api_client("biller")
    # A last name alone is enough (issue 18); a first name without it is not.
    assert biller.post("/api/v1/patients/search", json={"first_name": "X"}).status_code == 422
    assert biller.post("/api/v1/patients/search", json={"last_name": "X"}).status_code == 200
    assert (
        biller.post(
            "/api/v1/payers", json={"name": "P", "payer_id": "P", "claim_filing_indicator": "CI"}
        ).status_code
        == 403
    )
