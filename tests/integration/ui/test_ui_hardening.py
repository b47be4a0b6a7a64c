"""Workspace hardening: browser security headers, a ``next`` path with a newline, money as Decimal."""

from __future__ import annotations

from sqlalchemy import select

from claims_server.app import state
from claims_server.models import ClaimPayment
from claims_server.remittance.services import receive_and_post
from claims_server.ui.blueprint import CONTENT_SECURITY_POLICY, safe_next
from tests.integration.remittance.support import Clp, Svc, build_835, make_claim, seed_world


def test_every_workspace_answer_carries_the_security_headers(client, api_client):
    biller = api_client("biller")
    answers = {
        "sign-in": client.get("/ui/sign-in"),
        "signed-out redirect": client.get("/ui/claims"),
        "page": biller.get("/ui/claims"),
        "403 page": api_client("auditor").post("/ui/queues/action", data={}),
        "unknown path": biller.get("/ui/no-such-page"),
        "static": client.get("/ui/static/ui.css"),
    }
    for name, answer in answers.items():
        assert answer.headers.get("Referrer-Policy") == "same-origin", name
        assert answer.headers.get("X-Frame-Options") == "DENY", name
        if answer.mimetype == "text/html":
            assert answer.headers.get("Content-Security-Policy") == CONTENT_SECURITY_POLICY, name
    assert "frame-ancestors 'none'" in CONTENT_SECURITY_POLICY
    assert answers["unknown path"].status_code == 404
    # The patient pages keep their own, stricter values.
    portal = client.get("/pay/")
    assert portal.headers.get("Referrer-Policy") == "no-referrer"
    assert "default-src 'none'" in portal.headers.get("Content-Security-Policy", "")
    # The API is not a page: no CSP of the workspace's there.
    assert "Content-Security-Policy" not in biller.get("/api/v1/claims").headers


def test_a_next_path_ending_in_a_newline_is_dropped_not_a_500(client, api_client):
    assert safe_next("/ui/claims\n") is None
    assert safe_next("/ui/claims") == "/ui/claims" and safe_next("/ui/") == "/ui/"
    assert safe_next("/ui/claims?x=1") is None and safe_next("//evil.example/ui") is None
    # Signed out: the form, without the bad path in it.
    answer = client.get("/ui/sign-in?next=/ui/claims%0A")
    assert answer.status_code == 200
    assert 'name="next"' not in answer.get_data(as_text=True)
    # Signed in: straight on, to the home page rather than a Location header with a newline.
    answer = api_client("biller").get("/ui/sign-in?next=/ui/claims%0A")
    assert answer.status_code in (302, 303), answer.status_code
    assert "\n" not in answer.headers["Location"] and answer.headers["Location"].endswith("/ui/")


def test_payment_amounts_on_the_claim_screen_are_exact_and_signed(app, session, api_client):
    """A reversal (CLP02 22) carries negative amounts: ``-$100.00``, not float's ``$-100.00``."""
    claim = make_claim(session, seed_world(session), "PCN-UIMONEY", [("99214", 15000)])
    (lcn,) = [line.line_control_number for line in claim.service_lines]
    content = build_835(
        [
            Clp(
                "PCN-UIMONEY",
                "22",
                -15000,
                -10000,
                -1000,
                lines=[Svc("99214", -15000, -10000, [("CO", "45", -4000), ("PR", "2", -1000)], lcn=lcn)],
            )
        ],
        trace="T-UIMONEY",
        plb=[("FB", -10000)],  # BPR02 is never negative: the payer carries the -100.00 forward
    )
    assert receive_and_post(state(app).session_factory, content).status == "posted"
    session.rollback()
    assert session.scalar(select(ClaimPayment.paid_cents).where(ClaimPayment.claim_id == claim.id)) == -10000
    html = api_client("biller").get(f"/ui/claims/{claim.public_id}").get_data(as_text=True)
    assert "paid -$100.00 of -$150.00" in html
    assert "$-" not in html
