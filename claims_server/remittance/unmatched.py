"""Unmatched payments: 835 claim payments that named no claim of ours, shown in full, applied by
hand to the right claim, or returned to the payer.

An unmatched CLP was posted Dr cash clearing / Cr unapplied payments (remittance dimension)
with a work item in queue ``unmatched`` (``remittance.posting``). Here a biller sees what the
payer said (payer, trace TRN02, check date, CLP01, the payer's claim number CLP07, billed /
paid / patient responsibility, and the patient as the 835 named them in NM1*QC, read back
from the stored file: PHI, shown on the page and in the API answer only, never logged,
never in a URL or an error) with a suggested claim, and then:

- **applies** it to a claim: the stored claim payment becomes an adjudication of that claim
  held for a person (its ``:unapplied`` entry is its hold) and is posted through the engine's
  own decision path (``remittance.services.decide_held``), so the adjudication history,
  patient responsibility, work items and the claim's state come out exactly as for a CLP
  that matched: its hold is released (Dr unapplied / Cr cash clearing) and it posts (Dr cash
  clearing / Cr A/R insurance, PR to the next payer or the patient, CO/OA adjustments).
  ``decided_by`` names who applied it, and ``remittance.unmatched_apply`` is audited.
  Refused (422 naming ``claim``, nothing changed): a claim of another payer than the 835's
  (the payer must be one of the patient's coverages, as for a crossover), a claim of another
  patient when the 835 names a patient whose name does not match the claim's, a claim that
  already carries a current adjudication by this payer (a possible duplicate), a void claim,
  an amount more than is open on the claim for this payer (it would overdraw), money
  already partly returned to the payer;
- **returns** it to the payer: a payer refund (``ledger.credits``), by check with a refund
  letter, or as an offset the payer takes from a later 835 (its PLB WO/72 links to it).
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from claims_server.api_common.fields import cents_to_money
from claims_server.errors import Conflict, NotFound, Unprocessable
from claims_server.ledger import credits
from claims_server.ledger.services import balance, claim_charge, ensure_claims_receivable, receivable_claim_id
from claims_server.models import (
    AccountCode,
    Adjustment,
    AuditAction,
    Claim,
    ClaimPayment,
    ClaimState,
    Coverage,
    EdiFile,
    Patient,
    Payer,
    Remittance,
    ServiceLine,
    User,
    WorkItem,
)
from claims_server.models.claims import ClaimFrequency
from claims_server.models.common import utcnow
from claims_server.models.remittance import AdjudicationKind, AdjudicationState
from claims_server.models.workqueue import WorkItemStatus, WorkQueue
from claims_server.security.audit import audit_event
from edi import x835

_VOID_STATES = (ClaimState.VOIDED,)


def refuse(rule: str, message: str, field_name: str = "claim", **extra: Any) -> Unprocessable:
    return Unprocessable(
        f"{field_name}: {message}", errors=[{"field": field_name, "rule": rule, "message": message}], **extra
    )


# -- reading ---------------------------------------------------------------------------------------


def item_of(session: Session, payment: ClaimPayment) -> WorkItem | None:
    return session.scalar(
        select(WorkItem)
        .where(WorkItem.claim_payment_id == payment.id, WorkItem.queue == WorkQueue.UNMATCHED)
        .order_by(WorkItem.id)
        .limit(1)
    )


def get_unmatched(session: Session, item_public_id: str) -> tuple[WorkItem, ClaimPayment]:
    """The unmatched claim payment named by its work item's public id (404 otherwise)."""
    item = session.scalar(
        select(WorkItem).where(WorkItem.public_id == item_public_id, WorkItem.queue == WorkQueue.UNMATCHED)
    )
    if item is None or item.claim_payment_id is None:
        raise NotFound("no unmatched payment has this id")
    payment = session.get(ClaimPayment, item.claim_payment_id)
    if payment is None or (payment.claim_id is not None and payment.decided_by is None):
        raise NotFound("no unmatched payment has this id")
    return item, payment


def list_unmatched(
    session: Session, *, include_done: bool = False, limit: int = 200
) -> list[tuple[WorkItem, ClaimPayment]]:
    """Unmatched claim payments with their work items, newest first (open ones unless ``include_done``)."""
    stmt = (
        select(WorkItem, ClaimPayment)
        .join(ClaimPayment, ClaimPayment.id == WorkItem.claim_payment_id)
        .where(WorkItem.queue == WorkQueue.UNMATCHED, WorkItem.dedupe_key.like("unmatched:%"))
        .order_by(ClaimPayment.id.desc())
        .limit(limit)
    )
    if not include_done:
        stmt = stmt.where(
            WorkItem.status != WorkItemStatus.RESOLVED,
            ClaimPayment.adjudication_state == AdjudicationState.UNMATCHED,
        )
    return [(item, cp) for item, cp in session.execute(stmt).all()]


@dataclass
class PatientAsNamed:
    last_name: str
    first_name: str
    member_id: str

    @property
    def display(self) -> str:
        return ", ".join(p for p in (self.last_name, self.first_name) if p)


def patients_as_named(session: Session, remittance: Remittance) -> dict[int, PatientAsNamed]:
    """CLP position -> the patient the 835 named (NM1*QC), read back from the stored file."""
    edi_file = session.get(EdiFile, remittance.edi_file_id)
    if edi_file is None or not edi_file.content:
        return {}
    try:
        parsed = x835.parse_835(bytes(edi_file.content))
    except Exception:  # a stored file was parsed once already; if it cannot be now, show no name
        return {}
    for transaction in parsed:
        if transaction.header.payment.trace_number != remittance.trace_number:
            continue
        out: dict[int, PatientAsNamed] = {}
        for position, claim in enumerate(transaction.claims, 1):
            party = claim.patient
            if party is not None:
                out[position] = PatientAsNamed(
                    party.name or "", party.first_name or "", party.identifier or ""
                )
        if out:
            return out
    return {}


def _norm(value: str | None) -> str:
    return re.sub(r"[^A-Z]", "", (value or "").upper())


def names_match(named: PatientAsNamed | None, patient: Patient) -> bool:
    """The 835's patient is the claim's: same last name, and first names agree on what both give."""
    if named is None or not _norm(named.last_name):
        return True  # the 835 named no patient: nothing to compare
    if _norm(named.last_name) != _norm(patient.last_name):
        return False
    first, ours = _norm(named.first_name), _norm(patient.first_name)
    return not first or not ours or first.startswith(ours) or ours.startswith(first)


def _pr_cents(session: Session, payment: ClaimPayment) -> int:
    line_ids = [lp.id for lp in payment.line_payments]
    claim_level = session.scalar(
        select(func.coalesce(func.sum(Adjustment.amount_cents), 0)).where(
            Adjustment.claim_payment_id == payment.id, Adjustment.group_code == "PR"
        )
    )
    line_level = (
        session.scalar(
            select(func.coalesce(func.sum(Adjustment.amount_cents), 0)).where(
                Adjustment.line_payment_id.in_(line_ids), Adjustment.group_code == "PR"
            )
        )
        if line_ids
        else 0
    )
    return int(claim_level or 0) + int(line_level or 0)


@dataclass
class Suggestion:
    claim: Claim
    score: float
    why: list[str]


def suggest(
    session: Session, payment: ClaimPayment, remittance: Remittance, *, limit: int = 3
) -> list[Suggestion]:
    """Claims of the remitting payer close to what the payer reported: CLP01 alike, the billed
    amount equal, the date of service equal (best first)."""
    if remittance.payer_id is None:
        return []
    candidates = session.scalars(
        select(Claim)
        .join(Coverage, Coverage.id == Claim.coverage_id)
        .where(
            Coverage.payer_id == remittance.payer_id,
            Claim.state.not_in([ClaimState.VOIDED, ClaimState.DRAFT]),
        )
        .order_by(Claim.id.desc())
        .limit(2000)
    ).all()
    if not candidates:
        return []
    days = dict(
        session.execute(
            select(ServiceLine.claim_id, func.min(ServiceLine.service_date_from))
            .where(ServiceLine.claim_id.in_([c.id for c in candidates]))
            .group_by(ServiceLine.claim_id)
        ).all()
    )
    pcn = payment.patient_control_number.upper()
    out: list[Suggestion] = []
    for claim in candidates:
        why: list[str] = []
        score = 0.0
        ratio = difflib.SequenceMatcher(None, pcn, claim.patient_control_number.upper()).ratio()
        if ratio >= 0.75:
            score += ratio * 2
            why.append("claim number alike")
        if claim.total_charge_cents == payment.charge_cents:
            score += 1.0
            why.append("billed amount equal")
        if payment.service_date_from is not None and days.get(claim.id) == payment.service_date_from:
            score += 1.0
            why.append("date of service equal")
        if score >= 1.5:
            out.append(Suggestion(claim, score, why))
    out.sort(key=lambda s: -s.score)
    return out[:limit]


def detail_json(
    session: Session,
    item: WorkItem,
    payment: ClaimPayment,
    *,
    named: dict[int, PatientAsNamed] | None = None,
    with_suggestions: bool = True,
) -> dict[str, Any]:
    remittance = payment.remittance
    payer = session.get(Payer, remittance.payer_id) if remittance.payer_id is not None else None
    who = (named if named is not None else patients_as_named(session, remittance)).get(payment.position)
    applied = session.get(Claim, payment.claim_id) if payment.claim_id is not None else None
    out: dict[str, Any] = {
        "id": item.public_id,
        "work_item_status": item.status.value,
        "state": "applied"
        if applied is not None
        else ("returned" if credits.unmatched_left(session, payment) == 0 else "unmatched"),
        "remittance": remittance.public_id,
        "payer": payer.public_id if payer else None,
        "payer_name": (payer.name if payer else None) or remittance.payer_name,
        "trace_number": remittance.trace_number,
        "check_date": remittance.payment_date.isoformat() if remittance.payment_date else None,
        "position": payment.position,
        "patient_control_number": payment.patient_control_number,
        "payer_claim_control_number": payment.payer_claim_control_number,
        "status_code": payment.status_code,
        "patient_name": who.display if who else None,
        "service_date": payment.service_date_from.isoformat() if payment.service_date_from else None,
        "billed": cents_to_money(payment.charge_cents),
        "paid": cents_to_money(payment.paid_cents),
        "patient_responsibility": cents_to_money(payment.patient_responsibility_cents)
        if payment.patient_responsibility_cents is not None
        else None,
        "unapplied": cents_to_money(credits.unmatched_left(session, payment)),
        "applied_to": applied.public_id if applied is not None else None,
        "applied_by": payment.decided_by if applied is not None else None,
        "credit": f"payer.{remittance.public_id}.{payment.position}",
        "suggestions": [],
    }
    if with_suggestions and applied is None:
        out["suggestions"] = [
            {
                "claim": s.claim.public_id,
                "patient_control_number": s.claim.patient_control_number,
                "why": s.why,
            }
            for s in suggest(session, payment, remittance)
        ]
    return out


def find_claim(session: Session, number: str) -> Claim | None:
    """A claim by its public id or its claim number (CLP01 / our patient control number)."""
    text_value = (number or "").strip()
    if not text_value:
        return None
    return session.scalar(
        select(Claim).where((Claim.public_id == text_value) | (Claim.patient_control_number == text_value))
    )


# -- applying by hand ------------------------------------------------------------------------------


def _payer_for(session: Session, claim: Claim, remittance: Remittance) -> int:
    """The payer whose history the payment joins: the claim's, or another coverage of the patient."""
    if remittance.payer_id is None:
        raise refuse(
            "payer_known",
            "the 835's payer is not one of ours; a payment of an unknown payer is returned, not applied",
        )
    claim_payer = session.scalar(select(Coverage.payer_id).where(Coverage.id == claim.coverage_id))
    if claim_payer == remittance.payer_id:
        return claim_payer
    other = session.scalar(
        select(Coverage.id).where(
            Coverage.patient_id == claim.patient_id, Coverage.payer_id == remittance.payer_id
        )
    )
    if other is None:
        raise refuse("same_payer", "is a claim of another payer than the 835's payer")
    return remittance.payer_id


def _match_lines(payment: ClaimPayment, claim: Claim) -> None:
    """Each line payment's service line: REF*6R first, else procedure + modifiers + date (each once)."""
    ours = list(claim.service_lines)
    used: set[int] = set()
    for lp in payment.line_payments:
        found = next(
            (
                line
                for line in ours
                if lp.line_control_number
                and line.line_control_number == lp.line_control_number
                and line.id not in used
            ),
            None,
        )
        if found is None:
            code = lp.original_procedure_code or lp.procedure_code
            mods = tuple(m for m in (lp.modifier1, lp.modifier2, lp.modifier3, lp.modifier4) if m)
            day = lp.service_date or payment.service_date_from
            found = next(
                (
                    line
                    for line in ours
                    if line.id not in used
                    and line.procedure_code == code
                    and tuple(line.modifiers) == mods
                    and (day is None or line.service_date_from == day)
                ),
                None,
            )
        if found is not None:
            used.add(found.id)
        lp.service_line_id = found.id if found is not None else None


def apply_to_claim(
    session: Session, item: WorkItem, payment: ClaimPayment, claim: Claim | None, *, actor: User | str
) -> dict[str, Any]:
    """Post the unmatched claim payment to ``claim`` as if it had matched (see the module docstring).

    Refusals are raised before anything is written. Flushes; the caller commits.
    """
    from claims_server.remittance.services import decide_held
    from claims_server.workqueue.services import resolve_by_system

    by = actor if isinstance(actor, str) else actor.username
    if claim is None:
        raise refuse("exists", "no claim has this number")
    if payment.adjudication_state is not AdjudicationState.UNMATCHED or payment.claim_id is not None:
        raise Conflict(
            "this payment was applied or decided already",
            errors=[{"field": "claim", "rule": "unmatched", "message": "the payment is no longer unmatched"}],
        )
    if payment.status_code == "22" or payment.paid_cents < 0:
        raise refuse(
            "not_reversal",
            "this is a payer's reversal (CLP02 22) that matched no claim; ask the payer which claim it takes back",
        )
    if credits.unmatched_left(session, payment) != payment.paid_cents:
        raise refuse(
            "not_returned", "part of this payment was returned to the payer; it can no longer be applied"
        )
    if claim.state in _VOID_STATES or claim.frequency_code is ClaimFrequency.VOID:
        raise refuse("not_void", "is a void claim")
    remittance = payment.remittance
    payer_id = _payer_for(session, claim, remittance)
    named = patients_as_named(session, remittance).get(payment.position)
    patient = session.get(Patient, claim.patient_id)
    assert patient is not None
    if not names_match(named, patient):
        raise refuse("same_patient", "is a claim of another patient than the one the 835 names")
    encounter = receivable_claim_id(session, claim)
    current = session.scalar(
        select(ClaimPayment).where(
            ClaimPayment.payer_id == payer_id,
            (ClaimPayment.ledger_claim_id == encounter) | (ClaimPayment.claim_id == claim.id),
            ClaimPayment.adjudication_state.in_([AdjudicationState.CURRENT, AdjudicationState.HELD]),
        )
    )
    if current is not None and not (current.status_code == "4" and current.paid_cents == 0):
        raise refuse(
            "possible_duplicate",
            "already carries a current adjudication by this payer: this payment may be a duplicate "
            "(return it to the payer, or ask the payer)",
            current_remittance=current.remittance.public_id,
        )
    if claim.original_claim_id is None:
        # A claim that never went through us is charged now, as the poster charges a claim it
        # finds uncharged (idempotent: a charge on the books is not posted again).
        ensure_claims_receivable(
            session, [claim_charge(claim, latest=remittance.payment_date or utcnow().date())]
        )
    open_cents = balance(session, [AccountCode.AR_INSURANCE.value], claim_id=encounter, payer_id=payer_id)
    if payment.paid_cents + _pr_cents(session, payment) > open_cents:
        raise refuse(
            "would_overdraw",
            f"the payment and patient share are more than the {cents_to_money(open_cents)} open on the claim "
            "for this payer",
            open_balance=cents_to_money(open_cents),
        )
    # The stored CLP becomes an adjudication of the claim held for a person; the engine posts it.
    payment.claim_id = claim.id
    payment.payer_id = payer_id
    payment.ledger_claim_id = encounter
    payment.adjudication_kind = AdjudicationKind.ORIGINAL
    payment.adjudication_state = AdjudicationState.HELD
    payment.hold_reason = None
    _match_lines(payment, claim)
    session.flush()
    outcome = decide_held(session, payment.id, "post", actor=by[:100])
    item.claim_id = claim.id
    resolve_by_system(session, item, f"applied by hand to claim {claim.public_id} by {by[:100]}")
    credit_item = session.scalar(
        select(WorkItem).where(
            WorkItem.dedupe_key == f"credit_balance:payer.{remittance.public_id}.{payment.position}"
        )
    )
    if credit_item is not None:
        resolve_by_system(session, credit_item, f"applied to claim {claim.public_id}")
    audit_event(
        session,
        action=AuditAction.UPDATE,
        event_type="remittance.unmatched_apply",
        entity_type="remittance",
        entity_id=remittance.public_id,
        patient_id=claim.patient_id,
        details={
            "clp_position": payment.position,
            "claim": claim.public_id,
            "applied_by": by[:100],
            "paid_cents": payment.paid_cents,
            "state": outcome.get("state"),
        },
    )
    session.flush()
    session.refresh(claim)
    return {**outcome, "claim_state": claim.state.value}


def return_to_payer(
    session: Session,
    payment: ClaimPayment,
    *,
    amount_cents: int | None,
    method: str,
    idempotency_key: str,
    reference: str | None = None,
    note: str | None = None,
    requested_by: User | None = None,
    limit_cents: int | None = None,
) -> credits.RefundOutcome:
    """Give the unmatched payment (or part of it) back to its payer: a payer refund of its credit."""
    if payment.adjudication_state is not AdjudicationState.UNMATCHED:
        raise Conflict(
            "this payment was applied to a claim; it is not unapplied money any more",
            errors=[
                {"field": "amount", "rule": "unmatched", "message": "the payment is no longer unmatched"}
            ],
        )
    amount = credits.unmatched_left(session, payment) if amount_cents is None else amount_cents
    outcome = credits.refund_credit(
        session,
        f"payer.{payment.remittance.public_id}.{payment.position}",
        amount_cents=amount,
        method=method,
        idempotency_key=idempotency_key,
        reference=reference,
        note=note,
        requested_by=requested_by,
        limit_cents=limit_cents,
    )
    if not outcome.replayed and outcome.approval is None and credits.unmatched_left(session, payment) == 0:
        from claims_server.workqueue.services import resolve_by_system

        item = item_of(session, payment)
        if item is not None:
            resolve_by_system(session, item, f"returned to the payer (refund {outcome.refund.public_id})")
    return outcome


def sum_unmatched_paid(session: Session) -> int:
    """Σ money received in open unmatched payments (what the unmatched tile shows)."""
    return int(
        session.scalar(
            select(func.coalesce(func.sum(ClaimPayment.paid_cents), 0)).where(
                ClaimPayment.adjudication_state == AdjudicationState.UNMATCHED
            )
        )
        or 0
    )
