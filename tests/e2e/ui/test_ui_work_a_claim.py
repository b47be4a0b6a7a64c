"""The Done-when path in a real browser: sign in with the second factor, open a denied claim
from the queue, correct it, resubmit, see it leave the queue. Also a rejected claim fixed in
place (with a refused bad value first), and the accessibility checks of the pages on the way."""

from __future__ import annotations

from sqlalchemy import select

from claims_server.models import Claim, ClaimState, WorkItem
from claims_server.models.workqueue import WorkItemStatus, WorkQueue
from tests.e2e.ui.a11y import check_page


def _open_item_claim(ui_server, queue: WorkQueue, reason: str) -> tuple[str, str]:
    """(public id, claim control number) of the claim of an open item of ``queue`` with ``reason``."""
    with ui_server.session_factory() as session:
        items = session.scalars(
            select(WorkItem).where(WorkItem.queue == queue, WorkItem.status == WorkItemStatus.OPEN)
        ).all()
        item = next(i for i in items if reason in (i.reason_codes or []))
        return item.claim.public_id, item.claim.patient_control_number


def test_a_biller_corrects_a_denied_claim_and_it_leaves_the_queue(ui_page, ui_server):
    claim_id, number = _open_item_claim(ui_server, WorkQueue.DENIED, "CO-97")
    page = ui_page("biller")
    page.goto(ui_server.url("/ui/"))
    page.get_by_role("link", name="Work queues").click()
    page.get_by_role("link", name="Denied (835)").click()
    page.wait_for_url("**/ui/queues?queue=denied")
    check_page(page, ui_server, "queues-denied")
    row = page.locator(f'tr[data-item]:has(a:text-is("{number}"))')
    assert "CO-97" in row.inner_text()
    row.get_by_role("link", name=number).click()
    assert page.url.endswith(f"/ui/claims/{claim_id}")
    assert "CO-97" in page.get_by_role("region", name="Why it needs work").inner_text()
    check_page(page, ui_server, "claim-denied")
    # Only what the state allows: an adjudicated claim is corrected by a replacement, not edited.
    assert page.get_by_role("button", name="Save and resubmit").count() == 0
    page.get_by_label("Reason for the correction").fill("93010 is included in 93000")
    page.get_by_role("button", name="Create corrected claim").click()
    assert "/ui/claims/" in page.url and not page.url.endswith(claim_id)
    assert "replacement (corrected)" in page.inner_text("main")
    check_page(page, ui_server, "claim-correcting")
    procedures = [page.locator(f"#f-line-{i}-procedure").input_value() for i in range(2)]
    page.get_by_role("group", name=f"Line {procedures.index('93010') + 1}").get_by_label(
        "Remove this line"
    ).check()
    page.get_by_role("button", name="Save and resubmit").click()
    assert "Corrected and ready" in page.get_by_role("status").inner_text()
    assert page.locator("h1 .badge").inner_text() == "ready"
    page.get_by_role("link", name="Work queues").click()
    page.get_by_role("link", name="Denied (835)").click()
    assert page.locator(f'a:text-is("{number}")').count() == 0, (
        "the corrected claim is still in the denied queue"
    )
    with ui_server.session_factory() as session:
        replacement = session.scalars(select(Claim).where(Claim.original_claim.has(public_id=claim_id))).one()
        assert replacement.state == ClaimState.READY
        assert [line.procedure_code for line in replacement.service_lines] == ["93000"]


def test_a_rejected_claim_is_fixed_in_place_after_a_bad_value_is_refused_next_to_its_field(
    ui_page, ui_server
):
    claim_id, number = _open_item_claim(ui_server, WorkQueue.REJECTED, "A7:21")
    page = ui_page("biller")
    page.goto(ui_server.url(f"/ui/claims/{claim_id}"))
    page.get_by_label("Prior authorization number").fill("AUTH-2026-0042")
    page.locator("#f-line-0-charge").fill("nine hundred")
    page.get_by_role("button", name="Save and resubmit").click()
    error = page.locator("#f-line-0-charge-error")
    assert error.is_visible() and "money" in error.inner_text()
    assert page.locator("#f-line-0-charge").get_attribute("aria-invalid") == "true"
    check_page(page, ui_server, "claim-refused-input")
    with ui_server.session_factory() as session:
        claim = session.scalars(select(Claim).where(Claim.public_id == claim_id)).one()
        assert (claim.state, claim.prior_authorization) == (ClaimState.REJECTED, None), (
            "a refused form changed the claim"
        )
    page.locator("#f-line-0-charge").fill("900.00")
    page.get_by_role("button", name="Save and resubmit").click()
    assert page.locator("h1 .badge").inner_text() == "ready"
    page.goto(ui_server.url("/ui/queues?queue=rejected"))
    assert page.locator(f'a:text-is("{number}")').count() == 0


def test_claims_list_finds_a_claim_by_its_number(ui_page, ui_server):
    _, number = _open_item_claim(ui_server, WorkQueue.DENIED, "CO-29")
    page = ui_page("auditor")
    page.goto(ui_server.url("/ui/claims"))
    page.get_by_label("Claim control number").fill(number)
    page.get_by_role("button", name="Search").click()
    assert page.locator("tbody tr").count() == 1
    check_page(page, ui_server, "claims")
    page.get_by_role("link", name=number).click()
    # An auditor reads; the change actions are not offered.
    assert page.get_by_role("button", name="Create corrected claim").count() == 0
    check_page(page, ui_server, "claim-auditor")
