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
- Appeals live in ``corrections.appeals`` (level, deadline, letter, attachments, outcome,
  and the denial item's moves through the appeal queue); their names are re-exported here
  for the callers that import them from this module.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from claims_server.api_common.audit import audit
from claims_server.claims.notes import reason_details
from claims_server.claims.services import new_patient_control_number
from claims_server.corrections.appeals import (
    ADJUDICATED_STATES,
    DEFAULT_APPEAL_DAYS,
    MAX_LETTER,
    MEDICARE_INDICATORS,
    MEDICARE_REDETERMINATION_DAYS,
    appeal_deadline,
    decide_appeal,
    determination_date,
    open_appeal,
    submit_appeal,
    update_letter,
)
from claims_server.errors import Conflict
from claims_server.models import (
    AuditAction,
    Claim,
    ClaimFrequency,
    ClaimPayment,
    ClaimState,
    WorkItem,
)
from claims_server.models.common import utcnow
from claims_server.models.workqueue import WorkItemStatus, WorkQueue
from claims_server.secondary.services import copy_claim_fields, copy_lines_and_diagnoses, latest_claim_payment
from claims_server.workqueue.services import ResolutionCode, resolve

#: The appeal names are re-exported: older callers import them from here.
__all__ = [
    "ADJUDICATED_STATES",
    "DEFAULT_APPEAL_DAYS",
    "MAX_LETTER",
    "MEDICARE_INDICATORS",
    "MEDICARE_REDETERMINATION_DAYS",
    "appeal_deadline",
    "create_replacement_claim",
    "create_void_claim",
    "decide_appeal",
    "determination_date",
    "open_appeal",
    "payer_claim_number",
    "payments_of",
    "resubmit_corrected",
    "submit_appeal",
    "update_letter",
]


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
