"""Builders for the remit-work tests: claims moved through their life, and 835 adjudications
stored the way the posting engine stores them (Remittance, ClaimPayment, LinePayment, CAS).

Amounts are integer cents chosen by hand in each test.
"""

from __future__ import annotations

import hashlib
import itertools
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy.orm import Session

from claims_server.claims import services as claim_services
from claims_server.claims import state
from claims_server.ledger.services import (
    EntrySpec,
    Leg,
    claim_charge,
    ensure_claims_receivable,
    post_entries,
    receivable_claim_id,
)
from claims_server.models import (
    AccountCode,
    Adjustment,
    AdjustmentGroup,
    Claim,
    ClaimPayment,
    EdiFile,
    EdiFileKind,
    FileDirection,
    JournalEventType,
    LinePayment,
    Remittance,
    RemittanceState,
)
from claims_server.models.remittance import AdjudicationKind, AdjudicationState
from tests.integration.claims.support import claim_json

_counter = itertools.count(1)


def make_claim(
    session: Session, ids: dict[str, Any], *, submitted: datetime | None = None, **overrides: Any
) -> Claim:
    """A clean claim (99214 175.00 + 83036 45.50 by default), moved to ``submitted``."""
    claim = claim_services.create_claim_from_json(session, claim_json(ids, **overrides)).claim
    claim_services.make_ready(session, claim)
    state.mark_batched(session, claim)
    state.mark_submitted(session, claim)
    claim.submitted_at = submitted or datetime.now(UTC)
    session.flush()
    return claim


@dataclass
class LineAnswer:
    """What the payer said about one line: paid cents and CAS (group, CARC, cents)."""

    paid: int
    cas: list[tuple[str, str, int]] = field(default_factory=list)
    remarks: list[str] = field(default_factory=list)


def adjudicate(
    session: Session,
    claim: Claim,
    *,
    status: str,
    lines: list[LineAnswer],
    claim_cas: list[tuple[str, str, int]] | None = None,
    payer_claim_number: str = "PCN-ICN-0001",
    payment_date: date = date(2026, 2, 2),
    crossover_name: str | None = None,
    move_state: bool = True,
) -> ClaimPayment:
    """Store one 835 claim payment for ``claim`` as the posting engine would (no ledger)."""
    n = next(_counter)
    raw = f"synthetic-835-{n}-{claim.patient_control_number}".encode()
    edi_file = EdiFile(
        direction=FileDirection.INBOUND,
        kind=EdiFileKind.REMITTANCE_835,
        sha256=hashlib.sha256(raw).hexdigest(),
        size_bytes=len(raw),
        stored_name=f"835-{n}.x12",
    )
    session.add(edi_file)
    session.flush()
    paid = sum(line.paid for line in lines)
    charge = sum(line.charge_cents for line in claim.service_lines)
    pr = sum(a for line in lines for g, _, a in line.cas if g == "PR") + sum(
        a for g, _, a in (claim_cas or []) if g == "PR"
    )
    remittance = Remittance(
        edi_file_id=edi_file.id,
        payer_id=claim.coverage.payer_id,
        handling_code="I" if paid else "H",
        payment_amount_cents=paid,
        payment_method="ACH" if paid else "NON",
        payment_date=payment_date,
        trace_number=f"TRN{n:06d}",
        payer_identifier="1999999999",
        payer_name=claim.coverage.payer.name,
        production_date=payment_date,
        state=RemittanceState.POSTED,
    )
    session.add(remittance)
    payment = ClaimPayment(
        remittance=remittance,
        claim=claim,
        claim_id=claim.id,
        position=1,
        patient_control_number=claim.patient_control_number,
        status_code=status,
        charge_cents=charge,
        paid_cents=paid,
        patient_responsibility_cents=pr,
        claim_filing_indicator=claim.coverage.payer.claim_filing_indicator.value,
        payer_claim_control_number=payer_claim_number,
        crossover_payer_name=crossover_name,
        # The adjudication history (docs/adjudication-history.md) as the engine records it.
        payer_id=claim.coverage.payer_id,
        ledger_claim_id=receivable_claim_id(session, claim),
        adjudication_kind=(
            AdjudicationKind.REVERSAL
            if status == "22"
            else AdjudicationKind.INFORMATIONAL
            if status in ("23", "25")
            else AdjudicationKind.ORIGINAL
        ),
        adjudication_state=(
            AdjudicationState.APPLIED
            if status == "22"
            else AdjudicationState.NONE
            if status in ("23", "25")
            else AdjudicationState.CURRENT
        ),
    )
    for group, carc, amount in claim_cas or []:
        payment.adjustments.append(
            Adjustment(group_code=AdjustmentGroup(group), reason_code=carc, amount_cents=amount)
        )
    for position, (line, answer) in enumerate(zip(claim.service_lines, lines, strict=True), start=1):
        line_payment = LinePayment(
            service_line_id=line.id,
            position=position,
            procedure_code=line.procedure_code,
            modifier1=line.modifier1,
            charge_cents=line.charge_cents,
            paid_cents=answer.paid,
            units=line.units,
            line_control_number=line.line_control_number,
            service_date=line.service_date_from,
            remark_codes=list(answer.remarks),
        )
        for group, carc, amount in answer.cas:
            line_payment.adjustments.append(
                Adjustment(group_code=AdjustmentGroup(group), reason_code=carc, amount_cents=amount)
            )
        payment.line_payments.append(line_payment)
    session.add(payment)
    if move_state:
        state.mark_accepted(session, claim)
        if status == "4":
            state.mark_denied(session, claim)
        elif any(a.paid == 0 for a in lines) or paid < charge - sum(
            a for line in lines for g, _, a in line.cas if g == "CO"
        ):
            state.mark_partially_paid(session, claim)
        else:
            state.mark_paid(session, claim)
    session.flush()
    return payment


def post_charge(session: Session, claim: Claim) -> None:
    """The claim's charge entry (Dr A/R insurance / Cr gross charges per line), dated when it was sent."""
    ensure_claims_receivable(session, [claim_charge(claim)])


def post(
    session: Session, key: str, event: JournalEventType, day: date, legs: list[Leg], **extra: Any
) -> None:
    """One balanced journal entry with hand-written legs."""
    post_entries(
        session, [EntrySpec(event_type=event, idempotency_key=key, legs=legs, effective_date=day, **extra)]
    )


AR_INS, AR_PT, CASH = AccountCode.AR_INSURANCE, AccountCode.AR_PATIENT, AccountCode.CASH_CLEARING
CONTRACTUAL, GROSS = AccountCode.CONTRACTUAL_ADJUSTMENTS, AccountCode.GROSS_CHARGES


def open_co16_denial(session: Session, ids: dict[str, Any], dedupe_key: str):
    """A clean claim with an open denial item (CO-16, correct and resubmit), committed."""
    from claims_server.models.workqueue import WorkQueue
    from claims_server.workqueue.services import open_work_item

    made = open_work_item(
        session,
        queue=WorkQueue.DENIED,
        claim=make_claim(session, ids),
        reason_codes=["CO-16"],
        recommended_action="correct_and_resubmit",
        explanation="CO-16: claim lacks information",
        dedupe_key=dedupe_key,
    )
    session.commit()
    return made
