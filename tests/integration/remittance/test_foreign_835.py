"""An 835 that is not ours (unknown payer, none of its claims ours) is posted only with a billing
supervisor's confirmation: ``confirm_foreign=true`` on the API, a ticked box on the workspace."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from claims_server.models import EdiFile, EdiFileStatus, JournalEntry, Remittance
from tests.integration.remittance.foreign_support import foreign_835
from tests.integration.remittance.support import make_claim, seed_world
from tests.integration.ui.money_support import payment_835, upload_835
from tests.integration.ui.support import csrf_token_of

X12 = {"Content-Type": "application/edi-x12"}


@pytest.fixture
def world(session):
    return seed_world(session)


def _counts(session) -> tuple[int, int]:
    session.rollback()
    return (
        session.scalar(select(func.count()).select_from(Remittance)),
        session.scalar(select(func.count()).select_from(JournalEntry)),
    )


def test_the_api_refuses_a_foreign_835_until_a_supervisor_confirms(session, world, api_client):
    biller, supervisor = api_client("biller"), api_client("billing_supervisor")
    body = foreign_835("FOREIGN1")
    before = _counts(session)

    dry = biller.post("/api/v1/remittances?dry_run=true", data=body, headers=X12)
    assert dry.status_code == 200
    origin = dry.get_json()["origin"]
    assert origin["foreign"] is True
    (payment,) = origin["payments"]
    assert payment["payer_known"] is False and payment["payee_ours"] is False
    assert (payment["claims"], payment["claims_matched"]) == (2, 0)
    assert payment["payment"] == "70.00"

    refused = biller.post("/api/v1/remittances", data=body, headers=X12)
    assert refused.status_code == 409
    problem = refused.get_json()
    assert problem["errors"][0]["field"] == "confirm_foreign"
    assert problem["errors"][0]["rule"] == "foreign_remittance"
    assert "not one of our payers" in problem["detail"] and "0 of 2 matched" in problem["detail"]
    assert _counts(session) == before  # nothing posted

    not_a_supervisor = biller.post("/api/v1/remittances?confirm_foreign=true", data=body, headers=X12)
    assert not_a_supervisor.status_code == 409
    assert not_a_supervisor.get_json()["errors"][0]["rule"] == "supervisor_confirmation"
    assert _counts(session) == before
    stored = session.scalars(select(EdiFile).order_by(EdiFile.id.desc())).first()
    assert stored.status is EdiFileStatus.RECEIVED  # kept, not posted

    unconfirmed = supervisor.post("/api/v1/remittances", data=body, headers=X12)
    assert unconfirmed.status_code == 409 and _counts(session) == before

    posted = supervisor.post("/api/v1/remittances?confirm_foreign=true", data=body, headers=X12)
    assert posted.status_code == 201, posted.get_json()
    assert _counts(session)[0] == before[0] + 1


def test_our_own_835_posts_without_a_question(session, world, api_client):
    make_claim(session, world, "PCNOURS01", [("99213", 12000), ("85025", 3000)])
    answer = api_client("biller").post(
        "/api/v1/remittances", data=payment_835("PCNOURS01", "OURS1"), headers=X12
    )
    assert answer.status_code == 201, answer.get_json()
    assert answer.get_json()["origin"]["foreign"] is False


def test_the_preview_warns_and_only_a_supervisor_may_post_with_the_box_ticked(session, world, api_client):
    biller, supervisor = api_client("biller"), api_client("billing_supervisor")
    before = _counts(session)
    uploaded = upload_835(biller, foreign_835("FOREIGN2"))
    assert uploaded.status_code == 201
    preview_url = uploaded.get_json()["preview"]
    post_url = preview_url + "/post"

    html = biller.get(preview_url).get_data(as_text=True)
    assert 'id="foreign-warning"' in html and "This payment does not look like ours" in html
    assert "not one of our payers" in html and "not our practice's NPI/TIN" in html
    assert "0 of 2 claims matched" in html
    assert 'id="foreign-not-allowed"' in html and "Only a billing supervisor" in html
    assert "to the ledger</button>" not in html  # a biller gets no Post button

    token = csrf_token_of(biller, "/ui/remittances")
    refused = biller.post(post_url, data={"csrf_token": token, "confirm_foreign": "yes"})
    assert (
        refused.status_code == 409 and "only a billing supervisor" in refused.get_data(as_text=True).lower()
    )
    assert _counts(session) == before

    page = supervisor.get(preview_url).get_data(as_text=True)
    assert 'name="confirm_foreign"' in page and "Post $70.00 to the ledger" in page
    token = csrf_token_of(supervisor, "/ui/remittances")
    unticked = supervisor.post(post_url, data={"csrf_token": token})
    assert unticked.status_code == 409
    assert 'id="f-confirm_foreign-error"' in unticked.get_data(as_text=True)
    assert _counts(session) == before

    ticked = supervisor.post(post_url, data={"csrf_token": token, "confirm_foreign": "yes"})
    assert ticked.status_code == 303
    assert _counts(session)[0] == before[0] + 1
    remittance = session.scalars(select(Remittance).order_by(Remittance.id.desc())).first()
    detail = supervisor.get(f"/ui/remittances/{remittance.public_id}").get_data(as_text=True)
    assert 'id="foreign-warning"' in detail and "0 of 2 claims matched" in detail
