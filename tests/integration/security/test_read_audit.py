"""Every route that returns PHI leaves a READ audit event naming the entity and the patient.

The whole billing day of the demo runs first (claims, 837 batches over the folder adapter,
999/277CA answers, an 835 posted to the ledger, work items), so every route has something
to answer with. Each call carries its own X-Request-ID; the test looks for READ events
with that request id.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import select

from claims_server.app import state
from claims_server.db import Base
from claims_server.demo_day import run_billing_day
from claims_server.ledger.services import Leg, post_entry
from claims_server.models import (
    AccountCode,
    AuditEvent,
    Claim,
    ClaimState,
    Coverage,
    EdiFile,
    EligibilityCheck,
    EligibilityStatus,
    FileDirection,
    JournalEventType,
    Patient,
    PatientPayment,
    PaymentMethod,
    PaymentPlan,
    Remittance,
    Statement,
    SubmissionBatch,
    WorkItem,
)
from claims_server.models.encrypted import encrypted_attributes
from claims_server.models.workqueue import ApprovalKind, ApprovalRequest
from claims_server.security.read_audit import PHI_ENTITIES, READ_POST_ENDPOINTS
from tests.integration.claims.support import seed

#: GET (and search) endpoints that answer with PHI -> the entity type their READ event names.
PHI_ROUTES: dict[str, str] = {
    "patients.list_patients": "patient",
    "patients.get_patient": "patient",
    "patients.search_patients": "patient",
    "patients.list_coverages": "coverage",
    "patients.get_coverage": "coverage",
    # the schedule: a visit's date names the patient's care (PHI)
    "patients.list_patient_encounters": "encounter",
    "patients.list_encounters": "encounter",
    "patients.get_encounter": "encounter",
    "claims.list_claims": "claim",
    "claims.get_claim": "claim",
    "claims.list_claim_notes": "claim",  # a user's reasons for the claim's changes
    "remittances.get_remittance": "claim",
    "claim_remittances.get_claim_remittance_detail": "claim",  # claim screen: remittance detail
    "workqueue.list_items": "work_item",
    "workqueue.get_item": "work_item",
    # follow-up notes (claims_server.workqueue.notes_views, claims_server.ui.followups)
    "follow_up_notes.list_claim_notes": "claim",
    "follow_up_notes.list_patient_notes": "patient",
    "follow_up_notes.list_item_notes": "work_item",
    "follow_up_notes.list_follow_ups": "work_item",
    "ui.work_item": "work_item",
    "ui.followups": "work_item",
    # end follow-up notes
    "corrections.get_appeal": "appeal",
    "corrections.list_appeals": "appeal",  # by deadline; the claim number and payer, no letter
    "ui.appeals": "appeal",  # appeals by deadline with the patient's name
    "ui.appeal": "appeal",  # the letter names the patient
    "reports.ar_aging": "patient",
    "eligibility.get_check": "eligibility_check",
    "eligibility.get_summary": "eligibility_check",
    "patient_link.statements": "statement",
    "patient_link.statement": "statement",
    "patient_statement.html": "statement",
    "patient_statement.pdf": "statement",
    "patient_pay.payment_plans": "payment_plan",
    "statements.list_statements": "statement",
    "statements.get_statement": "statement",
    "statements.statement_pdf": "statement",
    "statements.statement_html": "statement",
    "statements.print_batch_file": "statement",
    "payments.list_payments": "patient_payment",
    "payments.get_payment": "patient_payment",
    "payments.get_payment_plan": "payment_plan",
    "payments.patient_balance": "patient",
    "patient_pay.balance": "patient",
    # ui part 1: the staff workspace's pages (claims_server.ui)
    "ui.queues": "work_item",
    "ui.claims": "claim",
    "ui.claim": "claim",
    # end ui part 1
    # ui part 2: remittance, 835 preview, raw file download, patient account (claims_server.ui)
    "ui.remittance": "claim",
    "ui.remittance_preview": "claim",
    "ui.file_download": "patient",
    "ui.patient": "patient",
    # end ui part 2
    # sending claims: the ready claims and a batch's claims (names are shown); a batch's raw file
    "ui.send": "claim",
    "ui.batch": "claim",
    "batches.get_batch_file": "patient",
    # end sending claims
    # charge entry: the patient's screen (name, coverages, previous claims), a claim's charges
    "ui.charge_new": "patient",
    "ui.charge_edit": "claim",
    # end charge entry
    # write-offs: the claim's write-offs (notes can name the patient)
    "write_offs.list_write_offs": "claim",
    # end write-offs
    # approvals: over-limit write-offs and refunds (the requester's note; the page names the patient)
    "approvals.list_approvals": "approval_request",
    "approvals.get_approval": "approval_request",
    "ui.approvals": "approval_request",
    # end approvals
    # statements: collection holds; portal: the patient pages at /pay
    "statements.list_holds": "statement_hold",
    "portal.statement": "statement",
    "portal.statement_pdf": "statement",
    "portal.statement_page": "statement",
    "portal.receipt": "patient_payment",
    # end portal
    # possible duplicates: held adjudications beside the current ones (claim data, no names)
    "held_adjudications.list_held_adjudications": "claim",
    # end possible duplicates
    # credits: unmatched payments name the patient as the 835 did (read from the stored file);
    # the credit pages name the patient
    "unmatched_payments.list_unmatched_payments": "edi_file",
    "unmatched_payments.get_unmatched_payment": "edi_file",
    "ui.unmatched_list": "edi_file",
    "ui.unmatched": "edi_file",
    "ui.credits": "patient",
    "ui.credit": "patient",
    # end credits
    # fhir: every resource type goes through one read and one search view; the Patient ones are called
    "fhir.read": "patient",
    "fhir.search": "patient",
    # end fhir
}

#: PHI routes this test does not call yet (they arrived with the statements and payments work
#: while it was written); the load listener covers them like the rest. Keep this set shrinking.
NOT_CALLED_YET = {
    "statements.print_batch_file",
    "payments.get_payment",
    # ui part 2: needs an uploaded, unposted 835; tests/integration/ui/test_ui_remittances.py checks its reads
    "ui.remittance_preview",
    # statements: needs a collections hold; tests/integration/statements/test_holds.py checks its reads
    "statements.list_holds",
    # sending claims: needs ready claims (the billing day sent them all); test_ui_send.py checks its reads
    "ui.send",
    # possible duplicates: the billing day holds none; remittance/test_held_queue.py checks its reads
    "held_adjudications.list_held_adjudications",
    # credits: the billing day leaves no unmatched payment and no credit;
    # remittance/test_unmatched_credits_ui.py checks their reads
    "unmatched_payments.list_unmatched_payments",
    "unmatched_payments.get_unmatched_payment",
    "ui.unmatched_list",
    "ui.unmatched",
    "ui.credits",
    "ui.credit",
}

#: GET endpoints that answer without PHI (configuration, counts, the caller's own account).
NO_PHI_ROUTES = {
    "auth.audit_events",  # field names, codes and public ids only
    "auth.whoami",
    "auth.list_tokens",
    "auth.get_token",
    "payers.list_routes",
    "payers.get_route",
    "payers.list_payers",
    "payers.get_payer",
    "practice.list_practices",
    "practice.get_practice",
    "practice.list_providers",
    "practice.get_provider",
    "reports.kpis",
    "workqueue.queue_counts",
    "workqueue.unpaid",  # totals by payer
    "remittances.list_remittances",  # the payment and counts
    "statements.get_run",  # counts of a statement run
    "health.healthz",
    "api-docs.openapi_json",
    "static",
    # ui part 1: sign-in, enrolment (the caller's own key), keep-alive, redirects, static files
    "ui_root",
    "ui.home",
    "ui.sign_in",
    "ui.enrol",
    "ui.keepalive",
    "ui.static",
    # end ui part 1
    # ui part 2: aggregates by payer, payment lists, file metadata, the (empty) search form
    "ui.dashboard",
    "ui.remittances",
    "ui.files",
    "ui.patients",
    # end ui part 2
    # portal: the front page, the link (swapped for a cookie), the birth-date form, static files
    "portal.index",
    "portal.open_link",
    "portal.verify",
    "portal.static",
    # end portal
    # fhir: what the server supports; the audit trail (codes and public ids, as auth.audit_events)
    "fhir.metadata",
    "fhir.read_audit_event",
    "fhir.search_audit_events",
    # end fhir
    # sending claims: batch totals per payer, states and file metadata
    "batches.list_batches",
    # charge imports: counts, totals, claim public ids and states (column queries, no PHI)
    "charge_imports.list_charge_imports",
    "charge_imports.get_charge_import",
    "ui.charge_imports",
    "ui.charge_import",
    "batches.get_batch",
    "ui.batches",
    # end sending claims
    # charge entry: code suggestions (code sets and the practice's fee labels), the fee schedule
    "ui.code_lookup",
    "ui.fee_schedule",
    "practice.get_fee_schedule",
    # end charge entry
    # scheduler: job names, times and counts
    "scheduler.list_jobs",
    "scheduler.get_job",
    "ui.scheduler",
    # end scheduler
    # saved queue filters: the caller's own (names they typed, query strings of non-PHI filters)
    "saved_filters.list_saved_filters",
    # end saved queue filters
    # credits: amounts, codes and public ids (no names; the refund letter names the claim number only)
    "credit_balances.list_credit_balances",
    "credit_balances.get_credit_balance",
    "credit_balances.list_refunds",
    "credit_balances.get_refund",
    "ui.refund",
    # end credits
}


def test_every_read_route_is_classified(app):
    readers = {
        rule.endpoint
        for rule in app.url_map.iter_rules()
        if "GET" in (rule.methods or set()) or rule.endpoint in READ_POST_ENDPOINTS
    }
    unclassified = readers - set(PHI_ROUTES) - NO_PHI_ROUTES
    assert unclassified == set(), f"classify these routes as PHI or not: {sorted(unclassified)}"
    assert set(PHI_ROUTES) <= readers and not set(PHI_ROUTES) & NO_PHI_ROUTES


def test_every_model_with_phi_columns_is_a_read_audited_entity():
    with_phi = {
        mapper.class_
        for mapper in Base.registry.mappers
        if any(mapper.columns[a.column].info.get("phi") for a in encrypted_attributes(mapper))
    }
    assert with_phi, "the PHI markers went missing"
    assert with_phi - set(PHI_ENTITIES) == set()


@pytest.fixture
def billing_day(app, session, tmp_path):
    """The seeded practice after the demo's billing day, plus an appeal and a statement."""
    ids = seed(session)
    run_billing_day(state(app).session_factory, tmp_path / "day", today=date.today())
    session.rollback()
    return ids


def _reads(session, request_id: str) -> list[AuditEvent]:
    session.rollback()
    return list(
        session.scalars(
            select(AuditEvent).where(AuditEvent.request_id == request_id, AuditEvent.action == "R")
        )
    )


def test_each_phi_route_writes_read_events_with_entity_and_patient(app, session, api_client, billing_day):
    biller = api_client("billing_supervisor")
    patient = session.scalars(select(Patient).order_by(Patient.id)).first()
    coverage = session.scalars(select(Coverage).where(Coverage.patient_id == patient.id)).first()
    claim = session.scalars(select(Claim).order_by(Claim.id)).first()
    denied = session.scalars(select(Claim).where(Claim.state == ClaimState.DENIED)).first()
    remittance = session.scalars(select(Remittance)).first()
    item = session.scalars(select(WorkItem)).first()
    batch = session.scalars(select(SubmissionBatch)).first()
    editable = session.scalars(select(Claim).where(Claim.state == ClaimState.REJECTED)).first()
    batch_837 = session.scalar(
        select(EdiFile.public_id).where(
            EdiFile.batch_id == batch.id, EdiFile.direction == FileDirection.OUTBOUND
        )
    )
    assert None not in (claim, denied, remittance, item), "the billing day produced no denial or work item"
    appeal = biller.post(
        f"/api/v1/claims/{denied.public_id}/appeals",
        json={"letter_text": "Please review the denial."},
    )
    assert appeal.status_code == 201, appeal.get_json()
    statement = Statement(
        patient_id=patient.id,
        statement_date=date.today(),
        due_date=date.today() + timedelta(days=30),
        balance_cents=2500,
    )
    session.add(statement)
    statement.pdf_content = b"%PDF-1.4 synthetic statement"
    statement.html_content = b"<p>synthetic statement</p>"
    payment = PatientPayment(patient_id=patient.id, amount_cents=1500, method=PaymentMethod.CASH)
    plan = PaymentPlan(
        patient_id=patient.id,
        monthly_amount_cents=2000,
        total_cents=6000,
        start_date=date.today(),
        first_due_date=date.today() + timedelta(days=30),
    )
    session.add_all([payment, plan])
    check = EligibilityCheck(
        coverage_id=coverage.id,
        status=EligibilityStatus.ACTIVE,
        responded_at=datetime.now(UTC),
        benefits_summary={"active": True},
    )
    session.add(check)
    # An over-limit write-off waiting for a supervisor (the API and the Approvals page list it).
    approval = ApprovalRequest(
        public_id=uuid.uuid4().hex,
        kind=ApprovalKind.WRITE_OFF,
        claim_id=denied.id,
        patient_id=denied.patient_id,
        amount_cents=60000,
        request={"bucket": "insurance", "reason": "timely_filing"},
        note="Synthetic note naming the patient",
    )
    session.add(approval)
    # A self-pay balance so the aging by patient has a row (and a patient to name).
    post_entry(
        session,
        event_type=JournalEventType.CHARGE,
        idempotency_key="read-audit:self-pay",
        postings=[
            Leg(AccountCode.AR_PATIENT, 2500, patient_id=patient.id),
            Leg(AccountCode.GROSS_CHARGES, -2500, patient_id=patient.id),
        ],
        effective_date=date.today() - timedelta(days=3),
    )
    session.commit()
    visit = biller.post(
        f"/api/v1/patients/{patient.public_id}/encounters",
        json={"date_of_service": date.today().isoformat(), "rendering_provider": billing_day["rendering_id"]},
    )
    assert visit.status_code == 201, visit.get_json()
    visit_id = visit.get_json()["id"]
    open_item = session.scalars(
        select(WorkItem).where(WorkItem.status == "open").order_by(WorkItem.id)
    ).first()
    follow_up = biller.post(
        f"/api/v1/workqueue/items/{open_item.public_id}/follow-up-notes",
        json={"kind": "call", "body": "call back", "follow_up_on": date.today().isoformat()},
    )
    assert follow_up.status_code == 201, follow_up.get_json()
    calls = {
        "patients.list_patient_encounters": ("GET", f"/api/v1/patients/{patient.public_id}/encounters", None),
        "patients.list_encounters": ("GET", f"/api/v1/encounters?date={date.today().isoformat()}", None),
        "patients.get_encounter": ("GET", f"/api/v1/encounters/{visit_id}", None),
        "patients.list_patients": ("GET", "/api/v1/patients", None),
        "patients.get_patient": ("GET", f"/api/v1/patients/{patient.public_id}", None),
        "patients.search_patients": (
            "POST",
            "/api/v1/patients/search",
            {
                "last_name": patient.last_name,
                "first_name": patient.first_name,
                "birth_date": patient.birth_date.isoformat(),
            },
        ),
        "patients.list_coverages": ("GET", f"/api/v1/patients/{patient.public_id}/coverages", None),
        "patients.get_coverage": ("GET", f"/api/v1/coverages/{coverage.public_id}", None),
        "claims.list_claims": ("GET", "/api/v1/claims", None),
        "claims.get_claim": ("GET", f"/api/v1/claims/{claim.public_id}", None),
        "claims.list_claim_notes": ("GET", f"/api/v1/claims/{claim.public_id}/notes", None),
        "remittances.get_remittance": ("GET", f"/api/v1/remittances/{remittance.public_id}", None),
        "claim_remittances.get_claim_remittance_detail": (
            "GET",
            f"/api/v1/claims/{claim.public_id}/remittance-detail",
            None,
        ),
        "workqueue.list_items": ("GET", "/api/v1/workqueue/items", None),
        "workqueue.get_item": ("GET", f"/api/v1/workqueue/items/{item.public_id}", None),
        # follow-up notes: the caller's follow-up on an open item is due today (set below)
        "follow_up_notes.list_claim_notes": (
            "GET",
            f"/api/v1/claims/{claim.public_id}/follow-up-notes",
            None,
        ),
        "follow_up_notes.list_patient_notes": (
            "GET",
            f"/api/v1/patients/{patient.public_id}/follow-up-notes",
            None,
        ),
        "follow_up_notes.list_item_notes": (
            "GET",
            f"/api/v1/workqueue/items/{item.public_id}/follow-up-notes",
            None,
        ),
        "follow_up_notes.list_follow_ups": ("GET", "/api/v1/follow-ups?user=me", None),
        "ui.work_item": ("GET", f"/ui/work-items/{item.public_id}", None),
        "ui.followups": ("GET", "/ui/follow-ups", None),
        # end follow-up notes
        "corrections.get_appeal": ("GET", f"/api/v1/appeals/{appeal.get_json()['id']}", None),
        "corrections.list_appeals": ("GET", "/api/v1/appeals", None),
        "ui.appeals": ("GET", "/ui/appeals", None),
        "ui.appeal": ("GET", f"/ui/appeals/{appeal.get_json()['id']}", None),
        "eligibility.get_check": ("GET", f"/api/v1/eligibility/checks/{check.public_id}", None),
        "eligibility.get_summary": ("GET", f"/api/v1/eligibility/checks/{check.public_id}/summary", None),
        "statements.list_statements": ("GET", "/api/v1/statements", None),
        "statements.get_statement": ("GET", f"/api/v1/statements/{statement.public_id}", None),
        "statements.statement_pdf": ("GET", f"/api/v1/statements/{statement.public_id}/pdf", None),
        "statements.statement_html": ("GET", f"/api/v1/statements/{statement.public_id}/html", None),
        "payments.list_payments": ("GET", f"/api/v1/patients/{patient.public_id}/payments", None),
        "payments.patient_balance": ("GET", f"/api/v1/patients/{patient.public_id}/balance", None),
        "payments.get_payment_plan": ("GET", f"/api/v1/payment-plans/{plan.public_id}", None),
        "reports.ar_aging": ("GET", "/api/v1/reports/ar-aging?by=patient&format=csv", None),
        # ui part 1
        "ui.queues": ("GET", "/ui/queues", None),
        "ui.claims": ("GET", "/ui/claims", None),
        "ui.claim": ("GET", f"/ui/claims/{denied.public_id}", None),
        # end ui part 1
        # ui part 2
        "ui.remittance": ("GET", f"/ui/remittances/{remittance.public_id}", None),
        "ui.file_download": ("GET", f"/ui/files/{remittance.edi_file.public_id}/raw", None),
        "ui.patient": ("GET", f"/ui/patients/{patient.public_id}", None),
        # end ui part 2
        # sending claims
        "ui.batch": ("GET", f"/ui/batches/{batch.public_id}", None),
        "batches.get_batch_file": ("GET", f"/api/v1/batches/{batch.public_id}/files/{batch_837}", None),
        # end sending claims
        # charge entry
        "ui.charge_new": ("GET", f"/ui/claims/new?patient={patient.public_id}", None),
        "ui.charge_edit": ("GET", f"/ui/claims/{editable.public_id}/charges", None),
        # end charge entry
        # write-offs
        "write_offs.list_write_offs": ("GET", f"/api/v1/claims/{denied.public_id}/write-offs", None),
        # end write-offs
        # approvals
        "approvals.list_approvals": ("GET", "/api/v1/approvals", None),
        "approvals.get_approval": ("GET", f"/api/v1/approvals/{approval.public_id}", None),
        "ui.approvals": ("GET", "/ui/approvals", None),
        # end approvals
        # fhir
        "fhir.read": ("GET", f"/fhir/R4/Patient/{patient.public_id}", None),
        "fhir.search": ("GET", f"/fhir/R4/Patient?_id={patient.public_id}", None),
        # end fhir
    }
    patient_client = api_client("patient", patient_id=patient.id)
    patient_calls = {
        "patient_link.statements": ("GET", "/api/v1/patient-link/statements", None),
        "patient_link.statement": ("GET", f"/api/v1/patient-link/statements/{statement.public_id}", None),
        "patient_statement.html": (
            "GET",
            f"/api/v1/patient-link/statements/{statement.public_id}/html",
            None,
        ),
        "patient_statement.pdf": ("GET", f"/api/v1/patient-link/statements/{statement.public_id}/pdf", None),
        "patient_pay.payment_plans": ("GET", "/api/v1/patient-link/payment-plans", None),
        "patient_pay.balance": ("GET", "/api/v1/patient-link/balance", None),
        # portal: the same patient session, on the patient pages
        "portal.statement": ("GET", "/pay/statement", None),
        "portal.statement_pdf": ("GET", f"/pay/statements/{statement.public_id}/pdf", None),
        "portal.statement_page": ("GET", f"/pay/statements/{statement.public_id}/page", None),
        "portal.receipt": ("GET", f"/pay/receipts/{payment.public_id}", None),
        # end portal
    }
    assert set(calls) | set(patient_calls) == set(PHI_ROUTES) - NOT_CALLED_YET
    for endpoint, (method, path, body) in {**calls, **patient_calls}.items():
        client = patient_client if endpoint in patient_calls else biller
        request_id = uuid.uuid4().hex
        answer = client.open(path, method=method, json=body, headers={"X-Request-ID": request_id})
        assert answer.status_code == 200, (endpoint, answer.get_json())
        reads = _reads(session, request_id)
        wanted = [e for e in reads if e.entity_type == PHI_ROUTES[endpoint]]
        assert wanted, f"{endpoint}: no READ event for a {PHI_ROUTES[endpoint]} ({len(reads)} reads)"
        # Lists may add a summary event without an entity; every named entity has its patient,
        # and some event names the patient whose data was served.
        assert all(e.patient_id is not None for e in wanted if e.entity_id), endpoint
        assert any(e.patient_id is not None for e in wanted), endpoint
        # One event per entity per request, however many times the request loaded it.
        keys = [(e.entity_type, e.entity_id) for e in reads if e.entity_id]
        assert len(keys) == len(set(keys)), endpoint


def test_a_refused_read_writes_no_read_event(app, session, api_client, billing_day):
    biller = api_client("biller")
    request_id = uuid.uuid4().hex
    answer = biller.get("/api/v1/patients/" + "0" * 32, headers={"X-Request-ID": request_id})
    assert answer.status_code == 404
    assert _reads(session, request_id) == []
    other = session.scalars(select(Patient).order_by(Patient.id.desc())).first()
    patient = api_client(
        "patient", patient_id=session.scalars(select(Patient).order_by(Patient.id)).first().id
    )
    statement = Statement(
        patient_id=other.id,
        statement_date=date.today(),
        due_date=date.today() + timedelta(days=30),
        balance_cents=100,
    )
    session.add(statement)
    session.commit()
    request_id = uuid.uuid4().hex
    denied = patient.get(
        f"/api/v1/patient-link/statements/{statement.public_id}", headers={"X-Request-ID": request_id}
    )
    assert denied.status_code == 404
    assert _reads(session, request_id) == []


def test_a_write_is_audited_as_its_change_not_as_reads_of_what_it_loaded(
    app, session, api_client, billing_day
):
    biller = api_client("billing_supervisor")
    patient = session.scalars(select(Patient).order_by(Patient.id)).first()
    request_id = uuid.uuid4().hex
    answer = biller.patch(
        f"/api/v1/patients/{patient.public_id}",
        json={"city": "Shelbyville"},
        headers={"X-Request-ID": request_id},
    )
    assert answer.status_code == 200, answer.get_json()
    session.rollback()
    events = session.scalars(select(AuditEvent).where(AuditEvent.request_id == request_id)).all()
    assert [(e.action.value, e.entity_id, e.patient_id) for e in events] == [
        ("U", patient.public_id, patient.id)
    ]
