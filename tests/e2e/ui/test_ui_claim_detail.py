"""The claim screen in a real browser: what each payer said per line (allowed, paid, adjustments,
remarks), the adjudication history, and links to the patient, the remittance and related claims."""

from __future__ import annotations

import re
import uuid

from sqlalchemy import select

from claims_server.models import Claim, Remittance
from claims_server.remittance.services import receive_and_post
from tests.e2e.ui.a11y import check_page
from tests.integration.remittance.support import make_claim, seed_world
from tests.integration.ui.money_support import payment_835


def _paid_claim(ui_server) -> tuple[str, str, str, str]:
    """A new claim of the demo practice, paid by its 835 (99213: 90.00 paid, CO-45 10.00, PR-2
    20.00; 85025 denied CO-97, remark M15): (claim id, claim number, remittance id, trace)."""
    tag = uuid.uuid4().hex[:8].upper()
    with ui_server.session_factory() as session:
        world = seed_world(session)
        claim = make_claim(session, world, f"UID{tag}", [("99213", 12000), ("85025", 3000)])
        claim_id = claim.public_id
    report = receive_and_post(ui_server.session_factory, payment_835(f"UID{tag}", f"E2ED{tag}"))
    assert report.status == "posted", report.error
    with ui_server.session_factory() as session:
        remittance = session.scalar(
            select(Remittance.public_id).where(Remittance.trace_number == f"E2ED{tag}")
        )
    return claim_id, f"UID{tag}", remittance, f"E2ED{tag}"


def test_the_claim_screen_shows_the_payers_answer_per_line_and_links(ui_page, ui_server):
    claim_id, number, remittance_id, trace = _paid_claim(ui_server)
    page = ui_page("biller")
    page.goto(ui_server.url(f"/ui/claims/{claim_id}"))
    table = page.locator("#line-remit-table")
    table.wait_for()
    line1 = table.locator('tr[data-line="1"]')
    assert line1.locator(".line-paid").inner_text().strip() == "$90.00"
    assert "CO-45: $10.00" in line1.inner_text() and "PR-2: $20.00" in line1.inner_text()
    line2 = table.locator('tr[data-line="2"]')
    assert line2.locator(".line-paid").inner_text().strip() == "$0.00"
    assert "CO-97: $30.00" in line2.inner_text() and "Remark M15" in line2.inner_text()
    history = page.locator("#adjudication-history")
    assert trace in history.inner_text() and "current" in history.inner_text()
    check_page(page, ui_server, "claim-remittance-detail")

    # The remittance link, and the claim shown there by its number, linking back.
    page.locator("#claim-remittances").get_by_role("link", name=f"Payment {trace}").click()
    page.wait_for_url(f"**/ui/remittances/{remittance_id}")
    page.get_by_role("link", name=number, exact=True).first.click()
    page.wait_for_url(f"**/ui/claims/{claim_id}")
    # The patient link, and the claim on the patient's account by its number.
    page.locator("#patient-link").click()
    page.wait_for_url(re.compile(r"/ui/patients/[^/]+$"))
    page.locator("#open-lines").get_by_role("link", name=number, exact=True).wait_for()

    # A corrected claim links to its original and back.
    page.goto(ui_server.url(f"/ui/claims/{claim_id}"))
    page.get_by_label("Reason for the correction").fill("wrong units")
    page.get_by_role("button", name="Create corrected claim").click()
    page.wait_for_url(lambda url: claim_id not in url)
    related = page.locator("#related-claims")
    related.wait_for()
    assert "Replaces" in related.inner_text()
    related.get_by_role("link", name=number, exact=True).click()
    page.wait_for_url(f"**/ui/claims/{claim_id}")
    assert "Replaced by" in page.locator("#related-claims").inner_text()
    with ui_server.session_factory() as session:
        original = session.scalar(select(Claim.id).where(Claim.public_id == claim_id))
        copy = session.scalar(select(Claim).where(Claim.original_claim_id == original))
        assert copy is not None and copy.frequency_code.value == "7"
