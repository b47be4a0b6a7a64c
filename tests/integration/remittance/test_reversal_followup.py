"""After a payer reverses: the next payer's claim reads only the current adjudication, and a claim
left with none is in the unpaid sweep (docs/adjudication-history.md, "A reversal" and "Follow-up
closes itself"), with real 835s posted by the engine.

The claim: 99213 100.00 + 85025 50.00, Medicare primary, ACME secondary.
- First adjudication: paid 90.00 (60.00 + 30.00), CO-45 30.00 + 20.00, PR-2 10.00.
- Its reversal (CLP02 22): every amount negated.
- The correction: paid 95.00 (64.00 + 31.00), CO-45 30.00 + 19.00, PR-2 6.00: AMT*D 95.00 and
  6.00 left for the secondary.

Whatever the order the correction and the reversal arrive in (one file either way round, or two
files either way round), the claim's state is what its current adjudication says: paid,
partially paid (a line denied) or denied.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from claims_server.claims.to_edi import batch_for, claim_load_options
from claims_server.errors import Conflict
from claims_server.models import Claim, ClaimPayment, ClaimState, ClearinghouseRoute, WorkItem
from claims_server.models.workqueue import WorkItemStatus, WorkQueue
from claims_server.remittance.services import receive_and_post
from claims_server.secondary.services import build_cob_edi_claim, create_next_payer_claim
from claims_server.workqueue.services import sweep, unpaid_by_payer
from edi.x837 import parse_837, write_837
from tests.integration.remittance.support import Clp, Svc, build_835, make_claim
from tests.unit.edi.support_837 import pyx12_validate

PAYER = "DEMOMCRB"


def _clp(
    claim: Claim, status: str, sign: int, line1: tuple[int, int, int], line2: tuple[int, int], icn: str
) -> Clp:
    """CLP for ``claim``: line 1 (paid, CO-45, PR-2), line 2 (paid, CO-45); ``sign`` -1 for a reversal."""
    l1, l2 = (line.line_control_number for line in claim.service_lines)
    paid1, co1, pr1 = (sign * v for v in line1)
    paid2, co2 = (sign * v for v in line2)
    return Clp(
        claim.patient_control_number,
        status,
        sign * 15000,
        paid1 + paid2,
        pr1,
        lines=[
            Svc("99213", sign * 10000, paid1, [("CO", "45", co1), ("PR", "2", pr1)], lcn=l1),
            Svc("85025", sign * 5000, paid2, [("CO", "45", co2)], lcn=l2),
        ],
        payer_claim_number=icn,
    )


def _first(claim: Claim) -> Clp:
    return _clp(claim, "1", 1, (6000, 3000, 1000), (3000, 2000), "MCR-1")


def _reversal(claim: Claim) -> Clp:
    return _clp(claim, "22", -1, (6000, 3000, 1000), (3000, 2000), "MCR-1")


def _correction(claim: Claim) -> Clp:
    return _clp(claim, "1", 1, (6400, 3000, 600), (3100, 1900), "MCR-2")


def _partial_correction(claim: Claim) -> Clp:
    """Line 1 paid 64.00 (CO-45 30.00, PR-2 6.00), line 2 denied (CO-50 50.00, left in A/R)."""
    l1, l2 = (line.line_control_number for line in claim.service_lines)
    return Clp(
        claim.patient_control_number,
        "1",
        15000,
        6400,
        600,
        lines=[
            Svc("99213", 10000, 6400, [("CO", "45", 3000), ("PR", "2", 600)], lcn=l1),
            Svc("85025", 5000, 0, [("CO", "50", 5000)], lcn=l2),
        ],
        payer_claim_number="MCR-2",
    )


def _denied_correction(claim: Claim) -> Clp:
    """CLP02 4: nothing paid, CO-50 on both lines (left in A/R)."""
    l1, l2 = (line.line_control_number for line in claim.service_lines)
    return Clp(
        claim.patient_control_number,
        "4",
        15000,
        0,
        0,
        lines=[
            Svc("99213", 10000, 0, [("CO", "50", 10000)], lcn=l1),
            Svc("85025", 5000, 0, [("CO", "50", 5000)], lcn=l2),
        ],
        payer_claim_number="MCR-2",
    )


def _post(factory, claims: list[Clp], trace: str, control: int) -> None:
    """One 835; where its claims net below zero the payer carries it as a PLB FB (BPR02 = 0)."""
    total = sum(c.paid for c in claims)
    plb = [("FB", total)] if total < 0 else None
    report = receive_and_post(factory, build_835(claims, trace=trace, payer=PAYER, control=control, plb=plb))
    assert report.status == "posted", report.error


def _state(session, claim: Claim) -> ClaimState:
    session.expire_all()  # the test's copy of the claim is as make_claim left it
    return session.get(Claim, claim.id).state


def _write(session, claim: Claim) -> str:
    loaded = session.scalars(select(Claim).where(Claim.id == claim.id).options(*claim_load_options())).one()
    route = session.scalar(select(ClearinghouseRoute))
    batch = batch_for(
        loaded.practice, route, [build_cob_edi_claim(session, loaded)], created=datetime(2026, 2, 9, 9)
    )
    return write_837(
        batch, interchange_control=79, group_control=79, transaction_controls=["0079"], usage="T"
    )


@pytest.fixture
def claim(session, world) -> Claim:
    return make_claim(
        session, world, "PCN-REV1", [("99213", 10000), ("85025", 5000)], coverage=world.with_secondary
    )


def test_paid_reversed_and_corrected_the_secondary_claim_carries_the_correction(session, factory, claim):
    _post(factory, [_first(claim)], "REV-1", 1)
    assert _state(session, claim) is ClaimState.PAID
    # The corrected adjudication listed before the reversal it follows, in one file.
    _post(factory, [_correction(claim), _reversal(claim)], "REV-2", 2)
    assert _state(session, claim) is ClaimState.PAID  # the correction's, after the retry released it
    session.rollback()

    secondary = create_next_payer_claim(session, session.get(Claim, claim.id))
    session.commit()
    text = _write(session, secondary)
    assert pyx12_validate(text).accepted
    (prior,) = parse_837(text.encode())[0].claims[0].other_payers
    assert prior.paid_cents == 9500  # AMT*D: the correction's, never the reversed 90.00
    assert prior.payer_claim_control_number == "MCR-2"
    assert prior.remaining_patient_liability_cents == 600
    assert [(la.line_number, la.paid_cents) for la in prior.line_adjudications] == [(1, 6400), (2, 3100)]
    cas = [(a.group, a.reason, a.amount_cents) for la in prior.line_adjudications for a in la.adjustments]
    assert cas == [("CO", "45", 3000), ("PR", "2", 600), ("CO", "45", 1900)]
    assert "AMT*D*95~" in text and "AMT*D*90~" not in text


def _paid_in_full(session, world) -> Clp:
    """Another claim of the patient paid 120.00 in full: a file holding only a reversal would have
    a negative BPR02 (refused), so the payer's reversal comes with a payment, as it does in practice."""
    other = make_claim(session, world, "PCN-REV2", [("99214", 12000)], coverage=world.with_secondary)
    lcn = other.service_lines[0].line_control_number
    return Clp(
        "PCN-REV2",
        "1",
        12000,
        12000,
        0,
        lines=[Svc("99214", 12000, 12000, lcn=lcn)],
        payer_claim_number="MCR-9",
    )


def test_paid_then_reversed_builds_no_secondary_and_the_unpaid_sweep_follows_it(
    session, factory, world, claim
):
    _post(factory, [_first(claim)], "REV-3", 3)
    _post(factory, [_reversal(claim), _paid_in_full(session, world)], "REV-4", 4)  # BPR02 30.00
    assert _state(session, claim) is ClaimState.ACKNOWLEDGED  # the engine: awaiting payment again
    session.rollback()
    reversed_claim = session.get(Claim, claim.id)

    with pytest.raises(
        Conflict, match="reversed its adjudication of this claim and has not sent a corrected one"
    ):
        create_next_payer_claim(session, reversed_claim)
    session.rollback()
    assert session.scalar(select(Claim).where(Claim.original_claim_id == claim.id)) is None

    # Awaiting again from the reversal (today): past a 30-day limit 31 days on.
    reversed_claim.submitted_at = datetime.now(UTC) - timedelta(days=60)
    session.commit()
    today = datetime.now(UTC).date()
    assert unpaid_by_payer(session, days=30, as_of=today) == []
    later = today + timedelta(days=31)
    rows = unpaid_by_payer(session, days=30, as_of=later)
    assert [(r.claims, r.amount_cents, r.oldest_days) for r in rows] == [(1, 15000, 31)]
    assert sweep(session, as_of=later, unpaid_days=30).opened["unpaid"] == 1
    session.commit()
    (item,) = session.scalars(
        select(WorkItem).where(WorkItem.queue == WorkQueue.UNPAID, WorkItem.claim_id == claim.id)
    ).all()
    assert item.status is WorkItemStatus.OPEN and "reversed its adjudication" in item.comments[0].body

    # The corrected adjudication arrives: the claim is answered, the sweep closes the item.
    _post(factory, [_correction(claim)], "REV-5", 5)
    assert _state(session, claim) is ClaimState.PAID
    session.rollback()
    assert sweep(session, as_of=later, unpaid_days=30).resolved["unpaid"] == 1
    session.commit()
    session.refresh(item)
    assert item.status is WorkItemStatus.RESOLVED


CORRECTIONS = {
    "paid": (_correction, ClaimState.PAID),
    "partially_paid": (_partial_correction, ClaimState.PARTIALLY_PAID),
    "denied": (_denied_correction, ClaimState.DENIED),
}
ORDERS = {
    "one file, correction first": [["correction", "reversal"]],
    "one file, reversal first": [["reversal", "correction"]],
    "correction file, then reversal file": [["correction"], ["reversal"]],
    "reversal file, then correction file": [["reversal"], ["correction"]],
}


@pytest.mark.parametrize("kind", list(CORRECTIONS))
@pytest.mark.parametrize("order", list(ORDERS))
def test_the_claim_state_follows_the_current_adjudication_in_any_order(session, factory, claim, kind, order):
    """Paid 90.00, then the payer reverses it and sends a correction that pays in full, pays one
    line (the other denied) or denies the claim: the claim ends in the correction's state."""
    make, expected = CORRECTIONS[kind]
    _post(factory, [_first(claim)], "ORD-1", 1)
    assert _state(session, claim) is ClaimState.PAID
    clps = {"correction": make(claim), "reversal": _reversal(claim)}
    for n, names in enumerate(ORDERS[order], 2):
        _post(factory, [clps[name] for name in names], f"ORD-{n}", n)
    assert _state(session, claim) is expected
    session.expire_all()
    states = [
        (p.status_code, p.adjudication_state.value)
        for p in session.scalars(
            select(ClaimPayment).where(ClaimPayment.claim_id == claim.id).order_by(ClaimPayment.id)
        )
    ]
    assert sorted(states) == sorted(
        [("1", "reversed"), ("22", "applied"), (clps["correction"].status, "current")]
    )
