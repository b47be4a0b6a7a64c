"""A supervisor decides the possible-duplicate queue through each door (API, CLI, workspace),
with real 835s posted by the engine: a re-issued 835 (new trace number, the same claim) is
held as a whole, a repeated claim beside a new one is held alone.

The claim: 99213 100.00 + 85025 50.00. Its adjudication: paid 90.00 (60.00 + 30.00), CO-45
30.00 + 20.00, PR-2 10.00: the payer owes nothing more and the patient 10.00. Whatever is
decided, the patient owes 10.00, never the 20.00 of a duplicate posted twice.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from claims_server.ledger.services import UNAPPLIED_PAYMENTS, balance
from claims_server.models import AccountCode, Claim, ClaimPayment, Remittance, RemittanceState, WorkItem
from claims_server.models.remittance import AdjudicationState
from claims_server.models.workqueue import WorkItemStatus, WorkQueue
from claims_server.remittance.services import receive_and_post
from tests.integration.remittance.support import Clp, Svc, build_835, make_claim
from tests.integration.ui.support import csrf_token_of

AR_INS, AR_PT = [AccountCode.AR_INSURANCE.value], [AccountCode.AR_PATIENT.value]


@dataclass
class Posted:
    claim: Claim
    first: ClaimPayment  # current
    repeat: ClaimPayment  # held possible duplicate
    item: WorkItem  # its work item: one per claim, or one for a remittance held as a whole


def _clp(claim: Claim) -> Clp:
    l1, l2 = (line.line_control_number for line in claim.service_lines)
    return Clp(
        claim.patient_control_number,
        "1",
        15000,
        9000,
        1000,
        lines=[
            Svc("99213", 10000, 6000, [("CO", "45", 3000), ("PR", "2", 1000)], lcn=l1),
            Svc("85025", 5000, 3000, [("CO", "45", 2000)], lcn=l2),
        ],
        payer_claim_number="ICN-4455",
    )


def _post_twice(session, world, factory, *, whole_file: bool) -> Posted:
    claim = make_claim(session, world, "PCN-HELD1", [("99213", 10000), ("85025", 5000)])
    assert receive_and_post(factory, build_835([_clp(claim)], trace="HELD-1", control=1)).status == "posted"
    second = [_clp(claim)]
    if not whole_file:  # the repeat beside a claim paid for the first time: only the repeat is held
        other = make_claim(session, world, "PCN-HELD2", [("99213", 10000)])
        lcn = other.service_lines[0].line_control_number
        second.append(
            Clp(
                "PCN-HELD2",
                "1",
                10000,
                7000,
                0,
                lines=[Svc("99213", 10000, 7000, [("CO", "45", 3000)], lcn=lcn)],
            )
        )
    report = receive_and_post(factory, build_835(second, trace="HELD-2", control=2))
    assert report.status == "posted" and report.summary()["claims_held"] == 1
    session.rollback()
    first, repeat = session.scalars(
        select(ClaimPayment).where(ClaimPayment.claim_id == claim.id).order_by(ClaimPayment.id)
    ).all()
    item = session.scalar(select(WorkItem).where(WorkItem.queue == WorkQueue.POSSIBLE_DUPLICATE))
    assert repeat.adjudication_state is AdjudicationState.HELD
    return Posted(claim, first, repeat, item)


def _balances(session, claim: Claim) -> tuple[int, int]:
    session.rollback()
    return balance(session, AR_INS, claim_id=claim.id), balance(session, AR_PT, claim_id=claim.id)


def test_a_supervisor_posts_a_held_claim_through_the_api_and_nothing_is_counted_twice(
    session, world, factory, api_client
):
    posted = _post_twice(session, world, factory, whole_file=False)
    assert posted.item.claim_payment_id == posted.repeat.id
    assert _balances(session, posted.claim) == (0, 1000)
    supervisor = api_client("billing_supervisor")
    listed = supervisor.get("/api/v1/held-adjudications").get_json()
    (entry,) = listed["items"]
    assert entry["id"] == posted.item.public_id and listed["held_remittances"] == []
    assert (entry["held"]["trace_number"], entry["current"]["trace_number"]) == ("HELD-2", "HELD-1")
    assert entry["held"]["paid"] == entry["current"]["paid"] == "90.00"

    path = f"/api/v1/held-adjudications/{posted.item.public_id}/decision"
    key = {"Idempotency-Key": "decide-held-1"}
    answer = supervisor.post(path, json={"decision": "post"}, headers=key)
    assert answer.status_code == 200, answer.get_json()
    replay = supervisor.post(path, json={"decision": "post"}, headers=key)  # a retry: the same answer
    assert replay.status_code == 200 and replay.headers.get("Idempotent-Replayed") == "true"
    assert replay.get_json() == answer.get_json()
    body = answer.get_json()
    assert body["decision"] == "post" and body["work_item_status"] == "resolved"
    assert body["adjudication"]["state"] == "current"
    assert body["adjudication"]["decided_by"] == supervisor.principal_info["username"]
    outcome = body["outcome"]
    assert outcome["superseded_claim_payment"] == {
        "remittance": posted.first.remittance.public_id,
        "position": 1,
    }
    assert not [k for k in json.dumps(outcome).split('"') if k.endswith("_id")]  # no row ids leave the server

    session.rollback()
    assert session.get(ClaimPayment, posted.first.id).adjudication_state is AdjudicationState.SUPERSEDED
    assert session.get(ClaimPayment, posted.repeat.id).adjudication_state is AdjudicationState.CURRENT
    assert _balances(session, posted.claim) == (0, 1000)
    assert balance(session, [UNAPPLIED_PAYMENTS], remittance_id=posted.repeat.remittance_id) == 0
    assert supervisor.get("/api/v1/held-adjudications").get_json()["items"] == []

    again = supervisor.post(
        f"/api/v1/held-adjudications/{posted.item.public_id}/decision", json={"decision": "reject"}
    )
    assert again.status_code == 409 and again.mimetype == "application/problem+json"
    session.rollback()
    assert session.get(ClaimPayment, posted.repeat.id).adjudication_state is AdjudicationState.CURRENT


def test_a_remittance_held_as_a_whole_is_rejected_by_its_id(session, world, factory, api_client):
    posted = _post_twice(session, world, factory, whole_file=True)
    remittance = posted.repeat.remittance
    assert remittance.state is RemittanceState.HELD
    assert posted.item.remittance_id == remittance.id and posted.item.claim_payment_id is None
    unapplied = balance(session, [UNAPPLIED_PAYMENTS], remittance_id=remittance.id)
    assert unapplied != 0  # the held 90.00 waits there
    supervisor = api_client("billing_supervisor")
    listed = supervisor.get("/api/v1/held-adjudications").get_json()
    (held_file,) = listed["held_remittances"]
    assert held_file["id"] == remittance.public_id and held_file["work_item"] == posted.item.public_id
    assert (held_file["claims"], held_file["held_claims"], held_file["payment"]) == (1, 1, "90.00")
    (entry,) = listed["items"]
    assert entry["id"] is None and entry["remittance_held"] is True  # decided with its remittance
    assert (
        supervisor.get("/api/v1/remittances?state=held").get_json()["items"][0]["id"] == remittance.public_id
    )

    assert (
        api_client("biller")
        .post(f"/api/v1/remittances/{remittance.public_id}/decision", json={"decision": "reject"})
        .status_code
        == 403
    )
    answer = supervisor.post(
        f"/api/v1/remittances/{remittance.public_id}/decision", json={"decision": "reject"}
    )
    assert answer.status_code == 200, answer.get_json()
    body = answer.get_json()
    assert body["remittance"]["state"] == "posted" and body["remittance"]["held_claims"] == 0
    assert [c["state"] for c in body["outcome"]["claims"]] == ["rejected"]

    session.rollback()
    assert session.get(ClaimPayment, posted.repeat.id).adjudication_state is AdjudicationState.REJECTED
    assert session.get(ClaimPayment, posted.first.id).adjudication_state is AdjudicationState.CURRENT
    assert balance(session, [UNAPPLIED_PAYMENTS], remittance_id=remittance.id) == 0
    assert _balances(session, posted.claim) == (0, 1000)
    assert session.get(WorkItem, posted.item.id).status is WorkItemStatus.RESOLVED
    again = supervisor.post(f"/api/v1/remittances/{remittance.public_id}/decision", json={"decision": "post"})
    assert again.status_code == 409


def test_the_cli_decides_by_id_and_names_the_supervisor(
    session, world, factory, api_client, database_url, monkeypatch
):
    from claims_server.cli import main

    posted = _post_twice(session, world, factory, whole_file=False)
    supervisor = api_client("billing_supervisor").principal_info["username"]
    biller = api_client("biller").principal_info["username"]
    monkeypatch.setenv("DATABASE_URL", database_url)
    runner = CliRunner()
    listed = runner.invoke(main, ["remittance", "held", "--json"])
    assert listed.exit_code == 0 and json.loads(listed.output)["items"][0]["id"] == posted.item.public_id
    refused = runner.invoke(main, ["remittance", "decide", posted.item.public_id, "--reject", "--by", biller])
    assert refused.exit_code == 2  # a biller does not decide
    done = runner.invoke(
        main, ["remittance", "decide", posted.item.public_id, "--reject", "--by", supervisor, "--json"]
    )
    assert done.exit_code == 0, done.output
    answer = json.loads(done.output)
    assert (
        answer["adjudication"]["state"] == "rejected" and answer["adjudication"]["decided_by"] == supervisor
    )
    again = runner.invoke(main, ["remittance", "decide", posted.item.public_id, "--post"])
    assert again.exit_code == 1 and "not held" in again.output
    session.rollback()
    assert session.get(ClaimPayment, posted.repeat.id).adjudication_state is AdjudicationState.REJECTED
    assert _balances(session, posted.claim) == (0, 1000)


def test_the_workspace_posts_it_and_shows_a_refusal_on_the_page(session, world, factory, api_client):
    posted = _post_twice(session, world, factory, whole_file=True)
    supervisor = api_client("billing_supervisor")
    html = supervisor.get("/ui/queues?queue=possible_duplicate").get_data(as_text=True)
    assert f'data-held="{posted.item.public_id}"' in html and "trace HELD-2" in html and "HELD-1" in html
    token = csrf_token_of(supervisor)
    path = f"/ui/queues/{posted.item.public_id}/decision?queue=possible_duplicate"
    answer = supervisor.post(path, data={"csrf_token": token, "decision": "post"})
    assert answer.status_code == 303 and answer.headers["Location"].endswith(
        "/ui/queues?queue=possible_duplicate"
    )
    session.rollback()
    assert session.get(ClaimPayment, posted.repeat.id).adjudication_state is AdjudicationState.CURRENT
    assert session.get(Remittance, posted.repeat.remittance_id).state is RemittanceState.POSTED
    assert _balances(session, posted.claim) == (0, 1000)

    refused = supervisor.post(path, data={"csrf_token": token, "decision": "reject"})
    assert refused.status_code == 409
    assert "not held" in refused.get_data(as_text=True) and 'role="alert"' in refused.get_data(as_text=True)
    session.rollback()
    assert session.get(ClaimPayment, posted.repeat.id).adjudication_state is AdjudicationState.CURRENT


@pytest.mark.parametrize("decision", ["post", "reject"])
def test_a_decision_is_audited_with_the_decider(session, world, factory, api_client, decision):
    from claims_server.models import AuditEvent

    posted = _post_twice(session, world, factory, whole_file=False)
    supervisor = api_client("billing_supervisor")
    answer = supervisor.post(
        f"/api/v1/held-adjudications/{posted.item.public_id}/decision", json={"decision": decision}
    )
    assert answer.status_code == 200
    session.rollback()
    events = session.scalars(
        select(AuditEvent).where(AuditEvent.event_type == f"remittance.held_{decision}")
    ).all()
    assert len(events) == 1 and events[0].actor_user_id == supervisor.principal_info["user_id"]
