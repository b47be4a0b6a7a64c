"""Issue 18's Done-when in a real browser: a biller requests an over-limit write-off that a
supervisor approves (another browser context), and the claim shows the write-off and its item.

The claim is this test's own (700.00 owed by the payer, a fresh claim number), above the
default 500.00 biller limit, so tests sharing the demo server do not see it change.
"""

from __future__ import annotations

import uuid
from datetime import date

from sqlalchemy import select

from claims_server.ledger.write_offs import open_balances
from claims_server.models import Claim, JournalEntry, JournalEventType, WorkItem
from claims_server.models.workqueue import ApprovalRequest, ApprovalState, WorkItemStatus, WorkQueue
from claims_server.security.principal import acting_as, system_principal
from claims_server.workqueue.services import RecommendedAction, open_work_item
from tests.e2e.ui.a11y import check_page
from tests.integration.payments.support import owed_claim
from tests.integration.remittance.support import seed_world


def _denied_claim(ui_server, tag: str) -> tuple[str, str]:
    """A claim the payer owes 700.00 on, with an open denial item recommending a write-off."""
    with acting_as(system_principal("test:ui-approvals")), ui_server.session_factory() as session:
        claim = owed_claim(
            session, seed_world(session), f"UIWO{tag}", [("99213", 70000, 0)], since=date.today()
        )
        item = open_work_item(
            session,
            queue=WorkQueue.DENIED,
            claim=claim,
            reason_codes=["CO-29"],
            recommended_action=RecommendedAction.WRITE_OFF,
            explanation="Timely filing limit passed.",
            dedupe_key=f"test:ui-approvals:{tag}",
        )
        session.commit()
        return claim.public_id, item.public_id


def test_a_supervisor_approves_a_billers_over_limit_write_off(ui_page, ui_server):
    tag = uuid.uuid4().hex[:8].upper()
    claim_id, item_id = _denied_claim(ui_server, tag)

    # The biller asks to write off 600.00 of the 700.00: above the 500.00 limit.
    biller = ui_page("biller")
    biller.goto(ui_server.url(f"/ui/claims/{claim_id}"))
    form = biller.locator("#write-off-form")
    form.get_by_label("Balance").select_option("insurance")
    form.get_by_label("Amount ($)").fill("600.00")
    form.get_by_label("Reason").select_option("timely_filing")
    form.get_by_label('Note (required for "Other")').fill("No proof of timely filing on file")
    form.get_by_role("button", name="Write off").click()
    status = biller.get_by_role("status").filter(has_text="supervisor")
    status.first.wait_for()
    assert "sent to a supervisor for approval" in status.first.inner_text()
    pending = biller.locator("#write-off-pending")
    pending.wait_for()
    assert "$600.00" in pending.inner_text() and "pending approval" in pending.inner_text()
    with ui_server.session_factory() as session:
        claim = session.scalar(select(Claim).where(Claim.public_id == claim_id))
        assert open_balances(session, claim)["insurance"] == 70000  # nothing posted yet
        approval = session.scalar(select(ApprovalRequest).where(ApprovalRequest.claim_id == claim.id))
        assert approval.state is ApprovalState.PENDING and approval.amount_cents == 60000

    # The denial item's page says a write-off of its claim waits for approval.
    biller.goto(ui_server.url(f"/ui/work-items/{item_id}"))
    waiting = biller.locator("#item-approvals-pending")
    waiting.wait_for()
    assert "$600.00" in waiting.inner_text() and "pending approval" in waiting.inner_text()

    # A supervisor, in another browser context, finds it under Approvals and approves it.
    supervisor = ui_page("billing_supervisor")
    supervisor.goto(ui_server.url("/ui/"))
    supervisor.get_by_role("link", name="Approvals").click()
    supervisor.wait_for_url("**/ui/approvals")
    check_page(supervisor, ui_server, "approvals")
    row = supervisor.locator(f'tr[data-approval="{approval.public_id}"]')
    text = row.inner_text()
    assert f"UIWO{tag}" in text and "$600.00" in text and "No proof of timely filing on file" in text
    assert "UI biller" in text
    row.get_by_role("button", name="Approve").click()
    supervisor.wait_for_url("**/ui/approvals")
    done = supervisor.get_by_role("status").filter(has_text="Approved")
    done.wait_for()
    assert "the write-off of $600.00 is posted" in done.inner_text()
    assert supervisor.locator(f'#approvals-table tr[data-approval="{approval.public_id}"]').count() == 0

    # The claim shows the write-off; its denial item stays open with the 100.00 left.
    biller.goto(ui_server.url(f"/ui/claims/{claim_id}"))
    history = biller.get_by_text("insurance $600.00: Timely filing limit missed")
    history.first.wait_for()
    assert biller.locator("#write-off-pending").count() == 0
    assert "Open now: insurance $100.00" in biller.locator("#write-off-form").inner_text()
    with ui_server.session_factory() as session:
        claim = session.scalar(select(Claim).where(Claim.public_id == claim_id))
        assert open_balances(session, claim)["insurance"] == 10000
        entry = session.scalar(
            select(JournalEntry).where(
                JournalEntry.claim_id == claim.id, JournalEntry.event_type == JournalEventType.WRITE_OFF
            )
        )
        approval = session.get(ApprovalRequest, approval.id)
        assert approval.state is ApprovalState.APPROVED and approval.journal_entry_id == entry.id
        item = session.scalar(select(WorkItem).where(WorkItem.public_id == item_id))
        assert item.status is WorkItemStatus.OPEN
    # The item's own page shows it open with the balance left.
    biller.goto(ui_server.url(f"/ui/work-items/{item_id}"))
    biller.get_by_text("$100.00").first.wait_for()
