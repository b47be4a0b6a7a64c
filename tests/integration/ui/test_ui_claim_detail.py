"""The claim screen's remittance detail: per line allowed, paid, each adjustment explained and the
remarks; the adjudication history; links to the patient, the remittance and related claims; and
claims shown by their number (never an internal or public id) on patient and remittance pages."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from claims_server.app import state
from claims_server.models import Claim, Remittance
from claims_server.remittance.services import receive_and_post
from coding.adjustment_codes import lookup
from tests.integration.remittance.support import make_claim, seed_world
from tests.integration.ui.money_support import payment_835
from tests.integration.ui.support import csrf_token_of


@pytest.fixture
def world(session):
    return seed_world(session)


def _text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def test_the_claim_screen_shows_each_line_and_links_both_ways(app, session, api_client, world):
    claim = make_claim(session, world, "PCNDETAIL1", [("99213", 12000), ("85025", 3000)])
    report = receive_and_post(state(app).session_factory, payment_835("PCNDETAIL1", "DETAILTRACE1"))
    assert report.status == "posted", report.error
    remittance = session.scalars(select(Remittance)).one()
    biller = api_client("biller")

    html = biller.get(f"/ui/claims/{claim.public_id}").get_data(as_text=True)
    assert 'id="line-remit-table"' in html
    rows = re.findall(r'<tr data-line="(\d)">(.*?)</tr>', html, flags=re.S)
    by_line = {n: _text(body) for n, body in rows}
    # Line 1: 99213 120.00 paid 90.00 with CO-45 10.00 and PR-2 20.00; line 2 denied CO-97, remark M15.
    assert "$90.00" in by_line["1"] and "CO-45: $10.00" in by_line["1"] and "PR-2: $20.00" in by_line["1"]
    assert lookup("carc", "45").meaning in by_line["1"]
    assert "$0.00" in by_line["2"] and "CO-97: $30.00" in by_line["2"]
    assert "Remark M15" in by_line["2"] and lookup("rarc", "M15").meaning in by_line["2"]
    # Links: the patient, the remittance (by its check/trace number), never an internal id.
    assert f'href="/ui/patients/{claim.patient.public_id}"' in html
    assert f'href="/ui/remittances/{remittance.public_id}"' in html and "DETAILTRACE1" in html
    history = re.search(r'<table[^>]*id="adjudication-history".*?</table>', html, flags=re.S).group(0)
    assert "original" in history and "current" in history and "DETAILTRACE1" in history

    # The API door: the same document.
    api = biller.get(f"/api/v1/claims/{claim.public_id}/remittance-detail")
    assert api.status_code == 200, api.get_json()
    doc = api.get_json()
    assert doc["claim_number"] == "PCNDETAIL1"
    line1 = doc["lines"][0]["adjudications"][0]
    assert line1["paid"] == "90.00" and {
        (a["group"], a["reason"], a["amount"]) for a in line1["adjustments"]
    } == {
        ("CO", "45", "10.00"),
        ("PR", "2", "20.00"),
    }
    assert doc["lines"][1]["adjudications"][0]["remarks"][0]["code"] == "M15"
    assert [a["adjudication_state"] for a in doc["adjudications"]] == ["current"]
    assert biller.get("/api/v1/claims/no-such-claim/remittance-detail").status_code == 404

    # A corrected claim (frequency 7) and its original link to each other.
    token = csrf_token_of(biller)
    made = biller.post(
        f"/ui/claims/{claim.public_id}/replacement", data={"csrf_token": token, "reason": "fix"}
    )
    assert made.status_code == 303
    session.rollback()
    copy = session.scalar(select(Claim).where(Claim.original_claim_id == claim.id))
    original_page = biller.get(f"/ui/claims/{claim.public_id}").get_data(as_text=True)
    related = re.search(r'id="related-claims">(.*?)</ul>', original_page, flags=re.S).group(1)
    assert (
        "Replaced by" in related
        and f'href="/ui/claims/{copy.public_id}">{copy.patient_control_number}<' in related
    )
    copy_page = biller.get(f"/ui/claims/{copy.public_id}").get_data(as_text=True)
    related = re.search(r'id="related-claims">(.*?)</ul>', copy_page, flags=re.S).group(1)
    assert "Replaces" in related and f'href="/ui/claims/{claim.public_id}">PCNDETAIL1<' in related


def test_patient_and_remittance_pages_show_claim_numbers_not_ids(app, session, api_client, world):
    claim = make_claim(session, world, "PCNNUMBER1", [("99213", 12000), ("85025", 3000)])
    report = receive_and_post(state(app).session_factory, payment_835("PCNNUMBER1", "NUMBERTRACE1"))
    assert report.status == "posted", report.error
    remittance = session.scalars(select(Remittance)).one()
    biller = api_client("biller")

    payment = biller.get(f"/ui/remittances/{remittance.public_id}").get_data(as_text=True)
    assert f'<a href="/ui/claims/{claim.public_id}">PCNNUMBER1</a>' in payment
    assert f">{claim.public_id}<" not in payment

    account = biller.get(f"/ui/patients/{claim.patient.public_id}").get_data(as_text=True)
    open_lines = re.search(r'id="open-lines".*?</table>', account, flags=re.S).group(0)
    assert (
        f'<a href="/ui/claims/{claim.public_id}">PCNNUMBER1</a>' in open_lines
    )  # PR-2 20.00 is the patient's
    assert f">{claim.public_id}<" not in account and f">{claim.id}<" not in open_lines
