"""How patient payments came in, and payment plans (a monthly amount over selected balances).

``PaymentReceipt`` sits beside each ``PatientPayment``: where it came from (the
patient's statement link, the front desk, a mailed check), the client's
``Idempotency-Key`` (unique, so a double click pays once even when two requests race),
the journal entry that posted it, and how much went to open balances versus to a
patient credit. ``PaymentPlan`` is an agreement to pay ``monthly_amount_cents`` each
month, from ``first_due_date`` on, toward the patient balances of the claims in its
items; whether an installment was missed is derived from the ledger (see
``claims_server.payments.plans``), never stored by hand.
"""

from __future__ import annotations

from datetime import date
from enum import StrEnum

from sqlalchemy import BigInteger, CheckConstraint, Date, ForeignKey, SmallInteger, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from claims_server.db import Base
from claims_server.models.common import (
    CreatedMixin,
    EnumText,
    IdType,
    PublicIdMixin,
    TimestampMixin,
    enum_check,
)


class PaymentSource(StrEnum):
    """Where a patient payment was taken."""

    LINK = "link"  # the patient paid through the statement link
    FRONT_DESK = "front_desk"
    MAIL = "mail"  # a check mailed with the remittance stub


class PaymentReceipt(CreatedMixin, Base):
    """The posting facts of one patient payment (1:1 with ``patient_payments``)."""

    __tablename__ = "payment_receipts"
    __table_args__ = (
        enum_check("source", PaymentSource),
        CheckConstraint("applied_cents >= 0", name="applied_nonnegative"),
        CheckConstraint("credit_cents >= 0", name="credit_nonnegative"),
    )

    id: Mapped[int] = mapped_column(IdType, primary_key=True)
    patient_payment_id: Mapped[int] = mapped_column(IdType, ForeignKey("patient_payments.id"), unique=True)
    # "<principal>:<Idempotency-Key>": the same key from two principals is two payments.
    idempotency_key: Mapped[str] = mapped_column(String(255), unique=True)
    source: Mapped[PaymentSource] = mapped_column(EnumText(PaymentSource, 10))
    payment_plan_id: Mapped[int | None] = mapped_column(IdType, ForeignKey("payment_plans.id"), index=True)
    journal_entry_id: Mapped[int] = mapped_column(IdType, ForeignKey("journal_entries.id"))
    applied_cents: Mapped[int] = mapped_column(BigInteger)  # to open patient balances
    credit_cents: Mapped[int] = mapped_column(BigInteger)  # held as a patient credit (explicit only)


class PaymentPlanState(StrEnum):
    ACTIVE = "active"
    COMPLETED = "completed"  # the selected balances are paid
    DEFAULTED = "defaulted"  # too many missed installments: back to statements and a person
    CANCELLED = "cancelled"


class PaymentPlan(PublicIdMixin, TimestampMixin, Base):
    """A monthly amount over selected patient balances."""

    __tablename__ = "payment_plans"
    __table_args__ = (
        enum_check("state", PaymentPlanState),
        CheckConstraint("monthly_amount_cents > 0", name="monthly_amount_positive"),
        CheckConstraint("total_cents > 0", name="total_positive"),
        CheckConstraint("missed_installments >= 0", name="missed_nonnegative"),
    )

    id: Mapped[int] = mapped_column(IdType, primary_key=True)
    patient_id: Mapped[int] = mapped_column(IdType, ForeignKey("patients.id"), index=True)
    state: Mapped[PaymentPlanState] = mapped_column(
        EnumText(PaymentPlanState, 10), default=PaymentPlanState.ACTIVE
    )
    monthly_amount_cents: Mapped[int] = mapped_column(BigInteger)
    total_cents: Mapped[int] = mapped_column(BigInteger)  # the selected balances when the plan began
    start_date: Mapped[date] = mapped_column(Date)  # payments from this day on count toward the plan
    first_due_date: Mapped[date] = mapped_column(Date)
    missed_installments: Mapped[int] = mapped_column(SmallInteger, default=0)  # as of last_checked_on
    last_checked_on: Mapped[date | None] = mapped_column(Date)
    created_by_user_id: Mapped[int | None] = mapped_column(IdType, ForeignKey("users.id"))

    items: Mapped[list[PaymentPlanItem]] = relationship(
        back_populates="plan", cascade="all, delete-orphan", passive_deletes=True
    )


class PaymentPlanItem(Base):
    """One selected balance: a claim's patient balance when the plan began."""

    __tablename__ = "payment_plan_items"
    __table_args__ = (
        UniqueConstraint("payment_plan_id", "claim_id"),
        CheckConstraint("amount_cents > 0", name="amount_positive"),
    )

    id: Mapped[int] = mapped_column(IdType, primary_key=True)
    payment_plan_id: Mapped[int] = mapped_column(
        IdType, ForeignKey("payment_plans.id", ondelete="CASCADE"), index=True
    )
    claim_id: Mapped[int] = mapped_column(IdType, ForeignKey("claims.id"), index=True)
    amount_cents: Mapped[int] = mapped_column(BigInteger)

    plan: Mapped[PaymentPlan] = relationship(back_populates="items")
