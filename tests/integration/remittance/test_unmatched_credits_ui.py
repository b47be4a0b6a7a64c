"""The workspace's unmatched-payment and credit-balance pages over the Flask test client: the
payer's figures on the page, apply by hand with a refusal beside the claim field (nothing
changed), a patient credit refunded with a too-large amount refused beside the amount field."""

from __future__ import annotations

import re

from sqlalchemy import select

from claims_server.ledger.services import UNAPPLIED_PAYMENTS, account_totals, balance
from claims_server.models import AccountCode, ClaimState
from claims_server.models.workqueue import WorkItem
from tests.integration.remittance.support import make_claim
from tests.integration.remittance.test_unmatched_credits import _key, _patient_credit, _post_unmatched
from tests.integration.ui.support import csrf_token_of


def _token(html: str, form_id: str, name: str) -> str:
    form = html[html.index(f'id="{form_id}"') :]
    return re.search(rf'name="{name}" value="([^"]+)"', form[: form.index("</form>")]).group(1)


def test_apply_from_the_page(session, world, factory, api_client):
    claim, item, payment = _post_unmatched(session, world, factory)
    biller = api_client("biller")
    listed = biller.get("/ui/unmatched").get_data(as_text=True)
    assert "PCN-UNM-1-TYPO" in listed and "UNM-1" in listed and "$90.00" in listed
    html = biller.get(f"/ui/unmatched/{item.public_id}").get_data(as_text=True)
    patient = world.single.patient
    assert f"{patient.last_name}, {patient.first_name}" in html and "ICN-7788" in html
    assert f"Apply to {claim.patient_control_number}" in html  # the suggestion
    token = _token(html, "apply-form", "csrf_token")
    void = make_claim(session, world, "PCN-VOIDUI", [("99213", 10000)], claim_state=ClaimState.VOIDED)
    before = account_totals(session)
    refused = biller.post(
        f"/ui/unmatched/{item.public_id}/apply",
        data={"csrf_token": token, "claim": void.patient_control_number},
    )
    assert refused.status_code == 422
    page = refused.get_data(as_text=True)
    assert 'id="f-claim-error"' in page and "is a void claim" in page
    session.expire_all()
    assert account_totals(session) == before
    done = biller.post(
        f"/ui/unmatched/{item.public_id}/apply",
        data={"csrf_token": token, "claim": claim.patient_control_number},
    )
    assert done.status_code == 303 and done.headers["Location"].endswith(f"/ui/claims/{claim.public_id}")
    session.expire_all()
    assert balance(session, [UNAPPLIED_PAYMENTS], remittance_id=payment.remittance_id) == 0
    assert balance(session, [AccountCode.AR_INSURANCE.value], claim_id=claim.id) == 0
    assert session.get(type(claim), claim.id).state is ClaimState.PAID


def test_refund_a_patient_credit_from_the_page(session, world, factory, api_client):
    patient = world.single.patient
    owed = balance(session, [AccountCode.AR_PATIENT.value], patient_id=patient.id)
    _patient_credit(session, api_client, patient, f"{(owed + 4000) / 100:.2f}")
    biller = api_client("biller")
    credit_id = f"patient.{patient.public_id}"
    listed = biller.get("/ui/credits").get_data(as_text=True)
    assert f"/ui/credits/{credit_id}" in listed and "$40.00" in listed
    html = biller.get(f"/ui/credits/{credit_id}").get_data(as_text=True)
    data = {
        "csrf_token": _token(html, "refund-form", "csrf_token"),
        "idempotency_key": _token(html, "refund-form", "idempotency_key"),
        "method": "check",
        "reference": "CHK-77",
    }
    before = account_totals(session)
    refused = biller.post(f"/ui/credits/{credit_id}/refund", data={**data, "amount": "40.01"})
    assert refused.status_code == 422
    assert 'id="f-amount-error"' in refused.get_data(as_text=True)
    session.expire_all()
    assert account_totals(session) == before
    done = biller.post(f"/ui/credits/{credit_id}/refund", data={**data, "amount": "40.00"})
    assert done.status_code == 303 and "/ui/refunds/" in done.headers["Location"]
    again = biller.post(f"/ui/credits/{credit_id}/refund", data={**data, "amount": "40.00"})  # double click
    assert again.status_code in (303, 404)
    session.expire_all()
    assert balance(session, [AccountCode.PATIENT_CREDIT.value], patient_id=patient.id) == 0
    refund_page = biller.get(done.headers["Location"]).get_data(as_text=True)
    assert "issued" in refund_page and "$40.00" in refund_page
    assert csrf_token_of(biller)  # the workspace still answers


def test_an_auditor_reads_without_forms(session, world, factory, api_client):
    _, item, _ = _post_unmatched(session, world, factory)
    auditor = api_client("auditor")
    html = auditor.get(f"/ui/unmatched/{item.public_id}").get_data(as_text=True)
    assert 'id="apply-form"' not in html
    assert auditor.post(f"/ui/unmatched/{item.public_id}/apply", data={"claim": "X"}).status_code in (
        400,
        403,
    )
    assert session.scalar(select(WorkItem).where(WorkItem.id == item.id)) is not None
    _key()


def test_reads_of_the_patient_as_named_are_audited(session, world, factory, api_client):
    """The unmatched pages and API read the stored 835 (the patient's name): each leaves a READ event."""
    import uuid

    from claims_server.models.security import AuditEvent

    _, item, _ = _post_unmatched(session, world, factory)
    patient = world.single.patient
    owed = balance(session, [AccountCode.AR_PATIENT.value], patient_id=patient.id)
    _patient_credit(session, api_client, patient, f"{(owed + 100) / 100:.2f}")
    biller = api_client("biller")
    for path, entity in (
        ("/ui/unmatched", "edi_file"),
        (f"/ui/unmatched/{item.public_id}", "edi_file"),
        ("/api/v1/unmatched-payments", "edi_file"),
        (f"/api/v1/unmatched-payments/{item.public_id}", "edi_file"),
        ("/ui/credits", "patient"),
        (f"/ui/credits/patient.{patient.public_id}", "patient"),
    ):
        request_id = uuid.uuid4().hex
        assert biller.get(path, headers={"X-Request-ID": request_id}).status_code == 200, path
        session.rollback()
        reads = session.scalars(
            select(AuditEvent).where(AuditEvent.request_id == request_id, AuditEvent.action == "R")
        ).all()
        assert any(e.entity_type == entity for e in reads), (path, [e.entity_type for e in reads])


def test_the_unmatched_queue_links_to_the_payment_and_shows_money_received(
    session, world, factory, api_client
):
    _, item, _ = _post_unmatched(session, world, factory)
    html = api_client("biller").get("/ui/queues?queue=unmatched").get_data(as_text=True)
    assert f"/ui/unmatched/{item.public_id}" in html
    assert "$90.00" in html and "$150.00" not in html  # the tile and the row: money received, not billed
