"""Eligibility checks: a 270 request about one coverage and the 271 answer."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from claims_server.db import Base
from claims_server.models.common import (
    EnumText,
    IdType,
    JsonType,
    PublicIdMixin,
    UTCDateTime,
    enum_check,
    utcnow,
)

if TYPE_CHECKING:
    from claims_server.models.patients import Coverage


class EligibilityStatus(StrEnum):
    PENDING = "pending"  # 270 built, not sent
    SENT = "sent"
    ACTIVE = "active"  # 271 EB01 = 1
    INACTIVE = "inactive"  # 271 EB01 = 6
    ERROR = "error"  # AAA rejection or transport failure; see error
    TIMEOUT = "timeout"


class EligibilityCheck(PublicIdMixin, Base):
    """One 270/271 exchange; ``trace_number`` (TRN02 of the 270) matches the answer."""

    __tablename__ = "eligibility_checks"
    __table_args__ = (enum_check("status", EligibilityStatus),)

    id: Mapped[int] = mapped_column(IdType, primary_key=True)
    coverage_id: Mapped[int] = mapped_column(IdType, ForeignKey("coverages.id"), index=True)
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    requested_by_user_id: Mapped[int | None] = mapped_column(IdType, ForeignKey("users.id"))
    trace_number: Mapped[str | None] = mapped_column(String(50), unique=True)  # 2000C TRN02
    service_type_codes: Mapped[list[str]] = mapped_column(JsonType, default=list)  # EQ01, e.g. ["30"]
    request_file_id: Mapped[int | None] = mapped_column(IdType, ForeignKey("edi_files.id"))
    response_file_id: Mapped[int | None] = mapped_column(IdType, ForeignKey("edi_files.id"))
    status: Mapped[EligibilityStatus] = mapped_column(
        EnumText(EligibilityStatus, 10), default=EligibilityStatus.PENDING
    )
    responded_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    benefits_summary: Mapped[dict[str, Any] | None] = mapped_column(JsonType)  # copay, deductible left, ...
    error: Mapped[dict[str, Any] | None] = mapped_column(JsonType)  # AAA codes or Findings

    coverage: Mapped[Coverage] = relationship()
