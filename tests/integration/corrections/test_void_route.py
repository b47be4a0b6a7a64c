"""POST /api/v1/claims/<id>/void is one view (issue 15, finding 12).

It used to be two: the claims blueprint's plain state transition, registered first,
answered every request, and the corrections view the OpenAPI document described (a
frequency-8 void claim for an adjudicated claim, 201) was unreachable.
"""

from __future__ import annotations

from datetime import date

from claims_server.models import ClaimState
from tests.integration.corrections.test_corrections import DENIED
from tests.integration.workqueue.support import adjudicate, make_claim


def test_void_in_place_before_the_payer_has_it(session, ids, api_client):
    claim = make_claim(session, ids)
    claim.state = ClaimState.DRAFT  # a claim still being written (make_claim sends it)
    session.commit()
    supervisor = api_client("billing_supervisor")
    r = supervisor.post(f"/api/v1/claims/{claim.public_id}/void", json={"reason": "entered twice"})
    assert r.status_code == 200, r.get_json()
    assert r.get_json()["id"] == claim.public_id and r.get_json()["state"] == ClaimState.VOIDED.value
    # No body at all is fine too (the reason is optional), and a voided claim cannot be voided again.
    assert supervisor.post(f"/api/v1/claims/{claim.public_id}/void").status_code == 409


def test_void_of_an_adjudicated_claim_is_a_frequency_8_claim(session, ids, api_client):
    claim = make_claim(session, ids)
    adjudicate(
        session,
        claim,
        status="4",
        lines=DENIED,
        payer_claim_number="ICN-VOID-1",
        payment_date=date(2026, 2, 2),
    )
    session.commit()
    r = api_client("billing_supervisor").post(f"/api/v1/claims/{claim.public_id}/void", json={})
    assert r.status_code == 201, r.get_json()
    body = r.get_json()
    assert body["id"] != claim.public_id and body["frequency_code"] == "8"
