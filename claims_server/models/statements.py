"""Patient statements: what the patient owes, aged, with plain-language lines.

A statement run (``StatementRun``) decides, for every patient with a balance, whether a
statement goes out today (``statements.cycle``); each statement keeps its rendered PDF
and HTML encrypted like PHI (they carry the guarantor's name and address). A
``StatementHold`` stops statements for a patient until a person releases it: the run
places one (reason ``collections``) when an account has had its final notice.
"""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Date,
    ForeignKey,
    Integer,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
)
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
)
from claims_server.models.encrypted import EncryptedBytes

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
        CheckConstraint("dunning_step >= 1", name="dunning_step_positive"),
        # A run writes at most one statement per patient, so a retried run task is a no-op.
        UniqueConstraint("run_id", "patient_id"),
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
    # --- statements-core: the run that made it, its place in dunning, the rendered documents
    run_id: Mapped[int | None] = mapped_column(IdType, ForeignKey("statement_runs.id"), index=True)
    dunning_step: Mapped[int] = mapped_column(SmallInteger, default=1)  # 1 = first statement of a cycle
    pending_insurance_cents: Mapped[int] = mapped_column(BigInteger, default=0)  # shown, not due
    pdf_sha256: Mapped[str | None] = mapped_column(String(64))  # of the plain PDF (print batch manifest)
    pdf_content: Mapped[bytes | None] = mapped_column(EncryptedBytes(), info=PHI_INFO)
    html_content: Mapped[bytes | None] = mapped_column(EncryptedBytes(), info=PHI_INFO)  # UTF-8
    # --- end statements-core

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


class StatementRunState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


class StatementRun(PublicIdMixin, TimestampMixin, Base):
    """One statement run as of a date, with its progress (``done`` of ``total`` patients).

    Counts only, never patient data: the API and ``claims-server statements run
    --progress`` read this row while the Celery tasks work through the patients.
    """

    __tablename__ = "statement_runs"
    __table_args__ = (
        enum_check("state", StatementRunState),
        CheckConstraint("done >= 0 AND done <= total", name="progress_range"),
    )

    id: Mapped[int] = mapped_column(IdType, primary_key=True)
    as_of: Mapped[date] = mapped_column(Date)
    state: Mapped[StatementRunState] = mapped_column(
        EnumText(StatementRunState, 10), default=StatementRunState.QUEUED
    )
    total: Mapped[int] = mapped_column(Integer, default=0)  # patients to consider
    done: Mapped[int] = mapped_column(Integer, default=0)  # patients considered so far
    issued: Mapped[int] = mapped_column(Integer, default=0)
    skipped: Mapped[int] = mapped_column(Integer, default=0)
    held: Mapped[int] = mapped_column(Integer, default=0)  # collections holds placed
    failed: Mapped[int] = mapped_column(Integer, default=0)
    skip_reasons: Mapped[dict[str, Any]] = mapped_column(JsonType, default=dict)  # reason -> count
    errors: Mapped[list[dict[str, Any]] | None] = mapped_column(JsonType)  # field/rule/patient public id
    # Chunks (first patient id) already counted: a task redelivered after a commit counts nothing twice.
    chunks_done: Mapped[list[int]] = mapped_column(JsonType, default=list)
    # The (first, last) patient-id ranges planned at the start (0010); NULL for older runs.
    chunk_plan: Mapped[list[list[int]] | None] = mapped_column(JsonType)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_by_user_id: Mapped[int | None] = mapped_column(IdType, ForeignKey("users.id"))


class HoldReason(StrEnum):
    COLLECTIONS = "collections"  # final notice sent and still unpaid: a person decides what next
    DISPUTE = "dispute"  # the patient disputes a charge
    HARDSHIP = "hardship"
    OTHER = "other"


class StatementHold(PublicIdMixin, CreatedMixin, Base):
    """Statements stop for a patient while a hold is not released (``released_at`` NULL)."""

    __tablename__ = "statement_holds"
    __table_args__ = (enum_check("reason", HoldReason),)

    id: Mapped[int] = mapped_column(IdType, primary_key=True)
    patient_id: Mapped[int] = mapped_column(IdType, ForeignKey("patients.id"), index=True)
    reason: Mapped[HoldReason] = mapped_column(EnumText(HoldReason, 12))
    balance_cents: Mapped[int | None] = mapped_column(BigInteger)  # amount due when the hold was placed
    dunning_step: Mapped[int | None] = mapped_column(SmallInteger)
    run_id: Mapped[int | None] = mapped_column(IdType, ForeignKey("statement_runs.id"), index=True)
    work_item_id: Mapped[int | None] = mapped_column(IdType, ForeignKey("work_items.id"))
    placed_by_user_id: Mapped[int | None] = mapped_column(IdType, ForeignKey("users.id"))  # NULL: a run
    released_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    released_by_user_id: Mapped[int | None] = mapped_column(IdType, ForeignKey("users.id"))


class StatementPrintBatch(PublicIdMixin, CreatedMixin, Base):
    """A mail-house print batch: the merged PDF and its manifest, encrypted, until retention ends.

    ``public_id`` is the batch id the API and the CLI show (``YYYYMMDD-xxxxxxxx``). The PDF
    and the manifest (names, addresses, account numbers) are stored only here, AES-GCM
    encrypted; the server writes them to a file only when an operator names the place
    (``claims-server statements print-batch --out``). ``claims-server maintenance purge``
    clears both after ``PRINT_BATCH_RETENTION_DAYS`` (``purged_at`` set; the counts stay).
    """

    __tablename__ = "statement_print_batches"

    id: Mapped[int] = mapped_column(IdType, primary_key=True)
    statements: Mapped[int] = mapped_column(Integer)
    pages: Mapped[int] = mapped_column(Integer)
    sheets: Mapped[int] = mapped_column(Integer)
    pdf_sha256: Mapped[str] = mapped_column(String(64))
    pdf_content: Mapped[bytes | None] = mapped_column(EncryptedBytes(), info=PHI_INFO)
    manifest_content: Mapped[bytes | None] = mapped_column(EncryptedBytes(), info=PHI_INFO)  # CSV, UTF-8
    created_by_user_id: Mapped[int | None] = mapped_column(IdType, ForeignKey("users.id"))
    purged_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
