"""Issue 18's Done-when in a real browser: a biller applies an unmatched payment to a claim and
sees the claim paid; a biller refunds a patient credit.

The 835, the claim and the credit are this test's own (fresh claim numbers and traces), so
tests sharing the demo server do not see them change.
"""

from __future__ import annotations

import uuid

from sqlalchemy import select

from claims_server.db import unit_of_work
from claims_server.ledger.services import UNAPPLIED_PAYMENTS, balance
from claims_server.models import AccountCode, Claim, ClaimState, PaymentMethod, Remittance
from claims_server.models.payments import PaymentSource
from claims_server.payments.services import record_patient_payment
from claims_server.remittance.services import receive_and_post
from claims_server.security.principal import acting_as, system_principal
from tests.e2e.ui.a11y import check_page
from tests.integration.remittance.support import Clp, Svc, build_835, make_claim, seed_world


def _unmatched(ui_server, tag: str) -> str:
    """A claim of 150.00 and an 835 paying it 90.00 (PR 10.00) under a mistyped claim number."""
    control = int(tag, 16) % 900_000_000 + 1
    with acting_as(system_principal("test:ui-credits")):
        with ui_server.session_factory() as session:
            world = seed_world(session)
            claim = make_claim(session, world, f"UIAP{tag}", [("99213", 10000), ("85025", 5000)])
            patient = world.single.patient
            name = f"NM1*QC*1*{patient.last_name}*{patient.first_name}".encode()
            lcns = [line.line_control_number for line in claim.service_lines]
        clp = Clp(
            f"UIAP{tag}X",
            "1",
            15000,
            9000,
            1000,
            lines=[
                Svc("99213", 10000, 6000, [("CO", "45", 3000), ("PR", "2", 1000)], lcn=lcns[0]),
                Svc("85025", 5000, 3000, [("CO", "45", 2000)], lcn=lcns[1]),
            ],
            payer_claim_number=f"ICN{tag}",
        )
        content = build_835([clp], trace=f"E2EU{tag}", control=control).replace(
            b"NM1*QC*1*SYNTHETIC*PATIENT", name
        )
        assert receive_and_post(ui_server.session_factory, content).summary()["claims_queued"] == 1
    return f"UIAP{tag}"


def test_a_biller_applies_an_unmatched_payment_and_sees_the_claim_paid(ui_page, ui_server):
    tag = uuid.uuid4().hex[:8].upper()
    number = _unmatched(ui_server, tag)
    page = ui_page("biller")
    page.goto(ui_server.url("/ui/"))
    page.get_by_role("link", name="Unmatched", exact=True).click()
    page.wait_for_url("**/ui/unmatched")
    row = page.locator("#unmatched-payments tbody tr", has_text=f"{number}X")
    assert "$90.00" in row.inner_text() and f"E2EU{tag}" in row.inner_text()
    row.get_by_role("link", name=f"{number}X").click()
    page.wait_for_url("**/ui/unmatched/*")
    check_page(page, ui_server, "unmatched-payment")
    page.get_by_label("Claim number").fill(number)
    page.get_by_role("button", name="Apply payment").click()
    page.wait_for_url("**/ui/claims/*")
    status = page.get_by_role("status")
    status.wait_for()
    assert f"applied to claim {number}" in status.inner_text() and "paid" in status.inner_text()
    with ui_server.session_factory() as session:
        claim = session.scalar(select(Claim).where(Claim.patient_control_number == number))
        assert claim.state is ClaimState.PAID
        remittance = session.scalar(select(Remittance).where(Remittance.trace_number == f"E2EU{tag}"))
        assert balance(session, [UNAPPLIED_PAYMENTS], remittance_id=remittance.id) == 0
        assert balance(session, [AccountCode.AR_INSURANCE.value], claim_id=claim.id) == 0


def test_a_biller_refunds_a_patient_credit(ui_page, ui_server):
    with acting_as(system_principal("test:ui-credits")), unit_of_work(ui_server.session_factory) as session:
        world = seed_world(session)
        patient = world.single.patient
        owed = balance(session, [AccountCode.AR_PATIENT.value], patient_id=patient.id)
        credit_before = -balance(session, [AccountCode.PATIENT_CREDIT.value], patient_id=patient.id)
        record_patient_payment(
            session,
            patient_id=patient.id,
            amount_cents=max(owed, 0) + 1234,
            source=PaymentSource.FRONT_DESK,
            method=PaymentMethod.CASH,
            idempotency_key=f"e2e-credit-{uuid.uuid4().hex}",
            allow_credit=True,
        )
        patient_id, public_id = patient.id, patient.public_id
    credit = credit_before + 1234
    page = ui_page("biller")
    page.goto(ui_server.url("/ui/"))
    page.get_by_role("link", name="Credits", exact=True).click()
    page.wait_for_url("**/ui/credits")
    page.locator(f'a[href$="/ui/credits/patient.{public_id}"]').click()
    page.wait_for_url(f"**/ui/credits/patient.{public_id}")
    assert page.locator("#credit-amount").inner_text() == f"${credit / 100:,.2f}"
    check_page(page, ui_server, "credit-balance")
    form = page.locator("#refund-form")
    form.get_by_label("Amount", exact=True).fill(f"{(credit + 1) / 100:.2f}")
    form.get_by_label("How").select_option("check")
    form.get_by_role("button", name="Refund").click()
    error = page.locator("#f-amount-error")
    error.wait_for()
    assert "more than the credit" in error.inner_text()
    form = page.locator("#refund-form")
    form.get_by_label("Amount", exact=True).fill(f"{credit / 100:.2f}")
    form.get_by_label("Check number or reversal id").fill("CHK-2001")
    form.get_by_role("button", name="Refund").click()
    page.wait_for_url("**/ui/refunds/*")
    assert "issued" in page.get_by_role("status").inner_text()
    assert "issued" in page.locator("h1").inner_text()
    with ui_server.session_factory() as session:
        assert balance(session, [AccountCode.PATIENT_CREDIT.value], patient_id=patient_id) == 0
