"""Corrections after adjudication: replacement and void claims, and appeals.

- A replacement (CLM05-3 = 7) or void (8) claim refers to the claim the payer
  adjudicated by the payer's claim control number (835 CLP07) in REF*F8 (TR3 2300
  REF*F8: required when CLM05-3 is 7 or 8). The number is copied from the last 835 claim
  payment onto the original claim (``payer_claim_control_number``), where
  ``build_edi_claim`` reads it, and onto the new claim as a fallback.
- A claim the payer never adjudicated (rejected by a 999/277CA, or no 835 yet) has no
  payer claim number: it is corrected in place (``correct_rejection``) and resent as
  an original, so a replacement or void is refused for it.
- Medicare Part B corrects processed claims through the MAC's reopening process rather
  than frequency 7 (playbook, REPL7 note); the replacement is still built (some MACs
  accept it, every other payer needs it) and the work item says so.
- Appeals: Medicare redetermination must be filed within 120 days of receiving the
  initial determination (42 CFR 405.942; receipt is presumed 5 days after the notice
  date). We count the 120 days from the remittance's date itself, without the 5 days, so
  the deadline can only err early. Other payers' limits vary by contract; the default is
  ``DEFAULT_APPEAL_DAYS`` (configurable with ``APPEAL_DEADLINE_DAYS``).
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from claims_server.api_common.audit import audit
from claims_server.claims.notes import reason_details
from claims_server.claims.services import new_patient_control_number
from claims_server.errors import Conflict, Unprocessable
from claims_server.models import (
    AuditAction,
    Claim,
    ClaimFilingIndicator,
    ClaimFrequency,
    ClaimPayment,
    ClaimState,
    WorkItem,
)
from claims_server.models.common import new_public_id, utcnow
from claims_server.models.workqueue import Appeal, AppealStatus, WorkItemStatus, WorkQueue
from claims_server.secondary.services import copy_claim_fields, copy_lines_and_diagnoses, latest_claim_payment
from claims_server.workqueue.services import ResolutionCode, resolve

#: States of a claim the payer has adjudicated (an 835 answered it).
ADJUDICATED_STATES = frozenset(
    {ClaimState.PAID, ClaimState.PARTIALLY_PAID, ClaimState.DENIED, ClaimState.CLOSED}
)
MEDICARE_INDICATORS = frozenset({ClaimFilingIndicator.MEDICARE_PART_A, ClaimFilingIndicator.MEDICARE_PART_B})
MEDICARE_REDETERMINATION_DAYS = 120
DEFAULT_APPEAL_DAYS = 180
MAX_LETTER = 20000


def payer_claim_number(session: Session, claim: Claim) -> str | None:
    """The payer's control number for ``claim``: stored on it, else CLP07 of its last 835."""
    if claim.payer_claim_control_number:
        return claim.payer_claim_control_number
    payment = latest_claim_payment(session, claim)
    return payment.payer_claim_control_number if payment is not None else None


def _refuse(claim: Claim, why: str, rule: str) -> Conflict:
    return Conflict(
        f"claim {claim.public_id}: {why}",
        errors=[{"field": "claim", "rule": rule, "message": why}],
        current_state=ClaimState(claim.state).value,
    )


def _superseding(session: Session, original: Claim) -> Claim | None:
    """A replacement or void of ``original`` that is still alive (not voided)."""
    return session.scalar(
        select(Claim).where(
            Claim.original_claim_id == original.id,
            Claim.frequency_code.in_((ClaimFrequency.REPLACEMENT, ClaimFrequency.VOID)),
            Claim.state != ClaimState.VOIDED,
        )
    )


def _copy_for_payer(
    session: Session, original: Claim, frequency: ClaimFrequency, event: str, reason: str | None
) -> Claim:
    if ClaimState(original.state) not in ADJUDICATED_STATES:
        raise _refuse(
            original,
            f"the payer has not adjudicated it ({ClaimState(original.state).value}); correct it in place "
            "(reopen for correction) and resend it as an original claim",
            "adjudicated",
        )
    number = payer_claim_number(session, original)
    if not number:
        raise _refuse(
            original, "no payer claim control number (835 CLP07) is known for REF*F8", "payer_claim_number"
        )
    existing = _superseding(session, original)
    if existing is not None:
        raise _refuse(
            original,
            f"it is already superseded by claim {existing.public_id} (frequency {existing.frequency_code.value})",
            "superseded",
        )
    if not original.payer_claim_control_number:
        original.payer_claim_control_number = number
    pcn = new_patient_control_number()
    copy = Claim(
        patient_control_number=pcn,
        practice_id=original.practice_id,
        patient_id=original.patient_id,
        encounter_id=original.encounter_id,
        coverage_id=original.coverage_id,
        coverage=original.coverage,
        coverage_order=original.coverage_order,
        claim_kind=original.claim_kind,
        frequency_code=frequency,
        original_claim=original,
        original_claim_id=original.id,
        payer_claim_control_number=number,
        state=ClaimState.DRAFT,
        state_changed_at=utcnow(),
        **copy_claim_fields(original),
    )
    copy_lines_and_diagnoses(original, copy, pcn)
    session.add(copy)
    session.flush()
    details: dict[str, object] = {"original_claim": original.public_id, "frequency": frequency.value}
    details.update(reason_details(session, copy, reason))  # the user's words: an encrypted note
    audit(
        session,
        action=AuditAction.CREATE,
        event_type=f"claim.{event}",
        entity_type="claim",
        entity_id=copy.public_id,
        patient_id=copy.patient_id,
        details=details,
    )
    _resolve_correction_items(session, original, f"{event} {copy.public_id}")
    return copy


def _resolve_correction_items(session: Session, claim: Claim, note: str) -> None:
    """Resolve ``claim``'s open rejection and denial items as corrected and resubmitted."""
    for item in session.scalars(
        select(WorkItem).where(
            WorkItem.claim_id == claim.id,
            WorkItem.queue.in_((WorkQueue.DENIED, WorkQueue.REJECTED)),
            WorkItem.status != WorkItemStatus.RESOLVED,
        )
    ):
        resolve(session, item, ResolutionCode.CORRECTED_AND_RESUBMITTED, note)


def create_replacement_claim(session: Session, original: Claim, *, reason: str | None = None) -> Claim:
    """A draft frequency-7 copy of an adjudicated claim, carrying the payer's claim number (REF*F8).

    ``reason`` is the user's words: kept as an encrypted claim note on the copy, which the
    audit event names (``claims.notes``).

    The biller edits the draft (the claims API's update), then makes it ready; the
    original's open denial/rejection items are resolved as corrected and resubmitted.
    """
    return _copy_for_payer(session, original, ClaimFrequency.REPLACEMENT, "create_replacement", reason)


def create_void_claim(session: Session, original: Claim, *, reason: str | None = None) -> Claim:
    """A draft frequency-8 copy of an adjudicated claim: the payer cancels its adjudication.

    ``reason``: the user's words, as for :func:`create_replacement_claim`.

    The void repeats the original's data unchanged (payers match it to the original by
    REF*F8 and expect the same services); make it ready and send it like any claim.
    """
    return _copy_for_payer(session, original, ClaimFrequency.VOID, "create_void", reason)


# -- appeals ------------------------------------------------------------------------------------


def determination_date(session: Session, claim: Claim) -> date | None:
    """The date of the payer's initial determination: the last 835's production date (DTM*405)."""
    payment = latest_claim_payment(session, claim)
    if payment is None:
        return None
    remittance = payment.remittance
    # DTM*405 is the date the payer produced the decision; BPR16 is only when money settles.
    return remittance.production_date or remittance.payment_date or payment.created_at.date()


def appeal_deadline(
    indicator: ClaimFilingIndicator | str, determined: date, *, default_days: int = DEFAULT_APPEAL_DAYS
) -> date:
    """The last day to file an appeal of a determination made on ``determined``."""
    if ClaimFilingIndicator(indicator) in MEDICARE_INDICATORS:
        return determined + timedelta(days=MEDICARE_REDETERMINATION_DAYS)
    return determined + timedelta(days=default_days)


def _check_letter(letter_text: str | None) -> str | None:
    if letter_text is not None and len(letter_text) > MAX_LETTER:
        raise Unprocessable(
            f"the letter is at most {MAX_LETTER} characters",
            errors=[{"field": "letter_text", "rule": "length", "message": f"at most {MAX_LETTER}"}],
        )
    return letter_text


def _audit_appeal(session: Session, appeal: Appeal, event: str, details: dict[str, object]) -> None:
    audit(
        session,
        action=AuditAction.CREATE if event == "open" else AuditAction.UPDATE,
        event_type=f"appeal.{event}",
        entity_type="appeal",
        entity_id=appeal.public_id,
        patient_id=appeal.claim.patient_id,
        details={"claim": appeal.claim.public_id, **details},
    )


def open_appeal(
    session: Session,
    claim: Claim,
    *,
    work_item: WorkItem | None = None,
    letter_text: str | None = None,
    determined: date | None = None,
    default_days: int = DEFAULT_APPEAL_DAYS,
) -> Appeal:
    """A draft appeal of the payer's determination on ``claim``, with its filing deadline.

    One live appeal (draft or submitted) per claim; the deadline also becomes the due
    date of ``work_item`` so the queue shows it.
    """
    if ClaimState(claim.state) not in ADJUDICATED_STATES:
        raise _refuse(claim, "only an adjudicated claim can be appealed", "adjudicated")
    live = session.scalar(
        select(Appeal).where(
            Appeal.claim_id == claim.id, Appeal.status.in_((AppealStatus.DRAFT, AppealStatus.SUBMITTED))
        )
    )
    if live is not None:
        raise _refuse(claim, f"appeal {live.public_id} is already {live.status.value}", "one_live_appeal")
    day = determined or determination_date(session, claim)
    if day is None:
        raise _refuse(claim, "no determination (835) is known to appeal", "determination")
    deadline = appeal_deadline(claim.coverage.payer.claim_filing_indicator, day, default_days=default_days)
    appeal = Appeal(
        claim=claim,
        claim_id=claim.id,
        work_item_id=work_item.id if work_item is not None else None,
        deadline=deadline,
        status=AppealStatus.DRAFT,
        letter_text=_check_letter(letter_text),
        public_id=new_public_id(),
    )
    session.add(appeal)
    if work_item is not None:
        work_item.due_date = deadline
    _audit_appeal(session, appeal, "open", {"deadline": deadline.isoformat(), "determined": day.isoformat()})
    return appeal


def submit_appeal(
    session: Session, appeal: Appeal, *, today: date | None = None, now: datetime | None = None
) -> Appeal:
    """draft → submitted; refused after the deadline (a late appeal needs good cause, not this button)."""
    if appeal.status != AppealStatus.DRAFT:
        raise Conflict(
            f"appeal {appeal.public_id} is {appeal.status.value}, not draft",
            current_status=appeal.status.value,
        )
    day = today or utcnow().date()
    if day > appeal.deadline:
        raise Conflict(
            f"the appeal deadline passed on {appeal.deadline.isoformat()}",
            errors=[{"field": "deadline", "rule": "deadline", "message": "past the filing deadline"}],
        )
    if not (appeal.letter_text or "").strip():
        raise Unprocessable(
            "an appeal needs its letter before it is submitted",
            errors=[{"field": "letter_text", "rule": "required", "message": "write the letter first"}],
        )
    appeal.status = AppealStatus.SUBMITTED
    appeal.submitted_at = now or utcnow()
    if appeal.work_item_id is not None:
        item = session.get(WorkItem, appeal.work_item_id)
        if item is not None and item.status != WorkItemStatus.RESOLVED:
            resolve(session, item, ResolutionCode.APPEALED, f"appeal {appeal.public_id}")
    _audit_appeal(session, appeal, "submit", {})
    return appeal


def decide_appeal(
    session: Session, appeal: Appeal, outcome: AppealStatus | str, *, now: datetime | None = None
) -> Appeal:
    """submitted → won | lost, or draft/submitted → withdrawn."""
    target = AppealStatus(outcome)
    allowed = {
        AppealStatus.WON: {AppealStatus.SUBMITTED},
        AppealStatus.LOST: {AppealStatus.SUBMITTED},
        AppealStatus.WITHDRAWN: {AppealStatus.DRAFT, AppealStatus.SUBMITTED},
    }
    if target not in allowed or appeal.status not in allowed[target]:
        raise Conflict(
            f"appeal {appeal.public_id} cannot go from {appeal.status.value} to {target.value}",
            current_status=appeal.status.value,
        )
    appeal.status = target
    appeal.decided_at = now or utcnow()
    _audit_appeal(session, appeal, "decide", {"outcome": target.value})
    return appeal


def update_letter(session: Session, appeal: Appeal, letter_text: str) -> Appeal:
    """Replace a draft appeal's letter (the audit records its length only: letters quote PHI)."""
    if appeal.status != AppealStatus.DRAFT:
        raise Conflict(f"appeal {appeal.public_id} is {appeal.status.value}; only a draft's letter changes")
    appeal.letter_text = _check_letter(letter_text)
    _audit_appeal(session, appeal, "letter", {"characters": len(letter_text)})
    return appeal


def payments_of(session: Session, claim: Claim) -> list[ClaimPayment]:
    """Every 835 claim payment of ``claim``, oldest first."""
    return list(
        session.scalars(
            select(ClaimPayment).where(ClaimPayment.claim_id == claim.id).order_by(ClaimPayment.id)
        )
    )


def resubmit_corrected(session: Session, claim: Claim, data: dict[str, Any]) -> Claim:
    """Fix and resubmit a claim the payer never adjudicated: save ``data``, scrub, make it ready.

    A rejected claim (999/277CA) is corrected in place (``correct_rejection`` → draft)
    and sent again as an original; a draft one just needs a clean scrub. Scrub errors refuse
    the whole change (``Unprocessable`` listing them; the caller's unit of work rolls back).
    The claim's open rejection/denial items are resolved as corrected and resubmitted, so
    it leaves the work queue.
    """
    from claims_server.claims import state
    from claims_server.claims.services import make_ready, update_claim

    update_claim(session, claim, {**data, "ready": False})
    if ClaimState(claim.state) == ClaimState.REJECTED:
        state.correct_rejection(session, claim, reason="corrected in place")
    make_ready(session, claim, reason="corrected and resubmitted")
    _resolve_correction_items(session, claim, f"resubmitted {claim.public_id}")
    return claim
