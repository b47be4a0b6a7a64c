"""The claim state machine: every allowed transition works and is audited; every other is 409 and changes nothing."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select

from claims_server.claims import services, state
from claims_server.errors import Conflict
from claims_server.models import AuditEvent, Claim, ClaimState
from tests.integration.claims.support import claim_json

FUNCTIONS = {
    "ready": state.mark_ready,
    "return_to_draft": state.return_to_draft,
    "batched": state.mark_batched,
    "release_from_batch": state.release_from_batch,
    "submitted": state.mark_submitted,
    "accepted": state.mark_accepted,
    "rejected": state.mark_rejected,
    "acknowledged": state.mark_acknowledged,
    "paid": state.mark_paid,
    "partially_paid": state.mark_partially_paid,
    "denied": state.mark_denied,
    "closed": state.close,
    "reversed": state.mark_reversed,
    "voided": state.void,
    "correct_rejection": state.correct_rejection,
    "reopen_for_correction": state.reopen_for_correction,
}
LONG_AGO = datetime(2020, 1, 1, tzinfo=UTC)


def test_every_event_has_one_function_and_the_table_matches_the_architecture():
    assert set(FUNCTIONS) == set(state.EVENTS)
    # ARCHITECTURE.md's main line, in order.
    line = ["draft", "ready", "batched", "submitted", "accepted", "acknowledged", "paid", "closed"]
    for current, target in itertools.pairwise(line):
        assert state.can_transition(ClaimState(current), ClaimState(target)), (current, target)
    assert {ClaimState.CLOSED, ClaimState.VOIDED} == state.FINAL_STATES
    # rejected and denied lead back to ready only through correction (draft).
    assert state.allowed_next(ClaimState.REJECTED) == [ClaimState.DRAFT, ClaimState.VOIDED]
    assert not state.can_transition(ClaimState.REJECTED, ClaimState.READY)
    assert not state.can_transition(ClaimState.SUBMITTED, ClaimState.VOIDED)


def _audit_count(session, event: str) -> int:
    return session.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.event_type == event))


@pytest.mark.parametrize("event", sorted(state.EVENTS))
def test_transition_from_every_state(session, ids, event):
    """Run ``event`` from each of the 12 states: allowed ones move and audit, the rest raise 409."""
    claim = services.create_claim_from_json(session, claim_json(ids)).claim
    session.commit()
    sources, target = state.EVENTS[event]
    function = FUNCTIONS[event]
    for current in ClaimState:
        claim.state = current  # test setup: put the claim in the state under test
        claim.state_changed_at = LONG_AGO
        session.commit()
        before_version, before_audits = claim.version, _audit_count(session, f"claim.{event}")
        before_total, before_pcn = claim.total_charge_cents, claim.patient_control_number
        if current in sources:
            function(session, claim, reason="test", details={"batch": "B1"})
            session.commit()
            session.refresh(claim)
            assert claim.state == target
            assert claim.state_changed_at > LONG_AGO
            assert claim.total_charge_cents == before_total and claim.patient_control_number == before_pcn
            assert _audit_count(session, f"claim.{event}") == before_audits + 1
            row = session.scalars(
                select(AuditEvent)
                .where(AuditEvent.event_type == f"claim.{event}")
                .order_by(AuditEvent.id.desc())
            ).first()
            assert row.entity_id == claim.public_id
            assert row.patient_id == claim.patient_id
            assert row.details["from"] == current.value and row.details["to"] == target.value
            assert row.details["reason"] == "test" and row.details["batch"] == "B1"
        else:
            with pytest.raises(Conflict) as refused:
                function(session, claim)
            assert refused.value.status == 409
            assert current.value in refused.value.detail and target.value in refused.value.detail
            assert refused.value.extra["allowed_next_states"] == [
                s.value for s in state.allowed_next(current)
            ]
            session.commit()
            session.refresh(claim)
            assert claim.state == current
            assert claim.state_changed_at == LONG_AGO
            assert claim.version == before_version
            assert _audit_count(session, f"claim.{event}") == before_audits


def test_a_final_state_says_so(session, ids):
    claim = services.create_claim_from_json(session, claim_json(ids)).claim
    state.void(session, claim)
    with pytest.raises(Conflict, match=r"none \(voided is final\)"):
        state.mark_ready(session, claim)


def test_full_life_with_correction(session, ids):
    claim = services.create_claim_from_json(session, claim_json(ids, ready=True)).claim
    assert claim.state == ClaimState.READY
    for step in (state.mark_batched, state.mark_submitted, state.mark_accepted, state.mark_rejected):
        step(session, claim)
    state.reopen_for_correction(session, claim, reason="fixed member id")
    services.make_ready(session, claim)
    for step in (state.mark_batched, state.mark_submitted, state.mark_accepted, state.mark_acknowledged):
        step(session, claim)
    state.mark_partially_paid(session, claim)
    state.close(session, claim)
    session.commit()
    assert session.get(Claim, claim.id).state == ClaimState.CLOSED
    events = session.scalars(
        select(AuditEvent.event_type).where(AuditEvent.entity_id == claim.public_id).order_by(AuditEvent.id)
    ).all()
    transitions = [e for e in events if e not in ("claim.create", "claim.update") and e.startswith("claim.")]
    assert transitions == [
        "claim.ready",
        "claim.batched",
        "claim.submitted",
        "claim.accepted",
        "claim.rejected",
        "claim.reopen_for_correction",
        "claim.ready",
        "claim.batched",
        "claim.submitted",
        "claim.accepted",
        "claim.acknowledged",
        "claim.partially_paid",
        "claim.closed",
    ]
