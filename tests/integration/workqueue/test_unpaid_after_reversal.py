"""The unpaid sweep sees a claim the payer reversed: back in ``acknowledged`` with no adjudication
in force, it awaits the payer again, counted from the reversal (docs/adjudication-history.md,
"A reversal", step 4).

The adjudications are stored as the posting engine records them (``adjudicate``), with the
states the engine sets on a reversal: the original ``reversed``, the reversal ``applied``.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from claims_server.models import ClaimState, WorkItem
from claims_server.models.remittance import AdjudicationState
from claims_server.models.workqueue import WorkItemStatus, WorkQueue
from claims_server.workqueue.services import sweep, unpaid_by_payer
from tests.integration.workqueue.support import LineAnswer, adjudicate, make_claim

NOW = datetime.now(UTC)
TODAY = NOW.date()
PAID = [LineAnswer(17500), LineAnswer(4550)]
REVERSED = [LineAnswer(-17500), LineAnswer(-4550)]


def _unpaid(session) -> list[WorkItem]:
    return list(
        session.scalars(select(WorkItem).where(WorkItem.queue == WorkQueue.UNPAID).order_by(WorkItem.id))
    )


def _paid_then_reversed(session, ids, *, reversed_days_ago: int):
    """A claim submitted 90 days ago, paid, then reversed ``reversed_days_ago`` days ago."""
    claim = make_claim(session, ids, submitted=NOW - timedelta(days=90))
    original = adjudicate(session, claim, status="1", lines=PAID)
    reversal = adjudicate(session, claim, status="22", lines=REVERSED, move_state=False)
    reversal.reverses_claim_payment_id = original.id
    reversal.created_at = NOW - timedelta(days=reversed_days_ago)
    original.adjudication_state = AdjudicationState.REVERSED
    claim.state = ClaimState.ACKNOWLEDGED  # what the engine does when no adjudication is left in force
    session.commit()
    return claim


def test_a_reversed_claim_back_in_acknowledged_is_in_the_unpaid_sweep(session, ids):
    claim = _paid_then_reversed(session, ids, reversed_days_ago=40)
    rows = unpaid_by_payer(session, days=30, as_of=TODAY)
    assert [(r.claims, r.amount_cents, r.oldest_days) for r in rows] == [(1, 22050, 40)]

    result = sweep(session, as_of=TODAY, unpaid_days=30)
    session.commit()
    assert result.opened["unpaid"] == 1
    (item,) = _unpaid(session)
    assert item.claim_id == claim.id and item.status is WorkItemStatus.OPEN
    reversed_on = (NOW - timedelta(days=40)).date()
    assert item.dedupe_key == f"unpaid:claim:{claim.id}:{reversed_on:%Y%m%d}"
    assert "reversed its adjudication" in item.comments[0].body and "40 days" in item.comments[0].body
    assert sweep(session, as_of=TODAY, unpaid_days=30).opened["unpaid"] == 0  # idempotent


def test_the_wait_restarts_at_the_reversal(session, ids):
    """Submitted 90 days ago, reversed 10 days ago: not unpaid at 30 days, unpaid at 5."""
    claim = _paid_then_reversed(session, ids, reversed_days_ago=10)
    assert unpaid_by_payer(session, days=30, as_of=TODAY) == []
    assert sweep(session, as_of=TODAY, unpaid_days=30).opened["unpaid"] == 0
    assert sweep(session, as_of=TODAY, unpaid_days=5).opened["unpaid"] == 1
    (item,) = _unpaid(session)
    assert item.claim_id == claim.id


def test_the_first_waits_item_does_not_hide_the_second_wait(session, ids):
    """Unpaid at 30 days (item opened), paid (item resolved), reversed: a new item opens."""
    claim = make_claim(session, ids, submitted=NOW - timedelta(days=90))
    session.commit()
    assert sweep(session, as_of=TODAY, unpaid_days=30).opened["unpaid"] == 1
    original = adjudicate(session, claim, status="1", lines=PAID)
    assert sweep(session, as_of=TODAY, unpaid_days=30).resolved["unpaid"] == 1
    reversal = adjudicate(session, claim, status="22", lines=REVERSED, move_state=False)
    reversal.reverses_claim_payment_id = original.id
    reversal.created_at = NOW - timedelta(days=35)
    original.adjudication_state = AdjudicationState.REVERSED
    claim.state = ClaimState.ACKNOWLEDGED
    session.commit()

    assert sweep(session, as_of=TODAY, unpaid_days=30).opened["unpaid"] == 1
    first, second = _unpaid(session)
    assert first.status is WorkItemStatus.RESOLVED and second.status is WorkItemStatus.OPEN
    assert second.claim_id == claim.id and second.dedupe_key != first.dedupe_key

    # The corrected adjudication arrives: the claim has an answer in force again.
    adjudicate(session, claim, status="1", lines=PAID, move_state=False)
    claim.state = ClaimState.PAID
    session.commit()
    assert sweep(session, as_of=TODAY, unpaid_days=30).resolved["unpaid"] == 1
    session.refresh(second)
    assert second.status is WorkItemStatus.RESOLVED


def test_a_held_or_current_adjudication_is_an_answer(session, ids):
    """A claim whose only adjudication is current (or held for a decision) is not unpaid."""
    claim = make_claim(session, ids, submitted=NOW - timedelta(days=90))
    payment = adjudicate(session, claim, status="1", lines=PAID, move_state=False)
    session.commit()
    assert unpaid_by_payer(session, days=30, as_of=TODAY) == []
    payment.adjudication_state = AdjudicationState.HELD
    session.commit()
    assert unpaid_by_payer(session, days=30, as_of=TODAY) == []
    payment.adjudication_state = AdjudicationState.REJECTED  # a supervisor rejected it: no answer
    session.commit()
    assert [r.claims for r in unpaid_by_payer(session, days=30, as_of=TODAY)] == [1]
