"""The workspace's follow-up: the work item page (notes panel, manual resolve), the same panel on
the claim and patient pages, and My follow-ups with its count in the navigation."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from claims_server.models import AuditEvent, Note, WorkItem
from claims_server.models.workqueue import WorkItemStatus
from tests.integration.claims.support import seed
from tests.integration.ui.support import csrf_token_of
from tests.integration.workqueue.support import open_co16_denial


@pytest.fixture
def item(session):
    return open_co16_denial(session, seed(session), "ui-notes:1")


def _today():
    return datetime.now(UTC).date()


def _notes(session) -> int:
    session.rollback()
    session.expire_all()  # the rows the fixture made: read them again
    return session.scalar(select(func.count()).select_from(Note))


def _post(client, path: str, page: str, **fields):
    return client.post(path, data={"csrf_token": csrf_token_of(client, page), **fields})


def test_a_note_with_a_follow_up_from_the_item_page(session, api_client, item):
    biller = api_client("biller")
    page = f"/ui/work-items/{item.public_id}"
    html = biller.get(page).get_data(as_text=True)
    assert 'id="notes"' in html and "No notes yet." in html and "Resolve by hand" in html
    assert f'href="{page}"' in biller.get("/ui/queues").get_data(as_text=True)  # the queue links the item

    tomorrow = _today() + timedelta(days=1)
    answer = _post(
        biller,
        f"{page}/follow-up-notes",
        page,
        note_kind="call",
        note_body="Called Acme: resubmit with the referral number.",
        note_follow_up_on=tomorrow.isoformat(),
    )
    assert answer.status_code == 303, answer.get_data(as_text=True)[:500]
    html = biller.get(page).get_data(as_text=True)
    assert "Called Acme: resubmit with the referral number." in html
    assert f"waiting until {tomorrow.isoformat()}" in html
    assert biller.principal_info["username"] in html  # assigned to the author, and the note's author
    assert f'data-item="{item.public_id}"' not in biller.get("/ui/queues").get_data(as_text=True)
    for other in (f"/ui/claims/{item.claim.public_id}", f"/ui/patients/{item.claim.patient.public_id}"):
        assert "Called Acme: resubmit with the referral number." in biller.get(other).get_data(
            as_text=True
        ), other
    followups = biller.get("/ui/follow-ups").get_data(as_text=True)
    assert "Nothing due today." in followups and f'data-item="{item.public_id}"' in followups
    assert 'id="followups-due"' not in followups  # nothing due: no count in the navigation


def test_a_follow_up_today_is_counted_in_the_navigation(session, api_client, item):
    biller = api_client("biller")
    page = f"/ui/work-items/{item.public_id}"
    answer = _post(biller, f"{page}/follow-up-notes", page, note_kind="payer_portal", note_body="pending",
                   note_follow_up_on=_today().isoformat())  # fmt: skip
    assert answer.status_code == 303
    html = biller.get("/ui/follow-ups").get_data(as_text=True)
    assert re.search(r'id="followups-due">1<', html)
    assert 'Due today <span class="sub">(1)</span>' in html
    assert f'data-item="{item.public_id}"' in biller.get("/ui/queues").get_data(
        as_text=True
    )  # still in the queue


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"note_follow_up_on": "2020-01-01"}, "note_follow_up_on", "or later"),
        ({"note_follow_up_on": "01/02/2030"}, "note_follow_up_on", "a date such as"),
        ({"note_body": "x" * 100_000}, "note_body", "at most 4,000 characters"),
        ({"note_body": "copied <b>DENIED</b>"}, "note_body", "plain text only"),
        ({"note_body": ""}, "note_body", "write the note"),
        ({"note_kind": "fax"}, "note_kind", "one of"),
    ],
)
def test_bad_input_shows_beside_the_field_and_writes_nothing(
    session, api_client, item, fields, field, message
):
    biller = api_client("biller")
    page = f"/ui/work-items/{item.public_id}"
    form = {"note_kind": "call", "note_body": "called", "note_follow_up_on": "", **fields}
    answer = _post(biller, f"{page}/follow-up-notes", page, **form)
    assert answer.status_code == 422
    html = answer.get_data(as_text=True)
    error = re.search(rf'<p class="field-error" id="f-{field}-error">([^<]*)</p>', html)
    assert error and message in error.group(1), html[html.find("field-error") - 200 :][:600]
    assert _notes(session) == 0
    stored = session.get(WorkItem, item.id)
    assert (stored.status, stored.assignee_user_id) == (WorkItemStatus.OPEN, None)


def test_the_claim_and_patient_panels_add_notes_and_show_errors_in_place(session, api_client, item):
    biller = api_client("biller")
    claim_page = f"/ui/claims/{item.claim.public_id}"
    refused = _post(
        biller, f"{claim_page}/follow-up-notes", claim_page, note_kind="call", note_body="<i>x</i>"
    )
    assert refused.status_code == 422
    assert 'id="f-note_body-error"' in refused.get_data(as_text=True)
    assert 'id="f-note_follow_up_on"' not in refused.get_data(as_text=True)  # dates go on work items
    added = _post(
        biller, f"{claim_page}/follow-up-notes", claim_page, note_kind="internal", note_body="modifier 25"
    )
    assert added.status_code == 303 and added.headers["Location"].endswith("#notes")
    patient_page = f"/ui/patients/{item.claim.patient.public_id}"
    refused = _post(
        biller, f"{patient_page}/follow-up-notes", patient_page, note_kind="letter", note_body=" "
    )
    assert refused.status_code == 422 and 'id="f-note_body-error"' in refused.get_data(as_text=True)
    added = _post(
        biller, f"{patient_page}/follow-up-notes", patient_page, note_kind="letter", note_body="new address"
    )
    assert added.status_code == 303
    html = biller.get(patient_page).get_data(as_text=True)
    assert html.index("new address") < html.index("modifier 25")  # newest first
    assert _notes(session) == 2


def test_manual_resolve_with_a_reason(session, api_client, item):
    biller = api_client("biller")
    page = f"/ui/work-items/{item.public_id}"
    refused = _post(biller, f"{page}/resolve", page, resolution="", resolution_note="x")
    assert refused.status_code == 422 and 'id="f-resolution-error"' in refused.get_data(as_text=True)
    answer = _post(
        biller, f"{page}/resolve", page, resolution="no_action_needed", resolution_note="paid on recheck"
    )
    assert answer.status_code == 303
    session.rollback()
    session.expire_all()
    stored = session.get(WorkItem, item.id)
    assert stored.status is WorkItemStatus.RESOLVED
    assert stored.resolution == "no_action_needed: paid on recheck"
    html = biller.get(page).get_data(as_text=True)
    assert "Resolve by hand" not in html and 'id="f-note_follow_up_on"' not in html
    event = session.scalar(select(AuditEvent).where(AuditEvent.event_type == "work_item.resolve"))
    assert "recheck" not in str(event.details)


def test_an_auditor_reads_but_has_no_forms(session, api_client, item):
    auditor = api_client("auditor")
    page = f"/ui/work-items/{item.public_id}"
    html = auditor.get(page).get_data(as_text=True)
    assert 'id="notes"' in html and "Add note" not in html and "Resolve by hand" not in html
    assert "My follow-ups" in html
    answer = auditor.post(f"{page}/follow-up-notes", data={"note_kind": "call", "note_body": "x"})
    assert answer.status_code in (400, 403)
    assert _notes(session) == 0


def test_a_form_over_the_size_limit_is_refused_as_a_page(session, api_client, item):
    biller = api_client("biller")
    page = f"/ui/work-items/{item.public_id}"
    answer = _post(
        biller, f"{page}/follow-up-notes", page, note_kind="call", note_body="x" * (2 * 1024 * 1024)
    )
    assert answer.status_code == 413
    assert answer.mimetype == "text/html" and "Traceback" not in answer.get_data(as_text=True)
    assert _notes(session) == 0
