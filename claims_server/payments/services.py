"""Posting patient payments to the ledger: validated, allocated line by line, exactly once.

A payment is one ``patient_payment`` journal entry: Dr cash clearing, Cr A/R patient on
each open line it pays (so statements and plans see line balances go down), and — only
when the caller says so explicitly — Cr patient credit for what exceeds the open
balance. Money that would silently become a credit is refused instead: an overpayment
is usually a typo (``500.00`` for ``50.00``), and a credit is a liability the practice
must refund.

Exactly once: every payment carries an idempotency key (the API's ``Idempotency-Key``
scoped to the caller). The receipt row holding it is unique; on PostgreSQL a
transaction-scoped advisory lock on the key makes a concurrent second request wait for
the first and then answer with the first payment instead of posting again.

Never more than owed: two payments for one patient under different keys must not both
pass the overpayment check, so the patient's row is locked (``SELECT ... FOR UPDATE``)
before the balance is read; on PostgreSQL READ COMMITTED the second payment then reads the
balance the first one left. SQLite has one writer at a time: the key lock's write takes
the database lock before the balance is read.

Online (link) payments are charged by the card processor (``payments.processors``) after
every check and before anything is posted; a decline posts nothing, and a link payment is
never recorded without the processor's reference.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from claims_server.errors import ApiError, Conflict, NotFound, Unprocessable
from claims_server.ledger import Leg, balance, post_entry
from claims_server.models import (
    Account,
    AccountCode,
    AuditAction,
    JournalEntry,
    JournalEventType,
    Patient,
    PatientPayment,
    PaymentMethod,
    Posting,
    Statement,
    StatementState,
    utcnow,
)
from claims_server.models.payments import PaymentPlan, PaymentPlanState, PaymentReceipt, PaymentSource
from claims_server.payments.processors import PaymentProcessor
from claims_server.security.audit import audit_event
from claims_server.security.principal import current_principal

#: Largest single payment accepted (a guard against a mistyped amount: $100,000.00).
MAX_PAYMENT_CENTS = 10_000_000
#: Methods each source may use: a link payment is taken by the card/ACH processor behind
#: the portal, a mailed stub comes with a check.
SOURCE_METHODS: dict[PaymentSource, frozenset[PaymentMethod]] = {
    PaymentSource.LINK: frozenset({PaymentMethod.PORTAL, PaymentMethod.CARD, PaymentMethod.ACH}),
    PaymentSource.FRONT_DESK: frozenset(
        {PaymentMethod.CASH, PaymentMethod.CHECK, PaymentMethod.CARD, PaymentMethod.OTHER}
    ),
    PaymentSource.MAIL: frozenset({PaymentMethod.CHECK}),
}


class PaymentRefused(Unprocessable):
    """A payment that fails validation; nothing was posted."""


class PaymentDeclined(ApiError):
    """The card processor declined the charge; nothing was posted (402, as card processors answer)."""

    status, slug, title = 402, "payment-declined", "Payment declined"


@dataclass(frozen=True, slots=True)
class OnlineCharge:
    """What an online payment is charged to: the processor and the payment token its hosted fields gave."""

    processor: PaymentProcessor
    payment_token: str
    description: str = "Patient balance payment"


@dataclass(frozen=True, slots=True)
class OpenLine:
    """A service line's open patient balance (A/R patient), oldest first when sorted."""

    claim_id: int | None
    service_line_id: int | None
    balance_cents: int
    first_billed: date


@dataclass(frozen=True, slots=True)
class Allocation:
    claim_id: int | None
    service_line_id: int | None
    amount_cents: int


@dataclass(frozen=True)
class PaymentOutcome:
    """The payment, its receipt, where the money went, and whether this was a replay."""

    payment: PatientPayment
    receipt: PaymentReceipt
    allocations: tuple[Allocation, ...]
    replayed: bool
    open_balance_after_cents: int

    def to_json_dict(self) -> dict[str, Any]:
        from claims_server.api_common.fields import cents_to_money

        return {
            "id": self.payment.public_id,
            "amount": cents_to_money(self.payment.amount_cents),
            "method": self.payment.method.value,
            "source": self.receipt.source.value,
            "applied": cents_to_money(self.receipt.applied_cents),
            "credit": cents_to_money(self.receipt.credit_cents),
            "received_at": self.payment.received_at.isoformat(),
            "reference": self.payment.reference,
            "open_balance_after": cents_to_money(self.open_balance_after_cents),
            "replayed": self.replayed,
        }


def _refuse(field: str, rule: str, message: str, **extra: Any) -> PaymentRefused:
    return PaymentRefused(
        f"{field}: {message}", errors=[{"field": field, "rule": rule, "message": message}], **extra
    )


def open_lines(session: Session, patient_id: int) -> list[OpenLine]:
    """The patient's lines with a positive A/R patient balance, oldest first (first billed date)."""
    rows = session.execute(
        select(
            Posting.claim_id,
            Posting.service_line_id,
            func.sum(Posting.amount_cents),
            func.min(JournalEntry.effective_date),
        )
        .join(Account, Account.id == Posting.account_id)
        .join(JournalEntry, JournalEntry.id == Posting.journal_entry_id)
        .where(Account.code == AccountCode.AR_PATIENT.value, Posting.patient_id == patient_id)
        .group_by(Posting.claim_id, Posting.service_line_id)
    ).all()
    lines = [OpenLine(c, s, int(total), first) for c, s, total, first in rows if total and int(total) > 0]
    lines.sort(key=lambda x: (x.first_billed, x.claim_id or 0, x.service_line_id or 0))
    return lines


def patient_balance(session: Session, patient_id: int) -> int:
    """What the patient owes now (A/R patient minus any credit held for them), in cents."""
    owed = balance(session, [AccountCode.AR_PATIENT], patient_id=patient_id)
    credit = balance(session, [AccountCode.PATIENT_CREDIT], patient_id=patient_id)  # credits are negative
    return owed + credit


def allocate(
    lines: list[OpenLine], amount_cents: int, first_claims: set[int] | None = None
) -> list[Allocation]:
    """Spread ``amount_cents`` over ``lines``: the claims in ``first_claims`` first, then oldest first."""
    preferred = first_claims or set()
    ordered = [x for x in lines if x.claim_id in preferred] + [
        x for x in lines if x.claim_id not in preferred
    ]
    out: list[Allocation] = []
    left = amount_cents
    for line in ordered:
        if left <= 0:
            break
        take = min(left, line.balance_cents)
        out.append(Allocation(line.claim_id, line.service_line_id, take))
        left -= take
    return out


def _lock_key(session: Session, key: str) -> None:
    """Serialize requests with the same idempotency key until this transaction ends.

    PostgreSQL: an advisory lock on the key. SQLite: its database-wide write lock (a write
    that matches nothing takes it), so the receipt lookup that follows sees a committed
    first request instead of racing it.
    """
    if session.get_bind().dialect.name == "postgresql":
        lock = int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big", signed=True)
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": lock})
    else:
        session.execute(text("DELETE FROM payment_receipts WHERE 1 = 0"))


def _lock_patient(session: Session, patient_id: int) -> bool:
    """Hold the patient's row until this transaction ends (PostgreSQL ``FOR UPDATE``; SQLite
    ignores it and is already serialized by ``_lock_key``). False when there is no such patient."""
    locked = session.execute(select(Patient.id).where(Patient.id == patient_id).with_for_update())
    return locked.first() is not None


def _replay(session: Session, receipt: PaymentReceipt, patient_id: int, amount_cents: int) -> PaymentOutcome:
    payment = session.get(PatientPayment, receipt.patient_payment_id)
    assert payment is not None
    if payment.patient_id != patient_id or payment.amount_cents != amount_cents:
        raise Conflict(
            "this idempotency key was already used for a different payment; use a new key",
            errors=[{"field": "Idempotency-Key", "rule": "idempotency_key_reuse"}],
        )
    return PaymentOutcome(payment, receipt, (), True, patient_balance(session, patient_id))


def record_patient_payment(
    session: Session,
    *,
    patient_id: int,
    amount_cents: int,
    source: PaymentSource,
    method: PaymentMethod,
    idempotency_key: str,
    received_on: date | None = None,
    statement_id: int | None = None,
    payment_plan_id: int | None = None,
    allow_credit: bool = False,
    reference: str | None = None,
    charge: OnlineCharge | None = None,
) -> PaymentOutcome:
    """Validate and post one patient payment (flushes; the caller commits).

    Refused with :class:`PaymentRefused` (422, nothing written): a zero, negative or
    non-integer amount, an amount above ``MAX_PAYMENT_CENTS``, a method the source does
    not take, a mailed check without its number, a link payment with neither a ``charge``
    nor the processor's ``reference``, a statement or plan of another patient, and an
    amount above what the patient owes unless ``allow_credit``. With ``charge``, the
    processor is charged (with ``idempotency_key``) after every check and the approved
    charge's reference is recorded; a decline raises :class:`PaymentDeclined` (402, nothing
    written). The same ``idempotency_key`` again answers the first payment (``replayed``,
    charged once); with another patient or amount it is a :class:`Conflict`.
    """
    if isinstance(amount_cents, bool) or not isinstance(amount_cents, int):
        raise _refuse("amount", "integer_cents", "must be an amount in cents, not a float or text")
    if amount_cents <= 0:
        raise _refuse("amount", "positive", "must be greater than zero")
    if amount_cents > MAX_PAYMENT_CENTS:
        raise _refuse("amount", "maximum", "is above the largest single payment accepted (100000.00)")
    if not idempotency_key or len(idempotency_key) > 255:
        raise _refuse("Idempotency-Key", "length", "must be 1 to 255 characters")
    source, method = PaymentSource(source), PaymentMethod(method)
    if method not in SOURCE_METHODS[source]:
        allowed = ", ".join(sorted(m.value for m in SOURCE_METHODS[source]))
        raise _refuse("method", "method_for_source", f"a {source.value} payment is one of: {allowed}")
    if source is PaymentSource.MAIL and not (reference or "").strip():
        raise _refuse("reference", "check_number", "a mailed check needs its check number")
    if source is PaymentSource.LINK and charge is None and not (reference or "").strip():
        raise _refuse(
            "reference", "processor_reference", "an online payment needs the processor's approved charge"
        )
    if received_on is not None and received_on > utcnow().date():
        raise _refuse("received_on", "not_future", "must not be in the future")

    _lock_key(session, idempotency_key)
    existing = session.scalar(select(PaymentReceipt).where(PaymentReceipt.idempotency_key == idempotency_key))
    if existing is not None:
        return _replay(session, existing, patient_id, amount_cents)

    if not _lock_patient(session, patient_id):
        raise NotFound("no patient with that id")
    plan_claims: set[int] = set()
    if statement_id is not None:
        statement = session.get(Statement, statement_id)
        if statement is None or statement.patient_id != patient_id:
            raise _refuse("statement_id", "same_patient", "is not a statement of this patient")
    if payment_plan_id is not None:
        plan = session.get(PaymentPlan, payment_plan_id)
        if plan is None or plan.patient_id != patient_id:
            raise _refuse("payment_plan_id", "same_patient", "is not a payment plan of this patient")
        if plan.state is not PaymentPlanState.ACTIVE:
            raise _refuse("payment_plan_id", "active", "the payment plan is not active")
        plan_claims = {item.claim_id for item in plan.items}

    lines = open_lines(session, patient_id)
    open_cents = sum(x.balance_cents for x in lines)
    excess = amount_cents - open_cents
    if excess > 0 and not allow_credit:
        raise _refuse(
            "amount",
            "overpayment",
            "is more than the open patient balance; send allow_credit=true to keep the rest as a credit",
            open_balance_cents=open_cents,
        )
    allocations = allocate(lines, amount_cents, plan_claims)
    credit = max(excess, 0)
    if charge is not None:
        reference = _charge(charge, amount_cents, idempotency_key)

    principal = current_principal()
    payment = PatientPayment(
        patient_id=patient_id,
        statement_id=statement_id,
        amount_cents=amount_cents,
        method=method,
        received_at=utcnow(),
        reference=(reference or "").strip() or None,
        created_by_user_id=principal.user_id,
    )
    session.add(payment)
    session.flush()
    legs = [Leg(AccountCode.CASH_CLEARING, amount_cents, patient_id=patient_id)]
    legs += [
        Leg(AccountCode.AR_PATIENT, -a.amount_cents, a.claim_id, a.service_line_id, None, patient_id)
        for a in allocations
    ]
    if credit:
        legs.append(Leg(AccountCode.PATIENT_CREDIT, -credit, patient_id=patient_id))
    entry = post_entry(
        session,
        event_type=JournalEventType.PATIENT_PAYMENT,
        idempotency_key=f"patient_payment:{payment.public_id}",
        postings=legs,
        effective_date=received_on or utcnow().date(),
        patient_payment_id=payment.id,
        audit_entity=payment.public_id,
        memo=f"{source.value} payment",
    )
    receipt = PaymentReceipt(
        patient_payment_id=payment.id,
        idempotency_key=idempotency_key,
        source=source,
        payment_plan_id=payment_plan_id,
        journal_entry_id=entry.id,
        applied_cents=amount_cents - credit,
        credit_cents=credit,
    )
    session.add(receipt)
    audit_event(
        session,
        action=AuditAction.CREATE,
        event_type="patient_payment.create",
        entity_type="patient_payment",
        entity_id=payment.public_id,
        patient_id=patient_id,
        details={
            "source": source.value,
            "method": method.value,
            "amount_cents": amount_cents,
            "credit_cents": credit,
            "lines": len(allocations),
        },
    )
    session.flush()
    after = patient_balance(session, patient_id)
    if after <= 0:
        _mark_statements_paid(session, patient_id)
    # A patient-balance item closes when the claim's patient share reaches zero, now rather
    # than at the next sweep; a partial payment leaves it open with what is left.
    from claims_server.models.workqueue import WorkQueue
    from claims_server.workqueue.services import ResolutionCode, close_settled_items

    close_settled_items(
        session,
        {a.claim_id for a in allocations if a.claim_id is not None},
        f"patient payment {payment.public_id}",
        code=ResolutionCode.PAYMENT_RECEIVED,
        queues=[WorkQueue.PATIENT_BALANCE],
    )
    return PaymentOutcome(payment, receipt, tuple(allocations), False, after)


def _charge(charge: OnlineCharge, amount_cents: int, idempotency_key: str) -> str:
    """Charge the processor; its reference, or :class:`PaymentDeclined` with the reason to show."""
    result = charge.processor.charge(amount_cents, idempotency_key, charge.description, charge.payment_token)
    if not result.approved or not result.reference:
        reason = result.decline_reason or "The payment was declined."
        raise PaymentDeclined(
            f"payment declined: {reason}",
            errors=[{"field": "payment_token", "rule": "declined", "message": reason}],
        )
    return result.reference


def _mark_statements_paid(session: Session, patient_id: int) -> None:
    """The patient owes nothing: their open statements are paid."""
    for statement in session.scalars(
        select(Statement).where(
            Statement.patient_id == patient_id,
            Statement.state.in_([StatementState.ISSUED, StatementState.DELIVERED]),
        )
    ):
        statement.state = StatementState.PAID
