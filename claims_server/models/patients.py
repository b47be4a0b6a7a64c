"""Patients, their insurance coverages and their encounters (837 loops 2000B-2010CA).

Demographics are PHI, encrypted field by field (``claims_server.models.encrypted``:
AES-256-GCM bound to table, column, ``public_id`` and key id); code reads and writes
plain values through the ORM. Exact-match lookups go through the blind-index columns
(``*_index``: an HMAC of the normalised value, kept up to date on flush), see
``claims_server.security.search``.
"""

from __future__ import annotations

from datetime import date
from enum import StrEnum
from typing import TYPE_CHECKING

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    SmallInteger,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from claims_server.db import Base
from claims_server.models.common import (
    PHI_INFO,
    PHI_LENGTH,
    EnumText,
    IdType,
    PublicIdMixin,
    TimestampMixin,
    enum_check,
)
from claims_server.models.encrypted import EncryptedDate, EncryptedString, EncryptedText

if TYPE_CHECKING:
    from claims_server.models.payers import Payer
    from claims_server.models.practice import Practice, Provider


class Sex(StrEnum):
    """DMG03 administrative sex (5010: F, M, U)."""

    FEMALE = "F"
    MALE = "M"
    UNKNOWN = "U"


class RelationshipToSubscriber(StrEnum):
    """SBR02 / PAT01 individual relationship codes allowed in 5010 837P/837I."""

    SELF = "18"
    SPOUSE = "01"
    CHILD = "19"
    EMPLOYEE = "20"
    UNKNOWN = "21"
    ORGAN_DONOR = "39"
    CADAVER_DONOR = "40"
    LIFE_PARTNER = "53"
    OTHER = "G8"


class CoverageOrder(StrEnum):
    """Payer responsibility sequence: SBR01 P, S, T is coverage_order 1, 2, 3."""

    PRIMARY = "P"
    SECONDARY = "S"
    TERTIARY = "T"


class Patient(PublicIdMixin, TimestampMixin, Base):
    """A person the practice bills for (loop 2010BA when self-insured, else 2010CA)."""

    __tablename__ = "patients"
    # One account number per practice, compared through its blind index (the value is ciphertext).
    __table_args__ = (UniqueConstraint("practice_id", "account_number_index"),)

    id: Mapped[int] = mapped_column(IdType, primary_key=True)
    practice_id: Mapped[int] = mapped_column(IdType, ForeignKey("practices.id"), index=True)
    # The practice's account number for the patient (from its own PM/EHR system; printed on
    # statements): a patient identifier (HIPAA's "account numbers"), so encrypted. 38 characters
    # at most (the API's rule); found by ``account_number_index``.
    account_number: Mapped[str] = mapped_column(EncryptedString(PHI_LENGTH), info=PHI_INFO)
    account_number_index: Mapped[str | None] = mapped_column(String(64), index=True)  # blind index
    last_name: Mapped[str] = mapped_column(EncryptedString(PHI_LENGTH), info=PHI_INFO)  # NM103
    first_name: Mapped[str] = mapped_column(EncryptedString(PHI_LENGTH), info=PHI_INFO)  # NM104
    middle_name: Mapped[str | None] = mapped_column(EncryptedString(PHI_LENGTH), info=PHI_INFO)  # NM105
    name_suffix: Mapped[str | None] = mapped_column(EncryptedString(PHI_LENGTH), info=PHI_INFO)  # NM107
    birth_date: Mapped[date] = mapped_column(EncryptedDate(PHI_LENGTH), info=PHI_INFO)  # DMG02 (D8)
    # DMG03: F/M/U. No CHECK here: the column will hold ciphertext; services validate.
    sex: Mapped[str] = mapped_column(EncryptedString(PHI_LENGTH), info=PHI_INFO)
    address_line1: Mapped[str | None] = mapped_column(EncryptedString(PHI_LENGTH), info=PHI_INFO)  # N301
    address_line2: Mapped[str | None] = mapped_column(EncryptedString(PHI_LENGTH), info=PHI_INFO)  # N302
    city: Mapped[str | None] = mapped_column(EncryptedString(PHI_LENGTH), info=PHI_INFO)  # N401
    state: Mapped[str | None] = mapped_column(EncryptedString(PHI_LENGTH), info=PHI_INFO)  # N402
    zip_code: Mapped[str | None] = mapped_column(EncryptedString(PHI_LENGTH), info=PHI_INFO)  # N403
    phone: Mapped[str | None] = mapped_column(EncryptedString(PHI_LENGTH), info=PHI_INFO)
    email: Mapped[str | None] = mapped_column(EncryptedString(PHI_LENGTH), info=PHI_INFO)
    # Blind indexes (HMAC hex of normalised values), set on flush. member_id_index stays NULL:
    # member ids live on coverages (Coverage.member_id_index); name_dob_index = last|first|DOB.
    member_id_index: Mapped[str | None] = mapped_column(String(64), index=True)
    name_dob_index: Mapped[str | None] = mapped_column(String(64), index=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    # The integration (api_tokens.integration_name) whose token created it; NULL: staff or system
    owner_integration: Mapped[str | None] = mapped_column(String(100), index=True)

    practice: Mapped[Practice] = relationship(back_populates="patients")
    coverages: Mapped[list[Coverage]] = relationship(
        back_populates="patient",
        foreign_keys="Coverage.patient_id",
        order_by="(Coverage.coverage_order, Coverage.effective_start)",
    )
    encounters: Mapped[list[Encounter]] = relationship(back_populates="patient")


class Coverage(PublicIdMixin, TimestampMixin, Base):
    """A patient's insurance with one payer (loops 2000B/2010BA/2010BB; 2320 for COB).

    When the patient is not the subscriber (relationship != 18) the subscriber's
    demographics are kept here, and ``subscriber_patient_id`` links them when the
    subscriber is a patient of the practice too (a parent covering a child).
    """

    __tablename__ = "coverages"
    __table_args__ = (
        UniqueConstraint("patient_id", "coverage_order", "effective_start"),
        CheckConstraint("coverage_order IN (1, 2, 3)", name="coverage_order"),
        enum_check("relationship_code", RelationshipToSubscriber),
        CheckConstraint("effective_end IS NULL OR effective_end >= effective_start", name="effective_range"),
    )

    id: Mapped[int] = mapped_column(IdType, primary_key=True)
    patient_id: Mapped[int] = mapped_column(IdType, ForeignKey("patients.id", ondelete="CASCADE"), index=True)
    payer_id: Mapped[int] = mapped_column(IdType, ForeignKey("payers.id"), index=True)
    coverage_order: Mapped[int] = mapped_column(SmallInteger)  # 1 primary, 2 secondary, 3 tertiary (SBR01)
    member_id: Mapped[str] = mapped_column(
        EncryptedString(PHI_LENGTH), info=PHI_INFO
    )  # NM109 (2010BA, NM108 = MI)
    member_id_index: Mapped[str | None] = mapped_column(String(64), index=True)  # blind index of member_id
    group_number: Mapped[str | None] = mapped_column(String(50))  # SBR03
    group_name: Mapped[str | None] = mapped_column(String(60))  # SBR04
    plan_name: Mapped[str | None] = mapped_column(String(100))
    insurance_type_code: Mapped[str | None] = mapped_column(
        String(3)
    )  # SBR05 (Medicare secondary: 12, 13...)
    relationship_code: Mapped[RelationshipToSubscriber] = mapped_column(
        EnumText(RelationshipToSubscriber, 2), default=RelationshipToSubscriber.SELF
    )  # SBR02 (18) or PAT01
    subscriber_patient_id: Mapped[int | None] = mapped_column(IdType, ForeignKey("patients.id"), index=True)
    subscriber_last_name: Mapped[str | None] = mapped_column(EncryptedString(PHI_LENGTH), info=PHI_INFO)
    subscriber_first_name: Mapped[str | None] = mapped_column(EncryptedString(PHI_LENGTH), info=PHI_INFO)
    subscriber_middle_name: Mapped[str | None] = mapped_column(EncryptedString(PHI_LENGTH), info=PHI_INFO)
    subscriber_birth_date: Mapped[date | None] = mapped_column(EncryptedDate(PHI_LENGTH), info=PHI_INFO)
    subscriber_sex: Mapped[str | None] = mapped_column(EncryptedString(PHI_LENGTH), info=PHI_INFO)
    subscriber_address_line1: Mapped[str | None] = mapped_column(EncryptedString(PHI_LENGTH), info=PHI_INFO)
    subscriber_address_line2: Mapped[str | None] = mapped_column(EncryptedString(PHI_LENGTH), info=PHI_INFO)
    subscriber_city: Mapped[str | None] = mapped_column(EncryptedString(PHI_LENGTH), info=PHI_INFO)
    subscriber_state: Mapped[str | None] = mapped_column(EncryptedString(PHI_LENGTH), info=PHI_INFO)
    subscriber_zip_code: Mapped[str | None] = mapped_column(EncryptedString(PHI_LENGTH), info=PHI_INFO)
    effective_start: Mapped[date] = mapped_column(Date)
    effective_end: Mapped[date | None] = mapped_column(Date)
    active: Mapped[bool] = mapped_column(Boolean, default=True)

    patient: Mapped[Patient] = relationship(back_populates="coverages", foreign_keys=[patient_id])
    payer: Mapped[Payer] = relationship()
    subscriber_patient: Mapped[Patient | None] = relationship(foreign_keys=[subscriber_patient_id])

    @property
    def is_self(self) -> bool:
        """True when the patient is the subscriber (SBR02 = 18, no loop 2000C)."""
        return self.relationship_code == RelationshipToSubscriber.SELF

    @property
    def payer_responsibility(self) -> CoverageOrder:
        """SBR01 code for this coverage's order."""
        return (CoverageOrder.PRIMARY, CoverageOrder.SECONDARY, CoverageOrder.TERTIARY)[
            self.coverage_order - 1
        ]

    def is_effective_on(self, day: date) -> bool:
        """Whether the coverage is active and its dates include ``day``."""
        return (
            self.active
            and self.effective_start <= day
            and (self.effective_end is None or day <= self.effective_end)
        )


class Encounter(PublicIdMixin, TimestampMixin, Base):
    """A visit: who saw the patient, when and where; claims are built from it."""

    __tablename__ = "encounters"
    __table_args__ = (Index("ix_encounters_patient_id_date_of_service", "patient_id", "date_of_service"),)

    id: Mapped[int] = mapped_column(IdType, primary_key=True)
    patient_id: Mapped[int] = mapped_column(IdType, ForeignKey("patients.id"))
    rendering_provider_id: Mapped[int] = mapped_column(IdType, ForeignKey("providers.id"), index=True)
    facility_provider_id: Mapped[int | None] = mapped_column(IdType, ForeignKey("providers.id"))
    date_of_service: Mapped[date] = mapped_column(Date)
    place_of_service: Mapped[str] = mapped_column(String(2))  # CMS place-of-service code (CLM05-1)
    notes: Mapped[str | None] = mapped_column(EncryptedText(), info=PHI_INFO)

    patient: Mapped[Patient] = relationship(back_populates="encounters")
    rendering_provider: Mapped[Provider] = relationship(foreign_keys=[rendering_provider_id])
    facility_provider: Mapped[Provider | None] = relationship(foreign_keys=[facility_provider_id])
