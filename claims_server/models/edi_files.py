"""Every X12 file in or out, and the acknowledgments read from inbound ones.

A file is stored (``content``, encrypted like PHI) with its SHA-256 before it is
processed; the unique (direction, sha256) makes receiving the same bytes twice a no-op.
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
    Index,
    Integer,
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
    UTCDateTime,
    enum_check,
    sql_in,
    utcnow,
)
from claims_server.models.encrypted import EncryptedBytes

if TYPE_CHECKING:
    from claims_server.models.claims import Claim
    from claims_server.models.submissions import SubmissionBatch


class FileDirection(StrEnum):
    INBOUND = "in"
    OUTBOUND = "out"


class EdiFileKind(StrEnum):
    """Transaction set carried by the file (the first ST01/GS08 it contains)."""

    CLAIM_837P = "837P"
    CLAIM_837I = "837I"
    ACK_999 = "999"
    TA1 = "TA1"
    CLAIM_ACK_277CA = "277CA"
    REMITTANCE_835 = "835"
    ELIGIBILITY_270 = "270"
    ELIGIBILITY_271 = "271"
    OTHER = "other"


class EdiFileStatus(StrEnum):
    RECEIVED = "received"  # stored, not yet processed
    PROCESSED = "processed"
    FAILED = "failed"  # see error_summary
    DUPLICATE = "duplicate"  # same interchange (sender, ISA13) already processed


class EdiFile(PublicIdMixin, Base):
    """An X12 file received or produced, with its hash and processing outcome."""

    __tablename__ = "edi_files"
    __table_args__ = (
        UniqueConstraint("direction", "sha256"),
        enum_check("direction", FileDirection),
        enum_check("kind", EdiFileKind),
        enum_check("status", EdiFileStatus),
        CheckConstraint("size_bytes >= 0", name="size_nonnegative"),
        Index("ix_edi_files_kind_status", "kind", "status"),
    )

    id: Mapped[int] = mapped_column(IdType, primary_key=True)
    direction: Mapped[FileDirection] = mapped_column(EnumText(FileDirection, 3))
    kind: Mapped[EdiFileKind] = mapped_column(EnumText(EdiFileKind, 8))
    sha256: Mapped[str] = mapped_column(String(64))  # hex digest of the raw bytes
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    stored_name: Mapped[str] = mapped_column(String(255))  # server-generated, never the sender's name
    status: Mapped[EdiFileStatus] = mapped_column(EnumText(EdiFileStatus, 16), default=EdiFileStatus.RECEIVED)
    error_summary: Mapped[dict[str, Any] | None] = mapped_column(JsonType)  # structured Findings, no PHI
    sender_id: Mapped[str | None] = mapped_column(String(15))  # ISA06
    interchange_control_number: Mapped[str | None] = mapped_column(String(9), index=True)  # ISA13
    received_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    processed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    batch_id: Mapped[int | None] = mapped_column(IdType, ForeignKey("submission_batches.id"), index=True)
    route_id: Mapped[int | None] = mapped_column(IdType, ForeignKey("clearinghouse_routes.id"), index=True)
    content: Mapped[bytes | None] = mapped_column(
        EncryptedBytes(), info=PHI_INFO
    )  # AES-GCM, bound to public_id
    # The integration (api_tokens.integration_name) whose token uploaded it; NULL: staff or system
    owner_integration: Mapped[str | None] = mapped_column(String(100), index=True)

    batch: Mapped[SubmissionBatch | None] = relationship()


class Ack999Result(CreatedMixin, Base):
    """A 999's verdict on one of our transaction sets (AK2/IK5), or on a group (AK9)."""

    __tablename__ = "ack999_results"
    __table_args__ = (
        # IK501 A/E/M/R/W/X, AK901 A/E/P/R
        CheckConstraint(sql_in("acknowledgment_code", ["A", "E", "M", "P", "R", "W", "X"]), name="ack_code"),
        Index("ix_ack999_results_gs06_st02", "group_control_number", "transaction_control_number"),
    )

    id: Mapped[int] = mapped_column(IdType, primary_key=True)
    edi_file_id: Mapped[int] = mapped_column(IdType, ForeignKey("edi_files.id"), index=True)  # the 999
    batch_id: Mapped[int | None] = mapped_column(IdType, ForeignKey("submission_batches.id"), index=True)
    functional_id_code: Mapped[str] = mapped_column(String(2), default="HC")  # AK101
    group_control_number: Mapped[str] = mapped_column(String(9))  # AK102 = our GS06
    transaction_set_id: Mapped[str | None] = mapped_column(String(3))  # AK201 (837); NULL for the AK9 row
    transaction_control_number: Mapped[str | None] = mapped_column(String(9))  # AK202 = our ST02
    acknowledgment_code: Mapped[str] = mapped_column(String(1))  # IK501, or AK901 for the group row
    errors: Mapped[list[dict[str, Any]]] = mapped_column(JsonType, default=list)  # IK3/IK4/CTX as Findings
    position: Mapped[int] = mapped_column(Integer, default=1)  # order within the 999

    edi_file: Mapped[EdiFile] = relationship()


class ClaimStatusEvent(CreatedMixin, Base):
    """A 277CA status for one claim (loop 2200D STC), or an unmatched one (claim NULL)."""

    __tablename__ = "claim_status_events"

    id: Mapped[int] = mapped_column(IdType, primary_key=True)
    claim_id: Mapped[int | None] = mapped_column(IdType, ForeignKey("claims.id"), index=True)
    edi_file_id: Mapped[int] = mapped_column(IdType, ForeignKey("edi_files.id"), index=True)
    patient_control_number: Mapped[str] = mapped_column(String(50), index=True)  # REF*EJ / TRN02
    payer_claim_control_number: Mapped[str | None] = mapped_column(String(50))  # REF*1K
    category_code: Mapped[str] = mapped_column(String(3))  # STC01-1: A1, A2, A3, A6, A7...
    status_code: Mapped[str] = mapped_column(String(5))  # STC01-2
    entity_code: Mapped[str | None] = mapped_column(String(3))  # STC01-3
    free_text: Mapped[str | None] = mapped_column(Text)  # STC12
    effective_date: Mapped[date | None] = mapped_column(Date)  # STC02
    action_code: Mapped[str | None] = mapped_column(String(2))  # STC03: WQ accepted, U rejected
    charge_cents: Mapped[int | None] = mapped_column(BigInteger)  # STC04

    claim: Mapped[Claim | None] = relationship()
    edi_file: Mapped[EdiFile] = relationship()
