"""Appeals of a payer's denial: level, deadline, letter, attachments, status and outcome,
and the work item that follows the appeal through the queues (docs/appeals.md).

- **Deadline.** Payers carry no appeal-days field, so the deadline comes from a documented
  default table by payer family and level (``APPEAL_DAYS``), counted from the denial date:
  the 835's production date (DTM*405) for a first level, the day the lower level was lost
  for the next one. Medicare's 120 days run from *receipt* of the notice (presumed 5 days
  after it); we count from the notice itself, so the deadline can only err early.
- **Letter.** Generated from the claim (claim number, payer claim number, dates of service,
  billed amount, the lines) and the denial's codes in the playbook's words
  (``coding.adjustment_codes``), then edited by the biller. It names the patient: it lives in
  an encrypted column and the audit trail records its length only.
- **Attachments.** A list the biller keeps of what goes with the letter (name + kind), not
  uploaded files; stored as encrypted JSON because a document's name can name the patient.
- **Status and outcome.** ``draft → submitted → won | lost``, or ``withdrawn`` from draft or
  submitted; ``won`` carries ``overturned`` or ``partially_overturned``, ``lost`` ``upheld``.
  A lost first or second level may be followed by the next level (``parent_appeal_id``).
- **Queue.** Opening an appeal moves the claim's open ``denied`` item to the ``appeal``
  queue with ``due_date`` = the deadline (the queue reads by deadline) and a recommended
  action that is never a write-off. Upheld or withdrawn: back to ``denied`` (recommended:
  the next level while there is one, else write off; withdrawn: the codes' own
  recommendation). Won: the item is resolved as appealed, "appeal won; payment expected";
  the payer's corrected 835 posts like any other and a line it still denies opens a new
  denial item (we do not keep the item waiting for the 835: posting closes only ``denied``
  items, and a won appeal needs nothing more from the biller).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import Select, and_, or_, select
from sqlalchemy.orm import Session

from claims_server.api_common.audit import audit
from claims_server.api_common.fields import cents_to_money
from claims_server.errors import Conflict, NotFound, Unprocessable
from claims_server.models import (
    AuditAction,
    Claim,
    ClaimFilingIndicator,
    ClaimPayment,
    ClaimState,
    Coverage,
    Patient,
    Payer,
    WorkItem,
)
from claims_server.models.common import new_public_id, utcnow
from claims_server.models.workqueue import (
    Appeal,
    AppealLevel,
    AppealOutcome,
    AppealStatus,
    WorkItemStatus,
    WorkQueue,
)
from claims_server.secondary.services import latest_claim_payment
from claims_server.workqueue.recommend import recommend_for_codes
from claims_server.workqueue.services import ResolutionCode, move_to_queue, resolve
from coding.adjustment_codes import lookup

#: States of a claim the payer has adjudicated (an 835 answered it).
ADJUDICATED_STATES = frozenset(
    {ClaimState.PAID, ClaimState.PARTIALLY_PAID, ClaimState.DENIED, ClaimState.CLOSED}
)
MEDICARE_INDICATORS = frozenset({ClaimFilingIndicator.MEDICARE_PART_A, ClaimFilingIndicator.MEDICARE_PART_B})
MEDICARE_REDETERMINATION_DAYS = 120
DEFAULT_APPEAL_DAYS = 180
#: Days to file each level, counted from the decision it appeals (docs/appeals.md has the sources).
#: ``None``: the configurable default (``APPEAL_DEADLINE_DAYS``, 180).
APPEAL_DAYS: dict[tuple[str, AppealLevel], int | None] = {
    ("medicare", AppealLevel.FIRST): MEDICARE_REDETERMINATION_DAYS,  # 42 CFR 405.942
    ("medicare", AppealLevel.SECOND): 180,  # QIC reconsideration, 42 CFR 405.962
    ("medicare", AppealLevel.EXTERNAL): 60,  # ALJ hearing, 42 CFR 405.1014
    ("other", AppealLevel.FIRST): None,  # ERISA plans: at least 180 days, 29 CFR 2560.503-1(h)(3)(i)
    ("other", AppealLevel.SECOND): 60,  # a plan's second internal level: commonly 60 days
    ("other", AppealLevel.EXTERNAL): 120,  # external review: 4 months, 45 CFR 147.136(d)(2)(i)
}
NEXT_LEVEL = {AppealLevel.FIRST: AppealLevel.SECOND, AppealLevel.SECOND: AppealLevel.EXTERNAL}
LEVEL_NAMES = {
    ("medicare", AppealLevel.FIRST): "redetermination",
    ("medicare", AppealLevel.SECOND): "reconsideration",
    ("medicare", AppealLevel.EXTERNAL): "hearing before an administrative law judge",
    ("other", AppealLevel.FIRST): "first-level appeal (reconsideration)",
    ("other", AppealLevel.SECOND): "second-level appeal",
    ("other", AppealLevel.EXTERNAL): "external review",
}
MAX_LETTER = 20000
MAX_ATTACHMENTS = 30
MAX_ATTACHMENT_NAME = 200
ATTACHMENT_KINDS = {
    "medical_records": "Medical records",
    "operative_note": "Operative / procedure note",
    "authorization": "Authorization",
    "eob": "Explanation of benefits / remittance",
    "proof_of_timely_filing": "Proof of timely filing (999/277CA)",
    "correspondence": "Correspondence",
    "policy": "Payer policy / literature",
    "other": "Other",
}
#: Live appeals: at most one per claim.
LIVE = (AppealStatus.DRAFT, AppealStatus.SUBMITTED)
#: Recommended actions of an item while its appeal is in the appeal queue (never a write-off).
SUBMIT_APPEAL = "submit_appeal"
AWAIT_DECISION = "await_appeal_decision"
_MARKUP = re.compile(r"<\s*/?\s*[A-Za-z!?]|&#?[A-Za-z0-9]+;")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def _family(indicator: ClaimFilingIndicator | str) -> str:
    return "medicare" if ClaimFilingIndicator(indicator) in MEDICARE_INDICATORS else "other"


def appeal_deadline(
    indicator: ClaimFilingIndicator | str,
    determined: date,
    *,
    default_days: int = DEFAULT_APPEAL_DAYS,
    level: AppealLevel | str = AppealLevel.FIRST,
) -> date:
    """The last day to file a ``level`` appeal of a decision made on ``determined``."""
    days = APPEAL_DAYS[(_family(indicator), AppealLevel(level))]
    return determined + timedelta(days=default_days if days is None else days)


def level_name(indicator: ClaimFilingIndicator | str, level: AppealLevel | str) -> str:
    return LEVEL_NAMES[(_family(indicator), AppealLevel(level))]


def determination_date(session: Session, claim: Claim) -> date | None:
    """The date of the payer's initial determination: the last 835's production date (DTM*405)."""
    payment = latest_claim_payment(session, claim)
    if payment is None:
        return None
    remittance = payment.remittance
    # DTM*405 is the date the payer produced the decision; BPR16 is only when money settles.
    return remittance.production_date or remittance.payment_date or payment.created_at.date()


# -- the letter ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class DenialCodes:
    """The denial's codes: ``(group, carc)`` pairs and remark codes, each once, in 835 order."""

    adjustments: tuple[tuple[str, str], ...]
    remarks: tuple[str, ...]

    def labels(self) -> list[str]:
        return [f"{g}-{c}" for g, c in self.adjustments] + list(self.remarks)


def denial_codes(payment: ClaimPayment | None) -> DenialCodes:
    """The adjustment and remark codes of ``payment`` (claim and line level), PR excluded
    (what the patient owes is not what is appealed)."""
    if payment is None:
        return DenialCodes((), ())
    pairs: list[tuple[str, str]] = []
    remarks: list[str] = []
    adjustments = list(payment.adjustments)
    for line in payment.line_payments:
        adjustments.extend(line.adjustments)
        remarks.extend(line.remark_codes or [])
    for adjustment in adjustments:
        group = str(getattr(adjustment.group_code, "value", adjustment.group_code))
        if group != "PR":
            pairs.append((group, adjustment.reason_code))
    return DenialCodes(tuple(dict.fromkeys(pairs)), tuple(dict.fromkeys(r.strip().upper() for r in remarks)))


def _line_codes(payment: ClaimPayment | None) -> dict[int, list[str]]:
    """Service line id → its non-PR codes, for the letter's list of services."""
    found: dict[int, list[str]] = {}
    for line in payment.line_payments if payment is not None else []:
        if line.service_line_id is None:
            continue
        codes = [
            f"{getattr(a.group_code, 'value', a.group_code)}-{a.reason_code}"
            for a in line.adjustments
            if getattr(a.group_code, "value", a.group_code) != "PR"
        ]
        found[line.service_line_id] = codes + list(line.remark_codes or [])
    return found


def generate_letter(
    session: Session,
    claim: Claim,
    *,
    level: AppealLevel | str = AppealLevel.FIRST,
    denial_date: date | None = None,
    today: date | None = None,
) -> str:
    """A draft letter for the biller to edit: the claim's facts and each denial code in the
    playbook's words (``coding.adjustment_codes``: the project's own text, not X12's)."""
    payment = latest_claim_payment(session, claim)
    codes = denial_codes(payment)
    payer = claim.coverage.payer
    patient = claim.patient
    lines = sorted(claim.service_lines, key=lambda line: line.line_number)
    dates = sorted({line.service_date_from for line in lines})
    dos = dates[0].isoformat() if len(dates) == 1 else f"{dates[0].isoformat()} to {dates[-1].isoformat()}"
    kind = level_name(payer.claim_filing_indicator, level)
    number = claim.payer_claim_control_number or (payment.payer_claim_control_number if payment else None)
    out = [
        claim.practice.name,
        (today or utcnow().date()).isoformat(),
        "",
        payer.name,
        "Appeals / reconsideration",
        "",
        f"Re: request for {kind}",
        f"Patient: {patient.last_name}, {patient.first_name}",
        f"Member ID: {claim.coverage.member_id}",
        f"Our claim number: {claim.patient_control_number}",
        f"Payer claim number: {number or 'not known'}",
        f"Date(s) of service: {dos}",
        f"Billed: ${cents_to_money(claim.total_charge_cents)}",
    ]
    if denial_date is not None:
        out.append(f"Date of the decision appealed: {denial_date.isoformat()}")
    out += [
        "",
        "To the appeals department:",
        "",
        f"We request a {kind} of your decision on the claim above. The claim was denied with the "
        "following codes:",
        "",
    ]
    for group, carc in codes.adjustments:
        entry = lookup("carc", carc)
        meaning = entry.meaning if entry is not None else "see your remittance"
        out.append(f"- {group}-{carc}: {meaning}.")
    for remark in codes.remarks:
        entry = lookup("rarc", remark)
        out.append(f"- {remark}: {entry.meaning if entry is not None else 'remark on the remittance'}.")
    if not codes.adjustments and not codes.remarks:
        out.append("- (no adjustment codes on the remittance)")
    per_line = _line_codes(payment)
    out += ["", "Services:"]
    for line in lines:
        modifiers = " ".join(m for m in (line.modifier1, line.modifier2, line.modifier3, line.modifier4) if m)
        denied = per_line.get(line.id) or []
        out.append(
            f"- Line {line.line_number}: {line.procedure_code}{(' ' + modifiers) if modifiers else ''}, "
            f"{line.service_date_from.isoformat()}, {line.units} unit(s), ${cents_to_money(line.charge_cents)}"
            + (f" ({', '.join(denied)})" if denied else "")
        )
    out += [
        "",
        "We believe the services were billed correctly and are covered. The enclosed documents support "
        "the services as billed; please reprocess the claim and pay it under the plan's terms.",
        "",
        "Enclosures: see the list attached.",
        "",
        "Sincerely,",
        claim.practice.name,
    ]
    guidance = []
    for group, carc in codes.adjustments:
        entry = lookup("carc", carc)
        if entry is not None and entry.biller_action:
            guidance.append(f"{group}-{carc}: {entry.biller_action}")
    if guidance:
        out += [
            "",
            "[For the biller, remove before sending — the playbook says: " + " | ".join(guidance) + "]",
        ]
    return "\n".join(out)


# -- validation -----------------------------------------------------------------------------------


def _invalid(field: str, rule: str, message: str, detail: str | None = None) -> Unprocessable:
    return Unprocessable(detail or message, errors=[{"field": field, "rule": rule, "message": message}])


def check_letter(letter_text: str | None) -> str | None:
    """The letter as stored: at most ``MAX_LETTER`` characters of plain text (no markup)."""
    if letter_text is None:
        return None
    text = letter_text.replace("\r\n", "\n")
    if len(text) > MAX_LETTER:
        raise _invalid(
            "letter_text",
            "length",
            f"at most {MAX_LETTER} characters",
            f"the letter is at most {MAX_LETTER} characters",
        )
    if _MARKUP.search(text):
        raise _invalid(
            "letter_text", "markup", "plain text only: no HTML tags or entities", "the letter contains markup"
        )
    if _CONTROL.search(text):
        raise _invalid("letter_text", "characters", "control characters are not allowed")
    return text


def check_attachments(raw: Any) -> list[dict[str, str]]:
    """``[{"name", "kind"}]`` checked: a list of at most ``MAX_ATTACHMENTS`` entries, each a
    non-empty plain-text name and a kind from ``ATTACHMENT_KINDS``."""
    if not isinstance(raw, list):
        raise _invalid("attachments", "type", "a list of {name, kind}")
    if len(raw) > MAX_ATTACHMENTS:
        raise _invalid("attachments", "length", f"at most {MAX_ATTACHMENTS} attachments")
    cleaned: list[dict[str, str]] = []
    errors: list[dict[str, str]] = []
    for index, entry in enumerate(raw):
        name = entry.get("name") if isinstance(entry, dict) else None
        kind = entry.get("kind") if isinstance(entry, dict) else None
        text = name.strip() if isinstance(name, str) else ""
        if not text or len(text) > MAX_ATTACHMENT_NAME:
            errors.append(
                {
                    "field": f"attachments[{index}].name",
                    "rule": "length",
                    "message": f"1 to {MAX_ATTACHMENT_NAME} characters",
                }
            )
        elif _MARKUP.search(text) or _CONTROL.search(text):
            errors.append(
                {"field": f"attachments[{index}].name", "rule": "markup", "message": "plain text only"}
            )
        if kind not in ATTACHMENT_KINDS:
            errors.append(
                {
                    "field": f"attachments[{index}].kind",
                    "rule": "one_of",
                    "message": f"one of {', '.join(ATTACHMENT_KINDS)}",
                }
            )
        added = entry.get("added_at") if isinstance(entry, dict) else None
        cleaned.append(
            {
                "name": text,
                "kind": str(kind),
                "added_at": added if isinstance(added, str) else utcnow().isoformat(),
            }
        )
    if errors:
        raise Unprocessable("some attachments are not valid", errors=errors)
    return cleaned


def attachments_of(appeal: Appeal) -> list[dict[str, str]]:
    """The appeal's attachments list (decrypted JSON; an empty list when none)."""
    if not appeal.attachments:
        return []
    value = json.loads(appeal.attachments)
    return value if isinstance(value, list) else []


# -- life cycle -----------------------------------------------------------------------------------


def _audit(session: Session, appeal: Appeal, event: str, details: dict[str, object]) -> None:
    audit(
        session,
        action=AuditAction.CREATE if event in ("open", "next_level") else AuditAction.UPDATE,
        event_type=f"appeal.{event}",
        entity_type="appeal",
        entity_id=appeal.public_id,
        patient_id=appeal.claim.patient_id,
        details={"claim": appeal.claim.public_id, "level": AppealLevel(appeal.level).value, **details},
    )


def _refuse(claim: Claim, why: str, rule: str) -> Conflict:
    return Conflict(
        f"claim {claim.public_id}: {why}",
        errors=[{"field": "claim", "rule": rule, "message": why}],
        current_state=ClaimState(claim.state).value,
    )


def live_appeal(session: Session, claim: Claim) -> Appeal | None:
    """The claim's draft or submitted appeal, if any."""
    return session.scalar(select(Appeal).where(Appeal.claim_id == claim.id, Appeal.status.in_(LIVE)))


def claim_appeals(session: Session, claim: Claim) -> list[Appeal]:
    """Every appeal of ``claim``, oldest first (the claim screen's list)."""
    return list(session.scalars(select(Appeal).where(Appeal.claim_id == claim.id).order_by(Appeal.id)))


def _denial_item(session: Session, claim: Claim) -> WorkItem | None:
    """The claim's newest unresolved denial (or appeal) item: what the appeal carries along."""
    return session.scalar(
        select(WorkItem)
        .where(
            WorkItem.claim_id == claim.id,
            WorkItem.queue.in_((WorkQueue.DENIED, WorkQueue.APPEAL)),
            WorkItem.status != WorkItemStatus.RESOLVED,
        )
        .order_by(WorkItem.id.desc())
    )


def _item_of(session: Session, appeal: Appeal) -> WorkItem | None:
    if appeal.work_item_id is None:
        return None
    item = session.get(WorkItem, appeal.work_item_id)
    return item if item is not None and item.status != WorkItemStatus.RESOLVED else None


def _to_appeal_queue(session: Session, appeal: Appeal, item: WorkItem | None) -> None:
    if item is None or item.status == WorkItemStatus.RESOLVED:
        return
    if item.queue not in (WorkQueue.DENIED, WorkQueue.APPEAL):
        item.due_date = appeal.deadline  # another kind of item: it only learns the deadline
        return
    move_to_queue(
        session,
        item,
        WorkQueue.APPEAL,
        recommended_action=SUBMIT_APPEAL if appeal.status == AppealStatus.DRAFT else AWAIT_DECISION,
        due_date=appeal.deadline,
        note=f"Under appeal ({AppealLevel(appeal.level).value} level, appeal {appeal.public_id}); "
        f"file it by {appeal.deadline.isoformat()}.",
    )


def open_appeal(
    session: Session,
    claim: Claim,
    *,
    work_item: WorkItem | None = None,
    letter_text: str | None = None,
    determined: date | None = None,
    default_days: int = DEFAULT_APPEAL_DAYS,
    level: AppealLevel | str = AppealLevel.FIRST,
    parent: Appeal | None = None,
    user_id: int | None = None,
    today: date | None = None,
) -> Appeal:
    """A draft appeal of the payer's determination on ``claim``, with its filing deadline and
    a generated letter (unless ``letter_text`` is given).

    One live appeal (draft or submitted) per claim. The claim's open denial item (or
    ``work_item``) moves to the appeal queue with the deadline as its due date.
    """
    session.flush()  # ids below (the item's, the parent's) must exist
    if ClaimState(claim.state) not in ADJUDICATED_STATES:
        raise _refuse(claim, "only an adjudicated claim can be appealed", "adjudicated")
    live = live_appeal(session, claim)
    if live is not None:
        raise _refuse(claim, f"appeal {live.public_id} is already {live.status.value}", "one_live_appeal")
    day = determined or determination_date(session, claim)
    if day is None:
        raise _refuse(claim, "no determination (835) is known to appeal", "determination")
    if day > (today or utcnow().date()):
        raise _invalid("determined", "not_future", "the denial date cannot be in the future")
    level = AppealLevel(level)
    indicator = claim.coverage.payer.claim_filing_indicator
    deadline = appeal_deadline(indicator, day, default_days=default_days, level=level)
    text = check_letter(letter_text)
    if text is None or not text.strip():
        text = generate_letter(session, claim, level=level, denial_date=day, today=today)
    item = (
        work_item
        or (_item_of(session, parent) if parent is not None else None)
        or _denial_item(session, claim)
    )
    appeal = Appeal(
        claim=claim,
        claim_id=claim.id,
        work_item_id=item.id if item is not None else None,
        deadline=deadline,
        status=AppealStatus.DRAFT,
        level=level,
        denial_date=day,
        parent_appeal_id=parent.id if parent is not None else None,
        created_by_user_id=user_id,
        letter_text=text,
        attachments=json.dumps([]),
        public_id=new_public_id(),
    )
    session.add(appeal)
    _to_appeal_queue(session, appeal, item)
    _audit(
        session,
        appeal,
        "open" if parent is None else "next_level",
        {
            "deadline": deadline.isoformat(),
            "determined": day.isoformat(),
            **({"parent": parent.public_id} if parent is not None else {}),
        },
    )
    return appeal


def open_next_level(
    session: Session,
    parent: Appeal,
    *,
    default_days: int = DEFAULT_APPEAL_DAYS,
    user_id: int | None = None,
    today: date | None = None,
) -> Appeal:
    """The next level (second, then external) of a lost appeal; its deadline runs from the day
    the lower level was lost, and the denial item returns to the appeal queue."""
    if parent.status != AppealStatus.LOST:
        raise _invalid(
            "status",
            "lost_first",
            f"only a lost appeal goes to the next level (this one is {parent.status.value})",
        )
    level = NEXT_LEVEL.get(AppealLevel(parent.level))
    if level is None:
        raise _invalid("level", "no_next_level", "an external review is the last level")
    session.flush()
    child = session.scalar(select(Appeal.public_id).where(Appeal.parent_appeal_id == parent.id))
    if child is not None:
        raise Conflict(
            f"appeal {parent.public_id} already has its next level ({child})",
            errors=[{"field": "appeal", "rule": "one_next_level", "message": f"already appealed as {child}"}],
        )
    decided = parent.decided_at.date() if parent.decided_at is not None else (today or utcnow().date())
    return open_appeal(
        session,
        parent.claim,
        determined=decided,
        default_days=default_days,
        level=level,
        parent=parent,
        user_id=user_id,
        today=today,
    )


def _require_draft(appeal: Appeal, what: str) -> None:
    if appeal.status != AppealStatus.DRAFT:
        raise Conflict(
            f"appeal {appeal.public_id} is {appeal.status.value}; only a draft's {what} changes",
            errors=[
                {"field": "status", "rule": "draft_only", "message": f"the appeal is {appeal.status.value}"}
            ],
            current_status=appeal.status.value,
        )


def update_appeal(
    session: Session,
    appeal: Appeal,
    *,
    letter_text: str | None = None,
    attachments: list[Any] | None = None,
) -> Appeal:
    """Replace a draft's letter and/or attachments list (the audit records sizes only: both
    can name the patient)."""
    _require_draft(appeal, "letter and attachments")
    details: dict[str, object] = {}
    if letter_text is not None:
        text = check_letter(letter_text) or ""
        if not text.strip():
            raise _invalid("letter_text", "required", "the letter cannot be empty")
        appeal.letter_text = text
        details["characters"] = len(text)
    if attachments is not None:
        cleaned = check_attachments(attachments)
        appeal.attachments = json.dumps(cleaned)
        details["attachments"] = len(cleaned)
    if not details:
        raise _invalid("letter_text", "required", "send letter_text or attachments", "nothing to change")
    _audit(session, appeal, "update", details)
    return appeal


def update_letter(session: Session, appeal: Appeal, letter_text: str) -> Appeal:
    """Replace a draft appeal's letter."""
    return update_appeal(session, appeal, letter_text=letter_text)


def add_attachment(session: Session, appeal: Appeal, name: str, kind: str) -> Appeal:
    """Add one document to a draft's list."""
    current = attachments_of(appeal)
    try:
        check_attachments([{"name": name, "kind": kind}])
    except Unprocessable as exc:  # name the form's fields, not the list's
        exc.errors = [{**e, "field": e["field"].split(".", 1)[1]} for e in exc.errors or []]
        raise
    return update_appeal(session, appeal, attachments=[*current, {"name": name, "kind": kind}])


def remove_attachment(session: Session, appeal: Appeal, index: int) -> Appeal:
    """Remove the ``index``-th document of a draft's list."""
    current = attachments_of(appeal)
    if not 0 <= index < len(current):
        raise _invalid("attachment", "exists", "no such attachment; reload the page")
    return update_appeal(session, appeal, attachments=current[:index] + current[index + 1 :])


def submit_appeal(
    session: Session, appeal: Appeal, *, today: date | None = None, now: datetime | None = None
) -> Appeal:
    """draft → submitted; refused after the deadline (a late appeal needs good cause, not this
    button) or without a letter. The item stays in the appeal queue, awaiting the decision."""
    _require_draft(appeal, "status")
    day = today or utcnow().date()
    if day > appeal.deadline:
        raise _invalid(
            "deadline",
            "deadline_passed",
            f"the filing deadline was {appeal.deadline.isoformat()}",
            f"the appeal deadline passed on {appeal.deadline.isoformat()}",
        )
    if not (appeal.letter_text or "").strip():
        raise _invalid(
            "letter_text",
            "required",
            "write the letter first",
            "an appeal needs its letter before it is submitted",
        )
    appeal.status = AppealStatus.SUBMITTED
    appeal.submitted_at = now or utcnow()
    item = _item_of(session, appeal)
    if item is not None and item.queue == WorkQueue.APPEAL:
        item.recommended_action = AWAIT_DECISION
    _audit(session, appeal, "submit", {})
    return appeal


#: What a caller may record: the payer's outcome, or a withdrawal (``won``/``lost`` are the
#: older API's words for overturned/upheld).
OUTCOME_CHOICES = (*(o.value for o in AppealOutcome), AppealStatus.WITHDRAWN.value)
_LEGACY = {
    AppealStatus.WON.value: AppealOutcome.OVERTURNED.value,
    AppealStatus.LOST.value: AppealOutcome.UPHELD.value,
}


def _back_to_denied(
    session: Session, appeal: Appeal, item: WorkItem, action: str, note: str, due: date | None
) -> None:
    move_to_queue(session, item, WorkQueue.DENIED, recommended_action=action, due_date=due, note=note)


def _codes_recommendation(item: WorkItem) -> str:
    """The codes' own recommendation again (as when the denial was posted)."""
    pairs = [tuple(code.split("-", 1)) for code in item.reason_codes or [] if "-" in code]
    remarks = [code for code in item.reason_codes or [] if "-" not in code]
    return recommend_for_codes([(g, c) for g, c in pairs], remarks).action.value


def record_outcome(
    session: Session,
    appeal: Appeal,
    outcome: str,
    *,
    now: datetime | None = None,
    default_days: int = DEFAULT_APPEAL_DAYS,
) -> Appeal:
    """Record the payer's decision (overturned, partially overturned, upheld) on a submitted
    appeal, or withdraw a draft or submitted one; the denial item follows (module docstring)."""
    value = _LEGACY.get(str(outcome), str(outcome))
    if value not in OUTCOME_CHOICES:
        raise _invalid("outcome", "one_of", f"one of {', '.join(OUTCOME_CHOICES)}")
    when = now or utcnow()
    item = _item_of(session, appeal)
    if value == AppealStatus.WITHDRAWN.value:
        if appeal.status not in LIVE:
            raise _invalid("outcome", "live_only", f"the appeal is already {appeal.status.value}")
        appeal.status = AppealStatus.WITHDRAWN
        appeal.decided_at = when
        if item is not None and item.queue == WorkQueue.APPEAL:
            _back_to_denied(
                session,
                appeal,
                item,
                _codes_recommendation(item),
                f"Appeal {appeal.public_id} withdrawn.",
                None,
            )
        _audit(session, appeal, "decide", {"outcome": "withdrawn"})
        return appeal
    if appeal.status != AppealStatus.SUBMITTED:
        raise _invalid(
            "outcome",
            "submitted_first",
            f"the appeal is {appeal.status.value}: submit it before recording the payer's outcome",
        )
    result = AppealOutcome(value)
    appeal.outcome = result
    appeal.decided_at = when
    if result == AppealOutcome.UPHELD:
        appeal.status = AppealStatus.LOST
        if item is not None and item.queue == WorkQueue.APPEAL:
            following = NEXT_LEVEL.get(AppealLevel(appeal.level))
            if following is not None:
                due = appeal_deadline(
                    appeal.claim.coverage.payer.claim_filing_indicator,
                    when.date(),
                    default_days=default_days,
                    level=following,
                )
                note = (
                    f"Appeal {appeal.public_id} lost (upheld). Next: a {following.value}-level appeal "
                    f"by {due.isoformat()}, or write off."
                )
                _back_to_denied(session, appeal, item, "appeal", note, due)
            else:
                _back_to_denied(
                    session,
                    appeal,
                    item,
                    "write_off",
                    f"Appeal {appeal.public_id} lost at the last level.",
                    None,
                )
    else:
        appeal.status = AppealStatus.WON
        if item is not None:
            resolve(
                session,
                item,
                ResolutionCode.APPEALED,
                f"appeal won ({result.value}); payment expected (appeal {appeal.public_id})",
                now=when,
            )
    _audit(session, appeal, "decide", {"outcome": result.value})
    return appeal


def decide_appeal(
    session: Session, appeal: Appeal, outcome: AppealStatus | str, *, now: datetime | None = None
) -> Appeal:
    """The older API's decision (won, lost, withdrawn): :func:`record_outcome`."""
    value = str(getattr(outcome, "value", outcome))
    if value not in (*_LEGACY, AppealStatus.WITHDRAWN.value, *OUTCOME_CHOICES):
        raise Conflict(f"appeal {appeal.public_id} cannot go to {value}", current_status=appeal.status.value)
    return record_outcome(session, appeal, value, now=now)


# -- reading ------------------------------------------------------------------------------------


@dataclass
class AppealFilters:
    status: list[AppealStatus] | None = None  # None: every status
    level: AppealLevel | None = None
    overdue: bool | None = None  # a draft past its deadline
    claim_id: int | None = None


def is_overdue(appeal: Appeal, today: date | None = None) -> bool:
    """A draft whose filing deadline has passed (a submitted one was filed in time)."""
    return appeal.status == AppealStatus.DRAFT and appeal.deadline < (today or utcnow().date())


def days_left(appeal: Appeal, today: date | None = None) -> int:
    return (appeal.deadline - (today or utcnow().date())).days


def appeal_select(filters: AppealFilters, today: date | None = None) -> Select[tuple[Appeal]]:
    """Appeals matching ``filters``, ordered by deadline (then id)."""
    day = today or utcnow().date()
    stmt = select(Appeal)
    if filters.status:
        stmt = stmt.where(Appeal.status.in_(filters.status))
    if filters.level is not None:
        stmt = stmt.where(Appeal.level == filters.level)
    if filters.claim_id is not None:
        stmt = stmt.where(Appeal.claim_id == filters.claim_id)
    if filters.overdue is True:
        stmt = stmt.where(Appeal.status == AppealStatus.DRAFT, Appeal.deadline < day)
    elif filters.overdue is False:
        stmt = stmt.where(or_(Appeal.status != AppealStatus.DRAFT, Appeal.deadline >= day))
    return stmt.order_by(Appeal.deadline, Appeal.id)


def after_key(stmt: Select[tuple[Appeal]], deadline: date, appeal_id: int) -> Select[tuple[Appeal]]:
    """Keyset: the rows after ``(deadline, id)`` in the deadline order."""
    return stmt.where(
        or_(Appeal.deadline > deadline, and_(Appeal.deadline == deadline, Appeal.id > appeal_id))
    )


def get_appeal(session: Session, public_id: str) -> Appeal:
    appeal = session.scalar(select(Appeal).where(Appeal.public_id == public_id))
    if appeal is None:
        raise NotFound("no appeal has this id")
    return appeal


def payer_of(appeal: Appeal) -> Payer:
    return appeal.claim.coverage.payer


__all__ = [
    "ADJUDICATED_STATES",
    "APPEAL_DAYS",
    "ATTACHMENT_KINDS",
    "DEFAULT_APPEAL_DAYS",
    "MAX_LETTER",
    "AppealFilters",
    "Coverage",
    "Patient",
    "add_attachment",
    "appeal_deadline",
    "appeal_select",
    "attachments_of",
    "check_letter",
    "claim_appeals",
    "decide_appeal",
    "determination_date",
    "generate_letter",
    "live_appeal",
    "open_appeal",
    "open_next_level",
    "record_outcome",
    "remove_attachment",
    "submit_appeal",
    "update_appeal",
    "update_letter",
]
