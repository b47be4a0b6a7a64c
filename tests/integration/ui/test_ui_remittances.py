"""Remittance screen: a payment explained, and an uploaded 835 previewed (dry run) before it is posted."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select

from claims_server.app import state
from claims_server.models import AuditEvent, EdiFile, JournalEntry, Remittance
from claims_server.remittance.services import receive_and_post
from coding.adjustment_codes import lookup
from tests.integration.remittance.support import Clp, Svc, build_835, make_claim, seed_world
from tests.integration.ui.money_support import audit_events, payment_835, upload_835, with_request_id
from tests.integration.ui.support import csrf_token_of, linked_urls


@pytest.fixture
def world(session):
    return seed_world(session)


def _payment(pcn: str, trace: str) -> bytes:
    return payment_835(pcn, trace, unmatched=True)


def _counts(session) -> tuple[int, int, int]:
    session.rollback()
    return (
        session.scalar(select(func.count()).select_from(Remittance)),
        session.scalar(select(func.count()).select_from(JournalEntry)),
        session.scalar(select(func.count()).select_from(EdiFile)),
    )


def test_a_payment_is_explained_adjustment_by_adjustment(app, session, api_client, world):
    claim = make_claim(session, world, "PCNUI0001", [("99213", 12000), ("85025", 3000)])
    report = receive_and_post(state(app).session_factory, _payment("PCNUI0001", "UITRACE1"))
    assert report.status == "posted", report.error
    remittance = session.scalars(select(Remittance)).one()

    auditor = api_client("auditor")
    listing = auditor.get("/ui/remittances")
    assert listing.status_code == 200
    page = listing.get_data(as_text=True)
    assert "UITRACE1" in page and "$130.00" in page
    assert 'id="upload-835"' not in page  # an auditor reads, does not post

    answer, request_id = with_request_id(auditor, "GET", f"/ui/remittances/{remittance.public_id}")
    assert answer.status_code == 200
    html = answer.get_data(as_text=True)
    for code, carc in (("CO-45", "45"), ("PR-2", "2"), ("CO-97", "97")):
        assert f"{code}: $" in html
        assert lookup("carc", carc).meaning in html
    assert "Remark M15" in html and lookup("rarc", "M15").meaning in html
    assert f'href="/ui/claims/{claim.public_id}"' in html
    assert "cash clearing" in html and "ar insurance" in html  # what was posted, by account
    assert "NOSUCHCLAIM01" in html and "unapplied payments" in html  # the unmatched claim
    # A PHI view: the claims it showed are audited as read, by this request.
    reads = audit_events(session, request_id, "R")
    assert {(e.entity_type, e.entity_id) for e in reads} >= {("claim", claim.public_id)}
    for url in linked_urls(html):
        assert claim.patient.last_name.lower() not in url.lower()


def test_upload_is_a_dry_run_first_then_post_posts_once(app, session, api_client, world):
    claim = make_claim(session, world, "PCNUI0002", [("99213", 12000), ("85025", 3000)])
    biller = api_client("biller")
    before = _counts(session)

    answer = upload_835(biller, _payment("PCNUI0002", "UITRACE2"))
    assert answer.status_code == 201, answer.get_data(as_text=True)
    preview_url = answer.get_json()["preview"]
    remittances, entries, files = _counts(session)
    assert (remittances, entries, files) == (before[0], before[1], before[2] + 1)  # kept, not posted

    preview, request_id = with_request_id(biller, "GET", preview_url)
    assert preview.status_code == 200
    html = preview.get_data(as_text=True)
    assert "dry run" in html and "nothing has been posted yet" in html
    assert "UITRACE2" in html and "$130.00" in html  # BPR02
    assert re.search(r'id="preview-paid">\$130\.00<', html)
    assert f'href="/ui/claims/{claim.public_id}"' in html
    assert _counts(session)[:2] == before[:2]  # the dry run changed nothing
    executed = audit_events(session, request_id, "E")
    assert [e.event_type for e in executed] == ["remittance.dry_run"]
    reads = {(e.entity_type, e.entity_id, e.patient_id) for e in audit_events(session, request_id, "R")}
    assert ("claim", claim.public_id, claim.patient_id) in reads  # the preview is a PHI view

    token = csrf_token_of(biller, preview_url)
    post_url = preview_url + "/post"
    posted = biller.post(post_url, data={"csrf_token": token})
    assert posted.status_code == 303
    remittance = session.scalars(select(Remittance).where(Remittance.trace_number == "UITRACE2")).one()
    assert posted.headers["Location"].endswith(f"/ui/remittances/{remittance.public_id}")
    after_post = _counts(session)
    assert after_post[0] == before[0] + 1 and after_post[1] > before[1]
    detail = biller.get(posted.headers["Location"]).get_data(as_text=True)
    assert "Posted $130.00 to 1 claim(s)" in detail and "$130.00" in detail

    again = biller.post(post_url, data={"csrf_token": token})  # a double click
    assert again.status_code == 303
    assert _counts(session) == after_post
    assert "posted before; nothing was posted again" in biller.get(again.headers["Location"]).get_data(
        as_text=True
    )
    # The preview of a posted file goes to its payment.
    assert biller.get(preview_url).headers["Location"].endswith(remittance.public_id)


def test_a_file_that_cannot_be_posted_shows_where_and_why_and_changes_nothing(
    app, session, api_client, world
):
    make_claim(session, world, "PCNUI0003", [("99213", 12000)])
    biller = api_client("billing_supervisor")
    # BPR02 says 100.00 but the claims pay 90.00: the balancing check refuses the file.
    content = build_835(
        [Clp("PCNUI0003", "1", 12000, 9000, 0, lines=[Svc("99213", 12000, 9000, [("CO", "45", 3000)])])],
        trace="UITRACE3",
        bpr02=10000,
    )
    before = _counts(session)
    answer = upload_835(biller, content)
    assert answer.status_code == 201
    preview = biller.get(answer.get_json()["preview"])
    assert preview.status_code == 422
    html = preview.get_data(as_text=True)
    assert "cannot be posted" in html and 'id="problems"' in html
    assert "Nothing was posted and nothing changed" in html
    assert 'action="' + answer.get_json()["preview"] + '/post"' not in html  # no Post button
    remittances, entries, files = _counts(session)
    assert (remittances, entries) == before[:2] and files == before[2] + 1
    stored = session.scalars(select(EdiFile).order_by(EdiFile.id.desc())).first()
    assert stored.status.value == "received"  # a dry run never marks the file failed


def test_unreadable_uploads_are_refused_with_the_reason_and_nothing_is_stored(
    app, session, api_client, world
):
    biller = api_client("biller")
    before = _counts(session)
    not_x12 = upload_835(biller, b"GS*HP*this is not an interchange~")
    assert not_x12.status_code == 422
    assert "ISA" in not_x12.get_json()["detail"]
    not_835 = upload_835(
        biller,
        b"ISA*00*          *00*          *ZZ*A              *ZZ*B              *260110*1200*^*00501*000000001*0*T*:~"
        b"GS*HC*A*B*20260110*1200*1*X*005010X222A1~ST*837*0001*005010X222A1~SE*2*0001~GE*1*1~IEA*1*000000001~",
    )
    assert not_835.status_code == 422 and "not an 835" in not_835.get_json()["detail"]
    assert _counts(session) == before


def test_roles_and_csrf_guard_upload_and_post(app, session, api_client, world):
    make_claim(session, world, "PCNUI0004", [("99213", 12000), ("85025", 3000)])
    content = _payment("PCNUI0004", "UITRACE4")
    before = _counts(session)
    biller = api_client("biller")
    forged = upload_835(biller, content, token="forged")
    assert forged.status_code == 400
    assert _counts(session) == before

    auditor = api_client("auditor")
    csrf_token_of(auditor, "/ui/dashboard")
    assert upload_835(auditor, content, token="x").status_code in (400, 403)
    preview_url = upload_835(biller, content).get_json()["preview"]
    assert auditor.get(preview_url).status_code == 403
    assert auditor.post(preview_url + "/post", data={"csrf_token": "x"}).status_code in (400, 403)
    integration = api_client("integration")
    assert integration.get("/ui/remittances").status_code == 403
    assert _counts(session)[:2] == before[:2]
    denied = session.scalars(select(AuditEvent).where(AuditEvent.event_type.like("%denied%"))).all()
    assert denied, "refusals are audited by the policy hook"
