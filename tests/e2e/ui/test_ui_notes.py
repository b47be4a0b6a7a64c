"""Issue 18's Done-when in a real browser: a biller adds a call note with a follow-up date on a
queue item, the item leaves the queue until then, the note shows on the claim, and My follow-ups
lists it when the date comes.

A browser cannot move the server's clock, so "when the date comes" is checked in two honest
halves: the item set for tomorrow is listed as upcoming on the page and is due in the service
(``notes.follow_ups``, the function behind the page and ``GET /api/v1/follow-ups``) on tomorrow's
date; and a second item set for today shows as due on the page, with the count in the menu.

The items are this test's own (queue "other", fresh dedupe keys), so tests sharing the demo
server do not see them change.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from claims_server.db import unit_of_work
from claims_server.models import Claim, User, WorkItem
from claims_server.models.workqueue import WorkItemStatus, WorkQueue
from claims_server.security.principal import acting_as, system_principal
from claims_server.workqueue import notes
from claims_server.workqueue.services import open_work_item
from tests.e2e.ui.a11y import check_page


def _own_item(ui_server, n: int) -> tuple[str, str, str]:
    """(item public id, claim public id, claim number) of a new item in queue "other"."""
    with acting_as(system_principal("test:ui-notes")), unit_of_work(ui_server.session_factory) as session:
        claim = session.scalars(select(Claim).order_by(Claim.id).offset(n)).first()
        item = open_work_item(
            session,
            queue=WorkQueue.OTHER,
            claim=claim,
            reason_codes=[],
            recommended_action="review",
            explanation="Check the claim status with the payer.",
            dedupe_key=f"e2e-notes:{uuid.uuid4().hex}",
        )
        session.flush()
        return item.public_id, claim.public_id, claim.patient_control_number


def test_a_call_note_with_a_follow_up_takes_the_item_out_of_the_queue_until_then(ui_page, ui_server):
    item_id, claim_id, number = _own_item(ui_server, 0)
    today = datetime.now(UTC).date()
    tomorrow = today + timedelta(days=1)
    text = f"Called the payer about {number}: reprocessing, call back. Ref {uuid.uuid4().hex[:6]}"
    page = ui_page("biller")
    page.goto(ui_server.url("/ui/queues?queue=other"))
    row = page.locator(f'tr[data-item="{item_id}"]')
    row.get_by_role("link", name="Details").click()
    page.wait_for_url(f"**/ui/work-items/{item_id}")
    check_page(page, ui_server, "work-item")

    panel = page.get_by_role("region", name="Notes and follow-up")
    panel.get_by_label("Kind").select_option("call")
    panel.get_by_label("Follow up on (optional)").fill(tomorrow.isoformat())
    panel.get_by_label("Note").fill(text)
    panel.get_by_role("button", name="Add note").click()
    page.wait_for_url(f"**/ui/work-items/{item_id}#notes")
    status = page.get_by_role("status")
    status.wait_for()
    assert f"waits until {tomorrow.isoformat()}" in status.inner_text()
    assert page.locator("#item-status").inner_text() == f"waiting until {tomorrow.isoformat()}"
    assert page.locator("#item-assignee").inner_text() == ui_server.users["biller"].username
    assert text in page.get_by_role("region", name="Notes and follow-up").inner_text()

    # Out of the open queue until then.
    page.get_by_role("link", name="Work queues").click()
    page.goto(ui_server.url("/ui/queues?queue=other"))
    page.get_by_role("heading", name="Items").wait_for()
    assert page.locator(f'tr[data-item="{item_id}"]').count() == 0, "the snoozed item is still in the queue"

    # The note shows on the claim.
    page.goto(ui_server.url(f"/ui/claims/{claim_id}"))
    notes_region = page.get_by_role("region", name="Notes")
    notes_region.wait_for()
    assert text in notes_region.inner_text()

    # My follow-ups: upcoming today; due in the service on tomorrow's date.
    page.get_by_role("link", name="My follow-ups").click()
    page.wait_for_url("**/ui/follow-ups")
    upcoming = page.locator(f'table[aria-labelledby="upcoming-title"] tr[data-item="{item_id}"]')
    upcoming.wait_for()
    assert tomorrow.isoformat() in upcoming.inner_text()
    with ui_server.session_factory() as session:
        biller = session.scalars(
            select(User).where(User.username == ui_server.users["biller"].username)
        ).one()
        due = notes.follow_ups(session, biller, today=tomorrow)
        assert item_id in [f.item.public_id for f in due]
        assert item_id not in [f.item.public_id for f in notes.follow_ups(session, biller, today=today)]
        stored = session.scalars(select(WorkItem).where(WorkItem.public_id == item_id)).one()
        assert stored.status == WorkItemStatus.SNOOZED

    # A follow-up set for today is due now: listed under "Due today" and counted in the menu.
    second_id, _, _ = _own_item(ui_server, 1)
    page.goto(ui_server.url(f"/ui/work-items/{second_id}"))
    panel = page.get_by_role("region", name="Notes and follow-up")
    panel.get_by_label("Kind").select_option("payer_portal")
    panel.get_by_label("Follow up on (optional)").fill(today.isoformat())
    panel.get_by_label("Note").fill("Portal shows the claim in process.")
    panel.get_by_role("button", name="Add note").click()
    page.get_by_role("status").wait_for()
    page.get_by_role("link", name="My follow-ups").click()
    page.wait_for_url("**/ui/follow-ups")
    page.locator(f'table[aria-labelledby="due-title"] tr[data-item="{second_id}"]').wait_for()
    assert int(page.locator("#followups-due").inner_text().split()[0]) >= 1
    check_page(page, ui_server, "follow-ups")


def test_a_note_with_markup_or_a_past_date_is_refused_beside_its_field(ui_page, ui_server):
    item_id, _, _ = _own_item(ui_server, 2)
    page = ui_page("biller")
    page.goto(ui_server.url(f"/ui/work-items/{item_id}"))
    panel = page.get_by_role("region", name="Notes and follow-up")
    panel.get_by_label("Follow up on (optional)").fill(
        (datetime.now(UTC).date() - timedelta(days=1)).isoformat()
    )
    panel.get_by_label("Note").fill("Pasted <b>DENIED</b> from the portal")
    panel.get_by_role("button", name="Add note").click()
    error = page.locator("#f-note_body-error")
    error.wait_for()
    assert "plain text only" in error.inner_text()
    assert "or later" in page.locator("#f-note_follow_up_on-error").inner_text()
    assert page.locator("#f-note_body").get_attribute("aria-invalid") == "true"
    check_page(page, ui_server, "work-item-refused-note")
    with ui_server.session_factory() as session:
        stored = session.scalars(select(WorkItem).where(WorkItem.public_id == item_id)).one()
        assert (stored.status, stored.assignee_user_id) == (WorkItemStatus.OPEN, None)
