"""Credit balances: money we hold that belongs to a patient or a payer, and what a biller does with it.

A credit is computed from the ledger, never stored (docs/credit-balances.md has the account
rules with worked cents). Three sources, each named by a credit id made of public ids only:

- ``patient.<patient id>``: the patient's credit account (``patient_credit``, a liability)
  holds more than zero: a payment above what was owed, kept as a credit (its origin: the
  patient payments that left a credit);
- ``claim.<claim id>``: A/R patient of a claim is below zero (the patient paid, then the
  payer paid more or lowered the patient's share): its origin is the entry that took it
  below zero;
- ``payer.<remittance id>.<CLP position>``: an 835 claim payment that matched no claim is
  unapplied payer money (``unapplied_payments``, remittance dimension) until it is applied
  to a claim (``remittance.unmatched``) or given back.

What a biller does (each one balanced journal entry, exactly once by idempotency key):

- **refund** (``refund`` entry, a :class:`~claims_server.models.Refund` row): a patient's by
  check or card reversal (Dr patient credit or A/R patient of the claim / Cr cash
  clearing); a payer's by check with a refund letter (Dr unapplied payments / Cr cash
  clearing) or as an offset the payer takes from a later 835 (Dr unapplied payments / Cr
  payer offset; the payer's PLB WO or 72 of the same amount then links to it:
  :func:`link_offset_plbs`);
- **transfer** (``balance_transfer`` entry) to another open balance of the same patient:
  Dr patient credit (or A/R patient of the source claim) / Cr A/R patient of that claim;
- **hold**: the credit's work item sleeps until a date, with a note.

A refund above the requester's limit (``REFUND_BILLER_LIMIT_CENTS``; supervisors and admins
have none) posts nothing: the Refund row waits ``pending_approval`` with an approval
request (``ledger.approvals``), and its amount is reserved (not refundable twice) until the
request is decided. The executor registered here posts it as the approver.

Every refusal is a 422 naming the field and the rule, raised before anything is written.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from claims_server.api_common.fields import cents_to_money
from claims_server.errors import Conflict, NotFound, Unprocessable
from claims_server.ledger.services import (
    UNAPPLIED_PAYMENTS,
    EntrySpec,
    Leg,
    existing_entry_ids,
    post_entries,
    receivable_claim_id,
)
from claims_server.models import (
    Account,
    AccountCode,
    AuditAction,
    Claim,
    ClaimPayment,
    ClaimState,
    JournalEntry,
    JournalEventType,
    Patient,
    PatientPayment,
    Payer,
    Posting,
    Remittance,
    User,
    WorkItem,
)
from claims_server.models.claims import ClaimFrequency
from claims_server.models.common import utcnow
from claims_server.models.ledger import Refund, RefundKind, RefundMethod, RefundState
from claims_server.models.payments import PaymentReceipt
from claims_server.models.remittance import AdjudicationState, ProviderAdjustment
from claims_server.models.workqueue import (
    ApprovalKind,
    ApprovalRequest,
    ApprovalState,
    WorkItemStatus,
    WorkQueue,
)
from claims_server.security.audit import audit_event
from claims_server.security.principal import current_principal

#: Roles with no refund limit (the same as for write-offs).
UNLIMITED_ROLES = frozenset({"billing_supervisor", "admin"})
#: PLB reasons a payer uses to take back money we agreed to return (WO overpayment recovery, 72
#: authorized return).
OFFSET_PLB_REASONS = frozenset({"WO", "72"})
MAX_NOTE = 2000
MAX_REFERENCE = 80
#: Refund states whose amount has left the credit (or is reserved for an approval).
_TAKEN = (RefundState.ISSUED, RefundState.AWAITING_OFFSET, RefundState.OFFSET, RefundState.PENDING_APPROVAL)


class CreditKind(StrEnum):
    PATIENT = "patient"  # the patient's credit account
    CLAIM = "claim"  # negative A/R patient on one claim
    PAYER = "payer"  # an unmatched 835 claim payment (unapplied payer money)


METHODS: dict[CreditKind, tuple[RefundMethod, ...]] = {
    CreditKind.PATIENT: (RefundMethod.CHECK, RefundMethod.CARD_REVERSAL),
    CreditKind.CLAIM: (RefundMethod.CHECK, RefundMethod.CARD_REVERSAL),
    CreditKind.PAYER: (RefundMethod.CHECK, RefundMethod.PAYER_OFFSET),
}


class CreditRefused(Unprocessable):
    """A credit action that fails validation; nothing was posted."""


def refuse(field_name: str, rule: str, message: str, **extra: Any) -> CreditRefused:
    return CreditRefused(
        f"{field_name}: {message}", errors=[{"field": field_name, "rule": rule, "message": message}], **extra
    )


@dataclass
class Credit:
    """One credit: its source, the money in it and what is reserved by pending refunds."""

    id: str
    kind: CreditKind
    balance_cents: int  # what the ledger holds for the source
    reserved_cents: int = 0  # pending-approval refunds
    patient_id: int | None = None
    claim_id: int | None = None  # the claim whose A/R patient is negative (kind claim)
    payer_id: int | None = None
    remittance_id: int | None = None
    claim_payment_id: int | None = None
    origin: list[dict[str, Any]] = field(default_factory=list)

    @property
    def available_cents(self) -> int:
        return max(self.balance_cents - self.reserved_cents, 0)

    @property
    def item_key(self) -> str:
        return f"credit_balance:{self.id}"


# -- reading the credits --------------------------------------------------------------------------


def _account_id(session: Session, code: str) -> int | None:
    """The account's id; None on a database whose chart has no such account yet (nothing posted
    there, so no credit: the readers answer empty rather than 404)."""
    found = session.scalar(select(Account.id).where(Account.code == code))
    return None if found is None else int(found)


def _pending_reserved(session: Session, **where: Any) -> int:
    """Σ refunds of a source waiting for a pending approval request."""
    stmt = (
        select(func.coalesce(func.sum(Refund.amount_cents), 0))
        .join(ApprovalRequest, ApprovalRequest.id == Refund.approval_request_id)
        .where(Refund.state == RefundState.PENDING_APPROVAL, ApprovalRequest.state == ApprovalState.PENDING)
    )
    for name, value in where.items():
        column = getattr(Refund, name)
        stmt = stmt.where(column.is_(None) if value is None else column == value)
    return int(session.scalar(stmt) or 0)


def _unmatched_refunded(session: Session, claim_payment_ids: list[int]) -> dict[int, int]:
    """claim payment id -> Σ payer refunds given back (or waiting approval) from it."""
    if not claim_payment_ids:
        return {}
    rows = session.execute(
        select(Refund.claim_payment_id, Refund.state, Refund.amount_cents, ApprovalRequest.state)
        .outerjoin(ApprovalRequest, ApprovalRequest.id == Refund.approval_request_id)
        .where(Refund.claim_payment_id.in_(claim_payment_ids), Refund.kind == RefundKind.PAYER)
    ).all()
    out: dict[int, int] = {}
    for cp_id, state, cents, approval_state in rows:
        if state not in _TAKEN:
            continue
        if state is RefundState.PENDING_APPROVAL and approval_state is not ApprovalState.PENDING:
            continue  # declined or withdrawn: the money is free again
        out[cp_id] = out.get(cp_id, 0) + int(cents)
    return out


def unmatched_left(session: Session, payment: ClaimPayment) -> int:
    """Cents of an unmatched claim payment still in unapplied payments (not applied, not given back)."""
    if payment.adjudication_state is not AdjudicationState.UNMATCHED or payment.paid_cents <= 0:
        return 0
    return max(payment.paid_cents - _unmatched_refunded(session, [payment.id]).get(payment.id, 0), 0)


def _negative_balances(
    session: Session, code: str, dimension: str, only: int | None
) -> list[tuple[int, int]]:
    """(dimension value, balance) of ``code`` postings grouped by ``dimension`` (a patient, a
    claim), the groups below zero only: a credit is a negative balance of that account."""
    account = _account_id(session, code)
    if account is None:
        return []
    column = getattr(Posting, dimension)
    total = func.sum(Posting.amount_cents)
    stmt = (
        select(column, total)
        .where(Posting.account_id == account, column.is_not(None))
        .group_by(column)
        .having(total < 0)
    )
    if only is not None:
        stmt = stmt.where(column == only)
    return [(int(key), int(cents)) for key, cents in session.execute(stmt)]


def _patient_credits(session: Session, patient_id: int | None = None) -> list[Credit]:
    rows = _negative_balances(session, AccountCode.PATIENT_CREDIT.value, "patient_id", patient_id)
    ids = (
        {
            pid: pub
            for pid, pub in session.execute(
                select(Patient.id, Patient.public_id).where(Patient.id.in_([r[0] for r in rows]))
            )
        }
        if rows
        else {}
    )
    return [
        Credit(
            id=f"{CreditKind.PATIENT.value}.{ids[pid]}",
            kind=CreditKind.PATIENT,
            balance_cents=-int(cents),
            reserved_cents=_pending_reserved(session, kind=RefundKind.PATIENT, patient_id=pid, claim_id=None),
            patient_id=pid,
        )
        for pid, cents in rows
    ]


def _claim_credits(session: Session, claim_id: int | None = None) -> list[Credit]:
    rows = _negative_balances(session, AccountCode.AR_PATIENT.value, "claim_id", claim_id)
    claims = (
        {c.id: c for c in session.scalars(select(Claim).where(Claim.id.in_([r[0] for r in rows])))}
        if rows
        else {}
    )
    return [
        Credit(
            id=f"{CreditKind.CLAIM.value}.{claims[cid].public_id}",
            kind=CreditKind.CLAIM,
            balance_cents=-int(cents),
            reserved_cents=_pending_reserved(session, kind=RefundKind.PATIENT, claim_id=cid),
            patient_id=claims[cid].patient_id,
            claim_id=cid,
        )
        for cid, cents in rows
    ]


def _payer_credits(session: Session, claim_payment_id: int | None = None) -> list[Credit]:
    stmt = (
        select(ClaimPayment, Remittance)
        .join(Remittance, Remittance.id == ClaimPayment.remittance_id)
        .where(ClaimPayment.adjudication_state == AdjudicationState.UNMATCHED, ClaimPayment.paid_cents > 0)
        .order_by(ClaimPayment.id)
    )
    if claim_payment_id is not None:
        stmt = stmt.where(ClaimPayment.id == claim_payment_id)
    rows = session.execute(stmt).all()
    taken = _unmatched_refunded(session, [cp.id for cp, _ in rows])
    out = []
    for cp, rem in rows:
        left = cp.paid_cents - taken.get(cp.id, 0)
        if left <= 0:
            continue
        out.append(
            Credit(
                id=f"{CreditKind.PAYER.value}.{rem.public_id}.{cp.position}",
                kind=CreditKind.PAYER,
                balance_cents=left,
                payer_id=rem.payer_id,
                remittance_id=rem.id,
                claim_payment_id=cp.id,
                origin=[
                    {
                        "kind": "unmatched_claim_payment",
                        "remittance": rem.public_id,
                        "trace_number": rem.trace_number,
                        "position": cp.position,
                        "payment_date": rem.payment_date.isoformat() if rem.payment_date else None,
                        "paid": cents_to_money(cp.paid_cents),
                    }
                ],
            )
        )
    return out


def _patient_origin(session: Session, credit: Credit) -> None:
    rows = session.execute(
        select(PatientPayment.public_id, PatientPayment.received_at, PaymentReceipt.credit_cents)
        .join(PaymentReceipt, PaymentReceipt.patient_payment_id == PatientPayment.id)
        .where(PatientPayment.patient_id == credit.patient_id, PaymentReceipt.credit_cents > 0)
        .order_by(PatientPayment.id.desc())
        .limit(10)
    ).all()
    credit.origin = [
        {
            "kind": "patient_payment",
            "patient_payment": pub,
            "received_at": received.isoformat() if received else None,
            "credit": cents_to_money(int(cents)),
        }
        for pub, received, cents in rows
    ]


def _claim_origin(session: Session, credit: Credit) -> None:
    account = _account_id(session, AccountCode.AR_PATIENT.value)
    if account is None:
        return
    rows = session.execute(
        select(
            JournalEntry.public_id, JournalEntry.event_type, JournalEntry.effective_date, Remittance.public_id
        )
        .join(Posting, Posting.journal_entry_id == JournalEntry.id)
        .outerjoin(Remittance, Remittance.id == JournalEntry.remittance_id)
        .where(Posting.account_id == account, Posting.claim_id == credit.claim_id, Posting.amount_cents < 0)
        .order_by(JournalEntry.id.desc())
        .limit(3)
    ).all()
    credit.origin = [
        {
            "kind": "journal_entry",
            "journal_entry": pub,
            "event_type": event.value if hasattr(event, "value") else str(event),
            "effective_date": day.isoformat() if day else None,
            "remittance": rem,
        }
        for pub, event, day, rem in rows
    ]


def list_credits(session: Session, *, with_origin: bool = True) -> list[Credit]:
    """Every credit now: patient credit accounts, claims with negative patient A/R, unmatched payer money."""
    credits = [*_patient_credits(session), *_claim_credits(session), *_payer_credits(session)]
    if with_origin:
        for credit in credits:
            if credit.kind is CreditKind.PATIENT:
                _patient_origin(session, credit)
            elif credit.kind is CreditKind.CLAIM:
                _claim_origin(session, credit)
    return credits


def parse_credit_id(credit_id: str) -> tuple[CreditKind, list[str]]:
    head, _, rest = (credit_id or "").partition(".")
    try:
        kind = CreditKind(head)
    except ValueError:
        raise NotFound("no credit balance has this id") from None
    parts = rest.split(".") if rest else []
    if (kind is CreditKind.PAYER and len(parts) != 2) or (kind is not CreditKind.PAYER and len(parts) != 1):
        raise NotFound("no credit balance has this id")
    return kind, parts


def get_credit(session: Session, credit_id: str, *, required: bool = True) -> Credit | None:
    """The credit named ``credit_id`` as it is now (404 when the source has no credit, if ``required``)."""
    kind, parts = parse_credit_id(credit_id)
    found: list[Credit] = []
    if kind is CreditKind.PATIENT:
        pid = session.scalar(select(Patient.id).where(Patient.public_id == parts[0]))
        found = _patient_credits(session, pid) if pid is not None else []
        for c in found:
            _patient_origin(session, c)
    elif kind is CreditKind.CLAIM:
        cid = session.scalar(select(Claim.id).where(Claim.public_id == parts[0]))
        found = _claim_credits(session, cid) if cid is not None else []
        for c in found:
            _claim_origin(session, c)
    else:
        cp_id = session.scalar(
            select(ClaimPayment.id)
            .join(Remittance, Remittance.id == ClaimPayment.remittance_id)
            .where(Remittance.public_id == parts[0], ClaimPayment.position == _int(parts[1]))
        )
        found = _payer_credits(session, cp_id) if cp_id is not None else []
    if not found:
        if required:
            raise NotFound("no credit balance has this id (the credit may be gone)")
        return None
    return found[0]


def _int(text_value: str) -> int:
    try:
        return int(text_value)
    except ValueError:
        return -1


def item_of(session: Session, credit: Credit) -> WorkItem | None:
    return session.scalar(select(WorkItem).where(WorkItem.dedupe_key == credit.item_key))


# -- the sweep ---------------------------------------------------------------------------------------


def _explanation(credit: Credit) -> str:
    amount = cents_to_money(credit.balance_cents)
    if credit.kind is CreditKind.PATIENT:
        return (
            f"The patient has a credit of {amount} (paid more than was owed). Refund it (check or card "
            "reversal), transfer it to another open balance of the patient, or hold it with a note."
        )
    if credit.kind is CreditKind.CLAIM:
        return (
            f"The patient's balance on this claim is {amount} below zero (paid before the payer's final "
            "adjudication). Refund it, transfer it to another open balance of the patient, or hold it."
        )
    return (
        f"{amount} of payer money matched no claim and sits in unapplied payments. Apply it to the right "
        "claim (unmatched payments), return it to the payer (check with a refund letter, or an offset "
        "the payer takes from a later 835), or hold it."
    )


def ensure_item(session: Session, credit: Credit) -> WorkItem:
    """The credit's work item (opened now if the sweep has not yet)."""
    from claims_server.workqueue.recommend import RecommendedAction
    from claims_server.workqueue.services import open_work_item

    claim = session.get(Claim, credit.claim_id) if credit.claim_id is not None else None
    payment = (
        session.get(ClaimPayment, credit.claim_payment_id) if credit.claim_payment_id is not None else None
    )
    item = open_work_item(
        session,
        queue=WorkQueue.CREDIT_BALANCE,
        claim=claim,
        claim_payment=payment,
        reason_codes=[f"CREDIT-{credit.kind.value.upper()}"],
        recommended_action=RecommendedAction.REVIEW,
        explanation=_explanation(credit),
        dedupe_key=credit.item_key,
    )
    item.patient_id = credit.patient_id
    item.payer_id = credit.payer_id
    item.remittance_id = credit.remittance_id
    return item


def _reopen(session: Session, credit: Credit) -> None:
    from claims_server.models import WorkItemComment

    item = item_of(session, credit)
    if item is None:
        return
    item.status = WorkItemStatus.OPEN
    item.snoozed_until = None
    item.resolved_at = None
    item.resolution = None
    item.comments.append(
        WorkItemComment(
            author_user_id=None, body="The credit is back. " + _explanation(credit), created_at=utcnow()
        )
    )
    audit_event(
        session,
        action=AuditAction.UPDATE,
        event_type="work_item.reopen",
        entity_type="work_item",
        entity_id=item.public_id,
        patient_id=credit.patient_id,
        details={"queue": WorkQueue.CREDIT_BALANCE.value, "credit": credit.id},
    )


def sweep_credit_balances(session: Session) -> tuple[int, int]:
    """Open a ``credit_balance`` item per credit; close those whose credit is gone. Idempotent."""
    from claims_server.workqueue.services import resolve_by_system

    credits = list_credits(session, with_origin=False)
    keys = {c.item_key for c in credits}
    existing = (
        {
            key: status
            for key, status in session.execute(
                select(WorkItem.dedupe_key, WorkItem.status).where(WorkItem.dedupe_key.in_(sorted(keys)))
            )
        }
        if keys
        else {}
    )
    opened = 0
    for credit in credits:
        status = existing.get(credit.item_key)
        if status is WorkItemStatus.RESOLVED:
            # The credit came back (a new overpayment, a declined refund): its one item reopens.
            _reopen(session, credit)
            opened += 1
        elif status is None:
            ensure_item(session, credit)
            opened += 1
    resolved = 0
    for item in session.scalars(
        select(WorkItem).where(
            WorkItem.queue == WorkQueue.CREDIT_BALANCE, WorkItem.status != WorkItemStatus.RESOLVED
        )
    ).all():
        if item.dedupe_key not in keys and resolve_by_system(session, item, "the credit balance is gone"):
            resolved += 1
    session.flush()
    return opened, resolved


def _close_if_gone(session: Session, credit_id: str, why: str) -> None:
    from claims_server.workqueue.services import resolve_by_system

    left = get_credit(session, credit_id, required=False)
    if left is None or (left.available_cents == 0 and left.reserved_cents == 0):
        item = session.scalar(select(WorkItem).where(WorkItem.dedupe_key == f"credit_balance:{credit_id}"))
        if item is not None:
            resolve_by_system(session, item, why)


# -- refunds ---------------------------------------------------------------------------------------


def refund_limit_for(role: str | None, biller_limit_cents: int) -> int | None:
    """The largest refund ``role`` posts without approval (None: no limit)."""
    return None if role in UNLIMITED_ROLES else biller_limit_cents


def _key(prefix: str, idempotency_key: str) -> str:
    return f"{prefix}:" + hashlib.sha256(idempotency_key.encode()).hexdigest()[:48]


def _check_amount(amount_cents: Any) -> int:
    if isinstance(amount_cents, bool) or not isinstance(amount_cents, int):
        raise refuse("amount", "integer_cents", "must be an amount in cents, not a float or text")
    if amount_cents <= 0:
        raise refuse("amount", "positive", "must be greater than zero")
    return amount_cents


def _lock(session: Session, patient_id: int | None) -> None:
    """Serialize credit actions of one patient (PostgreSQL row lock; SQLite's write lock)."""
    if session.get_bind().dialect.name == "postgresql":
        if patient_id is not None:
            session.execute(select(Patient.id).where(Patient.id == patient_id).with_for_update())
        else:
            session.execute(text("SELECT pg_advisory_xact_lock(7218001)"))
    else:
        session.execute(text("UPDATE claims SET version = version WHERE 1 = 0"))


def _refund_legs(session: Session, refund: Refund, credit: Credit) -> list[Leg]:
    amount = refund.amount_cents
    if credit.kind is CreditKind.PATIENT:
        return [
            Leg(AccountCode.PATIENT_CREDIT, amount, patient_id=credit.patient_id),
            Leg(AccountCode.CASH_CLEARING, -amount, patient_id=credit.patient_id),
        ]
    if credit.kind is CreditKind.CLAIM:
        legs = _take_negative(session, credit, amount)
        legs.append(Leg(AccountCode.CASH_CLEARING, -amount, patient_id=credit.patient_id))
        return legs
    unapplied = Leg(UNAPPLIED_PAYMENTS, amount, payer_id=credit.payer_id, remittance_id=credit.remittance_id)
    if refund.method is RefundMethod.PAYER_OFFSET:
        return [unapplied, Leg(AccountCode.PAYER_OFFSET, -amount, payer_id=credit.payer_id)]
    return [unapplied, Leg(AccountCode.CASH_CLEARING, -amount, payer_id=credit.payer_id)]


def _take_negative(session: Session, credit: Credit, amount: int) -> list[Leg]:
    """Debits of A/R patient that bring the claim's negative lines back toward zero (lines in order)."""
    from claims_server.ledger.write_offs import WriteOffBucket, open_groups

    assert credit.claim_id is not None
    legs: list[Leg] = []
    left = amount
    for group in open_groups(session, credit.claim_id, WriteOffBucket.PATIENT):
        if left <= 0:
            break
        if group.cents >= 0:
            continue
        take = min(left, -group.cents)
        legs.append(
            Leg(
                AccountCode.AR_PATIENT,
                take,
                credit.claim_id,
                group.service_line_id,
                group.payer_id,
                group.patient_id,
            )
        )
        left -= take
    if left > 0:  # the lines net differently than the claim: the rest at claim level
        legs.append(Leg(AccountCode.AR_PATIENT, left, credit.claim_id, None, None, credit.patient_id))
    return legs


def _post_refund(session: Session, refund: Refund, credit: Credit) -> int:
    """Post an approved refund (flushes; its journal key is the refund's own public id)."""
    return _post_refund_keyed(session, refund, credit, f"refund:{refund.public_id}")


@dataclass
class RefundOutcome:
    refund: Refund
    replayed: bool = False
    approval: ApprovalRequest | None = None


def _replay(session: Session, key_hash: str) -> Refund | None:
    found = session.scalar(select(JournalEntry.id).where(JournalEntry.idempotency_key == key_hash))
    if found is not None:
        return session.scalar(select(Refund).where(Refund.journal_entry_id == found))
    for approval in session.scalars(
        select(ApprovalRequest)
        .where(ApprovalRequest.kind == ApprovalKind.REFUND)
        .order_by(ApprovalRequest.id.desc())
        .limit(500)
    ):
        if (approval.request or {}).get("key") == key_hash:
            return session.scalar(select(Refund).where(Refund.approval_request_id == approval.id))
    return None


def refund_credit(
    session: Session,
    credit_id: str,
    *,
    amount_cents: int,
    method: str,
    idempotency_key: str,
    reference: str | None = None,
    note: str | None = None,
    requested_by: User | None = None,
    limit_cents: int | None = None,
) -> RefundOutcome:
    """Refund ``amount_cents`` of the credit (flushes; the caller commits). See the module docstring."""
    amount = _check_amount(amount_cents)
    kind, _ = parse_credit_id(credit_id)
    try:
        chosen = RefundMethod(method)
    except ValueError:
        chosen = None
    if chosen not in METHODS[kind]:
        allowed = ", ".join(m.value for m in METHODS[kind])
        raise refuse("method", "one_of", f"a {kind.value} refund is one of: {allowed}")
    ref = (reference or "").strip() or None
    if ref is not None and len(ref) > MAX_REFERENCE:
        raise refuse("reference", "length", f"at most {MAX_REFERENCE} characters")
    note_text = (note or "").strip() or None
    if note_text is not None and len(note_text) > MAX_NOTE:
        raise refuse("note", "length", f"at most {MAX_NOTE} characters")
    if not idempotency_key or len(idempotency_key) > 255:
        raise refuse("Idempotency-Key", "length", "must be 1 to 255 characters")
    key_hash = _key("refund_request", idempotency_key)
    credit = get_credit(session, credit_id, required=False)
    _lock(session, credit.patient_id if credit is not None else None)
    done = _replay(session, f"refund:{key_hash}") or _replay(session, key_hash)
    if done is not None:
        if done.amount_cents != amount or done.method is not chosen:
            raise Conflict(
                "this idempotency key was already used for a different refund; use a new key",
                errors=[{"field": "Idempotency-Key", "rule": "idempotency_key_reuse"}],
            )
        return RefundOutcome(done, replayed=True)
    credit = get_credit(session, credit_id, required=False)
    if credit is None:
        raise refuse("amount", "at_most_credit", "there is no credit left to refund")
    if amount > credit.available_cents:
        raise refuse(
            "amount",
            "at_most_credit",
            f"is more than the credit of {cents_to_money(credit.available_cents)}",
            credit=cents_to_money(credit.available_cents),
        )
    principal = current_principal()
    refund = Refund(
        kind=RefundKind.PAYER if kind is CreditKind.PAYER else RefundKind.PATIENT,
        method=chosen,
        state=RefundState.PENDING_APPROVAL,
        amount_cents=amount,
        patient_id=credit.patient_id,
        payer_id=credit.payer_id,
        claim_id=credit.claim_id,
        claim_payment_id=credit.claim_payment_id,
        remittance_id=credit.remittance_id,
        reference=ref,
        created_by_user_id=principal.user_id,
    )
    session.add(refund)
    session.flush()
    approval = None
    if limit_cents is not None and amount > limit_cents:
        from claims_server.ledger.approvals import request_approval

        approval = request_approval(
            session,
            ApprovalKind.REFUND,
            amount_cents=amount,
            request={
                "refund": refund.public_id,
                "credit": credit.id,
                "method": chosen.value,
                "key": key_hash,
            },
            requested_by=requested_by,
            claim=session.get(Claim, credit.claim_id) if credit.claim_id is not None else None,
            patient=session.get(Patient, credit.patient_id) if credit.patient_id is not None else None,
            payer=session.get(Payer, credit.payer_id) if credit.payer_id is not None else None,
            note=note_text,
        )
        refund.approval_request_id = approval.id
    else:
        # The journal key is the caller's key (a retry finds the entry); the refund row names it.
        _post_refund_keyed(session, refund, credit, f"refund:{key_hash}")
        _close_if_gone(session, credit.id, f"refunded ({refund.public_id})")
    audit_event(
        session,
        action=AuditAction.CREATE,
        event_type="refund.request" if approval is not None else "refund.issue",
        entity_type="refund",
        entity_id=refund.public_id,
        patient_id=credit.patient_id,
        details={
            "credit": credit.id,
            "kind": refund.kind.value,
            "method": chosen.value,
            "amount_cents": amount,
            "approval_request": approval.public_id if approval is not None else None,
            "note_characters": len(note_text or ""),
        },
    )
    session.flush()
    return RefundOutcome(refund, approval=approval)


def _post_refund_keyed(session: Session, refund: Refund, credit: Credit, key: str) -> int:
    """``_post_refund`` under the journal key ``key`` (the idempotency key's hash)."""
    post_entries(
        session,
        [
            EntrySpec(
                event_type=JournalEventType.REFUND,
                idempotency_key=key,
                legs=_refund_legs(session, refund, credit),
                effective_date=utcnow().date(),
                claim_id=credit.claim_id,
                remittance_id=credit.remittance_id,
                claim_payment_id=credit.claim_payment_id,
                reason_code=f"refund:{refund.method.value}",
                memo=f"refund ({refund.kind.value}, {refund.method.value})",
                audit_entity=refund.public_id,
                audit_details={
                    "refund": refund.public_id,
                    "credit": credit.id,
                    "method": refund.method.value,
                    "amount_cents": refund.amount_cents,
                },
            )
        ],
    )
    entry_id = existing_entry_ids(session, [key])[key]
    refund.journal_entry_id = entry_id
    refund.issued_at = utcnow()
    refund.state = (
        RefundState.AWAITING_OFFSET if refund.method is RefundMethod.PAYER_OFFSET else RefundState.ISSUED
    )
    session.flush()
    return entry_id


def _execute_refund(session: Session, approval: ApprovalRequest, approver: User) -> int | None:
    """The approval executor: post the waiting refund as the approver (re-checked against the credit now)."""
    refund = session.scalar(select(Refund).where(Refund.approval_request_id == approval.id))
    if refund is None or refund.state is not RefundState.PENDING_APPROVAL:
        raise refuse("refund", "pending", "the refund of this request is not waiting for approval")
    credit_id = str((approval.request or {}).get("credit") or "")
    credit = get_credit(session, credit_id, required=False)
    # The credit as it is now; this refund's own reservation no longer counts (its request is decided).
    available = credit.available_cents if credit is not None else 0
    if refund.amount_cents > available:
        raise refuse(
            "amount",
            "at_most_credit",
            f"the credit is now {cents_to_money(available)}, less than the refund; decline the request",
        )
    assert credit is not None
    entry_id = _post_refund(session, refund, credit)
    _close_if_gone(session, credit.id, f"refunded ({refund.public_id})")
    return entry_id


def _register() -> None:
    from claims_server.ledger.approvals import register_executor

    register_executor(ApprovalKind.REFUND, _execute_refund)


_register()


def effective_state(session: Session, refund: Refund) -> RefundState:
    """A pending refund whose request was declined or withdrawn reads ``declined``."""
    if refund.state is RefundState.PENDING_APPROVAL and refund.approval_request_id is not None:
        approval = session.get(ApprovalRequest, refund.approval_request_id)
        if approval is not None and approval.state in (ApprovalState.DECLINED, ApprovalState.WITHDRAWN):
            return RefundState.DECLINED
    return refund.state


# -- transfers -------------------------------------------------------------------------------------


def patient_open_groups(session: Session, claim_id: int) -> list[Any]:
    from claims_server.ledger.write_offs import WriteOffBucket, open_groups

    return [g for g in open_groups(session, claim_id, WriteOffBucket.PATIENT) if g.cents > 0]


@dataclass
class TransferOutcome:
    entry: JournalEntry
    claim: Claim
    amount_cents: int
    replayed: bool = False


def transfer_credit(
    session: Session, credit_id: str, *, amount_cents: int, target: Claim | None, idempotency_key: str
) -> TransferOutcome:
    """Move ``amount_cents`` of a patient's credit to the open patient balance of ``target``."""
    amount = _check_amount(amount_cents)
    kind, _ = parse_credit_id(credit_id)
    if kind is CreditKind.PAYER:
        raise refuse(
            "credit", "patient_credit", "payer money is applied to a claim from the unmatched payments page"
        )
    if target is None:
        raise refuse("claim", "required", "name the claim whose open balance the credit pays")
    if not idempotency_key or len(idempotency_key) > 255:
        raise refuse("Idempotency-Key", "length", "must be 1 to 255 characters")
    key = _key("balance_transfer", idempotency_key)
    credit = get_credit(session, credit_id, required=False)
    _lock(session, credit.patient_id if credit is not None else target.patient_id)
    existing = existing_entry_ids(session, [key]).get(key)
    if existing is not None:
        entry = session.get(JournalEntry, existing)
        assert entry is not None
        moved = int(
            session.scalar(
                select(func.coalesce(func.sum(Posting.amount_cents), 0)).where(
                    Posting.journal_entry_id == entry.id, Posting.amount_cents > 0
                )
            )
            or 0
        )
        if moved != amount or entry.claim_id != receivable_claim_id(session, target):
            raise Conflict(
                "this idempotency key was already used for a different transfer; use a new key",
                errors=[{"field": "Idempotency-Key", "rule": "idempotency_key_reuse"}],
            )
        return TransferOutcome(entry, target, amount, replayed=True)
    if credit is None:
        raise refuse("amount", "at_most_credit", "there is no credit left to transfer")
    if target.patient_id != credit.patient_id:
        raise refuse(
            "claim", "same_patient", "is a claim of another patient; a credit moves only within a patient"
        )
    if target.state is ClaimState.VOIDED or target.frequency_code is ClaimFrequency.VOID:
        raise refuse("claim", "not_void", "is a void claim")
    target_id = receivable_claim_id(session, target)
    if credit.kind is CreditKind.CLAIM and credit.claim_id == target_id:
        raise refuse("claim", "other_claim", "is the claim the credit is on")
    if amount > credit.available_cents:
        raise refuse(
            "amount",
            "at_most_credit",
            f"is more than the credit of {cents_to_money(credit.available_cents)}",
            credit=cents_to_money(credit.available_cents),
        )
    groups = patient_open_groups(session, target_id)
    open_cents = sum(g.cents for g in groups)
    if amount > open_cents:
        raise refuse(
            "amount",
            "at_most_open_balance",
            f"is more than the claim's open patient balance of {cents_to_money(open_cents)}",
            open_balance=cents_to_money(open_cents),
        )
    if credit.kind is CreditKind.PATIENT:
        legs = [Leg(AccountCode.PATIENT_CREDIT, amount, patient_id=credit.patient_id)]
    else:
        legs = _take_negative(session, credit, amount)
    left = amount
    for g in groups:
        if left <= 0:
            break
        take = min(left, g.cents)
        legs.append(
            Leg(AccountCode.AR_PATIENT, -take, target_id, g.service_line_id, g.payer_id, g.patient_id)
        )
        left -= take
    target_public = session.scalar(select(Claim.public_id).where(Claim.id == target_id))
    post_entries(
        session,
        [
            EntrySpec(
                event_type=JournalEventType.BALANCE_TRANSFER,
                idempotency_key=key,
                legs=legs,
                effective_date=utcnow().date(),
                claim_id=target_id,
                reason_code="credit_transfer",
                memo="patient credit transferred to an open balance",
                audit_entity=target_public,
                audit_details={"credit": credit.id, "claim": target_public, "amount_cents": amount},
            )
        ],
    )
    entry = session.scalar(select(JournalEntry).where(JournalEntry.idempotency_key == key))
    assert entry is not None
    _close_if_gone(session, credit.id, f"transferred to claim {target_public}")
    session.flush()
    return TransferOutcome(entry, target, amount)


# -- hold ------------------------------------------------------------------------------------------


def hold_credit(
    session: Session, credit_id: str, *, until: date | None, note: str | None, author: User | None
) -> WorkItem:
    """Snooze the credit's work item until ``until`` with a note saying why (nothing is posted)."""
    from claims_server.workqueue.services import MAX_COMMENT, add_comment, snooze

    text_note = (note or "").strip()
    if not text_note:
        raise refuse("note", "required", "say why the credit is held")
    if len(text_note) > MAX_COMMENT:
        raise refuse("note", "length", f"at most {MAX_COMMENT} characters")
    if until is None:
        raise refuse("until", "required", "choose the date the credit comes back")
    if until <= utcnow().date():
        raise refuse("until", "future", "must be after today")
    credit = get_credit(session, credit_id)
    assert credit is not None
    item = ensure_item(session, credit)
    session.flush()
    snooze(session, item, until)
    add_comment(session, item, f"Held until {until.isoformat()}: {text_note}", author=author)
    session.flush()
    return item


# -- PLB offsets -----------------------------------------------------------------------------------


def link_offset_plbs(session: Session, remittance: Remittance, provider_adjustment_ids: list[int]) -> int:
    """Link each positive PLB WO/72 of ``remittance`` to an awaiting payer-offset refund of the same
    payer and amount (oldest first): the refund becomes ``offset`` and the PLB's reconciliation
    item closes, saying which refund it took. Returns how many were linked."""
    if remittance.payer_id is None or not provider_adjustment_ids:
        return 0
    from claims_server.workqueue.services import resolve_by_system

    linked = 0
    adjustments = session.scalars(
        select(ProviderAdjustment)
        .where(ProviderAdjustment.id.in_(provider_adjustment_ids))
        .order_by(ProviderAdjustment.id)
    ).all()
    for adj in adjustments:
        if (adj.reason_code or "").strip().upper() not in OFFSET_PLB_REASONS or adj.amount_cents <= 0:
            continue
        refund = session.scalar(
            select(Refund)
            .where(
                Refund.kind == RefundKind.PAYER,
                Refund.method == RefundMethod.PAYER_OFFSET,
                Refund.state == RefundState.AWAITING_OFFSET,
                Refund.payer_id == remittance.payer_id,
                Refund.amount_cents == adj.amount_cents,
                Refund.provider_adjustment_id.is_(None),
            )
            .order_by(Refund.id)
            .limit(1)
        )
        if refund is None:
            continue
        refund.provider_adjustment_id = adj.id
        refund.state = RefundState.OFFSET
        item = session.scalar(select(WorkItem).where(WorkItem.dedupe_key == f"plb:{adj.id}"))
        if item is not None:
            resolve_by_system(session, item, f"the payer took back refund {refund.public_id} (payer offset)")
        audit_event(
            session,
            action=AuditAction.UPDATE,
            event_type="refund.offset",
            entity_type="refund",
            entity_id=refund.public_id,
            details={
                "remittance": remittance.public_id,
                "plb_reason": adj.reason_code,
                "amount_cents": adj.amount_cents,
            },
        )
        linked += 1
    session.flush()
    return linked


# -- reading refunds -------------------------------------------------------------------------------


def get_refund(session: Session, public_id: str) -> Refund:
    found = session.scalar(select(Refund).where(Refund.public_id == public_id))
    if found is None:
        raise NotFound("no refund has this id")
    return found


def list_refunds(session: Session, *, limit: int = 100) -> list[Refund]:
    return list(session.scalars(select(Refund).order_by(Refund.id.desc()).limit(limit)))


def refund_letter(session: Session, refund: Refund) -> str | None:
    """The payer refund letter (a check returning payer money): payer, trace, claim numbers and amount.

    Names no patient (CLP01 is our claim number); the biller adds what the payer's form asks for.
    """
    if refund.kind is not RefundKind.PAYER or refund.method is not RefundMethod.CHECK:
        return None
    payer = session.get(Payer, refund.payer_id) if refund.payer_id is not None else None
    rem = session.get(Remittance, refund.remittance_id) if refund.remittance_id is not None else None
    cp = session.get(ClaimPayment, refund.claim_payment_id) if refund.claim_payment_id is not None else None
    day = (refund.issued_at or utcnow()).date().isoformat()
    lines = [
        f"Date: {day}",
        f"To: {(payer.name if payer else None) or (rem.payer_name if rem else None) or 'the payer'} - refunds department",
        "Re: return of a payment we cannot apply",
        "",
        f"Payment trace number (TRN02): {rem.trace_number if rem else 'n/a'}"
        + (f", dated {rem.payment_date.isoformat()}" if rem and rem.payment_date else ""),
    ]
    if cp is not None:
        lines.append(
            f"Claim as you reported it: our claim number (CLP01) {cp.patient_control_number}, "
            f"your claim number (CLP07) {cp.payer_claim_control_number or 'none'}, "
            f"billed ${cents_to_money(cp.charge_cents)}, paid ${cents_to_money(cp.paid_cents)}."
        )
    lines += [
        "",
        f"We are returning ${cents_to_money(refund.amount_cents)}: the payment matches no claim we submitted "
        "to you, so we cannot apply it. "
        + (
            f"Our check number {refund.reference} is enclosed."
            if refund.reference
            else "Our check is enclosed."
        ),
        "Please do not recoup this amount from a later payment.",
    ]
    return "\n".join(lines)


def refund_json(session: Session, refund: Refund) -> dict[str, Any]:
    def pub(model: Any, row_id: int | None) -> str | None:
        if row_id is None:
            return None
        return session.scalar(select(model.public_id).where(model.id == row_id))

    rem = session.get(Remittance, refund.remittance_id) if refund.remittance_id is not None else None
    cp = session.get(ClaimPayment, refund.claim_payment_id) if refund.claim_payment_id is not None else None
    entry = pub(JournalEntry, refund.journal_entry_id)
    return {
        "id": refund.public_id,
        "kind": refund.kind.value,
        "method": refund.method.value,
        "state": effective_state(session, refund).value,
        "amount": cents_to_money(refund.amount_cents),
        "patient": pub(Patient, refund.patient_id),
        "claim": pub(Claim, refund.claim_id),
        "payer": pub(Payer, refund.payer_id),
        "remittance": rem.public_id if rem else None,
        "clp_position": cp.position if cp else None,
        "reference": refund.reference,
        "approval_request": pub(ApprovalRequest, refund.approval_request_id),
        "journal_entry": entry,
        "offset_by_plb": refund.provider_adjustment_id is not None,
        "issued_at": refund.issued_at.isoformat() if refund.issued_at else None,
        "created_at": refund.created_at.isoformat() if refund.created_at else None,
        "letter": refund_letter(session, refund),
    }


def credit_json(session: Session, credit: Credit) -> dict[str, Any]:
    def pub(model: Any, row_id: int | None) -> str | None:
        if row_id is None:
            return None
        return session.scalar(select(model.public_id).where(model.id == row_id))

    item = item_of(session, credit)
    payer = session.get(Payer, credit.payer_id) if credit.payer_id is not None else None
    return {
        "id": credit.id,
        "kind": credit.kind.value,
        "amount": cents_to_money(credit.available_cents),
        "balance": cents_to_money(credit.balance_cents),
        "reserved": cents_to_money(credit.reserved_cents),
        "patient": pub(Patient, credit.patient_id),
        "claim": pub(Claim, credit.claim_id),
        "payer": payer.public_id if payer else None,
        "payer_name": payer.name if payer else None,
        "remittance": pub(Remittance, credit.remittance_id),
        "origin": credit.origin,
        "refund_methods": [m.value for m in METHODS[credit.kind]],
        "work_item": item.public_id if item is not None else None,
        "work_item_status": item.status.value if item is not None else None,
        "snoozed_until": item.snoozed_until.date().isoformat()
        if item is not None and item.snoozed_until
        else None,
    }
