"""Dashboard, remittances (an 835 uploaded, previewed in a dry run, then posted), files and a patient
account, in a real browser against the demo's day; accessibility checks and screenshots of each."""

from __future__ import annotations

import uuid

from sqlalchemy import func, select

from claims_server.models import Patient, PatientPayment, Remittance, RemittanceState
from claims_server.payments.services import patient_balance
from tests.e2e.ui.a11y import check_page
from tests.integration.remittance.support import make_claim, seed_world
from tests.integration.ui.money_support import payment_835


def _claim_awaiting_its_835(ui_server) -> tuple[bytes, str, str]:
    """A new acknowledged claim of the demo practice and the payer's 835 for it (not yet received).

    (see ``payment_835``: 90.00 paid, a line denied CO-97).
    """
    tag = uuid.uuid4().hex[:8].upper()
    with ui_server.session_factory() as session:
        world = seed_world(session)
        claim = make_claim(session, world, f"UIE{tag}", [("99213", 12000), ("85025", 3000)])
        claim_id = claim.public_id
    content = payment_835(f"UIE{tag}", f"E2E{tag}")
    return content, claim_id, f"E2E{tag}"


def test_an_835_is_previewed_in_a_dry_run_then_posted(ui_page, ui_server, tmp_path):
    content, claim_id, trace = _claim_awaiting_its_835(ui_server)
    upload = tmp_path / "payer-remittance.835"
    upload.write_bytes(content)
    page = ui_page("biller")
    page.goto(ui_server.url("/ui/"))
    page.get_by_role("link", name="Remittances").click()
    page.wait_for_url("**/ui/remittances")
    check_page(page, ui_server, "remittances")

    # Not an interchange: refused next to the field, nothing stored.
    junk = tmp_path / "notes.txt"
    junk.write_text("these are not X12 segments")
    page.get_by_label("835 remittance file").set_input_files(str(junk))
    page.get_by_role("button", name="Check the file (dry run)").click()
    error = page.locator("#f-file-error")
    error.wait_for(state="visible")
    assert "ISA" in error.inner_text()
    assert page.locator("#f-file").get_attribute("aria-invalid") == "true"

    page.get_by_label("835 remittance file").set_input_files(str(upload))
    page.get_by_role("button", name="Check the file (dry run)").click()
    page.wait_for_url("**/ui/remittances/files/*")
    assert "dry run" in page.get_by_role("heading", level=1).inner_text()
    assert page.locator("#preview-paid").inner_text() == "$90.00"
    assert trace in page.inner_text("main")
    check_page(page, ui_server, "remittance-preview")
    with ui_server.session_factory() as session:
        assert session.scalar(select(Remittance).where(Remittance.trace_number == trace)) is None

    page.get_by_role("button", name="Post $90.00 to the ledger").click()
    page.wait_for_url("**/ui/remittances/*")
    assert "Posted $90.00 to 1 claim(s)" in page.get_by_role("status").inner_text()
    assert page.locator("#payment-amount").inner_text() == "$90.00"
    main = page.inner_text("main")
    assert "CO-45: $10.00" in main and "CO-97: $30.00" in main and "PR-2: $20.00" in main
    # The claim shows as its claim number (CLM01, "UIE<tag>"), linking by public id (issue 18).
    claim_link = page.get_by_role("link", name=f"UIE{trace.removeprefix('E2E')}", exact=True)
    assert claim_link.count() == 1 and claim_link.get_attribute("href") == f"/ui/claims/{claim_id}"
    check_page(page, ui_server, "remittance")
    with ui_server.session_factory() as session:
        posted = session.scalars(select(Remittance).where(Remittance.trace_number == trace)).one()
        assert posted.state is RemittanceState.POSTED and posted.payment_amount_cents == 9000


def test_dashboard_files_and_a_patient_account(ui_page, ui_server, tmp_path):
    page = ui_page("billing_supervisor")
    page.goto(ui_server.url("/ui/dashboard"))
    assert page.get_by_role("heading", level=1).inner_text() == "Dashboard"
    assert page.locator("svg[role=img]").count() == 3
    assert page.get_by_role("img", name="Top denial reasons").count() == 1
    assert page.locator("#aging-table tbody tr").count() >= 1
    check_page(page, ui_server, "dashboard")

    page.get_by_role("link", name="Files").click()
    page.wait_for_url("**/ui/files")
    assert "837P" in page.inner_text("#file-list") and "999" in page.inner_text("#file-list")
    check_page(page, ui_server, "files")
    with page.expect_download() as download:
        page.locator("#file-list a[download]").first.click()
    saved = tmp_path / "raw.x12"
    download.value.save_as(saved)
    assert saved.read_bytes().lstrip().startswith(b"ISA")

    with ui_server.session_factory() as session:
        owing = next(
            p
            for p in session.scalars(select(Patient).order_by(Patient.id))
            if patient_balance(session, p.id) >= 1000
        )
        patient_id, last, first, born = owing.public_id, owing.last_name, owing.first_name, owing.birth_date
        before = session.scalar(
            select(func.count()).select_from(PatientPayment).where(PatientPayment.patient_id == owing.id)
        )
    page.get_by_role("link", name="Patients").click()
    page.get_by_label("Last name").fill(last)
    page.get_by_label("First name").fill(first)
    page.get_by_label("Date of birth").fill(born.isoformat())
    page.get_by_role("button", name="Search").click()
    assert page.url.endswith("/ui/patients/search") and last not in page.url
    check_page(page, ui_server, "patients-search")
    page.get_by_role("link", name=f"{last}, {first}").click()
    assert page.url.endswith(f"/ui/patients/{patient_id}")
    check_page(page, ui_server, "patient")
    page.get_by_label("Amount", exact=True).fill("5.00")
    page.get_by_role("button", name="Record payment").dblclick()  # a double click pays once
    page.wait_for_url(f"**/ui/patients/{patient_id}")
    assert "recorded" in page.get_by_role("status").inner_text()
    with ui_server.session_factory() as session:
        after = session.scalar(
            select(func.count())
            .select_from(PatientPayment)
            .join(Patient, Patient.id == PatientPayment.patient_id)
            .where(Patient.public_id == patient_id)
        )
    assert after == before + 1
