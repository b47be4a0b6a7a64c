"""The simulated payer's answer to a replacement claim, posted: reversal, correction, forward balance.

A real payer answers a replacement (CLM05-3 = 7, REF*F8 its claim number) with a reversal
of its earlier adjudication (CLP02 = 22) and the corrected adjudication in one 835
(TR3 005010X221A1 1.10.2.8); when that nets below zero, BPR02 is 0 and a PLB FB carries
the balance, taken back by the payer's next 835 with money. Posted by our engine, nothing
is held, no payer's A/R goes below zero and the payer offset ends at zero.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from claims_server.claims.services import create_claim_from_json, make_ready
from claims_server.clearinghouse import services as ch
from claims_server.corrections.services import create_replacement_claim
from claims_server.models import (
    Account,
    AccountCode,
    ClaimFilingIndicator,
    Coverage,
    Payer,
    Posting,
    RelationshipToSubscriber,
    WorkItem,
)
from claims_server.models.remittance import (
    AdjudicationKind,
    AdjudicationState,
    ClaimPayment,
    ProviderAdjustment,
    Remittance,
)
from claims_server.models.workqueue import WorkItemStatus, WorkQueue
from claims_server.simulator.service import run_once
from claims_server.submission.sending import send_ready_claims
from tests.integration.submission.conftest import recent_claim

NDC = "63323016501"


def _medicaid_coverage(session: Session) -> Coverage:
    return session.scalars(
        select(Coverage)
        .join(Payer, Payer.id == Coverage.payer_id)
        .where(
            Payer.claim_filing_indicator == ClaimFilingIndicator.MEDICAID,
            Coverage.coverage_order == 1,
            Coverage.relationship_code == RelationshipToSubscriber.SELF,
        )
        .order_by(Coverage.id)
    ).first()


def _claim_doc(ids: dict[str, Any], coverage: Coverage, *, drug: bool) -> dict[str, Any]:
    doc = recent_claim(ids, patient=coverage.patient.public_id, coverage=coverage.public_id)
    line = dict(doc["lines"][0], procedure="J1100", charge="18.00", units="1", diagnosis_pointers=[1])
    if drug:
        line.update(ndc=NDC, drug_quantity="1", drug_unit="ML")
    doc["lines"] = [doc["lines"][0], line]
    return doc


def _send_and_answer(factory, route, base: Path) -> None:
    """Send what is ready, let the simulator answer (999 + 277CA, then the 835), poll and post."""

    def transport(r):
        return ch.route_transport(r, base)

    report = send_ready_claims(factory, route_id=route.id, today=date.today(), transport_factory=transport)
    assert report.batches
    outbox, inbox = Path(route.settings["outbox"]), Path(route.settings["inbox"])
    for _ in range(2):
        run_once(outbox, inbox)
        ch.poll_inbox(factory, route.id, transport_factory=transport)


def _balance(session: Session, code: AccountCode, **where: int) -> int:
    query = (
        select(func.coalesce(func.sum(Posting.amount_cents), 0))
        .join(Account)
        .where(Account.code == code.value)
    )
    for name, value in where.items():
        query = query.where(getattr(Posting, name) == value)
    return session.scalar(query)


def test_a_replacement_paying_less_is_reversed_corrected_and_carried_forward(
    session, factory, folder_route, ids, tmp_path
):
    coverage = _medicaid_coverage(session)
    payer_id = coverage.payer_id
    original = create_claim_from_json(session, _claim_doc(ids, coverage, drug=True)).claim
    session.commit()
    _send_and_answer(factory, folder_route, tmp_path)
    session.expire_all()
    first = session.scalars(select(ClaimPayment).where(ClaimPayment.claim_id == original.id)).one()
    assert first.adjudication_state is AdjudicationState.CURRENT
    assert first.paid_cents == 12_900 + 1_440  # Medicaid: allowed, no cost sharing; the drug at 80%

    # The replacement drops the NDC: the payer now denies the drug line, and pays 14.40 less.
    replacement = create_replacement_claim(session, original, reason="NDC removed")
    for line in replacement.service_lines:
        if line.procedure_code == "J1100":
            line.ndc = line.drug_quantity = line.drug_unit = None
    make_ready(session, replacement, reason="corrected")
    session.commit()
    _send_and_answer(factory, folder_route, tmp_path)
    session.expire_all()

    history = session.scalars(
        select(ClaimPayment).where(ClaimPayment.ledger_claim_id == original.id).order_by(ClaimPayment.id)
    ).all()
    assert [(c.adjudication_kind, c.adjudication_state) for c in history] == [
        (AdjudicationKind.ORIGINAL, AdjudicationState.REVERSED),
        (AdjudicationKind.REVERSAL, AdjudicationState.APPLIED),
        (AdjudicationKind.CORRECTION, AdjudicationState.CURRENT),
    ]
    reversal, correction = history[1], history[2]
    assert reversal.reverses_claim_payment_id == first.id and reversal.paid_cents == -first.paid_cents
    assert correction.claim_id == replacement.id and correction.paid_cents == 12_900
    carried = session.scalars(select(Remittance).where(Remittance.id == reversal.remittance_id)).one()
    assert carried.payment_amount_cents == 0  # never negative: the 14.40 goes forward
    (forward,) = carried.provider_adjustments
    assert (forward.reason_code, forward.amount_cents, forward.claim_id) == ("FB", -1_440, original.id)
    assert _balance(session, AccountCode.PAYER_OFFSET, payer_id=payer_id) == -1_440

    # The payer's next 835 with money takes the 14.40 back.
    create_claim_from_json(session, _claim_doc(ids, coverage, drug=True))
    session.commit()
    _send_and_answer(factory, folder_route, tmp_path)
    session.expire_all()
    recovered = session.scalars(
        select(ProviderAdjustment).where(
            ProviderAdjustment.id != forward.id, ProviderAdjustment.reason_code == "FB"
        )
    ).one()
    assert (recovered.amount_cents, recovered.claim_id) == (1_440, original.id)
    assert recovered.remittance.payment_amount_cents == 12_900 + 1_440 - 1_440
    assert _balance(session, AccountCode.PAYER_OFFSET, payer_id=payer_id) == 0

    # Nothing held, no payer receivable below zero, and what the claim owes is what is current.
    assert not session.scalars(
        select(ClaimPayment).where(ClaimPayment.adjudication_state == AdjudicationState.HELD)
    ).all()
    assert not session.scalars(select(WorkItem).where(WorkItem.queue == WorkQueue.POSSIBLE_DUPLICATE)).all()
    open_reversal_items = session.scalars(
        select(WorkItem).where(
            WorkItem.dedupe_key.like("reversal:%"), WorkItem.status != WorkItemStatus.RESOLVED
        )
    ).all()
    assert open_reversal_items == []
    # 193.00 billed, 129.00 paid, 46.00 contractual: the denied drug line stays open for a person.
    assert _balance(session, AccountCode.AR_INSURANCE, claim_id=original.id, payer_id=payer_id) == 1_800
