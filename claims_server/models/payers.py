"""Payers (loop 2010BB) and the clearinghouse routes claims travel by (ISA/GS envelope)."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from claims_server.db import Base
from claims_server.models.common import (
    EnumText,
    IdType,
    JsonType,
    PublicIdMixin,
    TimestampMixin,
    enum_check,
)


class TransportKind(StrEnum):
    """How files reach the clearinghouse."""

    SFTP = "sftp"
    HTTP = "http"
    FOLDER = "folder"


class UsageIndicator(StrEnum):
    """ISA15: test or production interchange."""

    TEST = "T"
    PRODUCTION = "P"


class ClaimFilingIndicator(StrEnum):
    """SBR09 / CLP06 claim filing indicator codes (5010 837P/835)."""

    OTHER_NON_FEDERAL = "11"
    PPO = "12"
    POS = "13"
    EPO = "14"
    INDEMNITY = "15"
    HMO_MEDICARE_RISK = "16"
    DENTAL_MAINTENANCE = "17"
    AUTOMOBILE_MEDICAL = "AM"
    BLUE_CROSS_BLUE_SHIELD = "BL"
    CHAMPUS = "CH"
    COMMERCIAL = "CI"
    DISABILITY = "DS"
    FEDERAL_EMPLOYEES = "FI"
    HMO = "HM"
    LIABILITY_MEDICAL = "LM"
    MEDICARE_PART_A = "MA"
    MEDICARE_PART_B = "MB"
    MEDICAID = "MC"
    OTHER_FEDERAL = "OF"
    TITLE_V = "TV"
    VETERANS_AFFAIRS = "VA"
    WORKERS_COMPENSATION = "WC"
    MUTUALLY_DEFINED = "ZZ"


class ClearinghouseRoute(PublicIdMixin, TimestampMixin, Base):
    """One connection to a clearinghouse and the envelope identities used on it.

    ``settings`` holds transport parameters (host, port, remote folders, username, URL);
    secrets (passwords, private keys) are never stored here but referenced by name.
    """

    __tablename__ = "clearinghouse_routes"
    __table_args__ = (
        enum_check("transport", TransportKind),
        enum_check("usage_indicator", UsageIndicator),
    )

    id: Mapped[int] = mapped_column(IdType, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    transport: Mapped[TransportKind] = mapped_column(EnumText(TransportKind, 16))
    settings: Mapped[dict[str, Any]] = mapped_column(JsonType, default=dict)
    sender_id_qualifier: Mapped[str] = mapped_column(String(2), default="ZZ")  # ISA05
    sender_id: Mapped[str] = mapped_column(String(15))  # ISA06
    receiver_id_qualifier: Mapped[str] = mapped_column(String(2), default="ZZ")  # ISA07
    receiver_id: Mapped[str] = mapped_column(String(15))  # ISA08
    application_sender_code: Mapped[str] = mapped_column(String(15))  # GS02
    application_receiver_code: Mapped[str] = mapped_column(String(15))  # GS03
    usage_indicator: Mapped[UsageIndicator] = mapped_column(
        EnumText(UsageIndicator, 1), default=UsageIndicator.TEST
    )  # ISA15
    active: Mapped[bool] = mapped_column(Boolean, default=True)

    payers: Mapped[list[Payer]] = relationship(back_populates="route")


class Payer(PublicIdMixin, TimestampMixin, Base):
    """An insurance payer as the practice's clearinghouse knows it (loop 2010BB)."""

    __tablename__ = "payers"
    __table_args__ = (enum_check("claim_filing_indicator", ClaimFilingIndicator),)

    id: Mapped[int] = mapped_column(IdType, primary_key=True)
    name: Mapped[str] = mapped_column(String(60))  # NM103 (2010BB)
    # NM109 (2010BB, NM108 = PI): the clearinghouse's payer id; one row per id.
    payer_id: Mapped[str] = mapped_column(String(80), unique=True)
    claim_filing_indicator: Mapped[ClaimFilingIndicator] = mapped_column(
        EnumText(ClaimFilingIndicator, 2)
    )  # SBR09 default for claims to this payer
    route_id: Mapped[int | None] = mapped_column(IdType, ForeignKey("clearinghouse_routes.id"), index=True)
    timely_filing_days: Mapped[int] = mapped_column(Integer, default=365)
    address_line1: Mapped[str | None] = mapped_column(String(55))  # 2010BB N301
    address_line2: Mapped[str | None] = mapped_column(String(55))  # 2010BB N302
    city: Mapped[str | None] = mapped_column(String(30))  # 2010BB N401
    state: Mapped[str | None] = mapped_column(String(2))  # 2010BB N402
    zip_code: Mapped[str | None] = mapped_column(String(9))  # 2010BB N403
    # 835 N1*PR / TRN03 identify the payer differently from the 837 payer id (often 1+EIN).
    remittance_payer_identifier: Mapped[str | None] = mapped_column(String(50), index=True)
    supports_eligibility: Mapped[bool] = mapped_column(Boolean, default=True)  # accepts 270
    active: Mapped[bool] = mapped_column(Boolean, default=True)

    route: Mapped[ClearinghouseRoute | None] = relationship(back_populates="payers")
