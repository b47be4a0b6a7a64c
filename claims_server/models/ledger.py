"""The double-entry ledger: a small chart of accounts, journal entries and postings.

Design: accounts are a fixed chart (A/R insurance, A/R patient, cash clearing, ...);
the *dimensions* (claim, service line, payer, patient, remittance) sit on each posting.
So "A/R for claim X" is ``SUM(amount_cents)`` over postings to the A/R accounts with
``claim_id = X`` (see ``balance_select``), "what payer P owes" is the same sum by
``payer_id``, and no balance is ever stored by hand.

Signs: debit positive, credit negative; every entry's postings sum to zero
(``JournalEntry.is_balanced``, enforced by the posting service). Each entry has a
unique ``idempotency_key`` (e.g. ``835:<trace>:<clp position>``) so the same business
event can never be posted twice, even by two workers racing.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime
from enum import StrEnum
from typing import TYPE_CHECKING

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Select,
    String,
    Text,
    func,
    select,
)
from sqlalchemy.orm import Mapped, Session, mapped_column, relationship

from claims_server.db import Base
from claims_server.models.common import (
    PHI_INFO,
    CreatedMixin,
    EnumText,
    IdType,
    PublicIdMixin,
    TimestampMixin,
    UTCDateTime,
    enum_check,
    utcnow,
)
from claims_server.models.encrypted import EncryptedText

if TYPE_CHECKING:
    from claims_server.models.patients import Patient


class AccountType(StrEnum):
    ASSET = "asset"
    LIABILITY = "liability"
    REVENUE = "revenue"
    CONTRA = "contra"  # contra-revenue: reductions of gross charges
    EXPENSE = "expense"


class AccountCode(StrEnum):
    """The chart of accounts (see ARCHITECTURE.md, the ledger table)."""

    AR_INSURANCE = "ar_insurance"
    AR_PATIENT = "ar_patient"
    CASH_CLEARING = "cash_clearing"
    GROSS_CHARGES = "gross_charges"
    CONTRACTUAL_ADJUSTMENTS = "contractual_adjustments"
    OTHER_ADJUSTMENTS = "other_adjustments"
    PROVIDER_ADJUSTMENTS = "provider_adjustments"
    WRITE_OFFS = "write_offs"
    PATIENT_CREDIT = "patient_credit"  # patient overpayments held until refunded or applied
    INTEREST_INCOME = "interest_income"  # PLB L6: prompt-pay interest a payer adds
    PAYER_OFFSET = "payer_offset"  # PLB WO/FB/72/J1...: recoupments and forward balances, per payer


#: (code, name, type) of every account the services rely on.
STANDARD_CHART: tuple[tuple[AccountCode, str, AccountType], ...] = (
    (AccountCode.AR_INSURANCE, "Accounts receivable - insurance", AccountType.ASSET),
    (AccountCode.AR_PATIENT, "Accounts receivable - patient", AccountType.ASSET),
    (AccountCode.CASH_CLEARING, "Cash clearing", AccountType.ASSET),
    (AccountCode.GROSS_CHARGES, "Gross charges", AccountType.REVENUE),
    (AccountCode.CONTRACTUAL_ADJUSTMENTS, "Contractual adjustments", AccountType.CONTRA),
    (AccountCode.OTHER_ADJUSTMENTS, "Other adjustments", AccountType.CONTRA),
    (AccountCode.PROVIDER_ADJUSTMENTS, "Provider-level adjustments", AccountType.CONTRA),
    (AccountCode.WRITE_OFFS, "Write-offs", AccountType.CONTRA),
    (AccountCode.PATIENT_CREDIT, "Patient credit balances", AccountType.LIABILITY),
    (AccountCode.INTEREST_INCOME, "Interest income", AccountType.REVENUE),
    (AccountCode.PAYER_OFFSET, "Payer recoupments and forward balances", AccountType.ASSET),
)

#: The accounts that make up a receivable balance.
RECEIVABLE_ACCOUNTS = (AccountCode.AR_INSURANCE, AccountCode.AR_PATIENT)

#: Posting columns a balance can be grouped or filtered by.
DIMENSIONS = ("claim_id", "service_line_id", "payer_id", "patient_id", "remittance_id")


class JournalEventType(StrEnum):
    """The business event a journal entry records (one entry per event)."""

    CHARGE = "charge"
    CHARGE_CORRECTION = "charge_correction"
    INSURANCE_PAYMENT = "insurance_payment"  # an 835 claim payment with its CAS adjustments
    CONTRACTUAL_ADJUSTMENT = "contractual_adjustment"
    PATIENT_RESPONSIBILITY = "patient_responsibility"
    OTHER_ADJUSTMENT = "other_adjustment"
    REVERSAL = "reversal"  # CLP02 = 22, or undoing one of our entries
    PROVIDER_ADJUSTMENT = "provider_adjustment"  # PLB
    PATIENT_PAYMENT = "patient_payment"
    WRITE_OFF = "write_off"
    REFUND = "refund"
    BALANCE_TRANSFER = "balance_transfer"  # responsibility moved to the next payer or the patient


class PaymentMethod(StrEnum):
    """How a patient paid."""

    CASH = "cash"
    CHECK = "check"
    CARD = "card"
    ACH = "ach"
    PORTAL = "portal"
    OTHER = "other"


class Account(Base):
    """One account of the chart."""

    __tablename__ = "accounts"
    __table_args__ = (enum_check("account_type", AccountType),)

    id: Mapped[int] = mapped_column(IdType, primary_key=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    account_type: Mapped[AccountType] = mapped_column(EnumText(AccountType, 16))
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class JournalEntry(PublicIdMixin, CreatedMixin, Base):
    """One business event and its postings; entries are never edited, only reversed."""

    __tablename__ = "journal_entries"
    __table_args__ = (enum_check("event_type", JournalEventType),)

    id: Mapped[int] = mapped_column(IdType, primary_key=True)
    event_type: Mapped[JournalEventType] = mapped_column(EnumText(JournalEventType, 32))
    idempotency_key: Mapped[str] = mapped_column(String(200), unique=True)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    effective_date: Mapped[date] = mapped_column(Date, index=True)  # accounting date (e.g. BPR16)
    claim_id: Mapped[int | None] = mapped_column(IdType, ForeignKey("claims.id"), index=True)
    remittance_id: Mapped[int | None] = mapped_column(IdType, ForeignKey("remittances.id"), index=True)
    claim_payment_id: Mapped[int | None] = mapped_column(IdType, ForeignKey("claim_payments.id"), index=True)
    patient_payment_id: Mapped[int | None] = mapped_column(
        IdType, ForeignKey("patient_payments.id"), index=True
    )
    reverses_entry_id: Mapped[int | None] = mapped_column(
        IdType, ForeignKey("journal_entries.id"), unique=True
    )  # an entry is reversed at most once
    reason_code: Mapped[str | None] = mapped_column(String(40))  # write-off reason, CARC, ...
    memo: Mapped[str | None] = mapped_column(Text)
    created_by_user_id: Mapped[int | None] = mapped_column(IdType, ForeignKey("users.id"))  # NULL: system

    postings: Mapped[list[Posting]] = relationship(
        back_populates="journal_entry", cascade="all, delete-orphan", passive_deletes=True
    )
    reverses: Mapped[JournalEntry | None] = relationship(remote_side=[id])

    def total_cents(self) -> int:
        """Sum of the postings' signed amounts (zero when balanced)."""
        return sum(p.amount_cents for p in self.postings)

    def is_balanced(self) -> bool:
        """Debits equal credits: at least two postings and a zero sum."""
        return len(self.postings) >= 2 and self.total_cents() == 0


class Posting(Base):
    """One signed amount to one account (debit positive, credit negative), with dimensions."""

    __tablename__ = "postings"
    __table_args__ = (
        CheckConstraint("amount_cents <> 0", name="amount_nonzero"),
        Index("ix_postings_claim_id_account_id", "claim_id", "account_id"),
        Index("ix_postings_patient_id_account_id", "patient_id", "account_id"),
        Index("ix_postings_payer_id_account_id", "payer_id", "account_id"),
        Index("ix_postings_remittance_id_account_id", "remittance_id", "account_id"),
    )

    id: Mapped[int] = mapped_column(IdType, primary_key=True)
    journal_entry_id: Mapped[int] = mapped_column(
        IdType, ForeignKey("journal_entries.id", ondelete="CASCADE"), index=True
    )
    account_id: Mapped[int] = mapped_column(IdType, ForeignKey("accounts.id"), index=True)
    amount_cents: Mapped[int] = mapped_column(BigInteger)
    # RESTRICT (the default) on every dimension: money history pins what it refers to.
    claim_id: Mapped[int | None] = mapped_column(IdType, ForeignKey("claims.id"))
    service_line_id: Mapped[int | None] = mapped_column(IdType, ForeignKey("service_lines.id"), index=True)
    payer_id: Mapped[int | None] = mapped_column(IdType, ForeignKey("payers.id"))
    patient_id: Mapped[int | None] = mapped_column(IdType, ForeignKey("patients.id"))
    remittance_id: Mapped[int | None] = mapped_column(IdType, ForeignKey("remittances.id"))

    journal_entry: Mapped[JournalEntry] = relationship(back_populates="postings")
    account: Mapped[Account] = relationship()


class JournalNote(PublicIdMixin, CreatedMixin, Base):
    """Free text about a journal entry (a write-off's note): PHI, so encrypted and bound to ``public_id``.

    ``JournalEntry.memo`` is not encrypted and holds fixed labels only. Notes are written
    once, like the journal: the database refuses DELETE and any UPDATE but the one key
    rotation makes to ``note`` (``claims_server.security.immutability``).
    """

    __tablename__ = "journal_notes"

    id: Mapped[int] = mapped_column(IdType, primary_key=True)
    journal_entry_id: Mapped[int] = mapped_column(IdType, ForeignKey("journal_entries.id"), index=True)
    author_user_id: Mapped[int | None] = mapped_column(IdType, ForeignKey("users.id"))  # NULL: system
    note: Mapped[str] = mapped_column(EncryptedText(), info=PHI_INFO)


class PatientPayment(PublicIdMixin, CreatedMixin, Base):
    """Money received from a patient (posted as a ``patient_payment`` journal entry)."""

    __tablename__ = "patient_payments"
    __table_args__ = (
        CheckConstraint("amount_cents > 0", name="amount_positive"),
        enum_check("method", PaymentMethod),
    )

    id: Mapped[int] = mapped_column(IdType, primary_key=True)
    patient_id: Mapped[int] = mapped_column(IdType, ForeignKey("patients.id"), index=True)
    statement_id: Mapped[int | None] = mapped_column(IdType, ForeignKey("statements.id"), index=True)
    amount_cents: Mapped[int] = mapped_column(BigInteger)
    method: Mapped[PaymentMethod] = mapped_column(EnumText(PaymentMethod, 8))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    reference: Mapped[str | None] = mapped_column(String(80))  # check number, processor transaction id
    memo: Mapped[str | None] = mapped_column(Text)
    created_by_user_id: Mapped[int | None] = mapped_column(IdType, ForeignKey("users.id"))

    patient: Mapped[Patient] = relationship()


class RefundKind(StrEnum):
    PATIENT = "patient"  # a patient's credit paid back
    PAYER = "payer"  # a payer's overpayment or unmatched money given back


class RefundMethod(StrEnum):
    CHECK = "check"  # a check mailed (patient or payer, with the payer's refund letter)
    CARD_REVERSAL = "card_reversal"  # the card payment reversed at the processor
    PAYER_OFFSET = "payer_offset"  # the payer takes it back from a later 835 (PLB WO/72)


class RefundState(StrEnum):
    PENDING_APPROVAL = "pending_approval"  # above the requester's limit: waits for a supervisor
    ISSUED = "issued"  # the money left (check, card reversal): posted
    AWAITING_OFFSET = "awaiting_offset"  # posted to payer offset; the PLB that takes it is awaited
    OFFSET = "offset"  # the payer's PLB took it
    DECLINED = "declined"


class Refund(PublicIdMixin, TimestampMixin, Base):
    """Money given back: a patient's credit or a payer's overpayment / unmatched payment.

    Posted as one ``refund`` journal entry (``journal_entry_id``) once issued; a refund above
    the requester's limit waits as an approval request first. ``reference`` is a check number
    or the processor's reversal id (not PHI).
    """

    __tablename__ = "refunds"
    __table_args__ = (
        CheckConstraint("amount_cents > 0", name="amount_positive"),
        enum_check("kind", RefundKind),
        enum_check("method", RefundMethod),
        enum_check("state", RefundState),
    )

    id: Mapped[int] = mapped_column(IdType, primary_key=True)
    kind: Mapped[RefundKind] = mapped_column(EnumText(RefundKind, 8))
    method: Mapped[RefundMethod] = mapped_column(EnumText(RefundMethod, 16))
    state: Mapped[RefundState] = mapped_column(EnumText(RefundState, 16), index=True)
    amount_cents: Mapped[int] = mapped_column(BigInteger)
    patient_id: Mapped[int | None] = mapped_column(IdType, ForeignKey("patients.id"), index=True)
    payer_id: Mapped[int | None] = mapped_column(IdType, ForeignKey("payers.id"), index=True)
    claim_id: Mapped[int | None] = mapped_column(IdType, ForeignKey("claims.id"), index=True)
    claim_payment_id: Mapped[int | None] = mapped_column(IdType, ForeignKey("claim_payments.id"))
    remittance_id: Mapped[int | None] = mapped_column(IdType, ForeignKey("remittances.id"))
    patient_payment_id: Mapped[int | None] = mapped_column(IdType, ForeignKey("patient_payments.id"))
    provider_adjustment_id: Mapped[int | None] = mapped_column(IdType, ForeignKey("provider_adjustments.id"))
    approval_request_id: Mapped[int | None] = mapped_column(IdType, ForeignKey("approval_requests.id"))
    journal_entry_id: Mapped[int | None] = mapped_column(IdType, ForeignKey("journal_entries.id"))
    reference: Mapped[str | None] = mapped_column(String(80))
    issued_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_by_user_id: Mapped[int | None] = mapped_column(IdType, ForeignKey("users.id"))


def balance_select(accounts: Iterable[str], **dimensions: int) -> Select[tuple[int]]:
    """``SELECT COALESCE(SUM(amount_cents), 0)`` over postings to ``accounts`` filtered by dimensions.

    ``balance_select(RECEIVABLE_ACCOUNTS, claim_id=7)`` is the claim's open A/R.
    """
    unknown = set(dimensions) - set(DIMENSIONS)
    if unknown:
        raise ValueError(f"not a posting dimension: {', '.join(sorted(unknown))}")
    stmt = (
        select(func.coalesce(func.sum(Posting.amount_cents), 0))
        .join(Account, Posting.account_id == Account.id)
        .where(Account.code.in_([str(a) for a in accounts]))
    )
    for name, value in dimensions.items():
        stmt = stmt.where(getattr(Posting, name) == value)
    return stmt


def ensure_standard_accounts(session: Session) -> dict[str, Account]:
    """Create any missing account of ``STANDARD_CHART``; return all of them by code."""
    existing = {a.code: a for a in session.scalars(select(Account))}
    for code, name, account_type in STANDARD_CHART:
        if code.value not in existing:
            account = Account(code=code.value, name=name, account_type=account_type)
            session.add(account)
            existing[code.value] = account
    session.flush()
    return existing
