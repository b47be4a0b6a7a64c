"""Next-payer claims read the prior payer's current adjudication only (docs/adjudication-history.md,
"Follow-up closes itself"): a reversed adjudication never feeds loop 2320/2430 (AMT*D).

The adjudications are stored as the posting engine records them (``adjudicate``), with the
history states the engine sets on a reversal: the original ``reversed``, the reversal
``applied``, the correction ``current``. Amounts are hand-computed cents.
"""

from __future__ import annotations

from datetime import datetime

import pytest
from sqlalchemy import select

from claims_server.claims.services import make_ready
from claims_server.claims.to_edi import ClaimDataError, batch_for, claim_load_options
from claims_server.errors import Conflict
from claims_server.models import Claim, ClaimState, ClearinghouseRoute, WorkItem
from claims_server.models.remittance import AdjudicationHold, AdjudicationKind, AdjudicationState
from claims_server.models.workqueue import WorkItemStatus, WorkQueue
from claims_server.secondary.services import (
    build_cob_edi_claim,
    claims_needing_next_payer,
    create_next_payer_claim,
)
from claims_server.submission.services import build_batches
from claims_server.workqueue.services import sweep
from edi.x837 import parse_837, write_837
from tests.integration.workqueue.support import LineAnswer, adjudicate, make_claim

# The first adjudication: 99214 175.00 paid 100.00 (CO-45 50.00, PR-2 25.00); 83036 45.50 paid
# 30.00 (PR-1 15.50). AMT*D 130.00, 40.50 left for the secondary.
FIRST = [LineAnswer(10000, [("CO", "45", 5000), ("PR", "2", 2500)]), LineAnswer(3000, [("PR", "1", 1550)])]
# Its reversal (CLP02 22): every amount negated.
REVERSAL = [
    LineAnswer(-10000, [("CO", "45", -5000), ("PR", "2", -2500)]),
    LineAnswer(-3000, [("PR", "1", -1550)]),
]
# The corrected adjudication: 99214 paid 110.00 (CO-45 45.00, PR-2 20.00); 83036 paid 35.50
# (PR-1 10.00). AMT*D 145.50, 30.00 left.
CORRECTED = [
    LineAnswer(11000, [("CO", "45", 4500), ("PR", "2", 2000)]),
    LineAnswer(3550, [("PR", "1", 1000)]),
]


def _reverse(session, claim: Claim, original) -> None:
    """The payer's CLP02 22 of ``original``, recorded as the engine records a matched reversal."""
    reversal = adjudicate(
        session, claim, status="22", lines=REVERSAL, payer_claim_number="ICN-1", move_state=False
    )
    reversal.reverses_claim_payment_id = original.id
    original.adjudication_state = AdjudicationState.REVERSED
    session.flush()


def _write(session, claim: Claim) -> str:
    loaded = session.scalars(select(Claim).where(Claim.id == claim.id).options(*claim_load_options())).one()
    route = session.scalar(select(ClearinghouseRoute))
    built = build_cob_edi_claim(session, loaded)
    batch = batch_for(loaded.practice, route, [built], created=datetime(2026, 2, 9, 9))
    return write_837(
        batch, interchange_control=78, group_control=78, transaction_controls=["0078"], usage="T"
    )


def test_paid_reversed_corrected_the_secondary_carries_the_corrected_amounts(session, ids):
    primary = make_claim(session, ids)
    first = adjudicate(session, primary, status="1", lines=FIRST, payer_claim_number="ICN-1")
    _reverse(session, primary, first)
    corrected = adjudicate(
        session, primary, status="1", lines=CORRECTED, payer_claim_number="ICN-2", move_state=False
    )
    corrected.adjudication_kind = AdjudicationKind.CORRECTION
    # Later still, a re-issued copy of the first 835 arrives: held as a possible duplicate (the
    # newest row for the claim, and not a reversal: it must not be read either).
    reissued = adjudicate(
        session, primary, status="1", lines=FIRST, payer_claim_number="ICN-1", move_state=False
    )
    reissued.adjudication_state = AdjudicationState.HELD
    reissued.hold_reason = AdjudicationHold.POSSIBLE_DUPLICATE
    session.commit()

    secondary = create_next_payer_claim(session, primary)
    session.commit()
    parsed = parse_837(_write(session, secondary).encode())[0].claims[0]
    (prior,) = parsed.other_payers
    assert prior.paid_cents == 14550  # AMT*D of the correction, not 130.00 (reversed) nor 0.00 (net)
    assert prior.payer_claim_control_number == "ICN-2"
    assert prior.remaining_patient_liability_cents == 3000
    assert [(la.line_number, la.paid_cents) for la in prior.line_adjudications] == [(1, 11000), (2, 3550)]
    cas = [(a.group, a.reason, a.amount_cents) for la in prior.line_adjudications for a in la.adjustments]
    assert cas == [("CO", "45", 4500), ("PR", "2", 2000), ("PR", "1", 1000)]


def test_paid_then_reversed_with_no_correction_builds_no_secondary(session, ids):
    primary = make_claim(session, ids)
    first = adjudicate(session, primary, status="1", lines=FIRST, payer_claim_number="ICN-1")
    session.commit()
    assert [c.claim.id for c in claims_needing_next_payer(session)] == [primary.id]
    _reverse(session, primary, first)
    session.commit()

    with pytest.raises(Conflict, match="reversed its adjudication") as refused:
        create_next_payer_claim(session, primary)
    assert refused.value.errors[0]["rule"] == "next_payer"
    assert claims_needing_next_payer(session) == []
    assert session.scalar(select(Claim).where(Claim.original_claim_id == primary.id)) is None


def test_a_secondary_already_made_is_held_by_the_batcher_when_its_primary_is_reversed(session, ids):
    primary = make_claim(session, ids)
    first = adjudicate(session, primary, status="1", lines=FIRST, payer_claim_number="ICN-1")
    secondary = create_next_payer_claim(session, primary)
    make_ready(session, secondary)
    _reverse(session, primary, first)
    session.commit()

    with pytest.raises(ClaimDataError) as refused:
        build_cob_edi_claim(session, secondary)
    assert [f.rule_id for f in refused.value.findings] == ["COB_PRIOR_NOT_CURRENT"]
    result = build_batches(session)
    session.commit()
    assert result.claims_batched == 0
    (held,) = result.held
    assert "COB_PRIOR_NOT_CURRENT" in {f["rule_id"] for f in held.findings}
    session.refresh(secondary)
    assert secondary.state is not ClaimState.BATCHED


def test_creating_the_next_payer_claim_closes_the_needs_secondary_item(session, ids):
    primary = make_claim(session, ids)
    adjudicate(session, primary, status="1", lines=FIRST)
    session.commit()
    assert sweep(session, as_of=datetime.now().date()).opened["needs_secondary"] == 1
    item = session.scalar(select(WorkItem).where(WorkItem.queue == WorkQueue.NEEDS_SECONDARY))
    assert item.status is WorkItemStatus.OPEN

    nxt = create_next_payer_claim(session, primary)
    session.commit()
    session.refresh(item)
    assert item.status is WorkItemStatus.RESOLVED
    assert item.resolved_at is not None
    assert item.resolution == f"system: the next payer's claim {nxt.public_id} was created (coverage order 2)"


def test_a_needs_secondary_item_follows_the_current_adjudication(session, ids):
    """Reversed: the item closes saying why (not "billed"); corrected: a new item for the correction."""
    primary = make_claim(session, ids)
    first = adjudicate(session, primary, status="1", lines=FIRST, payer_claim_number="ICN-1")
    session.commit()
    today = datetime.now().date()
    assert sweep(session, as_of=today).opened["needs_secondary"] == 1
    (item,) = session.scalars(select(WorkItem).where(WorkItem.queue == WorkQueue.NEEDS_SECONDARY)).all()

    _reverse(session, primary, first)
    session.commit()
    assert sweep(session, as_of=today).resolved["needs_secondary"] == 1
    session.refresh(item)
    assert item.status is WorkItemStatus.RESOLVED
    assert item.resolution.startswith("system: no next-payer claim to make now: the payer reversed")

    corrected = adjudicate(
        session, primary, status="1", lines=CORRECTED, payer_claim_number="ICN-2", move_state=False
    )
    session.commit()
    assert sweep(session, as_of=today).opened["needs_secondary"] == 1
    newer = session.scalar(
        select(WorkItem).where(
            WorkItem.queue == WorkQueue.NEEDS_SECONDARY, WorkItem.status == WorkItemStatus.OPEN
        )
    )
    assert newer.claim_payment_id == corrected.id and "30.00 remains" in newer.comments[0].body
    assert sweep(session, as_of=today).resolved["needs_secondary"] == 0


def test_reversed_and_corrected_between_two_sweeps_the_stale_item_closes(session, ids):
    primary = make_claim(session, ids)
    first = adjudicate(session, primary, status="1", lines=FIRST, payer_claim_number="ICN-1")
    session.commit()
    today = datetime.now().date()
    sweep(session, as_of=today)
    (stale,) = session.scalars(select(WorkItem).where(WorkItem.queue == WorkQueue.NEEDS_SECONDARY)).all()
    _reverse(session, primary, first)
    corrected = adjudicate(
        session, primary, status="1", lines=CORRECTED, payer_claim_number="ICN-2", move_state=False
    )
    session.commit()

    result = sweep(session, as_of=today)
    session.commit()
    assert (result.opened["needs_secondary"], result.resolved["needs_secondary"]) == (1, 1)
    session.refresh(stale)
    assert stale.resolution == (
        "system: the adjudication it named is no longer current; the current one has an item of its own"
    )
    open_items = session.scalars(
        select(WorkItem).where(
            WorkItem.queue == WorkQueue.NEEDS_SECONDARY, WorkItem.status == WorkItemStatus.OPEN
        )
    ).all()
    assert [i.claim_payment_id for i in open_items] == [corrected.id]
