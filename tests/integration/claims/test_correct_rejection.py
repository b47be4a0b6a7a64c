"""Correcting a rejected claim: the API and the workspace apply one rule (security/policy.py).

A front-end rejection (999/277CA: never adjudicated) is corrected by billers with
``POST /api/v1/claims/<id>/correct`` (rejected → draft); reopening a denied claim stays a
supervisor's (``/reopen``). The workspace's "save and resubmit" passes the same policy
entries, so the rule changes in one place for both paths.
"""

from __future__ import annotations

import re

from sqlalchemy import select

from claims_server.claims import services
from claims_server.models import AuditEvent, Claim, ClaimState
from claims_server.security.policy import ADMIN, POLICY, SUPERVISOR, allow
from tests.integration.claims.support import claim_json
from tests.integration.ui.support import csrf_token_of

_INPUT = re.compile(r'<input id="f-([\w-]+)" name="[\w-]+" type="[a-z]+" value="([^"]*)"')


def _claim_in(session, ids, state: ClaimState) -> Claim:
    claim = services.create_claim_from_json(session, claim_json(ids)).claim
    claim.state = state  # test setup: the 999/277CA or 835 that put it there is not under test
    session.commit()
    return claim


def _events(session, claim: Claim) -> list[str]:
    session.rollback()
    return list(
        session.scalars(
            select(AuditEvent.event_type)
            .where(AuditEvent.entity_id == claim.public_id, AuditEvent.event_type.like("claim.%"))
            .order_by(AuditEvent.id)
        )
    )


def test_a_biller_corrects_a_rejection_over_the_api_and_only_a_supervisor_reopens_a_denial(
    session, ids, api_client
):
    biller = api_client("biller")
    rejected = _claim_in(session, ids, ClaimState.REJECTED)
    answer = biller.post(f"/api/v1/claims/{rejected.public_id}/correct", json={"reason": "member id fixed"})
    assert answer.status_code == 200, answer.get_json()
    assert answer.get_json()["state"] == "draft"
    assert _events(session, rejected)[-1] == "claim.correct_rejection"

    denied = _claim_in(session, ids, ClaimState.DENIED)
    assert biller.post(f"/api/v1/claims/{denied.public_id}/reopen").status_code == 403
    # "correct" is for what was never adjudicated: a denial is not corrected that way.
    refused = biller.post(f"/api/v1/claims/{denied.public_id}/correct")
    assert refused.status_code == 409 and refused.get_json()["current_state"] == "denied"
    session.rollback()
    assert session.get(Claim, denied.id).state == ClaimState.DENIED
    reopened = api_client("billing_supervisor").post(f"/api/v1/claims/{denied.public_id}/reopen")
    assert reopened.status_code == 200 and reopened.get_json()["state"] == "draft"
    assert api_client("auditor").post(f"/api/v1/claims/{rejected.public_id}/correct").status_code == 403


def test_the_workspace_resubmits_a_rejection_under_the_apis_rule(session, ids, api_client, monkeypatch):
    rejected = _claim_in(session, ids, ClaimState.REJECTED)
    version = rejected.version
    biller = api_client("biller")
    page = biller.get(f"/ui/claims/{rejected.public_id}").get_data(as_text=True)
    assert 'value="resubmit"' in page
    form = dict(_INPUT.findall(page))
    form.update({"csrf_token": csrf_token_of(biller), "version": str(version), "intent": "resubmit"})

    # The API's rule for correcting a rejection made supervisor-only: the screen follows it.
    monkeypatch.setitem(POLICY, "claims.transition_correct", allow(SUPERVISOR, ADMIN))
    page = biller.get(f"/ui/claims/{rejected.public_id}").get_data(as_text=True)
    assert 'value="resubmit"' not in page and 'value="save"' in page
    answer = biller.post(f"/ui/claims/{rejected.public_id}/edit", data=form)
    assert answer.status_code == 403 and answer.mimetype == "text/html"
    assert "Not allowed" in answer.get_data(as_text=True)
    session.rollback()
    stored = session.get(Claim, rejected.id)
    assert (stored.state, stored.version) == (ClaimState.REJECTED, version)
    denial = session.scalar(
        select(AuditEvent).where(AuditEvent.event_type == "access.denied").order_by(AuditEvent.id.desc())
    )
    assert denial.entity_id == "ui.claim_save" and denial.actor_user_id == biller.principal_info["user_id"]

    monkeypatch.undo()  # the real rule: billers correct rejections
    answer = biller.post(f"/ui/claims/{rejected.public_id}/edit", data=form)
    assert answer.status_code == 303, answer.get_data(as_text=True)[:2000]
    session.rollback()
    assert session.get(Claim, rejected.id).state == ClaimState.READY
    assert _events(session, rejected)[-2:] == ["claim.correct_rejection", "claim.ready"]
