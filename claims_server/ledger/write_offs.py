"""Write-offs: giving up all or part of a claim's open balance, with a reason, exactly once.

A write-off is one ``write_off`` journal entry (ARCHITECTURE.md, the ledger table): Dr
write-offs / Cr A/R insurance (the payer that owes) or A/R patient, line by line, posted
through the ledger's own ``post_entries`` (balanced, validated, audited as
``ledger.write_off`` with the reason, bucket and amount in the audit details). There is
no ``write_offs`` table: the journal entry IS the write-off (``reason_code`` = the
reason, ``claim_id`` = the claim whose A/R it reduces), so nothing can disagree with the
ledger.

Rules (each refusal is a 422 naming the field and the rule, and writes nothing):

- ``amount_cents`` a positive integer (cents; never a float), at most the open balance of
  the chosen bucket (insurance or patient) on the claim, or of the one line named;
- ``reason`` one of :class:`WriteOffReason`; ``other`` needs a note;
- insurance A/R owed by more than one payer (primary and secondary) needs the payer named;
- a biller may write off at most ``WRITE_OFF_BILLER_LIMIT_CENTS`` (config) on one claim,
  counted cumulatively: the write-offs in force on the claim that were not posted by a
  billing supervisor or admin, plus the new one (:func:`written_off_without_approval`), so
  five $10 write-offs cannot pass a $10 limit; above it :func:`write_off` refuses
  (:class:`ApprovalNeeded`) and :func:`write_off_or_request` (the API's and the UI's
  door) makes an approval request instead (``ledger.approvals``; nothing posted until a
  supervisor approves, then :func:`_post_approved` posts it as theirs). Supervisors and
  admins have no limit (:func:`approval_limit_for`).

Concurrency: the claim that carries the A/R is locked (``SELECT ... FOR UPDATE`` on
PostgreSQL, SQLite's database write lock) before the idempotency key, the limit and the
open balance are read, so two write-offs of one claim with different keys cannot both
pass the open-balance check.

The free-text note can name the patient, and ``journal_entries.memo`` is deliberately not
encrypted (docs/security.md), so the note is a :class:`~claims_server.models.JournalNote`
of the entry (encrypted, append-only); the memo holds only the fixed reason label.

Exactly once: the caller's idempotency key (the API's ``Idempotency-Key`` scoped to the
caller; the UI's per-form key) names the journal entry, whose key is UNIQUE. The same key
again answers the first write-off (``replayed``); with another claim, amount, bucket or
reason it is a :class:`Conflict`.

A write-off closes the work items whose balance it took to zero and no others (a partial
write-off of a denial leaves its item open with what is still owed: docs/write-offs.md,
"Work items close at zero"); those recommending ``write_off`` as ``written_off``. A reversal (supervisors) is a new entry with
the mirrored postings (``mirror_legs``), ``reverses_entry_id`` set (an entry is reversed
at most once), the same reason code (so the KPIs net it) and a reversal reason from a
fixed list. It keeps the ``write_off`` event type so statements, which count write-off
entries as adjustments, net the pair to zero.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import exists, func, or_, select, text
from sqlalchemy.orm import Session, aliased

from claims_server.errors import Conflict, NotFound, Unprocessable
from claims_server.ledger.approvals import register_executor, request_approval
from claims_server.ledger.services import (
    EntrySpec,
    Leg,
    existing_entry_ids,
    mirror_legs,
    post_entries,
    receivable_claim_id,
)
from claims_server.models import (
    Account,
    AccountCode,
    Claim,
    JournalEntry,
    JournalEventType,
    JournalNote,
    Payer,
    Posting,
    ServiceLine,
    User,
    WorkItem,
)
from claims_server.models.common import utcnow
from claims_server.models.remittance import AdjudicationState
from claims_server.models.workqueue import (
    ApprovalKind,
    ApprovalRequest,
    ApprovalState,
    WorkItemStatus,
    WorkQueue,
)
from claims_server.security.principal import current_principal
from claims_server.workqueue.recommend import RecommendedAction


class WriteOffReason(StrEnum):
    """Why a balance is given up (the fixed list; docs/write-offs.md explains each)."""

    SMALL_BALANCE = "small_balance"
    TIMELY_FILING = "timely_filing"
    BAD_DEBT = "bad_debt"  # uncollectible after the dunning cycle / sent to collections
    HARDSHIP = "hardship"  # financial hardship or charity care under the practice's policy
    ADMINISTRATIVE = "administrative"  # the practice's own error or decision (e.g. a courtesy)
    NON_COVERED_CONTRACT = "non_covered_contract"  # the contract forbids billing anyone for it
    DUPLICATE = "duplicate"  # the balance comes from a charge that should not exist
    OTHER = "other"  # with a note saying why


REASON_LABELS: dict[WriteOffReason, str] = {
    WriteOffReason.SMALL_BALANCE: "Small balance",
    WriteOffReason.TIMELY_FILING: "Timely filing limit missed",
    WriteOffReason.BAD_DEBT: "Bad debt / collections",
    WriteOffReason.HARDSHIP: "Financial hardship / charity care",
    WriteOffReason.ADMINISTRATIVE: "Administrative",
    WriteOffReason.NON_COVERED_CONTRACT: "Non-covered service by contract",
    WriteOffReason.DUPLICATE: "Duplicate charge",
    WriteOffReason.OTHER: "Other (see note)",
}

#: Write-offs the billing office could have avoided (HFMA MAP Keys count avoidable losses —
#: denial write-offs, bad debt — against performance): they stay in the net collection
#: rate's denominator and lower it. The other reasons (charity/hardship, contractually
#: non-billable, duplicate charges) are not collectible revenue and are deducted like
#: contractual adjustments. See docs/write-offs.md and reports/services.py.
CONTROLLABLE_REASONS = frozenset(
    {
        WriteOffReason.SMALL_BALANCE,
        WriteOffReason.TIMELY_FILING,
        WriteOffReason.BAD_DEBT,
        WriteOffReason.ADMINISTRATIVE,
        WriteOffReason.OTHER,
    }
)
NON_CONTROLLABLE_REASONS = frozenset(WriteOffReason) - CONTROLLABLE_REASONS


class WriteOffBucket(StrEnum):
    """Which receivable is written off."""

    INSURANCE = "insurance"
    PATIENT = "patient"


BUCKET_ACCOUNTS: dict[WriteOffBucket, AccountCode] = {
    WriteOffBucket.INSURANCE: AccountCode.AR_INSURANCE,
    WriteOffBucket.PATIENT: AccountCode.AR_PATIENT,
}


class ReversalReason(StrEnum):
    """Why a write-off is undone (a fixed list: the memo is not encrypted, so no free text)."""

    POSTED_IN_ERROR = "posted_in_error"
    WRONG_AMOUNT = "wrong_amount"
    WRONG_BUCKET = "wrong_bucket"
    PAYMENT_RECEIVED = "payment_received"


MAX_NOTE = 2000
#: Roles without a write-off limit; every other role that may write off has the biller limit.
UNLIMITED_ROLES = frozenset({"billing_supervisor", "admin"})


class WriteOffRefused(Unprocessable):
    """A write-off that fails validation; nothing was posted."""


class ApprovalNeeded(WriteOffRefused):
    """A valid write-off above the requester's limit: :func:`write_off_or_request` turns it
    into an approval request; :func:`write_off` alone refuses it (422 ``approval_limit``)."""


def _refuse(field: str, rule: str, message: str, **extra: Any) -> WriteOffRefused:
    return WriteOffRefused(
        f"{field}: {message}", errors=[{"field": field, "rule": rule, "message": message}], **extra
    )


@dataclass(frozen=True)
class WriteOff:
    """One posted write-off (or reversal), read back from its journal entry."""

    entry: JournalEntry
    claim_public_id: str
    bucket: WriteOffBucket
    reason: WriteOffReason
    amount_cents: int  # positive for a write-off, negative for a reversal
    note: str | None
    reversed_by: str | None  # public id of the reversing entry
    reverses: str | None  # public id of the entry this one reverses
    replayed: bool = False

    @property
    def public_id(self) -> str:
        return self.entry.public_id

    def to_json_dict(self) -> dict[str, Any]:
        from claims_server.api_common.fields import cents_to_money

        return {
            "id": self.entry.public_id,
            "claim_id": self.claim_public_id,
            "bucket": self.bucket.value,
            "reason": self.reason.value,
            "reason_label": REASON_LABELS[self.reason],
            "controllable": self.reason in CONTROLLABLE_REASONS,
            "amount": cents_to_money(self.amount_cents),
            "note": self.note,
            "effective_date": self.entry.effective_date.isoformat(),
            "created_at": self.entry.created_at.isoformat() if self.entry.created_at else None,
            "reverses": self.reverses,
            "reversed_by": self.reversed_by,
            "replayed": self.replayed,
        }


def approval_limit_for(role: str | None, biller_limit_cents: int) -> int | None:
    """The most ``role`` may have written off on one claim without approval (None: no limit)."""
    return None if role in UNLIMITED_ROLES else biller_limit_cents


def written_off_without_approval(session: Session, claim_id: int) -> int:
    """Cents of the claim's write-offs in force that no supervisor or admin posted.

    A write-off that was reversed, and the reversals themselves, are left out. A posting
    user's role is read as it is now (the journal keeps who, not their role then); system
    postings (no user) count, since no one with approval authority made them.
    """
    reversal = aliased(JournalEntry)
    return int(
        session.scalar(
            select(func.coalesce(func.sum(Posting.amount_cents), 0))
            .join(Account, Account.id == Posting.account_id)
            .join(JournalEntry, JournalEntry.id == Posting.journal_entry_id)
            .outerjoin(User, User.id == JournalEntry.created_by_user_id)
            .where(
                Account.code == AccountCode.WRITE_OFFS.value,
                JournalEntry.claim_id == claim_id,
                JournalEntry.event_type == JournalEventType.WRITE_OFF,
                JournalEntry.reverses_entry_id.is_(None),
                ~exists().where(reversal.reverses_entry_id == JournalEntry.id),
                or_(User.id.is_(None), User.role.not_in(sorted(UNLIMITED_ROLES))),
            )
        )
    )


def _lock_claim(session: Session, claim_id: int) -> None:
    """Serialize write-offs of one claim until this transaction ends (see the module docstring).

    PostgreSQL: the claim's row ``FOR UPDATE``. SQLite: its database-wide write lock (a
    write that matches nothing takes it), as ``claims.state.transition_many`` does.
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(select(Claim.id).where(Claim.id == claim_id).with_for_update())
    else:
        session.execute(text("UPDATE claims SET version = version WHERE 1 = 0"))


# -- balances ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OpenGroup:
    """Open A/R of one (line, payer, patient) on the claim in one bucket."""

    service_line_id: int | None
    payer_id: int | None
    patient_id: int | None
    cents: int


def open_groups(session: Session, claim_id: int, bucket: WriteOffBucket) -> list[OpenGroup]:
    """The claim's A/R in ``bucket`` by (line, payer, patient), lines in order, non-zero only."""
    rows = session.execute(
        select(Posting.service_line_id, Posting.payer_id, Posting.patient_id, func.sum(Posting.amount_cents))
        .join(Account, Account.id == Posting.account_id)
        .where(Account.code == BUCKET_ACCOUNTS[bucket].value, Posting.claim_id == claim_id)
        .group_by(Posting.service_line_id, Posting.payer_id, Posting.patient_id)
    ).all()
    numbers = {
        line_id: number
        for line_id, number in session.execute(
            select(ServiceLine.id, ServiceLine.line_number).where(ServiceLine.claim_id == claim_id)
        )
    }
    groups = [OpenGroup(line, payer, patient, int(total)) for line, payer, patient, total in rows if total]
    groups.sort(key=lambda g: (numbers.get(g.service_line_id, 10_000), g.payer_id or 0, g.patient_id or 0))
    return groups


def open_balances(session: Session, claim: Claim) -> dict[WriteOffBucket, int]:
    """bucket -> the claim's open A/R in it (cents; the A/R of the claim that carries the charge)."""
    claim_id = receivable_claim_id(session, claim)
    return {bucket: sum(g.cents for g in open_groups(session, claim_id, bucket)) for bucket in WriteOffBucket}


# -- posting ----------------------------------------------------------------------------------


def _journal_key(idempotency_key: str) -> str:
    return "write_off:" + hashlib.sha256(idempotency_key.encode()).hexdigest()[:48]


def _validate(amount_cents: Any, reason: Any, note: str | None, idempotency_key: str) -> WriteOffReason:
    if isinstance(amount_cents, bool) or not isinstance(amount_cents, int):
        raise _refuse("amount", "integer_cents", "must be an amount in cents, not a float or text")
    if amount_cents <= 0:
        raise _refuse("amount", "positive", "must be greater than zero")
    if not reason:
        raise _refuse("reason", "required", "choose a reason for the write-off")
    try:
        chosen = WriteOffReason(reason)
    except ValueError:
        allowed = ", ".join(r.value for r in WriteOffReason)
        raise _refuse("reason", "one_of", f"must be one of: {allowed}") from None
    text = (note or "").strip()
    if len(text) > MAX_NOTE:
        raise _refuse("note", "length", f"at most {MAX_NOTE} characters")
    if chosen is WriteOffReason.OTHER and not text:
        raise _refuse("note", "required_for_other", "say why when the reason is other")
    if not idempotency_key or len(idempotency_key) > 255:
        raise _refuse("Idempotency-Key", "length", "must be 1 to 255 characters")
    return chosen


def _groups_to_write_off(
    session: Session,
    claim: Claim,
    claim_id: int,
    bucket: WriteOffBucket,
    line_number: int | None,
    payer: Payer | None,
) -> list[OpenGroup]:
    groups = open_groups(session, claim_id, bucket)
    if line_number is not None:
        line = session.scalar(
            select(ServiceLine).where(
                ServiceLine.claim_id == claim_id, ServiceLine.line_number == line_number
            )
        )
        if line is None:
            raise _refuse("line", "exists", f"the claim has no line {line_number}")
        groups = [g for g in groups if g.service_line_id == line.id]
    if bucket is WriteOffBucket.INSURANCE:
        if payer is not None:
            groups = [g for g in groups if g.payer_id == payer.id]
        else:
            owing = {g.payer_id for g in groups if g.cents > 0}
            if len(owing) > 1:
                raise _refuse("payer", "required", "more than one payer owes on this claim; name the payer")
    return groups


def write_off(
    session: Session,
    claim: Claim,
    *,
    amount_cents: int,
    bucket: WriteOffBucket | str,
    reason: WriteOffReason | str,
    idempotency_key: str,
    note: str | None = None,
    line_number: int | None = None,
    payer: Payer | None = None,
    approval_limit_cents: int | None = None,
    effective_date: date | None = None,
) -> WriteOff:
    """Write off ``amount_cents`` of the claim's ``bucket`` A/R (flushes; the caller commits).

    See the module docstring for the rules; every refusal is a :class:`WriteOffRefused`
    (422) naming the field, raised before anything is written.
    """
    chosen = _validate(amount_cents, reason, note, idempotency_key)
    try:
        which = WriteOffBucket(bucket)
    except ValueError:
        raise _refuse("bucket", "one_of", "must be insurance or patient") from None
    key = _journal_key(idempotency_key)
    claim_id = receivable_claim_id(session, claim)
    _lock_claim(session, claim_id)
    existing = existing_entry_ids(session, [key]).get(key)
    if existing is not None:
        done = _read(session, session.get(JournalEntry, existing))
        if (done.claim_public_id, done.bucket, done.reason, done.amount_cents) != (
            _public_id(session, claim_id),
            which,
            chosen,
            amount_cents,
        ):
            raise Conflict(
                "this idempotency key was already used for a different write-off; use a new key",
                errors=[{"field": "Idempotency-Key", "rule": "idempotency_key_reuse"}],
            )
        return replace(done, replayed=True)
    groups = _groups_to_write_off(session, claim, claim_id, which, line_number, payer)
    open_cents = sum(g.cents for g in groups)
    if open_cents <= 0:
        raise _refuse("bucket", "open_balance", f"the claim has no open {which.value} balance to write off")
    if amount_cents > open_cents:
        from claims_server.api_common.fields import cents_to_money

        raise _refuse(
            "amount",
            "at_most_open_balance",
            f"is more than the open {which.value} balance of {cents_to_money(open_cents)}",
            open_balance=cents_to_money(open_cents),
        )
    # After the balance checks, so a request sent for approval is one that could post today.
    if approval_limit_cents is not None:
        _check_approval_limit(session, claim_id, amount_cents, approval_limit_cents)

    account = BUCKET_ACCOUNTS[which]
    legs: list[Leg] = []
    left = amount_cents
    for group in groups:
        if left <= 0:
            break
        if group.cents <= 0:
            continue
        take = min(left, group.cents)
        dims = (claim_id, group.service_line_id, group.payer_id, group.patient_id)
        legs.append(Leg(AccountCode.WRITE_OFFS, take, *dims))
        legs.append(Leg(account, -take, *dims))
        left -= take
    claim_public_id = _public_id(session, claim_id)
    # Written off in full (nothing open in either bucket after it): every open item of the
    # encounter's claims closes too, except those about money still held (below); the items
    # that recommended a write-off as ``written_off``. A partial write-off closes only the
    # items whose own balance it took to zero (after posting, below): a denial item stays
    # open with what is still owed (docs/write-offs.md, "Work items close at zero").
    left = open_balances(session, claim)
    left[which] -= amount_cents
    resolved: list[WorkItem] = []
    closing: list[WorkItem] = []
    if all(cents == 0 for cents in left.values()):
        resolved = _open_write_off_items(session, _encounter_claim_ids(session, claim_id))
        closing = _items_closed_by_full_write_off(session, claim_id, {item.id for item in resolved})
    post_entries(
        session,
        [
            EntrySpec(
                event_type=JournalEventType.WRITE_OFF,
                idempotency_key=key,
                legs=legs,
                effective_date=effective_date or utcnow().date(),
                claim_id=claim_id,
                reason_code=chosen.value,
                memo=f"write-off: {REASON_LABELS[chosen]} ({which.value})",
                audit_entity=claim_public_id,
                audit_details={
                    "claim": claim_public_id,
                    "bucket": which.value,
                    "reason": chosen.value,
                    "amount_cents": amount_cents,
                    "line": line_number,
                    "note_characters": len((note or "").strip()),
                    "work_items_resolved": [item.public_id for item in (*resolved, *closing)],
                },
            )
        ],
    )
    entry = session.scalar(select(JournalEntry).where(JournalEntry.idempotency_key == key))
    assert entry is not None
    _resolve_items(session, resolved, entry)
    _close_items(session, closing, entry)
    if not resolved and not closing:
        _close_settled(session, {claim.id, claim_id}, entry)
    note_text = (note or "").strip()
    if note_text:
        session.add(
            JournalNote(journal_entry_id=entry.id, author_user_id=current_principal().user_id, note=note_text)
        )
    session.flush()
    return _read(session, entry)


def _check_approval_limit(session: Session, claim_id: int, amount_cents: int, limit_cents: int) -> None:
    """Refuse a write-off that takes the claim's unapproved write-offs above ``limit_cents``."""
    from claims_server.api_common.fields import cents_to_money

    already = written_off_without_approval(session, claim_id)
    if already + amount_cents <= limit_cents:
        return
    limit = cents_to_money(limit_cents)
    if already:
        message = (
            f"with the ${cents_to_money(already)} already written off on this claim without a "
            f"supervisor, this would make ${cents_to_money(already + amount_cents)}, above the ${limit} "
            "a biller may write off on one claim; a billing supervisor must approve and post it"
        )
    else:
        message = (
            f"is above the ${limit} a biller may write off on one claim; "
            "a billing supervisor must approve and post it"
        )
    raise ApprovalNeeded(
        f"amount: {message}",
        errors=[{"field": "amount", "rule": "approval_limit", "message": message}],
        limit=limit,
        written_off_without_approval=cents_to_money(already),
    )


def _public_id(session: Session, claim_id: int) -> str:
    return str(session.scalar(select(Claim.public_id).where(Claim.id == claim_id)))


def _open_write_off_items(session: Session, claim_ids: set[int]) -> list[WorkItem]:
    return list(
        session.scalars(
            select(WorkItem)
            .where(
                WorkItem.claim_id.in_(claim_ids),
                WorkItem.status != WorkItemStatus.RESOLVED,
                WorkItem.recommended_action == RecommendedAction.WRITE_OFF.value,
                WorkItem.queue.not_in(_NOT_CLOSED_BY_WRITE_OFF),
            )
            .order_by(WorkItem.id)
        )
    )


#: Queues whose items are about something else than the claim's balance (a held possible
#: duplicate waits for a supervisor's decision, a PLB for its reconciliation, an appeal for
#: the payer's outcome, a credit for its refund, an approval for a supervisor): writing the
#: claim's balance off answers none of them, so they stay open.
_NOT_CLOSED_BY_WRITE_OFF = (
    WorkQueue.POSSIBLE_DUPLICATE,
    WorkQueue.RECONCILIATION,
    WorkQueue.APPEAL,
    WorkQueue.CREDIT_BALANCE,
    WorkQueue.APPROVAL,
)


def _encounter_claim_ids(session: Session, claim_id: int) -> set[int]:
    """``claim_id`` (the claim carrying the A/R) and every claim made from it (replacements,
    voids, next-payer claims, and theirs)."""
    ids, frontier = {claim_id}, {claim_id}
    while frontier:
        children = set(session.scalars(select(Claim.id).where(Claim.original_claim_id.in_(sorted(frontier)))))
        frontier = children - ids
        ids |= frontier
    return ids


def _items_closed_by_full_write_off(session: Session, claim_id: int, already: set[int]) -> list[WorkItem]:
    """Open items of the encounter's claims that a write-off of its whole balance answers.

    Left open: the queues of :data:`_NOT_CLOSED_BY_WRITE_OFF`, and any item naming an
    adjudication still held (its money waits in unapplied payments for a decision).
    """
    from claims_server.workqueue.services import open_items_of_claims

    items = open_items_of_claims(
        session, _encounter_claim_ids(session, claim_id), except_queues=_NOT_CLOSED_BY_WRITE_OFF
    )
    return [
        item
        for item in items
        if item.id not in already
        and not (
            item.claim_payment is not None and item.claim_payment.adjudication_state == AdjudicationState.HELD
        )
    ]


def _close_items(session: Session, items: list[WorkItem], entry: JournalEntry) -> None:
    from claims_server.workqueue.services import resolve_by_system

    for item in items:
        resolve_by_system(
            session, item, f"the claim's balance was written off in full (write-off {entry.public_id})"
        )


def _close_settled(session: Session, claim_ids: set[int], entry: JournalEntry) -> None:
    """Close the balance items (denial, patient balance, ...) this write-off took to zero."""
    from claims_server.workqueue.services import ResolutionCode, resolve, resolve_by_system, settled_items

    session.flush()
    with session.no_autoflush:
        for item in settled_items(session, claim_ids):
            if item.recommended_action == RecommendedAction.WRITE_OFF.value:
                resolve(session, item, ResolutionCode.WRITTEN_OFF, f"write-off {entry.public_id}")
            else:
                resolve_by_system(
                    session, item, f"the balance it is about was written off (write-off {entry.public_id})"
                )


def _resolve_items(session: Session, items: list[WorkItem], entry: JournalEntry) -> None:
    from claims_server.workqueue.services import ResolutionCode, resolve

    for item in items:
        resolve(session, item, ResolutionCode.WRITTEN_OFF, f"write-off {entry.public_id}")


# -- above the limit: an approval request -----------------------------------------------------


@dataclass(frozen=True)
class WriteOffRequested:
    """A write-off above the requester's limit, sent to a supervisor (nothing posted)."""

    approval: ApprovalRequest
    replayed: bool = False


def write_off_or_request(
    session: Session,
    claim: Claim,
    *,
    amount_cents: int,
    bucket: WriteOffBucket | str,
    reason: WriteOffReason | str,
    idempotency_key: str,
    requested_by: User | None,
    note: str | None = None,
    line_number: int | None = None,
    payer: Payer | None = None,
    approval_limit_cents: int | None = None,
) -> WriteOff | WriteOffRequested:
    """:func:`write_off`, except that a valid write-off above ``approval_limit_cents`` becomes a
    pending approval request (``ledger.approvals``) instead of a refusal. Nothing is posted then;
    a supervisor's approval posts it later, as theirs (:func:`_post_approved`).

    Exactly once too: the same idempotency key answers the request it made (``replayed``).
    """
    key = _journal_key(idempotency_key) if idempotency_key else ""
    made = _request_made_with(session, claim, key) if key else None
    if made is not None:
        return WriteOffRequested(made, replayed=True)
    try:
        return write_off(
            session,
            claim,
            amount_cents=amount_cents,
            bucket=bucket,
            reason=reason,
            idempotency_key=idempotency_key,
            note=note,
            line_number=line_number,
            payer=payer,
            approval_limit_cents=approval_limit_cents,
        )
    except ApprovalNeeded:
        pass  # valid but above the limit: nothing was written; ask a supervisor
    which = WriteOffBucket(bucket)
    owing = payer
    if owing is None and which is WriteOffBucket.INSURANCE:
        payers = {g.payer_id for g in open_groups(session, receivable_claim_id(session, claim), which)}
        if len(payers) == 1 and None not in payers:
            owing = session.get(Payer, payers.pop())
    approval = request_approval(
        session,
        ApprovalKind.WRITE_OFF,
        amount_cents=amount_cents,
        request={
            "bucket": which.value,
            "reason": WriteOffReason(reason).value,
            "line": line_number,
            "payer": payer.public_id if payer is not None else None,
            "key": key,
        },
        requested_by=requested_by,
        claim=claim,
        payer=owing,
        note=note,
    )
    return WriteOffRequested(approval)


def _request_made_with(session: Session, claim: Claim, key: str) -> ApprovalRequest | None:
    for approval in session.scalars(
        select(ApprovalRequest).where(
            ApprovalRequest.claim_id == claim.id, ApprovalRequest.kind == ApprovalKind.WRITE_OFF
        )
    ):
        if (approval.request or {}).get("key") == key:
            return approval
    return None


def pending_requests(
    session: Session, claim: Claim, state: ApprovalState = ApprovalState.PENDING
) -> list[ApprovalRequest]:
    """The claim's write-off requests in ``state`` (pending: waiting for a supervisor), oldest
    first; the claim screen shows the pending and the declined ones."""
    return list(
        session.scalars(
            select(ApprovalRequest)
            .where(
                ApprovalRequest.claim_id == claim.id,
                ApprovalRequest.kind == ApprovalKind.WRITE_OFF,
                ApprovalRequest.state == state,
            )
            .order_by(ApprovalRequest.id)
        )
    )


def _post_approved(session: Session, approval: ApprovalRequest, approver: User) -> int | None:
    """The executor of an approved write-off: post it as the approver (``decide`` runs this
    acting as them), with the requester's reason, bucket, line, payer and note.

    The open balance is checked again now: when it no longer covers the request (a payment
    or another write-off came in since), the answer is a 409 and ``decide`` rolls back with
    it, so the request stays pending for the supervisor to decline (docs/write-offs.md).
    """
    from claims_server.api_common.fields import cents_to_money

    asked = approval.request or {}
    claim = session.get(Claim, approval.claim_id) if approval.claim_id is not None else None
    if claim is None:
        raise NotFound("the claim of this request no longer exists")
    payer = (
        session.scalar(select(Payer).where(Payer.public_id == asked["payer"])) if asked.get("payer") else None
    )
    try:
        done = write_off(
            session,
            claim,
            amount_cents=approval.amount_cents,
            bucket=str(asked["bucket"]),
            reason=str(asked["reason"]),
            note=approval.note,
            line_number=asked.get("line"),  # type: ignore[arg-type]
            payer=payer,
            idempotency_key=f"approval:{approval.public_id}",
        )
    except WriteOffRefused as exc:
        rule = exc.errors[0].get("rule") if exc.errors else None
        if rule not in ("at_most_open_balance", "open_balance"):
            raise
        now = open_balances(session, claim)[WriteOffBucket(str(asked["bucket"]))]
        message = (
            f"the claim's open {asked['bucket']} balance is now ${cents_to_money(max(now, 0))}, less than "
            f"the ${cents_to_money(approval.amount_cents)} requested (a payment or another write-off came "
            "in since the request); decline it, and the biller can ask again for what is left"
        )
        raise Conflict(
            f"decision: {message}",
            errors=[{"field": "decision", "rule": "balance_changed", "message": message}],
            open_balance=cents_to_money(max(now, 0)),
        ) from None
    return done.entry.id


register_executor(ApprovalKind.WRITE_OFF, _post_approved)


# -- reading ----------------------------------------------------------------------------------


def _read(session: Session, entry: JournalEntry | None) -> WriteOff:
    if entry is None or entry.event_type != JournalEventType.WRITE_OFF:
        raise NotFound("no write-off has this id")
    legs = session.execute(
        select(Account.code, Posting.amount_cents).join(Account).where(Posting.journal_entry_id == entry.id)
    ).all()
    amount = sum(cents for code, cents in legs if code == AccountCode.WRITE_OFFS.value)
    credited = {code for code, _ in legs if code != AccountCode.WRITE_OFFS.value}
    bucket = WriteOffBucket.PATIENT if AccountCode.AR_PATIENT.value in credited else WriteOffBucket.INSURANCE
    reversing = session.scalar(
        select(JournalEntry.public_id).where(JournalEntry.reverses_entry_id == entry.id)
    )
    reverses = (
        session.scalar(select(JournalEntry.public_id).where(JournalEntry.id == entry.reverses_entry_id))
        if entry.reverses_entry_id is not None
        else None
    )
    note = session.scalar(
        select(JournalNote).where(JournalNote.journal_entry_id == entry.id).order_by(JournalNote.id)
    )
    return WriteOff(
        entry=entry,
        claim_public_id=_public_id(session, entry.claim_id) if entry.claim_id else "",
        bucket=bucket,
        reason=WriteOffReason(entry.reason_code),
        amount_cents=amount,
        note=note.note if note is not None else None,
        reversed_by=reversing,
        reverses=reverses,
    )


def list_write_offs(session: Session, claim: Claim) -> list[WriteOff]:
    """The claim's write-offs and reversals, oldest first."""
    claim_id = receivable_claim_id(session, claim)
    entries = session.scalars(
        select(JournalEntry)
        .where(JournalEntry.claim_id == claim_id, JournalEntry.event_type == JournalEventType.WRITE_OFF)
        .order_by(JournalEntry.id)
    )
    return [_read(session, entry) for entry in entries]


def get_write_off(session: Session, claim: Claim, public_id: str) -> WriteOff:
    entry = session.scalar(select(JournalEntry).where(JournalEntry.public_id == public_id))
    if entry is None or entry.claim_id != receivable_claim_id(session, claim):
        raise NotFound("no write-off of this claim has this id")
    return _read(session, entry)


# -- reversal ---------------------------------------------------------------------------------


def reverse_write_off(
    session: Session, claim: Claim, public_id: str, *, reason: ReversalReason | str
) -> WriteOff:
    """Undo a write-off: the mirrored postings as a new entry (flushes; the caller commits).

    Refused: an entry that is not a write-off of this claim (404), a reversal itself, one
    already reversed (409), a reason not in :class:`ReversalReason` (422). Exactly once:
    the key is ``write_off_reversal:<entry public id>`` and ``reverses_entry_id`` is unique.
    """
    try:
        why = ReversalReason(reason)
    except ValueError:
        allowed = ", ".join(r.value for r in ReversalReason)
        raise _refuse("reason", "one_of", f"must be one of: {allowed}") from None
    original = get_write_off(session, claim, public_id)
    if original.reverses is not None:
        raise Conflict("a reversal cannot be reversed; post a new write-off instead")
    if original.reversed_by is not None:
        raise Conflict(
            "this write-off is already reversed",
            errors=[{"field": "id", "rule": "not_reversed", "message": "already reversed"}],
        )
    entry = original.entry
    key = f"write_off_reversal:{entry.public_id}"
    post_entries(
        session,
        [
            EntrySpec(
                event_type=JournalEventType.WRITE_OFF,
                idempotency_key=key,
                legs=mirror_legs(session, entry.id),
                effective_date=utcnow().date(),
                claim_id=entry.claim_id,
                reverses_entry_id=entry.id,
                reason_code=original.reason.value,
                memo=f"write-off reversal: {why.value}",
                audit_entity=original.claim_public_id,
                audit_details={
                    "claim": original.claim_public_id,
                    "reverses": entry.public_id,
                    "reversal_reason": why.value,
                    "amount_cents": -original.amount_cents,
                },
            )
        ],
    )
    session.flush()
    reversal = session.scalar(select(JournalEntry).where(JournalEntry.idempotency_key == key))
    return _read(session, reversal)


def history_rows(write_offs: list[WriteOff]) -> list[tuple[datetime | None, str, str]]:
    """(when, what, detail) of each write-off for the claim screen's history."""
    from claims_server.api_common.fields import cents_to_money

    rows = []
    for w in write_offs:
        what = "write-off reversed" if w.reverses else "write-off"
        detail = f"{w.bucket.value} ${cents_to_money(abs(w.amount_cents))}: {REASON_LABELS[w.reason]}"
        if w.note:
            detail = f"{detail} — {w.note}"
        rows.append((w.entry.created_at, what, detail))
    return rows
