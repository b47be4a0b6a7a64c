"""A balance written off in full closes the claim's open work items (docs/adjudication-history.md,
"Follow-up closes itself"), except those about a payer's money still held or to reconcile."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import select

from claims_server.ledger.write_offs import WriteOffBucket, WriteOffReason, open_balances, write_off
from claims_server.models import AuditEvent
from claims_server.models.remittance import AdjudicationHold, AdjudicationState
from claims_server.models.workqueue import WorkItemStatus, WorkQueue
from claims_server.workqueue.services import RecommendedAction, open_work_item
from tests.integration.payments.support import owed_claim
from tests.integration.remittance.support import make_claim, seed_world
from tests.integration.workqueue.support import LineAnswer, adjudicate

INS, PT = WriteOffBucket.INSURANCE, WriteOffBucket.PATIENT


@pytest.fixture
def world(session):
    return seed_world(session)


@pytest.fixture
def claim(session, world):
    """Lines of 150.00 and 25.00; the patient owes 40.00 + 15.00, the payer the other 120.00."""
    return owed_claim(
        session, world, "WOFULL1", [("99213", 15000, 4000), ("36415", 2500, 1500)], since=date(2026, 1, 10)
    )


def _item(session, claim, queue, key, **kw):
    return open_work_item(
        session,
        queue=queue,
        claim=claim,
        reason_codes=[],
        recommended_action=RecommendedAction.REVIEW,
        explanation="",
        dedupe_key=key,
        **kw,
    )


def _wo(session, claim, amount, bucket, key):
    return write_off(
        session,
        claim,
        amount_cents=amount,
        bucket=bucket,
        reason=WriteOffReason.BAD_DEBT,
        idempotency_key=key,
    )


def test_writing_the_whole_balance_off_closes_the_claims_items(session, world, claim):
    # A claim made from this one (its A/R stays here): its items belong to the same balance.
    child = make_claim(session, world, "WOFULL1B", [("99213", 15000)])
    child.original_claim_id = claim.id
    # A held possible duplicate of this claim, with its item, and a PLB to reconcile.
    held = adjudicate(session, claim, status="1", lines=[LineAnswer(0), LineAnswer(0)], move_state=False)
    held.adjudication_state = AdjudicationState.HELD
    held.hold_reason = AdjudicationHold.POSSIBLE_DUPLICATE
    items = {
        "denied": _item(session, claim, WorkQueue.DENIED, "t:denied"),
        "patient": _item(session, claim, WorkQueue.PATIENT_BALANCE, "t:patient"),
        "child": _item(session, child, WorkQueue.OTHER, "t:child"),
        "duplicate": _item(session, claim, WorkQueue.POSSIBLE_DUPLICATE, "t:dup", claim_payment=held),
        "plb": _item(session, claim, WorkQueue.RECONCILIATION, "t:plb"),
    }
    session.commit()

    first = _wo(session, claim, 12000, INS, "full-1")  # the insurance part: 55.00 still open
    session.commit()
    # The denial is about what the payer owes: it closes at zero (docs/write-offs.md, "Work items
    # close at zero"); the rest waits for the patient's 55.00.
    assert items["denied"].status is WorkItemStatus.RESOLVED
    assert items["denied"].resolution == (
        f"system: the balance it is about was written off (write-off {first.public_id})"
    )
    assert all(i.status is WorkItemStatus.OPEN for name, i in items.items() if name != "denied")

    done = _wo(session, claim, 5500, PT, "full-2")  # the rest: nothing left open
    session.commit()
    assert open_balances(session, claim) == {INS: 0, PT: 0}
    closed = {name for name, i in items.items() if i.status is WorkItemStatus.RESOLVED} - {"denied"}
    assert closed == {"patient", "child"}
    for name in closed:
        assert items[name].resolved_at is not None
        assert items[name].resolution == (
            f"system: the claim's balance was written off in full (write-off {done.public_id})"
        )
    assert items["duplicate"].status is WorkItemStatus.OPEN and items["plb"].status is WorkItemStatus.OPEN

    event = session.scalar(
        select(AuditEvent).where(
            AuditEvent.event_type == "ledger.write_off", AuditEvent.entity_id == done.public_id
        )
    )
    assert set(event.details["work_items_resolved"]) == {items[n].public_id for n in closed}
    resolves = session.scalars(
        select(AuditEvent).where(
            AuditEvent.event_type == "work_item.resolve",
            AuditEvent.entity_id.in_([items[n].public_id for n in closed]),
        )
    ).all()
    assert {e.details["resolution"] for e in resolves} == {"system"} and len(resolves) == 2


def test_a_partial_write_off_closes_nothing(session, claim):
    item = _item(session, claim, WorkQueue.DENIED, "t:partial")
    session.commit()
    _wo(session, claim, 5400, PT, "partial-1")  # 1.00 of the patient's part stays open
    session.commit()
    assert open_balances(session, claim) == {INS: 12000, PT: 100}
    assert item.status is WorkItemStatus.OPEN
