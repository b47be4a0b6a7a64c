"""The HTTP side: staff payments and plans, print batches and runs, and a patient paying through the link."""

from __future__ import annotations

import uuid

from sqlalchemy import func, select

from claims_server.models import Claim, Patient, PatientPayment, Statement, StatementState
from claims_server.models.statements import StatementRun


def _count(session, model) -> int:
    return session.scalar(select(func.count()).select_from(model))


def _key() -> dict[str, str]:
    return {"Idempotency-Key": uuid.uuid4().hex}


def test_front_desk_payment_validation_idempotency_and_credit(api_client, session, issued):
    a, _ = issued
    patient = session.get(Patient, a.patient_id).public_id
    biller = api_client("biller")
    url = f"/api/v1/patients/{patient}/payments"

    missing_key = biller.post(url, json={"amount": "10.00", "method": "cash"})
    assert missing_key.status_code == 422 and missing_key.json["errors"][0]["field"] == "Idempotency-Key"
    for amount, status in (("0.00", 422), ("-5.00", 422), (10, 422), ("30.01", 422)):
        refused = biller.post(url, json={"amount": amount, "method": "cash"}, headers=_key())
        assert refused.status_code == status, (amount, refused.json)
    assert _count(session, PatientPayment) == 0

    headers = _key()
    first = biller.post(url, json={"amount": "12.50", "method": "cash"}, headers=headers)
    again = biller.post(url, json={"amount": "12.50", "method": "cash"}, headers=headers)
    assert first.status_code == 201 and again.status_code == 201
    assert again.headers.get("Idempotent-Replayed") == "true" and again.json["id"] == first.json["id"]
    assert first.json["open_balance_after"] == "17.50" and _count(session, PatientPayment) == 1

    balance = biller.get(f"/api/v1/patients/{patient}/balance")
    assert balance.status_code == 200 and balance.json["balance"] == "17.50"

    credit = biller.post(
        url,
        json={
            "amount": "20.00",
            "method": "check",
            "source": "mail",
            "reference": "5521",
            "allow_credit": True,
        },
        headers=_key(),
    )
    assert credit.status_code == 201 and (credit.json["applied"], credit.json["credit"]) == ("17.50", "2.50")
    listed = biller.get(url)
    assert [p["amount"] for p in listed.json["items"]] == ["20.00", "12.50"]
    session.expire_all()
    assert session.get(Statement, a.id).state is StatementState.PAID

    auditor = api_client("auditor")
    assert auditor.post(url, json={"amount": "1.00", "method": "cash"}, headers=_key()).status_code == 403


def test_patient_opens_the_link_reads_the_statement_and_pays_once(api_client, client, session, issued):
    a, b = issued
    patient = session.get(Patient, a.patient_id)
    biller = api_client("biller")
    link = biller.post("/api/v1/auth/patient-links", json={"patient_id": patient.public_id})
    assert link.status_code == 201
    wrong = client.post(
        "/api/v1/patient-link/verify", json={"token": link.json["token"], "birth_date": "1901-01-01"}
    )
    assert wrong.status_code == 401
    opened = client.post(
        "/api/v1/patient-link/verify",
        json={"token": link.json["token"], "birth_date": patient.birth_date.isoformat()},
    )
    assert opened.status_code == 200
    me = client.application.test_client()
    me.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {opened.json['token']}"

    pdf = me.get(f"/api/v1/patient-link/statements/{a.public_id}/pdf")
    assert pdf.status_code == 200 and pdf.mimetype == "application/pdf" and pdf.data.startswith(b"%PDF")
    assert me.get(f"/api/v1/patient-link/statements/{b.public_id}/pdf").status_code == 404
    assert me.get("/api/v1/patient-link/balance").json["balance"] == "30.00"

    pay = f"/api/v1/patient-link/statements/{a.public_id}/payments"
    headers = _key()
    over = me.post(pay, json={"amount": "31.00", "payment_token": "test_approve"}, headers=_key())
    assert over.json["errors"][0]["rule"] == "overpayment"
    # The client cannot name its own processor reference: only an approved charge posts.
    forged = me.post(pay, json={"amount": "30.00", "processor_reference": "ch_test_1"}, headers=_key())
    assert forged.status_code == 422 and _count(session, PatientPayment) == 0
    declined = me.post(pay, json={"amount": "30.00", "payment_token": "test_decline"}, headers=_key())
    assert declined.status_code == 402 and declined.mimetype == "application/problem+json"
    assert declined.json["errors"][0]["rule"] == "declined" and _count(session, PatientPayment) == 0
    first = me.post(pay, json={"amount": "30.00", "payment_token": "test_approve"}, headers=headers)
    double = me.post(pay, json={"amount": "30.00", "payment_token": "test_approve"}, headers=headers)
    assert first.status_code == 201 and double.json["id"] == first.json["id"]
    assert first.json["reference"].startswith("sim_ch_")
    assert (first.json["source"], first.json["method"], first.json["open_balance_after"]) == (
        "link",
        "portal",
        "0.00",
    )
    assert _count(session, PatientPayment) == 1
    assert (
        me.post(
            f"/api/v1/patient-link/statements/{b.public_id}/payments",
            json={"amount": "1.00", "payment_token": "test_approve"},
            headers=_key(),
        ).status_code
        == 404
    )
    # A patient session cannot use the staff routes.
    assert me.get(f"/api/v1/patients/{patient.public_id}/balance").status_code == 403


def test_payment_plan_api_and_the_patient_view_of_it(api_client, session, issued):
    a, _ = issued
    patient = session.get(Patient, a.patient_id)
    claim = session.scalar(select(Claim).where(Claim.patient_id == patient.id))
    biller = api_client("biller")
    body = {"claims": [claim.public_id], "monthly_amount": "10.00", "first_due_date": "2099-01-15"}
    created = biller.post(f"/api/v1/patients/{patient.public_id}/payment-plans", json=body, headers=_key())
    assert created.status_code == 201, created.json
    assert (created.json["total"], created.json["in_good_standing"], created.json["next_due_date"]) == (
        "30.00",
        True,
        "2099-01-15",
    )
    plan_id = created.json["id"]
    late = biller.get(f"/api/v1/payment-plans/{plan_id}?as_of=2099-03-01")
    assert late.json["behind"] == "20.00" and late.json["missed_installments"] == 2
    assert not late.json["in_good_standing"]
    me = api_client("patient", patient_id=patient.id)
    mine = me.get("/api/v1/patient-link/payment-plans")
    assert [p["id"] for p in mine.json["items"]] == [plan_id]
    other = api_client("patient", patient_id=issued[1].patient_id)
    assert other.get("/api/v1/patient-link/payment-plans").json["items"] == []
    assert biller.post(f"/api/v1/payment-plans/{plan_id}/cancel").json["state"] == "cancelled"
    assert api_client("billing_supervisor").post("/api/v1/payment-plans/check", json={}).json["plans"] == 0


def test_print_batch_and_statement_reads_over_http(api_client, session, issued):
    a, b = issued
    biller = api_client("biller")
    listed = biller.get("/api/v1/statements?state=issued")
    assert {s["id"] for s in listed.json["items"]} == {a.public_id, b.public_id}
    detail = biller.get(f"/api/v1/statements/{a.public_id}")
    assert detail.json["amount_due"] == "30.00" and detail.json["lines"][0]["balance"] == "30.00"
    batch = biller.post("/api/v1/statements/print-batches", json={})
    assert batch.status_code == 201 and batch.json["statements"] == 2
    manifest = biller.get(f"/api/v1/statements/print-batches/{batch.json['id']}/manifest")
    assert manifest.status_code == 200 and a.public_id in manifest.get_data(as_text=True)
    assert biller.get(f"/api/v1/statements/print-batches/{batch.json['id']}/../secret").status_code == 404
    assert (
        biller.post("/api/v1/statements/print-batches", json={}).status_code == 422
    )  # nothing left to print


def test_statement_run_over_http_reports_progress(api_client, session, issued):
    supervisor = api_client("billing_supervisor")
    started = supervisor.post("/api/v1/statements/runs", json={"as_of": "2099-01-01"})
    assert started.status_code == 202
    run = started.json
    assert run["state"] == "done" and run["done"] == run["total"] >= 2
    again = supervisor.get(f"/api/v1/statements/runs/{run['id']}")
    assert again.json["done"] == run["done"] and _count(session, StatementRun) == 2
    assert api_client("biller").post("/api/v1/statements/runs", json={}).status_code == 403
