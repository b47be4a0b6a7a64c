"""Outbound batches of claims and the envelope control numbers they consume.

Control numbers (ISA13, GS06, ST02) are handed out from ``ControlNumberCounter`` rows,
one per (route, kind of number), by an atomic ``UPDATE ... SET last_value = last_value
+ 1`` in the service layer. ``Interchange`` records what each batch used, and its unique
(route, isa13) makes a reused interchange number impossible: clearinghouses reject a
repeated ISA13 from the same sender as a duplicate file (TA1 025).
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from claims_server.db import Base
from claims_server.models.common import (
    EnumText,
    IdType,
    JsonType,
    PublicIdMixin,
    TimestampMixin,
    UTCDateTime,
    enum_check,
    utcnow,
)

if TYPE_CHECKING:
    from claims_server.models.claims import Claim
    from claims_server.models.payers import ClearinghouseRoute


class TransactionKind(StrEnum):
    """Outbound claim transaction sets."""

    PROFESSIONAL_837 = "837P"
    INSTITUTIONAL_837 = "837I"


class BatchState(StrEnum):
    """A batch's progress from assembly to the clearinghouse's 999."""

    OPEN = "open"  # claims being added
    BUILT = "built"  # 837 file written, control numbers assigned
    SENDING = "sending"
    SENT = "sent"
    ACCEPTED = "accepted"  # 999 AK9 = A
    PARTIALLY_ACCEPTED = "partially_accepted"  # 999 AK9 = P
    REJECTED = "rejected"  # TA1 or 999 AK9 = R
    FAILED = "failed"  # transport gave up after retries


class ControlNumberKind(StrEnum):
    """The three envelope counters."""

    INTERCHANGE = "isa13"
    GROUP = "gs06"
    TRANSACTION_SET = "st02"


#: Largest value each counter may reach: ISA13 is N0 9/9, GS06 N0 1/9, ST02 AN 4/9.
CONTROL_NUMBER_MAX = 999_999_999


class SubmissionBatch(PublicIdMixin, TimestampMixin, Base):
    """Claims sent together in one 837 interchange over one route."""

    __tablename__ = "submission_batches"
    __table_args__ = (
        enum_check("kind", TransactionKind),
        enum_check("state", BatchState),
        CheckConstraint("attempt_count >= 0", name="attempt_count_nonnegative"),
    )

    id: Mapped[int] = mapped_column(IdType, primary_key=True)
    route_id: Mapped[int] = mapped_column(IdType, ForeignKey("clearinghouse_routes.id"), index=True)
    kind: Mapped[TransactionKind] = mapped_column(EnumText(TransactionKind, 4))
    state: Mapped[BatchState] = mapped_column(EnumText(BatchState, 20), default=BatchState.OPEN, index=True)
    built_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    attempt_count: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)  # transport error text, never PHI

    route: Mapped[ClearinghouseRoute] = relationship()
    claims: Mapped[list[BatchClaim]] = relationship(
        back_populates="batch",
        cascade="all, delete-orphan",
        passive_deletes=True,
        order_by="BatchClaim.position",
    )
    interchanges: Mapped[list[Interchange]] = relationship(back_populates="batch")


class BatchClaim(Base):
    """A claim's place in a batch: its transaction set (ST02) and position in it."""

    __tablename__ = "batch_claims"
    __table_args__ = (UniqueConstraint("batch_id", "position"),)

    batch_id: Mapped[int] = mapped_column(
        IdType, ForeignKey("submission_batches.id", ondelete="CASCADE"), primary_key=True
    )
    claim_id: Mapped[int] = mapped_column(IdType, ForeignKey("claims.id"), primary_key=True, index=True)
    position: Mapped[int] = mapped_column(Integer)  # 1-based order of the claim in the file
    transaction_control_number: Mapped[str | None] = mapped_column(String(9))  # ST02 carrying the claim

    batch: Mapped[SubmissionBatch] = relationship(back_populates="claims")
    claim: Mapped[Claim] = relationship()


class ControlNumberCounter(Base):
    """The last control number handed out for one route and kind; never goes back."""

    __tablename__ = "control_number_counters"
    __table_args__ = (
        UniqueConstraint("route_id", "number_kind"),
        enum_check("number_kind", ControlNumberKind),
        CheckConstraint(f"last_value >= 0 AND last_value <= {CONTROL_NUMBER_MAX}", name="last_value_range"),
    )

    id: Mapped[int] = mapped_column(IdType, primary_key=True)
    route_id: Mapped[int] = mapped_column(IdType, ForeignKey("clearinghouse_routes.id"))
    number_kind: Mapped[ControlNumberKind] = mapped_column(EnumText(ControlNumberKind, 8))
    last_value: Mapped[int] = mapped_column(BigInteger, default=0)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class Interchange(Base):
    """One outbound ISA/IEA envelope: the control numbers it used and its TA1 answer."""

    __tablename__ = "interchanges"
    __table_args__ = (
        UniqueConstraint("route_id", "isa13"),
        CheckConstraint(f"isa13 >= 1 AND isa13 <= {CONTROL_NUMBER_MAX}", name="isa13_range"),
    )

    id: Mapped[int] = mapped_column(IdType, primary_key=True)
    route_id: Mapped[int] = mapped_column(IdType, ForeignKey("clearinghouse_routes.id"))
    batch_id: Mapped[int | None] = mapped_column(IdType, ForeignKey("submission_batches.id"), index=True)
    edi_file_id: Mapped[int | None] = mapped_column(IdType, ForeignKey("edi_files.id"), index=True)
    isa13: Mapped[int] = mapped_column(BigInteger)  # written zero-padded to 9 digits
    group_control_numbers: Mapped[list[int]] = mapped_column(JsonType, default=list)  # GS06 values
    transaction_control_numbers: Mapped[list[str]] = mapped_column(JsonType, default=list)  # ST02 values
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    ta1_status: Mapped[str | None] = mapped_column(String(1))  # TA104: A, E, R
    ta1_note_code: Mapped[str | None] = mapped_column(String(3))  # TA105
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    batch: Mapped[SubmissionBatch | None] = relationship(back_populates="interchanges")
