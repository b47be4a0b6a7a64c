"""The work queue (rejections, denials, unmatched payments, unpaid claims) and appeals."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import TYPE_CHECKING

from sqlalchemy import Date, ForeignKey, Index, SmallInteger, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from claims_server.db import Base
from claims_server.models.common import (
    PHI_INFO,
    CreatedMixin,
    EnumText,
    IdType,
    JsonType,
    PublicIdMixin,
    TimestampMixin,
    UTCDateTime,
    enum_check,
    utcnow,
)
from claims_server.models.encrypted import EncryptedText

if TYPE_CHECKING:
    from claims_server.models.claims import Claim
    from claims_server.models.remittance import ClaimPayment
    from claims_server.models.security import User


class WorkQueue(StrEnum):
    REJECTED = "rejected"  # 999 / 277CA rejections
    DENIED = "denied"  # 835 denials (CLP02 = 4, or lines paid 0 with CO/PI)
    UNMATCHED = "unmatched"  # 835 CLP that matched no claim
    UNPAID = "unpaid"  # no answer after N days
    NEEDS_SECONDARY = "needs_secondary"  # primary paid, secondary coverage exists
    PATIENT_BALANCE = "patient_balance"
    POSSIBLE_DUPLICATE = "possible_duplicate"  # an 835 repeating a posted adjudication: held
    RECONCILIATION = "reconciliation"  # a PLB (interest, recoupment, forward balance) to reconcile
    OTHER = "other"


class WorkItemStatus(StrEnum):
    OPEN = "open"
    SNOOZED = "snoozed"
    RESOLVED = "resolved"


class AppealStatus(StrEnum):
    DRAFT = "draft"
    SUBMITTED = "submitted"
    WON = "won"
    LOST = "lost"
    WITHDRAWN = "withdrawn"


class WorkItem(PublicIdMixin, TimestampMixin, Base):
    """Something a biller must look at, with the codes that raised it and a suggestion.

    ``dedupe_key`` (unique) lets the process that raises items run twice without
    opening the same item twice (e.g. ``denied:claim_payment:<id>``).
    """

    __tablename__ = "work_items"
    __table_args__ = (
        enum_check("queue", WorkQueue),
        enum_check("status", WorkItemStatus),
        Index("ix_work_items_queue_status", "queue", "status"),
    )

    id: Mapped[int] = mapped_column(IdType, primary_key=True)
    queue: Mapped[WorkQueue] = mapped_column(EnumText(WorkQueue, 20))
    status: Mapped[WorkItemStatus] = mapped_column(EnumText(WorkItemStatus, 10), default=WorkItemStatus.OPEN)
    dedupe_key: Mapped[str | None] = mapped_column(String(200), unique=True)
    claim_id: Mapped[int | None] = mapped_column(IdType, ForeignKey("claims.id"), index=True)
    claim_payment_id: Mapped[int | None] = mapped_column(IdType, ForeignKey("claim_payments.id"), index=True)
    remittance_id: Mapped[int | None] = mapped_column(IdType, ForeignKey("remittances.id"), index=True)
    provider_adjustment_id: Mapped[int | None] = mapped_column(IdType, ForeignKey("provider_adjustments.id"))
    reason_codes: Mapped[list[str]] = mapped_column(JsonType, default=list)  # e.g. ["CO-16", "N290"]
    recommended_action: Mapped[str | None] = mapped_column(Text)
    priority: Mapped[int] = mapped_column(SmallInteger, default=0)  # higher first
    assignee_user_id: Mapped[int | None] = mapped_column(IdType, ForeignKey("users.id"), index=True)
    snoozed_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    due_date: Mapped[date | None] = mapped_column(Date)  # e.g. the timely-filing or appeal deadline
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # "<code>: <note>"; the biller's note is free text that can name the patient: encrypted.
    resolution: Mapped[str | None] = mapped_column(EncryptedText(), info=PHI_INFO)

    claim: Mapped[Claim | None] = relationship()
    claim_payment: Mapped[ClaimPayment | None] = relationship()
    assignee: Mapped[User | None] = relationship()
    comments: Mapped[list[WorkItemComment]] = relationship(
        back_populates="work_item",
        cascade="all, delete-orphan",
        passive_deletes=True,
        order_by="WorkItemComment.created_at",
    )


class WorkItemComment(PublicIdMixin, CreatedMixin, Base):
    """A note on a work item (free text, PHI: encrypted and bound to ``public_id``)."""

    __tablename__ = "work_item_comments"

    id: Mapped[int] = mapped_column(IdType, primary_key=True)
    work_item_id: Mapped[int] = mapped_column(
        IdType, ForeignKey("work_items.id", ondelete="CASCADE"), index=True
    )
    author_user_id: Mapped[int | None] = mapped_column(IdType, ForeignKey("users.id"))
    body: Mapped[str] = mapped_column(EncryptedText(), info=PHI_INFO)

    work_item: Mapped[WorkItem] = relationship(back_populates="comments")


class Appeal(PublicIdMixin, TimestampMixin, Base):
    """A written appeal of a denial, with its deadline."""

    __tablename__ = "appeals"
    __table_args__ = (enum_check("status", AppealStatus),)

    id: Mapped[int] = mapped_column(IdType, primary_key=True)
    claim_id: Mapped[int] = mapped_column(IdType, ForeignKey("claims.id"), index=True)
    work_item_id: Mapped[int | None] = mapped_column(IdType, ForeignKey("work_items.id"), index=True)
    deadline: Mapped[date] = mapped_column(Date, index=True)
    status: Mapped[AppealStatus] = mapped_column(EnumText(AppealStatus, 10), default=AppealStatus.DRAFT)
    letter_text: Mapped[str | None] = mapped_column(EncryptedText(), info=PHI_INFO)  # names the patient
    submitted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    claim: Mapped[Claim] = relationship()
