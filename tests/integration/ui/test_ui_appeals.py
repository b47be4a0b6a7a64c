"""The workspace's appeal pages over the Flask test client: the list by deadline, the claim's
Appeals section (no write-off while under appeal), refused input beside its field with nothing
changed, an auditor reading without forms."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from claims_server.models import WorkItem
from claims_server.models.workqueue import Appeal, AppealStatus, WorkQueue
from tests.integration.claims.support import seed
from tests.integration.corrections.test_appeals import _denied
from tests.integration.ui.support import csrf_token_of


@pytest.fixture
def ids(session):
    return seed(session)


def _appeal(session, api_client, ids, **kw):
    claim, item = _denied(session, ids, **kw)
    session.commit()
    biller = api_client("biller")
    r = biller.post(
        f"/ui/claims/{claim.public_id}/appeal",
        data={"csrf_token": csrf_token_of(biller, f"/ui/claims/{claim.public_id}")},
    )
    assert r.status_code == 303, r.get_data(as_text=True)[:2000]
    appeal_id = r.headers["Location"].rstrip("/").rsplit("/", 1)[1]
    return biller, claim, item, appeal_id


def _stored(session, appeal_id):
    session.rollback()
    session.expire_all()
    return session.scalars(select(Appeal).where(Appeal.public_id == appeal_id)).one()


def test_the_appeal_pages_and_the_claim_section(session, ids, api_client):
    biller, claim, item, appeal_id = _appeal(session, api_client, ids)
    html = biller.get(f"/ui/appeals/{appeal_id}").get_data(as_text=True)
    assert claim.patient_control_number in html and "Mark submitted" in html
    assert 'id="f-letter_text"' in html
    listing = biller.get("/ui/appeals").get_data(as_text=True)
    assert f'data-appeal="{appeal_id}"' in listing and claim.patient.last_name in listing
    page = biller.get(f"/ui/claims/{claim.public_id}").get_data(as_text=True)
    assert 'id="claim-appeals"' in page and f"/ui/appeals/{appeal_id}" in page
    assert 'id="write-off-form"' not in page
    queue = biller.get("/ui/queues?queue=appeal").get_data(as_text=True)
    row = re.search(rf'<tr data-item="{item.public_id}">.*?</tr>', queue, re.S)
    assert row and "Submit the appeal" in row.group(0) and "Write off" not in row.group(0)


def test_refused_input_shows_beside_its_field_and_changes_nothing(session, ids, api_client):
    biller, _, item, appeal_id = _appeal(session, api_client, ids)
    before = _stored(session, appeal_id).letter_text
    token = csrf_token_of(biller, f"/ui/appeals/{appeal_id}")
    r = biller.post(
        f"/ui/appeals/{appeal_id}/letter", data={"csrf_token": token, "letter_text": "Hello <b>payer</b>"}
    )
    assert r.status_code == 422
    assert 'id="f-letter_text-error"' in r.get_data(as_text=True)
    assert _stored(session, appeal_id).letter_text == before
    r = biller.post(
        f"/ui/appeals/{appeal_id}/attachments", data={"csrf_token": token, "name": "", "kind": "x"}
    )
    assert r.status_code == 422
    body = r.get_data(as_text=True)
    assert 'id="f-name-error"' in body and 'id="f-kind-error"' in body
    r = biller.post(f"/ui/appeals/{appeal_id}/outcome", data={"csrf_token": token, "outcome": "upheld"})
    assert r.status_code == 422 and 'id="f-outcome-error"' in r.get_data(as_text=True)
    stored = _stored(session, appeal_id)
    assert stored.status is AppealStatus.DRAFT and stored.attachments == "[]"
    assert session.get(WorkItem, item.id).queue is WorkQueue.APPEAL


def test_an_auditor_reads_without_forms(session, ids, api_client):
    _, _, _, appeal_id = _appeal(session, api_client, ids)
    auditor = api_client("auditor")
    html = auditor.get(f"/ui/appeals/{appeal_id}").get_data(as_text=True)
    assert "Mark submitted" not in html and 'id="letter-text"' in html
    assert auditor.get("/ui/appeals").status_code == 200
    r = auditor.post(f"/ui/appeals/{appeal_id}/submit", data={})
    assert r.status_code in (400, 403)
    assert _stored(session, appeal_id).status is AppealStatus.DRAFT
