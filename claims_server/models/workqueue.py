"""The work queue (rejections, denials, unmatched payments, unpaid claims) and appeals."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import TYPE_CHECKING

from sqlalchemy import BigInteger, Date, ForeignKey, Index, SmallInteger, String, Text
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
    APPEAL = "appeal"  # a denial under appeal (due_date = the appeal deadline); back to denied if lost
    CREDIT_BALANCE = "credit_balance"  # a patient or payer credit to refund, transfer or hold
    APPROVAL = "approval"  # a write-off or refund above the requester's limit, for a supervisor
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


class AppealLevel(StrEnum):
    """First-level (redetermination / reconsideration with the payer), second level, external
    (independent review organisation or the state)."""

    FIRST = "first"
    SECOND = "second"
    EXTERNAL = "external"


class AppealOutcome(StrEnum):
    OVERTURNED = "overturned"  # the payer pays as billed (or as contracted)
    PARTIALLY_OVERTURNED = "partially_overturned"
    UPHELD = "upheld"  # the denial stands


class NoteKind(StrEnum):
    """What a follow-up note records."""

    CALL = "call"  # a phone call with the payer or the patient
    PAYER_PORTAL = "payer_portal"  # looked up on the payer's portal
    LETTER = "letter"  # a letter sent or received
    INTERNAL = "internal"  # for the team


class ApprovalKind(StrEnum):
    WRITE_OFF = "write_off"
    REFUND = "refund"


class ApprovalState(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    DECLINED = "declined"
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
    # A credit balance or approval item is about a patient or a payer rather than one claim.
    patient_id: Mapped[int | None] = mapped_column(IdType, ForeignKey("patients.id"), index=True)
    payer_id: Mapped[int | None] = mapped_column(IdType, ForeignKey("payers.id"), index=True)
    approval_request_id: Mapped[int | None] = mapped_column(IdType, ForeignKey("approval_requests.id"))

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
    __table_args__ = (
        enum_check("status", AppealStatus),
        enum_check("level", AppealLevel),
        enum_check("outcome", AppealOutcome),
    )

    id: Mapped[int] = mapped_column(IdType, primary_key=True)
    claim_id: Mapped[int] = mapped_column(IdType, ForeignKey("claims.id"), index=True)
    work_item_id: Mapped[int | None] = mapped_column(IdType, ForeignKey("work_items.id"), index=True)
    deadline: Mapped[date] = mapped_column(Date, index=True)
    status: Mapped[AppealStatus] = mapped_column(EnumText(AppealStatus, 10), default=AppealStatus.DRAFT)
    letter_text: Mapped[str | None] = mapped_column(EncryptedText(), info=PHI_INFO)  # names the patient
    submitted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    level: Mapped[AppealLevel] = mapped_column(EnumText(AppealLevel, 10), default=AppealLevel.FIRST)
    outcome: Mapped[AppealOutcome | None] = mapped_column(EnumText(AppealOutcome, 24))
    denial_date: Mapped[date | None] = mapped_column(Date)  # the determination the deadline runs from
    parent_appeal_id: Mapped[int | None] = mapped_column(IdType, ForeignKey("appeals.id"))  # the level below
    created_by_user_id: Mapped[int | None] = mapped_column(IdType, ForeignKey("users.id"))
    # JSON list of {"name", "kind", "added_at"}: the documents sent with the letter (names may be PHI).
    attachments: Mapped[str | None] = mapped_column(EncryptedText(), info=PHI_INFO)

    claim: Mapped[Claim] = relationship()


class Note(PublicIdMixin, CreatedMixin, Base):
    """A follow-up note (call, payer portal, letter, internal) on a claim, a patient or a work
    item, with an optional follow-up date (the item sleeps until then).

    Free text is PHI: encrypted and bound to ``public_id``. Written once, like ``claim_notes``:
    the database refuses DELETE and any UPDATE but key rotation's rewrite of ``body``.
    """

    __tablename__ = "notes"
    __table_args__ = (
        enum_check("kind", NoteKind),
        Index("ix_notes_author_follow_up", "author_user_id", "follow_up_on"),
    )

    id: Mapped[int] = mapped_column(IdType, primary_key=True)
    kind: Mapped[NoteKind] = mapped_column(EnumText(NoteKind, 16))
    claim_id: Mapped[int | None] = mapped_column(IdType, ForeignKey("claims.id"), index=True)
    patient_id: Mapped[int | None] = mapped_column(IdType, ForeignKey("patients.id"), index=True)
    work_item_id: Mapped[int | None] = mapped_column(IdType, ForeignKey("work_items.id"), index=True)
    author_user_id: Mapped[int | None] = mapped_column(IdType, ForeignKey("users.id"))
    follow_up_on: Mapped[date | None] = mapped_column(Date)
    body: Mapped[str] = mapped_column(EncryptedText(), info=PHI_INFO)


class ApprovalRequest(PublicIdMixin, TimestampMixin, Base):
    """A write-off or refund above the requester's limit, waiting for a supervisor.

    ``request`` holds the action's parameters (bucket, reason, payer, line, method: never
    PHI); the notes are encrypted. Deciding is a compare-and-set on ``state`` so two
    supervisors cannot both approve; ``journal_entry_id`` is what the approval posted.
    """

    __tablename__ = "approval_requests"
    __table_args__ = (enum_check("kind", ApprovalKind), enum_check("state", ApprovalState))

    id: Mapped[int] = mapped_column(IdType, primary_key=True)
    kind: Mapped[ApprovalKind] = mapped_column(EnumText(ApprovalKind, 16))
    state: Mapped[ApprovalState] = mapped_column(
        EnumText(ApprovalState, 10), default=ApprovalState.PENDING, index=True
    )
    claim_id: Mapped[int | None] = mapped_column(IdType, ForeignKey("claims.id"), index=True)
    patient_id: Mapped[int | None] = mapped_column(IdType, ForeignKey("patients.id"), index=True)
    payer_id: Mapped[int | None] = mapped_column(IdType, ForeignKey("payers.id"))
    amount_cents: Mapped[int] = mapped_column(BigInteger)
    request: Mapped[dict[str, object]] = mapped_column(JsonType, default=dict)
    note: Mapped[str | None] = mapped_column(EncryptedText(), info=PHI_INFO)
    requested_by_user_id: Mapped[int | None] = mapped_column(IdType, ForeignKey("users.id"))
    decided_by_user_id: Mapped[int | None] = mapped_column(IdType, ForeignKey("users.id"))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    decision_note: Mapped[str | None] = mapped_column(EncryptedText(), info=PHI_INFO)
    journal_entry_id: Mapped[int | None] = mapped_column(IdType, ForeignKey("journal_entries.id"))


class SavedFilter(PublicIdMixin, CreatedMixin, Base):
    """A user's named work-queue filter (the query string of the queue page). Both are typed
    by the user and may name a patient, so both are encrypted."""

    __tablename__ = "saved_filters"

    id: Mapped[int] = mapped_column(IdType, primary_key=True)
    user_id: Mapped[int] = mapped_column(IdType, ForeignKey("users.id"), index=True)
    name: Mapped[str] = mapped_column(EncryptedText(), info=PHI_INFO)
    query: Mapped[str] = mapped_column(EncryptedText(), info=PHI_INFO)
