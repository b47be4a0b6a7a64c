"""The possible-duplicate queue's doors: the API, the CLI and the workspace list each held
adjudication beside the current one; deciding is a supervisor's, answered with a structured
4xx for anything else (docs/adjudication-history.md, "A person decides").

These tests store the adjudications as the posting engine records them (a current one and a
held ``possible_duplicate`` repeat of it, with its work item), so they read the queue without
posting; the decisions themselves, with real 835s, are in test_held_decisions.py.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from claims_server.models import AuditEvent, Claim, ClaimPayment, WorkItem
from claims_server.models.remittance import AdjudicationHold, AdjudicationState
from claims_server.models.workqueue import WorkQueue
from claims_server.workqueue.services import RecommendedAction, open_work_item
from tests.integration.claims.support import seed
from tests.integration.ui.support import csrf_token_of
from tests.integration.workqueue.support import LineAnswer, adjudicate, make_claim

# 99214 175.00 paid 100.00 (CO-45 50.00, PR-2 25.00); 83036 45.50 paid 30.00 (PR-1 15.50).
ANSWER = [LineAnswer(10000, [("CO", "45", 5000), ("PR", "2", 2500)]), LineAnswer(3000, [("PR", "1", 1550)])]


@dataclass
class Held:
    claim: Claim
    current: ClaimPayment
    held: ClaimPayment
    item: WorkItem


@pytest.fixture
def held_pair(session) -> Held:
    ids = seed(session)
    claim = make_claim(session, ids)
    current = adjudicate(session, claim, status="1", lines=ANSWER, payer_claim_number="ICN-778899")
    repeat = adjudicate(
        session, claim, status="1", lines=ANSWER, payer_claim_number="ICN-778899", move_state=False
    )
    repeat.adjudication_state = AdjudicationState.HELD
    repeat.hold_reason = AdjudicationHold.POSSIBLE_DUPLICATE
    item = open_work_item(
        session,
        queue=WorkQueue.POSSIBLE_DUPLICATE,
        claim_payment=repeat,
        reason_codes=[],
        recommended_action=RecommendedAction.REVIEW,
        explanation="A second adjudication of this claim by the same payer, with no reversal between.",
        dedupe_key=f"possible_duplicate:claim_payment:{repeat.id}",
    )
    session.commit()
    return Held(claim, current, repeat, item)


def test_the_api_lists_the_held_adjudication_beside_the_current_one(session, api_client, held_pair):
    biller = api_client("biller")
    request_id = uuid.uuid4().hex
    answer = biller.get("/api/v1/held-adjudications", headers={"X-Request-ID": request_id})
    assert answer.status_code == 200, answer.get_json()
    body = answer.get_json()
    assert body["next_cursor"] is None and body["held_remittances"] == []
    (entry,) = body["items"]
    claim, held, current = held_pair.claim, held_pair.held, held_pair.current
    assert entry["id"] == held_pair.item.public_id and entry["work_item_status"] == "open"
    assert entry["claim"] == claim.public_id and entry["payer"] == claim.coverage.payer.public_id
    assert entry["patient_control_number"] == claim.patient_control_number
    assert entry["remittance_held"] is False
    for side, row in (("held", held), ("current", current)):
        assert entry[side] == {
            "remittance": row.remittance.public_id,
            "position": 1,
            "state": row.adjudication_state.value,
            "kind": "original",
            "status_code": "1",
            "charge": "220.50",
            "paid": "130.00",
            "patient_responsibility": "40.50",
            "payer_claim_control_number": "ICN-778899",
            "trace_number": row.remittance.trace_number,
            "payment_date": "2026-02-02",
            "received_at": row.remittance.edi_file.received_at.isoformat(),
            "decided_at": None,
            "decided_by": None,
        }
    assert entry["held"]["state"] == "held" and entry["current"]["state"] == "current"
    assert entry["held"]["trace_number"] != entry["current"]["trace_number"]
    text = answer.get_data(as_text=True)
    patient = claim.patient
    assert patient.last_name not in text and patient.first_name not in text
    # A read of claim data: audited as such, naming the patient.
    session.rollback()
    reads = session.scalars(
        select(AuditEvent).where(AuditEvent.request_id == request_id, AuditEvent.action == "R")
    ).all()
    assert any(e.entity_type == "claim" and e.patient_id == claim.patient_id for e in reads)


def test_deciding_is_a_supervisors_and_bad_input_is_a_structured_4xx(session, api_client, held_pair):
    path = f"/api/v1/held-adjudications/{held_pair.item.public_id}/decision"
    for role in ("biller", "auditor", "integration"):
        answer = api_client(role).post(path, json={"decision": "post"})
        assert answer.status_code == 403, role
        assert answer.mimetype == "application/problem+json"
    supervisor = api_client("billing_supervisor")
    for body in ({"decision": "maybe"}, {}, {"decision": 1}, {"decision": "post", "extra": True}):
        answer = supervisor.post(path, json=body)
        assert answer.status_code == 422, body
        assert answer.mimetype == "application/problem+json"
        assert any(e.get("field") in ("decision", "extra") for e in answer.get_json()["errors"]), body
    unknown = supervisor.post(
        "/api/v1/held-adjudications/" + "0" * 32 + "/decision", json={"decision": "post"}
    )
    assert unknown.status_code == 404 and unknown.mimetype == "application/problem+json"
    other = open_work_item(
        session,
        queue=WorkQueue.DENIED,
        claim=held_pair.claim,
        reason_codes=["CO-16"],
        recommended_action=RecommendedAction.CORRECT_AND_RESUBMIT,
        explanation="",
        dedupe_key="test:denied",
    )
    session.commit()
    wrong_queue = supervisor.post(
        f"/api/v1/held-adjudications/{other.public_id}/decision", json={"decision": "post"}
    )
    assert wrong_queue.status_code == 404
    not_held = supervisor.post(
        f"/api/v1/remittances/{held_pair.current.remittance.public_id}/decision", json={"decision": "zzz"}
    )
    assert not_held.status_code == 422
    missing = supervisor.post("/api/v1/remittances/" + "f" * 32 + "/decision", json={"decision": "reject"})
    assert missing.status_code == 404
    session.rollback()
    assert session.get(ClaimPayment, held_pair.held.id).adjudication_state is AdjudicationState.HELD


def test_the_api_document_describes_the_queue(client):
    doc = client.get("/openapi.json").get_json()
    listing = doc["paths"]["/api/v1/held-adjudications"]["get"]
    assert {"limit", "cursor"} <= {p["name"] for p in listing["parameters"]}
    decide = doc["paths"]["/api/v1/held-adjudications/{item_id}/decision"]["post"]
    assert {"200", "404", "409", "422"} <= set(decide["responses"])
    remittance = doc["paths"]["/api/v1/remittances/{remittance_id}/decision"]["post"]
    assert {"200", "404", "409", "422"} <= set(remittance["responses"])


def test_the_cli_lists_the_queue(session, database_url, monkeypatch, held_pair):
    from claims_server.cli import main

    monkeypatch.setenv("DATABASE_URL", database_url)
    runner = CliRunner()
    answer = runner.invoke(main, ["remittance", "held", "--json"])
    assert answer.exit_code == 0, answer.output
    (entry,) = json.loads(answer.output)["items"]
    assert entry["id"] == held_pair.item.public_id
    assert (entry["held"]["paid"], entry["current"]["paid"]) == ("130.00", "130.00")
    text = runner.invoke(main, ["remittance", "held"])
    assert text.exit_code == 0
    assert held_pair.item.public_id in text.output and "CLP07 ICN-778899" in text.output
    assert held_pair.claim.patient.last_name not in text.output
    refused = runner.invoke(main, ["remittance", "decide", held_pair.item.public_id])
    assert refused.exit_code == 2 and "--post or --reject" in refused.output
    unknown = runner.invoke(main, ["remittance", "decide", "0" * 32, "--reject"])
    assert unknown.exit_code == 2
    nobody = runner.invoke(
        main, ["remittance", "decide", held_pair.item.public_id, "--post", "--by", "nobody"]
    )
    assert nobody.exit_code == 2 and "supervisor" in nobody.output


def test_the_work_queue_page_shows_both_and_buttons_for_a_supervisor(session, api_client, held_pair):
    supervisor = api_client("billing_supervisor")
    page = supervisor.get("/ui/queues?queue=possible_duplicate")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert f'data-held="{held_pair.item.public_id}"' in html
    assert "Held (not posted)" in html and "Current (posted)" in html
    assert (
        held_pair.held.remittance.trace_number in html and held_pair.current.remittance.trace_number in html
    )
    assert "$130.00" in html and "ICN-778899" in html
    assert f'action="/ui/queues/{held_pair.item.public_id}/decision?queue=possible_duplicate"' in html
    assert 'name="decision" value="post"' in html and 'name="decision" value="reject"' in html

    biller = api_client("biller")
    html = biller.get("/ui/queues?queue=possible_duplicate").get_data(as_text=True)
    assert f'data-held="{held_pair.item.public_id}"' in html
    assert 'name="decision"' not in html and "A billing supervisor posts or rejects it." in html
    token = csrf_token_of(biller)
    answer = biller.post(
        f"/ui/queues/{held_pair.item.public_id}/decision", data={"csrf_token": token, "decision": "post"}
    )
    assert answer.status_code == 403 and answer.mimetype == "text/html"

    token = csrf_token_of(supervisor)
    forged = supervisor.post(
        f"/ui/queues/{held_pair.item.public_id}/decision", data={"csrf_token": "x", "decision": "post"}
    )
    assert forged.status_code == 400
    bad = supervisor.post(
        f"/ui/queues/{held_pair.item.public_id}/decision?queue=possible_duplicate",
        data={"csrf_token": token, "decision": "maybe"},
    )
    assert bad.status_code == 422 and "decision must be post or reject" in bad.get_data(as_text=True)
    session.rollback()
    assert session.get(ClaimPayment, held_pair.held.id).adjudication_state is AdjudicationState.HELD
