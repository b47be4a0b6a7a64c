"""Ready to send (``/ui/send``) and batches (``/ui/batches``): choose, send, follow the batch's answers."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select

from claims_server.app import state
from claims_server.claims.services import create_claim_from_json
from claims_server.clearinghouse import services as clearinghouse
from claims_server.models import Claim, ClaimState, ClearinghouseRoute, SubmissionBatch
from claims_server.simulator.service import run_once
from tests.integration.claims.support import seed
from tests.integration.submission.conftest import broker_refusing, recent_claim
from tests.integration.submission.test_sending import _second_route
from tests.integration.ui.money_support import audit_events, with_request_id
from tests.integration.ui.support import csrf_token_of, linked_urls


@pytest.fixture
def ready(session, tmp_path):
    """Three ready claims on the demo route, pointed at folders under tmp_path."""
    ids = seed(session)
    route = session.scalar(select(ClearinghouseRoute))
    route.settings = {"outbox": str(tmp_path / "ch" / "outbox"), "inbox": str(tmp_path / "ch" / "inbox")}
    claims = [
        create_claim_from_json(session, recent_claim(ids, dependent=bool(i % 2))).claim for i in range(3)
    ]
    session.commit()
    return {"ids": ids, "route": route, "claims": claims}


def _batches(session) -> int:
    session.expire_all()
    return session.scalar(select(func.count()).select_from(SubmissionBatch))


def test_the_screen_counts_and_lists_what_is_ready(session, api_client, ready):
    biller = api_client("biller")
    answer = biller.get("/ui/send")
    assert answer.status_code == 200
    html = answer.get_data(as_text=True)
    total = sum(c.total_charge_cents for c in ready["claims"])
    assert f"<strong>3</strong> ready claims, <strong>${total // 100:,}.{total % 100:02d}</strong>" in html
    assert 'id="by-payer"' in html and 'id="by-route"' in html and ready["route"].name in html
    for claim in ready["claims"]:
        assert f'value="{claim.public_id}"' in html
        assert f'aria-label="Select claim {claim.patient_control_number}"' in html
        assert f"/ui/claims/{claim.public_id}" in html
    assert 'id="select-all" aria-label="Select all ready claims listed"' in html
    assert 'name="csrf_token"' in html and "/ui/static/send.js" in html
    assert "<script>" not in html  # no inline script (CSP)
    assert 'href="/ui/send" aria-current="page"' in html  # in the main navigation

    auditor = api_client("auditor").get("/ui/send").get_data(as_text=True)
    assert 'name="claims"' not in auditor and "Send selected" not in auditor


def test_the_screen_is_an_audited_phi_read(session, api_client, ready):
    answer, request_id = with_request_id(api_client("biller"), "GET", "/ui/send")
    assert answer.status_code == 200
    reads = {(e.entity_type, e.entity_id): e.patient_id for e in audit_events(session, request_id, "R")}
    for claim in ready["claims"]:
        assert reads[("claim", claim.public_id)] == claim.patient_id


def test_send_the_selected_claims_then_follow_the_batch(session, app, api_client, ready, tmp_path):
    biller = api_client("biller")
    chosen, rest = ready["claims"][:2], ready["claims"][2]
    form = {
        "csrf_token": csrf_token_of(biller, "/ui/send"),
        "intent": "selected",
        "claims": [c.public_id for c in chosen],
    }
    answer = biller.post("/ui/send", data=form)
    assert answer.status_code == 303
    batch_id = session.scalar(select(SubmissionBatch.public_id))
    assert answer.headers["Location"].endswith(f"/ui/batches/{batch_id}")
    session.expire_all()
    assert session.get(Claim, rest.id).state is ClaimState.READY
    assert {session.get(Claim, c.id).state for c in chosen} == {ClaimState.SUBMITTED}

    html = biller.get(f"/ui/batches/{batch_id}").get_data(as_text=True)
    assert "Sent 2 claim(s)" in html  # the flash
    assert "badge-sent" in html and 'id="per-payer"' in html
    for claim in chosen:
        assert f'href="/ui/claims/{claim.public_id}"' in html
    assert rest.patient_control_number not in html
    urls = linked_urls(html)
    downloads = [u for u in urls if u.endswith("/raw")]
    assert len(downloads) == 1 and biller.get(downloads[0]).status_code == 200
    assert "No 999 or 277CA has arrived" in html

    # The clearinghouse answers; the batch screen lists the 999 and the 277CA.
    route = ready["route"]
    run_once(route.settings["outbox"], route.settings["inbox"])
    clearinghouse.poll_inbox(
        state(app).session_factory,
        route.id,
        transport_factory=lambda r: clearinghouse.route_transport(r, tmp_path),
    )
    html = biller.get(f"/ui/batches/{batch_id}").get_data(as_text=True)
    assert "badge-accepted" in html
    assert re.search(r"<a href=\"/ui/files\?file=\w+\">999", html)
    assert re.search(r"<a href=\"/ui/files\?file=\w+\">277CA", html)
    assert "A: accepted" in html and "claims: 2 accepted" in html
    assert len([u for u in linked_urls(html) if u.endswith("/raw")]) == 3

    listed = biller.get("/ui/batches").get_data(as_text=True)
    assert f'id="batch-{batch_id}"' in listed and "badge-accepted" in listed


def test_send_all_on_two_routes_goes_to_the_list(session, api_client, ready):
    _second_route(session, ready["ids"])
    biller = api_client("biller")
    form = {"csrf_token": csrf_token_of(biller, "/ui/send"), "intent": "all"}
    answer = biller.post("/ui/send", data=form)
    assert answer.status_code == 303 and answer.headers["Location"].endswith("/ui/batches")
    assert _batches(session) == 2
    assert "Nothing is ready to send" in biller.get("/ui/send").get_data(as_text=True)


def test_chosen_claims_of_another_route_are_named_not_silently_dropped(session, api_client, ready):
    _second_route(session, ready["ids"])  # the self-insured patient's payer moves to a second route
    chosen = [ready["claims"][0], ready["claims"][2]]  # that patient's claims
    biller = api_client("biller")
    form = {
        "csrf_token": csrf_token_of(biller, "/ui/send"),
        "intent": "preview",
        "route": ready["route"].public_id,  # the first route: it carries none of them now
        "claims": [c.public_id for c in chosen],
    }
    preview = biller.post("/ui/send", data=form).get_data(as_text=True)
    assert 'id="not-batched"' in preview and "2 of the chosen claims would not go out" in preview
    assert "on another clearinghouse route than the one chosen" in preview
    sent = biller.post("/ui/send", data={**form, "intent": "selected"})
    assert sent.status_code == 303
    html = biller.get(sent.headers["Location"]).get_data(as_text=True)
    assert "2 of the chosen claims were not sent and are still ready" in html
    assert _batches(session) == 0


def test_a_broker_that_is_down_keeps_the_batch_and_says_so(session, app, api_client, ready):
    biller = api_client("biller")
    form = {"csrf_token": csrf_token_of(biller, "/ui/send"), "intent": "all"}
    with broker_refusing(app):
        answer = biller.post("/ui/send", data=form)
    assert answer.status_code == 303  # not a 500: the batch was built and is kept
    batch_id = session.scalar(select(SubmissionBatch.public_id))
    assert answer.headers["Location"].endswith(f"/ui/batches/{batch_id}")
    html = biller.get(answer.headers["Location"]).get_data(as_text=True)
    assert "1 batch(es) could not be sent now; they are kept and will be sent again" in html
    assert "could not be queued for upload" in html


def test_check_first_shows_the_dry_run_and_changes_nothing(session, api_client, ready):
    biller = api_client("biller")
    form = {"csrf_token": csrf_token_of(biller, "/ui/send"), "intent": "preview"}
    answer = biller.post("/ui/send", data=form)
    assert answer.status_code == 200
    html = answer.get_data(as_text=True)
    assert "Check first: what would go out" in html and "Nothing was sent and nothing changed." in html
    assert _batches(session) == 0
    session.expire_all()
    assert {c.state for c in session.scalars(select(Claim))} == {ClaimState.READY}


def test_refusals_change_nothing(session, api_client, ready):
    biller = api_client("biller")
    token = csrf_token_of(biller, "/ui/send")
    empty = biller.post("/ui/send", data={"csrf_token": token, "intent": "selected"})
    assert empty.status_code == 422
    assert "Select at least one claim" in empty.get_data(as_text=True)
    forged = biller.post("/ui/send", data={"csrf_token": token, "intent": "selected", "claims": ["x" * 5]})
    assert forged.status_code == 422
    gone = biller.post("/ui/send", data={"csrf_token": token, "intent": "selected", "claims": ["0" * 32]})
    assert gone.status_code == 422 and "do not exist" in gone.get_data(as_text=True)
    assert biller.post("/ui/send", data={"intent": "all"}).status_code == 400  # no CSRF token
    auditor = api_client("auditor")
    refused = auditor.post(
        "/ui/send", data={"csrf_token": csrf_token_of(auditor, "/ui/send"), "intent": "all"}
    )
    assert refused.status_code == 403
    assert _batches(session) == 0


def test_nothing_ready_says_so(session, api_client):
    seed(session)
    biller = api_client("biller")
    html = biller.get("/ui/send").get_data(as_text=True)
    assert "Nothing is ready to send" in html and 'name="intent"' not in html
    answer = biller.post(
        "/ui/send", data={"csrf_token": csrf_token_of(biller, "/ui/batches"), "intent": "all"}
    )
    assert answer.status_code == 303 and answer.headers["Location"].endswith("/ui/send")
    assert "Nothing was sent" in biller.get("/ui/send").get_data(as_text=True)
    assert "No batches" in biller.get("/ui/batches").get_data(as_text=True)
    assert biller.get("/ui/batches?state=lost").status_code == 422
    assert biller.get("/ui/batches/" + "0" * 32).status_code == 404


def test_a_ready_claim_points_to_the_ready_to_send_screen(session, api_client, ready):
    claim = ready["claims"][0]
    html = api_client("biller").get(f"/ui/claims/{claim.public_id}").get_data(as_text=True)
    assert 'id="next-batch"' in html and 'href="/ui/send"' in html
