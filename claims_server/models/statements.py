"""Patient statements: what the patient owes, aged, with plain-language lines."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import TYPE_CHECKING

from sqlalchemy import BigInteger, CheckConstraint, Date, ForeignKey, Integer, SmallInteger, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from claims_server.db import Base
from claims_server.models.common import (
    EnumText,
    IdType,
    PublicIdMixin,
    TimestampMixin,
    UTCDateTime,
    enum_check,
)

if TYPE_CHECKING:
    from claims_server.models.patients import Patient


class DeliveryChannel(StrEnum):
    MAIL = "mail"
    EMAIL = "email"
    PORTAL = "portal"


class StatementState(StrEnum):
    DRAFT = "draft"
    ISSUED = "issued"
    DELIVERED = "delivered"
    PAID = "paid"
    VOID = "void"


class Statement(PublicIdMixin, TimestampMixin, Base):
    """A statement sent to a patient; aging buckets are by days since first billed to them.

    ``pay_link_token_hash`` is the SHA-256 of the pay-link token: the token itself is
    only ever in the delivered statement.
    """

    __tablename__ = "statements"
    __table_args__ = (
        enum_check("delivery_channel", DeliveryChannel),
        enum_check("state", StatementState),
        CheckConstraint("dunning_stage >= 0", name="dunning_stage_nonnegative"),
    )

    id: Mapped[int] = mapped_column(IdType, primary_key=True)
    patient_id: Mapped[int] = mapped_column(IdType, ForeignKey("patients.id"), index=True)
    statement_date: Mapped[date] = mapped_column(Date)
    due_date: Mapped[date] = mapped_column(Date)
    balance_cents: Mapped[int] = mapped_column(BigInteger)
    current_cents: Mapped[int] = mapped_column(BigInteger, default=0)  # 0-30 days
    days_31_60_cents: Mapped[int] = mapped_column(BigInteger, default=0)
    days_61_90_cents: Mapped[int] = mapped_column(BigInteger, default=0)
    days_91_120_cents: Mapped[int] = mapped_column(BigInteger, default=0)
    over_120_cents: Mapped[int] = mapped_column(BigInteger, default=0)
    dunning_stage: Mapped[int] = mapped_column(SmallInteger, default=0)  # 0 first notice, rising
    delivery_channel: Mapped[DeliveryChannel] = mapped_column(
        EnumText(DeliveryChannel, 8), default=DeliveryChannel.MAIL
    )
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    pdf_file_name: Mapped[str | None] = mapped_column(String(255))  # server-generated, under INSTANCE_PATH
    pay_link_token_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    pay_link_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    state: Mapped[StatementState] = mapped_column(EnumText(StatementState, 10), default=StatementState.DRAFT)

    patient: Mapped[Patient] = relationship()
    lines: Mapped[list[StatementLine]] = relationship(
        back_populates="statement",
        cascade="all, delete-orphan",
        passive_deletes=True,
        order_by="StatementLine.line_number",
    )

    def aging_total_cents(self) -> int:
        """Sum of the aging buckets; equals ``balance_cents`` on a consistent statement."""
        return (
            self.current_cents
            + self.days_31_60_cents
            + self.days_61_90_cents
            + self.days_91_120_cents
            + self.over_120_cents
        )


class StatementLine(Base):
    """One service on a statement: what was charged, what insurance did, what is owed."""

    __tablename__ = "statement_lines"

    id: Mapped[int] = mapped_column(IdType, primary_key=True)
    statement_id: Mapped[int] = mapped_column(
        IdType, ForeignKey("statements.id", ondelete="CASCADE"), index=True
    )
    line_number: Mapped[int] = mapped_column(Integer)
    claim_id: Mapped[int | None] = mapped_column(IdType, ForeignKey("claims.id"))
    service_line_id: Mapped[int | None] = mapped_column(IdType, ForeignKey("service_lines.id"))
    service_date: Mapped[date | None] = mapped_column(Date)
    description: Mapped[str] = mapped_column(String(512))
    charge_cents: Mapped[int] = mapped_column(BigInteger, default=0)
    insurance_paid_cents: Mapped[int] = mapped_column(BigInteger, default=0)
    adjustments_cents: Mapped[int] = mapped_column(BigInteger, default=0)
    patient_paid_cents: Mapped[int] = mapped_column(BigInteger, default=0)
    balance_cents: Mapped[int] = mapped_column(BigInteger, default=0)
    reason_text: Mapped[str | None] = mapped_column(Text)  # plain-language reason the patient owes it

    statement: Mapped[Statement] = relationship(back_populates="lines")
