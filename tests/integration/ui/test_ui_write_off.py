"""The claim screen's write-off form over the Flask test client; the HTML 404 page under /ui."""

from __future__ import annotations

import re
from datetime import date

import pytest
from sqlalchemy import func, select

from claims_server.ledger.write_offs import WriteOffBucket, open_balances
from claims_server.models import Claim, JournalEntry, JournalEventType, WorkItem
from claims_server.models.workqueue import WorkItemStatus, WorkQueue
from claims_server.workqueue.services import RecommendedAction, open_work_item
from tests.integration.payments.support import owed_claim
from tests.integration.remittance.support import seed_world
from tests.integration.ui.support import csrf_token_of


@pytest.fixture
def claim(session):
    """The payer owes 120.00 and the patient 55.00; a denial item recommends writing off."""
    claim = owed_claim(
        session,
        seed_world(session),
        "WOUI1",
        [("99213", 15000, 4000), ("36415", 2500, 1500)],
        since=date(2026, 1, 10),
    )
    open_work_item(
        session,
        queue=WorkQueue.DENIED,
        claim=claim,
        reason_codes=["CO-29"],
        recommended_action=RecommendedAction.WRITE_OFF,
        explanation="CO-29: the time limit for filing has expired.",
        dedupe_key="test:ui:wo",
    )
    session.commit()
    return claim


def _write_offs(session) -> int:
    session.rollback()
    return session.scalar(
        select(func.count())
        .select_from(JournalEntry)
        .where(JournalEntry.event_type == JournalEventType.WRITE_OFF)
    )


def _form(client, claim) -> dict[str, str]:
    html = client.get(f"/ui/claims/{claim.public_id}").get_data(as_text=True)
    form = html[html.index('id="write-off-form"') :]
    form = form[: form.index("</form>")]
    return {
        "csrf_token": re.search(r'name="csrf_token" value="([^"]+)"', form).group(1),
        "wo_key": re.search(r'name="wo_key" value="([^"]+)"', form).group(1),
        "wo_amount": re.search(r'name="wo_amount" type="text" value="([^"]*)"', form).group(1),
        "wo_bucket": re.search(r'<option value="(\w+)" selected', form).group(1),
    }


def test_the_form_defaults_to_the_open_balance_and_posts_once(session, api_client, claim):
    biller = api_client("biller")
    form = _form(biller, claim)
    assert form["wo_amount"] == "120.00" and form["wo_bucket"] == "insurance"
    form |= {"wo_reason": "timely_filing", "wo_note": "no proof of timely filing"}
    answer = biller.post(f"/ui/claims/{claim.public_id}/write-off", data=form)
    assert answer.status_code == 303
    page = biller.get(answer.headers["Location"]).get_data(as_text=True)
    assert "Wrote off $120.00 of the insurance balance" in page
    assert "write-off</td><td>insurance $120.00: Timely filing limit missed" in page
    again = biller.post(f"/ui/claims/{claim.public_id}/write-off", data=form)  # a double click
    assert again.status_code == 303
    assert "already posted" in biller.get(again.headers["Location"]).get_data(as_text=True)
    assert _write_offs(session) == 1
    assert open_balances(session, session.get(Claim, claim.id))[WriteOffBucket.INSURANCE] == 0
    item = session.scalar(select(WorkItem).where(WorkItem.dedupe_key == "test:ui:wo"))
    assert item.status == WorkItemStatus.RESOLVED


def test_without_the_csrf_token_it_is_refused_and_nothing_changes(session, api_client, claim):
    biller = api_client("biller")
    form = _form(biller, claim) | {"wo_reason": "bad_debt"}
    del form["csrf_token"]
    answer = biller.post(f"/ui/claims/{claim.public_id}/write-off", data=form)
    assert answer.status_code == 400 and "form has expired" in answer.get_data(as_text=True)
    answer = biller.post(f"/ui/claims/{claim.public_id}/write-off", data={**form, "csrf_token": "forged"})
    assert answer.status_code == 400
    assert _write_offs(session) == 0


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        (
            {"wo_amount": "500.00", "wo_reason": "bad_debt"},
            "wo_amount",
            "more than the open insurance balance",
        ),
        ({"wo_amount": "0", "wo_reason": "bad_debt"}, "wo_amount", "greater than zero"),
        ({"wo_amount": "ten", "wo_reason": "bad_debt"}, "wo_amount", "Enter an amount in dollars and cents"),
        (
            {"wo_amount": "\uff15", "wo_reason": "bad_debt"},
            "wo_amount",
            "in dollars and cents",
        ),  # full-width 5
        ({"wo_amount": "\u00b2", "wo_reason": "bad_debt"}, "wo_amount", "in dollars and cents"),
        ({"wo_reason": ""}, "wo_reason", ""),
        ({"wo_reason": "other"}, "wo_note", "say why"),
    ],
)
def test_an_error_shows_beside_its_field_and_nothing_changes(
    session, api_client, claim, change, field, message
):
    biller = api_client("biller")
    form = _form(biller, claim) | change
    answer = biller.post(f"/ui/claims/{claim.public_id}/write-off", data=form)
    assert answer.status_code == 422
    html = answer.get_data(as_text=True)
    error = re.search(rf'<p class="field-error" id="f-{field}-error">([^<]+)</p>', html)
    assert error and message in error.group(1), html[html.index('id="write-off-form"') :][:3000]
    assert f'id="f-{field}"' in html and 'aria-invalid="true"' in html
    assert f'value="{form["wo_key"]}"' in html  # the retry keeps the form's key
    assert _write_offs(session) == 0
    item = session.scalar(select(WorkItem).where(WorkItem.dedupe_key == "test:ui:wo"))
    assert item.status == WorkItemStatus.OPEN


def test_an_auditor_sees_no_form_and_may_not_post(session, api_client, claim):
    auditor = api_client("auditor")
    page = auditor.get(f"/ui/claims/{claim.public_id}").get_data(as_text=True)
    assert 'id="write-off-form"' not in page
    token = csrf_token_of(auditor)
    data = {
        "csrf_token": token,
        "wo_key": "k",
        "wo_amount": "1.00",
        "wo_bucket": "insurance",
        "wo_reason": "bad_debt",
    }
    assert auditor.post(f"/ui/claims/{claim.public_id}/write-off", data=data).status_code == 403
    assert _write_offs(session) == 0


def test_no_open_balance_no_form(session, api_client, claim):
    supervisor = api_client("billing_supervisor")
    for bucket, amount in (("insurance", "120.00"), ("patient", "55.00")):
        form = _form(supervisor, claim) | {
            "wo_bucket": bucket,
            "wo_amount": amount,
            "wo_reason": "administrative",
        }
        assert supervisor.post(f"/ui/claims/{claim.public_id}/write-off", data=form).status_code == 303
    page = supervisor.get(f"/ui/claims/{claim.public_id}").get_data(as_text=True)
    assert 'id="write-off-form"' not in page
    assert page.count("Administrative") == 2


def test_an_unknown_ui_path_is_an_html_404_and_the_api_keeps_problem_json(api_client, client):
    for who in (client, api_client("biller")):
        answer = who.get("/ui/no-such-page/abc")
        assert answer.status_code == 404 and answer.mimetype == "text/html"
        html = answer.get_data(as_text=True)
        assert "<h1>Page not found</h1>" in html and 'href="/ui/"' in html
    answer = client.get("/api/v1/no-such-thing")
    assert answer.status_code == 404 and answer.mimetype == "application/problem+json"
    assert client.get("/nowhere").mimetype == "application/problem+json"
