"""Appeals in a real browser: a biller opens an appeal from a denied item, sees it in the appeal
queue (by deadline) and on the claim (no write-off offered), edits the letter and the attachments,
submits it and records the outcome: upheld returns the item to the denial queue, overturned
closes it."""

from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy import select

from claims_server.models import WorkItem
from claims_server.models.workqueue import Appeal, WorkItemStatus, WorkQueue
from tests.e2e.ui.a11y import check_page


def _denied_items(ui_server, count: int) -> list[tuple[str, str, str]]:
    """(item public id, claim public id, claim number) of ``count`` new denied claims with their
    charge posted and an open denial item (CO-50 + N115, CO-4), as 835 posting leaves them. The
    demo's own two denials belong to other browser tests, so this test makes its own."""
    from claims_server.models import Coverage, Provider, RelationshipToSubscriber
    from claims_server.security.principal import acting_as, system_principal
    from claims_server.workqueue.services import open_work_item
    from tests.integration.workqueue.support import LineAnswer, adjudicate, make_claim, post_charge

    found = []
    with acting_as(system_principal("test:appeals")), ui_server.session_factory() as session:
        coverage = session.scalars(
            select(Coverage)
            .where(Coverage.coverage_order == 1, Coverage.relationship_code == RelationshipToSubscriber.SELF)
            .order_by(Coverage.id)
        ).first()
        rendering = session.scalar(select(Provider).where(Provider.is_rendering).order_by(Provider.id))
        ids = {
            "patient": coverage.patient.public_id,
            "coverage": coverage.public_id,
            "rendering_npi": rendering.npi,
        }
        for n in range(count):
            claim = make_claim(session, ids)
            post_charge(session, claim)
            adjudicate(
                session,
                claim,
                status="4",
                lines=[
                    LineAnswer(0, [("CO", "50", 17500)], remarks=["N115"]),
                    LineAnswer(0, [("CO", "4", 4550)]),
                ],
                payer_claim_number=f"ICN-E2E-APPEAL-{n}",
                payment_date=date.today() - timedelta(days=5),
            )
            item = open_work_item(
                session,
                queue=WorkQueue.DENIED,
                claim=claim,
                reason_codes=["CO-50", "CO-4", "N115"],
                recommended_action="appeal",
                explanation="CO-50: the payer judged the service not medically necessary.",
                dedupe_key=f"denied:e2e-appeal:{claim.public_id}",
            )
            session.flush()
            found.append((item.public_id, claim.public_id, claim.patient_control_number))
        session.commit()
    return found


def _item(ui_server, item_id: str) -> WorkItem:
    with ui_server.session_factory() as session:
        item = session.scalars(select(WorkItem).where(WorkItem.public_id == item_id)).one()
        session.expunge(item)
        return item


def _open_appeal_from_the_queue(page, ui_server, number: str) -> None:
    page.goto(ui_server.url("/ui/queues?queue=denied"))
    page.locator(f'tr[data-item]:has(a:text-is("{number}"))').get_by_role("link", name=number).click()
    page.wait_for_url("**/ui/claims/*")
    page.get_by_role("button", name="Open appeal").click()
    page.wait_for_url("**/ui/appeals/*")


def test_a_biller_appeals_a_denial_and_records_the_outcome(ui_page, ui_server):
    (item_id, claim_id, number), (won_item_id, _, won_number) = _denied_items(ui_server, 2)
    page = ui_page("biller")

    # Open the appeal from the denied item's claim: the appeal page shows a generated letter.
    _open_appeal_from_the_queue(page, ui_server, number)
    assert "Appeal opened" in page.get_by_role("status").inner_text()
    letter = page.get_by_label("Appeal letter")
    assert number in letter.input_value()
    deadline = page.locator("#appeal-deadline").inner_text()
    check_page(page, ui_server, "appeal-draft")
    item = _item(ui_server, item_id)
    assert item.queue is WorkQueue.APPEAL and item.due_date is not None
    assert item.due_date.isoformat() in deadline

    # Markup is refused beside the field and nothing is saved.
    letter.fill("Dear payer <script>x</script>")
    page.get_by_role("button", name="Save the letter").click()
    error = page.locator("#f-letter_text-error")
    error.wait_for()
    assert "plain text" in error.inner_text()
    with ui_server.session_factory() as session:
        stored = session.scalars(select(Appeal).where(Appeal.work_item_id == item.id)).one().letter_text
        assert "<script>" not in stored
    page.get_by_label("Appeal letter").fill(
        f"To the appeals department: please reconsider claim {number}; the records are enclosed."
    )
    page.get_by_role("button", name="Save the letter").click()
    page.get_by_role("status").wait_for()
    assert "letter was saved" in page.get_by_role("status").inner_text()
    page.get_by_label("Document").fill("Office note of the visit")
    page.get_by_label("Kind").select_option("medical_records")
    page.get_by_role("button", name="Add to the list").click()
    page.locator("#attachments").wait_for()
    assert "Office note of the visit" in page.locator("#attachments").inner_text()

    # The appeal queue (by deadline) has it; the denial queue does not; the Appeals page lists it.
    page.goto(ui_server.url("/ui/queues?queue=appeal"))
    row = page.locator(f'tr[data-item]:has(a:text-is("{number}"))')
    assert "Submit the appeal" in row.inner_text()
    assert "Write off" not in row.inner_text()
    page.goto(ui_server.url("/ui/queues?queue=denied"))
    assert page.locator(f'tr[data-item]:has(a:text-is("{number}"))').count() == 0
    page.get_by_role("link", name="Appeals", exact=True).first.click()
    page.wait_for_url("**/ui/appeals")
    appeal_row = page.locator(f'#appeals-table tr:has(a:text-is("{number}"))')
    assert "First" in appeal_row.inner_text() and "draft" in appeal_row.inner_text()
    check_page(page, ui_server, "appeals")

    # On the claim: the Appeals section, and no write-off while the appeal is live.
    page.goto(ui_server.url(f"/ui/claims/{claim_id}"))
    section = page.get_by_role("region", name="Appeals")
    assert "draft" in section.inner_text()
    assert page.locator("#write-off-form").count() == 0
    section.get_by_role("link", name="Letter and status").first.click()
    page.wait_for_url("**/ui/appeals/*")

    # Submit, then the payer upholds the denial: back in the denial queue, recommending the next level.
    page.get_by_role("button", name="Mark submitted").click()
    page.get_by_role("status").wait_for()
    assert page.locator("#appeal-status").inner_text().startswith("submitted")
    page.get_by_label("Outcome").select_option("upheld")
    page.get_by_role("button", name="Record").click()
    page.get_by_role("status").wait_for()
    assert "back in the denial queue" in page.get_by_role("status").inner_text()
    check_page(page, ui_server, "appeal-lost")
    item = _item(ui_server, item_id)
    assert (item.queue, item.status, item.recommended_action) == (
        WorkQueue.DENIED,
        WorkItemStatus.OPEN,
        "appeal",
    )
    page.goto(ui_server.url("/ui/queues?queue=denied"))
    assert page.locator(f'tr[data-item]:has(a:text-is("{number}"))').count() == 1
    page.go_back()
    page.get_by_role("button", name="Open the second-level appeal").click()
    page.get_by_role("status").wait_for()
    assert "second-level appeal is open" in page.get_by_role("status").inner_text()
    assert _item(ui_server, item_id).queue is WorkQueue.APPEAL

    # Another denial: submitted and overturned, its item closes.
    _open_appeal_from_the_queue(page, ui_server, won_number)
    page.get_by_role("button", name="Mark submitted").click()
    page.get_by_role("status").wait_for()
    page.get_by_label("Outcome").select_option("overturned")
    page.get_by_role("button", name="Record").click()
    page.get_by_role("status").wait_for()
    assert "Appeal won" in page.get_by_role("status").inner_text()
    won = _item(ui_server, won_item_id)
    assert won.status is WorkItemStatus.RESOLVED and "appeal won" in (won.resolution or "")
    page.goto(ui_server.url("/ui/queues?queue=appeal"))
    assert page.locator(f'tr[data-item]:has(a:text-is("{won_number}"))').count() == 0
