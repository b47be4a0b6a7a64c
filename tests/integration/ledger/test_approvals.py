"""Approvals: a write-off above the biller limit becomes a request a supervisor approves (it posts
as theirs, with the requester's reason and note) or declines (nothing posts); exactly one
decision per request, even when two supervisors decide at once (docs/write-offs.md)."""

from __future__ import annotations

import threading
from datetime import date

import pytest
from sqlalchemy import func, select

from claims_server.app import state
from claims_server.errors import Conflict, Unprocessable
from claims_server.ledger import approvals
from claims_server.ledger.write_offs import (
    WriteOffBucket,
    WriteOffReason,
    WriteOffRequested,
    open_balances,
    write_off_or_request,
)
from claims_server.models import AuditEvent, Claim, JournalEntry, JournalEventType, JournalNote, Role, User
from claims_server.models.workqueue import ApprovalRequest, ApprovalState, WorkItem, WorkItemStatus, WorkQueue
from claims_server.security.authn import create_user
from tests.integration.payments.support import owed_claim
from tests.integration.remittance.support import seed_world

INS, PT = WriteOffBucket.INSURANCE, WriteOffBucket.PATIENT
LINES = [("99213", 15000, 4000), ("36415", 2500, 1500)]  # the payer owes 120.00, the patient 55.00
NOTE = "Patient Jane Synthetic: collections agency returned the account"


@pytest.fixture
def claim(session):
    return owed_claim(session, seed_world(session), "APPR1", LINES, since=date(2026, 1, 10))


@pytest.fixture
def ten_dollar_limit(app):
    settings = app.extensions["claims_server"].settings
    before = settings.WRITE_OFF_BILLER_LIMIT_CENTS
    object.__setattr__(settings, "WRITE_OFF_BILLER_LIMIT_CENTS", 1000)
    yield
    object.__setattr__(settings, "WRITE_OFF_BILLER_LIMIT_CENTS", before)


def _user(session, name: str, role: Role) -> User:
    user = create_user(session, username=name, display_name=name.title(), role=role, password=None)
    session.commit()
    return user


def _write_offs(session) -> int:
    session.rollback()
    return int(
        session.scalar(
            select(func.count())
            .select_from(JournalEntry)
            .where(JournalEntry.event_type == JournalEventType.WRITE_OFF)
        )
    )


def _request(session, claim, biller, amount=5000, bucket=PT, key="k1") -> ApprovalRequest:
    done = write_off_or_request(
        session,
        claim,
        amount_cents=amount,
        bucket=bucket,
        reason=WriteOffReason.BAD_DEBT,
        idempotency_key=key,
        requested_by=biller,
        note=NOTE,
        approval_limit_cents=1000,
    )
    assert isinstance(done, WriteOffRequested)
    session.commit()
    return done.approval


# -- the API ----------------------------------------------------------------------------------------


def _post(client, claim, amount: str, key: str, bucket: str = "patient", note: str | None = NOTE):
    return client.post(
        f"/api/v1/claims/{claim.public_id}/write-offs",
        json={"amount": amount, "bucket": bucket, "reason": "bad_debt", "note": note},
        headers={"Idempotency-Key": key},
    )


def test_over_the_limit_a_request_is_made_and_a_supervisor_approves_it(
    session, api_client, claim, ten_dollar_limit
):
    biller, supervisor = api_client("biller"), api_client("billing_supervisor")
    asked = _post(biller, claim, "50.00", "a1")
    assert asked.status_code == 202, asked.get_json()
    request = asked.get_json()
    assert request["state"] == "pending" and request["amount"] == "50.00" and request["kind"] == "write_off"
    assert request["claim_id"] == claim.public_id and request["note"] == NOTE
    assert request["requested_by"] == biller.principal_info["public_id"]
    # Nothing posted; the same key again answers the same request.
    assert _write_offs(session) == 0
    assert open_balances(session, claim) == {INS: 12000, PT: 5500}
    again = _post(biller, claim, "50.00", "a1")
    assert again.status_code == 202 and again.get_json()["id"] == request["id"]
    session.rollback()
    assert session.scalar(select(func.count()).select_from(ApprovalRequest)) == 1
    # Its work item waits in the approval queue, showing the amount asked for.
    item = session.scalars(select(WorkItem).where(WorkItem.queue == WorkQueue.APPROVAL)).one()
    assert (
        item.status is WorkItemStatus.OPEN
        and item.claim_id == claim.id
        and item.patient_id == claim.patient_id
    )
    listed = supervisor.get("/api/v1/workqueue/items?queue=approval").get_json()["items"]
    assert [(i["id"], i["amount"]) for i in listed] == [(item.public_id, "50.00")]
    # The supervisor's list shows it; a biller sees only their own requests.
    assert [a["id"] for a in supervisor.get("/api/v1/approvals").get_json()["items"]] == [request["id"]]
    assert [a["id"] for a in biller.get("/api/v1/approvals").get_json()["items"]] == [request["id"]]
    other = api_client("biller")
    assert other.get("/api/v1/approvals").get_json()["items"] == []
    assert other.get(f"/api/v1/approvals/{request['id']}").status_code == 404
    # A biller cannot decide.
    path = f"/api/v1/approvals/{request['id']}/decision"
    assert biller.post(path, json={"decision": "approve"}).status_code == 403
    assert _write_offs(session) == 0

    answer = supervisor.post(path, json={"decision": "approve", "note": "ok per policy"})
    assert answer.status_code == 200, answer.get_json()
    decided = answer.get_json()
    assert decided["state"] == "approved" and decided["decided_by"] == supervisor.principal_info["public_id"]
    assert decided["decision_note"] == "ok per policy" and decided["journal_entry_id"]
    session.rollback()
    # Posted as the supervisor, with the requester's reason and note: 55.00 - 50.00 = 5.00 left.
    assert open_balances(session, claim) == {INS: 12000, PT: 500}
    entry = session.scalars(
        select(JournalEntry).where(JournalEntry.public_id == decided["journal_entry_id"])
    ).one()
    assert entry.created_by_user_id == supervisor.principal_info["user_id"]
    assert entry.reason_code == "bad_debt" and entry.claim_id == claim.id
    assert (
        session.scalars(select(JournalNote).where(JournalNote.journal_entry_id == entry.id)).one().note
        == NOTE
    )
    listed = biller.get(f"/api/v1/claims/{claim.public_id}/write-offs").get_json()["items"]
    assert [(w["amount"], w["bucket"], w["reason"]) for w in listed] == [("50.00", "patient", "bad_debt")]
    session.refresh(item)
    assert item.status is WorkItemStatus.RESOLVED
    events = {
        e.event_type: e
        for e in session.scalars(select(AuditEvent).where(AuditEvent.entity_type == "approval_request"))
    }
    assert {"approval.request", "approval.approve"} <= set(events)
    assert events["approval.approve"].details["amount_cents"] == 5000
    assert "Jane" not in str(events["approval.request"].details) + str(events["approval.approve"].details)
    # Decided once: a second approval is a 409 naming who decided.
    again = supervisor.post(path, json={"decision": "approve"})
    assert again.status_code == 409 and "already approved by" in again.get_json()["errors"][0]["message"]
    assert _write_offs(session) == 1


def test_declining_needs_a_note_and_posts_nothing(session, api_client, claim, ten_dollar_limit):
    biller, supervisor = api_client("biller"), api_client("billing_supervisor")
    request = _post(biller, claim, "30.00", "d1").get_json()
    path = f"/api/v1/approvals/{request['id']}/decision"
    refused = supervisor.post(path, json={"decision": "decline"})
    assert refused.status_code == 422
    assert refused.get_json()["errors"][0] == {
        "field": "note",
        "rule": "required_for_decline",
        "message": "say why the request is declined",
    }
    assert supervisor.post(path, json={"decision": "maybe"}).status_code == 422
    assert supervisor.get(f"/api/v1/approvals/{request['id']}").get_json()["state"] == "pending"
    answer = supervisor.post(path, json={"decision": "decline", "note": "send it to collections first"})
    assert answer.status_code == 200 and answer.get_json()["state"] == "declined"
    assert _write_offs(session) == 0
    assert open_balances(session, claim) == {INS: 12000, PT: 5500}
    # Declined is decided: approving it now is a 409; the biller's list shows it declined.
    late = supervisor.post(path, json={"decision": "approve"})
    assert late.status_code == 409 and "already declined by" in late.get_json()["errors"][0]["message"]
    mine = biller.get("/api/v1/approvals?state=declined").get_json()["items"]
    assert [(a["id"], a["decision_note"]) for a in mine] == [(request["id"], "send it to collections first")]
    assert _write_offs(session) == 0


def test_a_biller_withdraws_a_pending_request(session, api_client, claim, ten_dollar_limit):
    biller, supervisor = api_client("biller"), api_client("billing_supervisor")
    request = _post(biller, claim, "30.00", "w1").get_json()
    assert api_client("biller").post(f"/api/v1/approvals/{request['id']}/withdrawal").status_code == 404
    answer = biller.post(f"/api/v1/approvals/{request['id']}/withdrawal")
    assert answer.status_code == 200 and answer.get_json()["state"] == "withdrawn"
    late = supervisor.post(f"/api/v1/approvals/{request['id']}/decision", json={"decision": "approve"})
    assert late.status_code == 409 and "withdrew" in late.get_json()["errors"][0]["message"]
    assert biller.post(f"/api/v1/approvals/{request['id']}/withdrawal").status_code == 409
    assert _write_offs(session) == 0 and open_balances(session, claim) == {INS: 12000, PT: 5500}
    assert session.scalars(select(WorkItem).where(WorkItem.queue == WorkQueue.APPROVAL)).one().status is (
        WorkItemStatus.RESOLVED
    )


# -- the service ------------------------------------------------------------------------------------


def test_nobody_decides_their_own_request(session, claim):
    supervisor = _user(session, "sue", Role.BILLING_SUPERVISOR)
    approval = approvals.request_approval(
        session,
        approvals.ApprovalKind.WRITE_OFF,
        amount_cents=5000,
        request={"bucket": "patient", "reason": "bad_debt", "line": None, "payer": None},
        requested_by=supervisor,
        claim=claim,
    )
    session.commit()
    with pytest.raises(Unprocessable) as refused:
        approvals.decide(session, approval, approve=True, by=supervisor)
    assert refused.value.errors[0]["rule"] == "not_own_request"
    biller = _user(session, "bill", Role.BILLER)
    with pytest.raises(approvals.Forbidden):
        approvals.decide(session, approval, approve=True, by=biller)
    session.rollback()
    assert session.get(ApprovalRequest, approval.id).state is ApprovalState.PENDING
    assert _write_offs(session) == 0


def test_the_balance_is_checked_again_when_approving(session, claim):
    """55.00 open when asked for 50.00; a 10.00 payment's worth written off since: 45.00 < 50.00."""
    biller = _user(session, "bill", Role.BILLER)
    boss = _user(session, "boss", Role.BILLING_SUPERVISOR)
    approval = _request(session, claim, biller, amount=5000)
    write_off_or_request(
        session,
        claim,
        amount_cents=1000,
        bucket=PT,
        reason=WriteOffReason.SMALL_BALANCE,
        idempotency_key="meanwhile",
        requested_by=boss,
    )
    session.commit()
    assert open_balances(session, claim)[PT] == 4500
    with pytest.raises(Conflict) as refused:
        approvals.decide(session, approval, approve=True, by=boss)
    error = refused.value.errors[0]
    assert (error["field"], error["rule"]) == ("decision", "balance_changed")
    assert "$45.00, less than the $50.00 requested" in error["message"]
    session.rollback()
    # The request stays pending (the supervisor declines it); the ledger is as it was.
    assert session.get(ApprovalRequest, approval.id).state is ApprovalState.PENDING
    assert open_balances(session, claim)[PT] == 4500 and _write_offs(session) == 1
    approvals.decide(session, approval, approve=False, by=boss, note="balance changed; ask again")
    session.commit()
    assert session.get(ApprovalRequest, approval.id).state is ApprovalState.DECLINED


def test_two_supervisors_approving_at_once_post_once(app, session, claim):
    """Two real sessions on two threads: the first holds its transaction open after approving,
    the second's compare-and-set waits (PostgreSQL: the row lock; SQLite: the write lock) and
    then finds the request decided."""
    biller = _user(session, "bill", Role.BILLER)
    first_user = _user(session, "ann", Role.BILLING_SUPERVISOR)
    second_user = _user(session, "bob", Role.ADMIN)
    approval_id = _request(session, claim, biller, amount=5000).id
    factory = state(app).session_factory
    first_done, release_first, second_started = threading.Event(), threading.Event(), threading.Event()
    results: dict[str, object] = {}

    def decide(name: str, user_id: int) -> None:
        try:
            with factory() as s:
                if name == "second":
                    first_done.wait(30)
                    second_started.set()
                approval = s.get(ApprovalRequest, approval_id)
                approvals.decide(s, approval, approve=True, by=s.get(User, user_id))
                if name == "first":
                    first_done.set()
                    release_first.wait(30)
                s.commit()
                results[name] = approval.state
        except Exception as exc:  # the assertions below name it
            results[name] = exc
            first_done.set()

    threads = [
        threading.Thread(target=decide, args=("first", first_user.id)),
        threading.Thread(target=decide, args=("second", second_user.id)),
    ]
    for thread in threads:
        thread.start()
    assert first_done.wait(30) and second_started.wait(30)
    threading.Event().wait(1.0)  # the second is now blocked on the first's lock
    release_first.set()
    for thread in threads:
        thread.join(60)
    assert results["first"] is ApprovalState.APPROVED, results
    refused = results["second"]
    assert isinstance(refused, Conflict), results
    assert refused.errors[0]["rule"] == "pending"
    assert refused.errors[0]["message"] == "already approved by Ann"
    session.rollback()
    assert _write_offs(session) == 1
    assert open_balances(session, session.get(Claim, claim.id))[PT] == 500
    assert session.get(ApprovalRequest, approval_id).decided_by_user_id == first_user.id


# -- the workspace ----------------------------------------------------------------------------------


def test_the_workspace_sends_it_for_approval_and_the_supervisor_decides(
    session, api_client, claim, ten_dollar_limit
):
    from tests.integration.ui.support import csrf_token_of

    biller, supervisor = api_client("biller"), api_client("billing_supervisor")
    form = {
        "csrf_token": csrf_token_of(biller, f"/ui/claims/{claim.public_id}"),
        "wo_key": "form-1",
        "wo_amount": "50.00",
        "wo_bucket": "patient",
        "wo_reason": "bad_debt",
        "wo_note": NOTE,
    }
    answer = biller.post(f"/ui/claims/{claim.public_id}/write-off", data=form, follow_redirects=True)
    html = answer.get_data(as_text=True)
    assert answer.status_code == 200 and "sent to a supervisor for approval" in html
    assert 'id="write-off-pending"' in html and "pending approval" in html
    assert _write_offs(session) == 0
    approval = session.scalars(select(ApprovalRequest)).one()
    item = session.scalars(select(WorkItem).where(WorkItem.approval_request_id == approval.id)).one()
    item_page = supervisor.get(f"/ui/work-items/{item.public_id}").get_data(as_text=True)
    assert 'id="item-approval"' in item_page and "decide it under Approvals" in item_page

    page = supervisor.get("/ui/approvals").get_data(as_text=True)
    assert f'data-approval="{approval.public_id}"' in page and "$50.00" in page and NOTE in page
    assert 'id="approvals-pending"' in page  # the nav count
    token = csrf_token_of(supervisor, "/ui/approvals")
    path = f"/ui/approvals/{approval.public_id}/decision"
    refused = supervisor.post(path, data={"csrf_token": token, "decision": "decline", "note": ""})
    assert refused.status_code == 422
    assert f'id="f-note-{approval.public_id}-error"' in refused.get_data(as_text=True)
    assert _write_offs(session) == 0
    done = supervisor.post(
        path, data={"csrf_token": token, "decision": "approve", "note": ""}, follow_redirects=True
    )
    assert done.status_code == 200 and "Approved: the write-off of $50.00 is posted." in done.get_data(
        as_text=True
    )
    assert _write_offs(session) == 1 and open_balances(session, claim)[PT] == 500
    claim_page = biller.get(f"/ui/claims/{claim.public_id}").get_data(as_text=True)
    assert 'id="write-off-pending"' not in claim_page and "patient $50.00: Bad debt" in claim_page
    # A biller does not see the Approvals page.
    assert biller.get("/ui/approvals").status_code == 403


# -- the command line -------------------------------------------------------------------------------


def test_the_command_line_lists_and_decides(session, claim, database_url, tmp_path):
    import json

    from tests.integration.test_cli import run_cli

    biller = _user(session, "bill", Role.BILLER)
    _user(session, "boss", Role.BILLING_SUPERVISOR)
    approval = _request(session, claim, biller, amount=5000)
    env = {"DATABASE_URL": database_url, "INSTANCE_PATH": str(tmp_path / "instance")}
    listed = run_cli("approvals", "list", "--json", env=env)
    assert listed.returncode == 0, listed.stderr
    (row,) = json.loads(listed.stdout)["items"]
    assert (row["id"], row["amount"], row["claim_id"]) == (approval.public_id, "50.00", claim.public_id)
    assert "Jane" not in listed.stdout  # never the note
    own = run_cli("approvals", "decide", approval.public_id, "--approve", "--by", "bill", env=env)
    assert own.returncode == 2 and "approver_role" in own.stderr
    bare = run_cli("approvals", "decide", approval.public_id, "--decline", "--by", "boss", env=env)
    assert bare.returncode == 2 and "required_for_decline" in bare.stderr
    assert _write_offs(session) == 0
    done = run_cli("approvals", "decide", approval.public_id, "--approve", "--by", "boss", env=env)
    assert done.returncode == 0, done.stderr
    assert "approved (50.00, decided by boss)" in done.stdout
    again = run_cli("approvals", "decide", approval.public_id, "--approve", "--by", "boss", env=env)
    assert again.returncode == 1 and "already approved by Boss" in again.stderr
    assert _write_offs(session) == 1 and open_balances(session, claim)[PT] == 500


def test_the_claim_page_shows_a_decline_and_lets_the_requester_withdraw(
    session, api_client, claim, ten_dollar_limit
):
    from tests.integration.ui.support import csrf_token_of

    biller, supervisor = api_client("biller"), api_client("billing_supervisor")
    first = _post(biller, claim, "30.00", "c1").get_json()
    second = _post(biller, claim, "40.00", "c2").get_json()
    token = csrf_token_of(supervisor, "/ui/approvals")
    declined = supervisor.post(
        f"/ui/approvals/{first['id']}/decision",
        data={"csrf_token": token, "decision": "decline", "note": "send it to collections first"},
        follow_redirects=True,
    )
    assert "Declined: the write-off of $30.00 is not posted" in declined.get_data(as_text=True)
    page = biller.get(f"/ui/claims/{claim.public_id}").get_data(as_text=True)
    assert 'id="write-off-declined"' in page and "send it to collections first" in page
    assert f'action="/ui/approvals/{second["id"]}/withdraw"' in page  # the requester's own
    other_view = api_client("biller").get(f"/ui/claims/{claim.public_id}").get_data(as_text=True)
    assert f'action="/ui/approvals/{second["id"]}/withdraw"' not in other_view
    withdrawn = biller.post(
        f"/ui/approvals/{second['id']}/withdraw",
        data={"csrf_token": csrf_token_of(biller, f"/ui/claims/{claim.public_id}")},
        follow_redirects=True,
    )
    html = withdrawn.get_data(as_text=True)
    assert "The request for $40.00 was withdrawn; nothing was posted." in html
    assert 'id="write-off-pending"' not in html
    assert _write_offs(session) == 0 and open_balances(session, claim) == {INS: 12000, PT: 5500}
