"""Claims, their diagnoses and service lines (837P/837I loops 2300, 2400).

``ServiceLine.units`` is a decimal *string* (``String(15)``, e.g. ``"1"``, ``"0.5"``):
SV104/SV205 and SVC05 are X12 type R, so fractional units are legal and must round-trip
exactly; an integer column would silently lose them. Use ``ServiceLine.unit_count`` for
the ``Decimal`` value.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from claims_server.db import Base
from claims_server.models.common import (
    PHI_INFO,
    PHI_LENGTH,
    CreatedMixin,
    EnumText,
    IdType,
    JsonType,
    PublicIdMixin,
    TimestampMixin,
    UTCDateTime,
    enum_check,
    sql_in,
    utcnow,
)
from claims_server.models.encrypted import EncryptedString, EncryptedText

if TYPE_CHECKING:
    from claims_server.models.patients import Coverage, Encounter, Patient
    from claims_server.models.practice import Practice, Provider


class ClaimKind(StrEnum):
    """Which 837 the claim is sent as: 005010X222A1 (P) or 005010X223A2 (I)."""

    PROFESSIONAL = "professional"
    INSTITUTIONAL = "institutional"


class ClaimState(StrEnum):
    """The claim's life (see ARCHITECTURE.md, state machine)."""

    DRAFT = "draft"
    READY = "ready"
    BATCHED = "batched"
    SUBMITTED = "submitted"
    ACCEPTED = "accepted"  # 999 accepted the transaction set
    ACKNOWLEDGED = "acknowledged"  # 277CA: payer front end accepted the claim
    REJECTED = "rejected"  # 999 or 277CA rejection
    PAID = "paid"
    PARTIALLY_PAID = "partially_paid"
    DENIED = "denied"
    CLOSED = "closed"
    VOIDED = "voided"


class ClaimFrequency(StrEnum):
    """CLM05-3 claim frequency type code."""

    ORIGINAL = "1"
    REPLACEMENT = "7"  # corrected claim, with REF*F8 = payer claim control number
    VOID = "8"


class UnitBasis(StrEnum):
    """SV103 unit or basis for measurement."""

    UNITS = "UN"
    MINUTES = "MJ"  # anesthesia minutes


#: Diagnosis pointer positions: 837P HI carries 12, 837I up to 25 (the scrubber enforces per kind).
MAX_DIAGNOSIS_POSITION = 25


class Claim(PublicIdMixin, TimestampMixin, Base):
    """One claim to one payer (loop 2300), billed by the practice for one patient.

    The payer is reached through ``coverage`` (the coverage whose order is
    ``coverage_order``); the billing provider is the practice (loop 2010AA).
    ``version`` is an optimistic-concurrency counter: a stale update raises
    ``StaleDataError`` instead of overwriting a concurrent change.
    """

    __tablename__ = "claims"
    __table_args__ = (
        enum_check("claim_kind", ClaimKind),
        enum_check("state", ClaimState),
        enum_check("frequency_code", ClaimFrequency),
        CheckConstraint("coverage_order IN (1, 2, 3)", name="coverage_order"),
        CheckConstraint("total_charge_cents >= 0", name="total_charge_nonnegative"),
        Index("ix_claims_state_state_changed_at", "state", "state_changed_at"),
    )

    id: Mapped[int] = mapped_column(IdType, primary_key=True)
    practice_id: Mapped[int] = mapped_column(IdType, ForeignKey("practices.id"), index=True)
    patient_id: Mapped[int] = mapped_column(IdType, ForeignKey("patients.id"), index=True)
    encounter_id: Mapped[int | None] = mapped_column(IdType, ForeignKey("encounters.id"), index=True)
    coverage_id: Mapped[int] = mapped_column(IdType, ForeignKey("coverages.id"), index=True)
    coverage_order: Mapped[int] = mapped_column(SmallInteger, default=1)  # SBR01 of 2000B: 1 P, 2 S, 3 T
    claim_kind: Mapped[ClaimKind] = mapped_column(EnumText(ClaimKind, 16), default=ClaimKind.PROFESSIONAL)
    # CLM01: our id for the claim, echoed in 277CA (REF*EJ) and 835 CLP01. The TR3
    # allows 38 characters but many payers keep only 20, so 20 is the limit.
    patient_control_number: Mapped[str] = mapped_column(String(20), unique=True)
    frequency_code: Mapped[ClaimFrequency] = mapped_column(
        EnumText(ClaimFrequency, 1), default=ClaimFrequency.ORIGINAL
    )  # CLM05-3
    original_claim_id: Mapped[int | None] = mapped_column(IdType, ForeignKey("claims.id"), index=True)
    payer_claim_control_number: Mapped[str | None] = mapped_column(String(50))  # REF*F8 / 835 CLP07
    # The integration (api_tokens.integration_name) whose token created it; NULL: staff or system
    owner_integration: Mapped[str | None] = mapped_column(String(100), index=True)
    # The charge file this claim came from (``claims-server claims import``), if any.
    charge_import_id: Mapped[int | None] = mapped_column(IdType, ForeignKey("charge_imports.id"), index=True)
    state: Mapped[ClaimState] = mapped_column(EnumText(ClaimState, 16), default=ClaimState.DRAFT)
    state_changed_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    place_of_service: Mapped[str | None] = mapped_column(String(2))  # CLM05-1 (837P)
    facility_type_code: Mapped[str | None] = mapped_column(String(3))  # CLM05-1 (837I type of bill, 2 digits)
    total_charge_cents: Mapped[int] = mapped_column(BigInteger, default=0)  # CLM02
    provider_signature_on_file: Mapped[str] = mapped_column(String(1), default="Y")  # CLM06
    assignment_code: Mapped[str] = mapped_column(String(1), default="A")  # CLM07: A, B, C
    benefits_assigned: Mapped[str] = mapped_column(String(1), default="Y")  # CLM08: Y, N, W
    release_of_information: Mapped[str] = mapped_column(String(1), default="Y")  # CLM09: I, Y
    related_causes: Mapped[list[str] | None] = mapped_column(JsonType)  # CLM11-1..3: AA, EM, OA
    accident_state: Mapped[str | None] = mapped_column(String(2))  # CLM11-4 (auto accident)
    onset_date: Mapped[date | None] = mapped_column(Date)  # DTP*431
    accident_date: Mapped[date | None] = mapped_column(Date)  # DTP*439
    statement_from: Mapped[date | None] = mapped_column(Date)  # DTP*434 (837I)
    statement_to: Mapped[date | None] = mapped_column(Date)  # DTP*434 (837I)
    admission_type_code: Mapped[str | None] = mapped_column(String(1))  # CL101 (837I)
    admission_source_code: Mapped[str | None] = mapped_column(String(1))  # CL102 (837I)
    patient_status_code: Mapped[str | None] = mapped_column(String(2))  # CL103 (837I)
    prior_authorization: Mapped[str | None] = mapped_column(String(50))  # REF*G1
    referral_number: Mapped[str | None] = mapped_column(String(50))  # REF*9F
    rendering_provider_id: Mapped[int | None] = mapped_column(IdType, ForeignKey("providers.id"))  # 2310B
    referring_provider_id: Mapped[int | None] = mapped_column(IdType, ForeignKey("providers.id"))  # 2310A
    supervising_provider_id: Mapped[int | None] = mapped_column(IdType, ForeignKey("providers.id"))  # 2310D
    facility_provider_id: Mapped[int | None] = mapped_column(IdType, ForeignKey("providers.id"))  # 2310C
    submitted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    scrubbed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    scrub_findings: Mapped[list[dict[str, Any]] | None] = mapped_column(JsonType)  # last scrub's Findings
    version: Mapped[int] = mapped_column(Integer, default=1)

    __mapper_args__ = {"version_id_col": version}

    patient: Mapped[Patient] = relationship()
    practice: Mapped[Practice] = relationship()
    encounter: Mapped[Encounter | None] = relationship()
    coverage: Mapped[Coverage] = relationship()
    original_claim: Mapped[Claim | None] = relationship(remote_side=[id])
    rendering_provider: Mapped[Provider | None] = relationship(foreign_keys=[rendering_provider_id])
    referring_provider: Mapped[Provider | None] = relationship(foreign_keys=[referring_provider_id])
    supervising_provider: Mapped[Provider | None] = relationship(foreign_keys=[supervising_provider_id])
    facility_provider: Mapped[Provider | None] = relationship(foreign_keys=[facility_provider_id])
    diagnoses: Mapped[list[ClaimDiagnosis]] = relationship(
        back_populates="claim",
        cascade="all, delete-orphan",
        passive_deletes=True,
        order_by="ClaimDiagnosis.position",
    )
    service_lines: Mapped[list[ServiceLine]] = relationship(
        back_populates="claim",
        cascade="all, delete-orphan",
        passive_deletes=True,
        order_by="ServiceLine.line_number",
    )

    def line_charges_cents(self) -> int:
        """Sum of the service lines' charges; CLM02 must equal it (TR3 2300 CLM02 note)."""
        return sum(line.charge_cents for line in self.service_lines)


class ClaimDiagnosis(PublicIdMixin, Base):
    """One diagnosis on a claim (HI segment), in pointer order.

    The code is PHI (it says what the patient has): it is encrypted like the other PHI
    columns, bound to ``public_id``, a row identity known before the INSERT.
    """

    __tablename__ = "claim_diagnoses"
    __table_args__ = (
        UniqueConstraint("claim_id", "position"),
        CheckConstraint(f"position >= 1 AND position <= {MAX_DIAGNOSIS_POSITION}", name="position_range"),
    )

    id: Mapped[int] = mapped_column(IdType, primary_key=True)
    claim_id: Mapped[int] = mapped_column(IdType, ForeignKey("claims.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(SmallInteger)  # 1 = principal; SV107 points at these
    code: Mapped[str] = mapped_column(EncryptedString(PHI_LENGTH), info=PHI_INFO)  # HI0x-2, ICD-10-CM, no dot
    qualifier: Mapped[str] = mapped_column(String(3), default="ABF")  # HI0x-1: ABK principal, ABF other

    claim: Mapped[Claim] = relationship(back_populates="diagnoses")


class ClaimNoteKind(StrEnum):
    """What a claim note is. ``reason``: the words a user gave for a change of the claim (a
    transition, a replacement, a void); the change's audit event names the note."""

    REASON = "reason"


class ClaimNote(PublicIdMixin, CreatedMixin, Base):
    """Free text a user wrote about a claim: PHI (it may name the patient), so encrypted and
    bound to ``public_id``, never copied into ``audit_events.details`` (which only names the
    note by its public id).

    Written once, like the audit trail it accompanies: the database refuses DELETE and any
    UPDATE but the one key rotation makes to ``note`` (``claims_server.security.immutability``).
    """

    __tablename__ = "claim_notes"
    __table_args__ = (enum_check("kind", ClaimNoteKind),)

    id: Mapped[int] = mapped_column(IdType, primary_key=True)
    claim_id: Mapped[int] = mapped_column(IdType, ForeignKey("claims.id"), index=True)
    author_user_id: Mapped[int | None] = mapped_column(IdType, ForeignKey("users.id"))  # NULL: system/token
    kind: Mapped[ClaimNoteKind] = mapped_column(EnumText(ClaimNoteKind, 16))
    note: Mapped[str] = mapped_column(EncryptedText(), info=PHI_INFO)


class ServiceLine(TimestampMixin, Base):
    """One service line (loop 2400: LX, SV1/SV2, DTP*472, REF*6R, LIN/CTP)."""

    __tablename__ = "service_lines"
    __table_args__ = (
        UniqueConstraint("claim_id", "line_number"),
        UniqueConstraint("claim_id", "line_control_number"),
        CheckConstraint("line_number >= 1 AND line_number <= 999", name="line_number_range"),
        CheckConstraint("charge_cents >= 0", name="charge_nonnegative"),
        enum_check("unit_basis", UnitBasis),
        CheckConstraint(sql_in("drug_unit", ["F2", "GR", "ME", "ML", "UN"]), name="drug_unit"),  # CTP05-1
        # The work queue's date-of-service / filing-deadline sort reads a claim's first date here.
        Index("ix_service_lines_claim_id_service_date_from", "claim_id", "service_date_from"),
    )

    id: Mapped[int] = mapped_column(IdType, primary_key=True)
    claim_id: Mapped[int] = mapped_column(IdType, ForeignKey("claims.id", ondelete="CASCADE"), index=True)
    line_number: Mapped[int] = mapped_column(Integer)  # LX01 (837P allows 50, 837I 999)
    line_control_number: Mapped[str] = mapped_column(String(50))  # REF*6R, echoed in 835 REF*6R
    procedure_qualifier: Mapped[str] = mapped_column(String(2), default="HC")  # SV101-1 (HC = CPT/HCPCS)
    procedure_code: Mapped[str] = mapped_column(String(48))  # SV101-2
    modifier1: Mapped[str | None] = mapped_column(String(2))  # SV101-3
    modifier2: Mapped[str | None] = mapped_column(String(2))  # SV101-4
    modifier3: Mapped[str | None] = mapped_column(String(2))  # SV101-5
    modifier4: Mapped[str | None] = mapped_column(String(2))  # SV101-6
    description: Mapped[str | None] = mapped_column(String(80))  # SV101-7 (unlisted codes)
    revenue_code: Mapped[str | None] = mapped_column(String(4))  # SV201 (837I)
    charge_cents: Mapped[int] = mapped_column(BigInteger)  # SV102 / SV203
    unit_basis: Mapped[UnitBasis] = mapped_column(EnumText(UnitBasis, 2), default=UnitBasis.UNITS)  # SV103
    units: Mapped[str] = mapped_column(String(15), default="1")  # SV104: decimal string, see module doc
    place_of_service: Mapped[str | None] = mapped_column(String(2))  # SV105, when it differs from CLM05-1
    diagnosis_pointers: Mapped[str] = mapped_column(String(11), default="1")  # SV107: "1,2" (up to 4)
    emergency_indicator: Mapped[str | None] = mapped_column(String(1))  # SV109 (Y)
    service_date_from: Mapped[date] = mapped_column(Date)  # DTP*472 (D8, or RD8 start)
    service_date_to: Mapped[date | None] = mapped_column(Date)  # DTP*472 RD8 end
    ndc: Mapped[str | None] = mapped_column(String(11))  # LIN03 (N4 qualifier), 11 digits 5-4-2
    drug_quantity: Mapped[str | None] = mapped_column(String(15))  # CTP04, decimal string
    drug_unit: Mapped[str | None] = mapped_column(String(2))  # CTP05-1
    rendering_provider_id: Mapped[int | None] = mapped_column(IdType, ForeignKey("providers.id"))  # 2420A

    claim: Mapped[Claim] = relationship(back_populates="service_lines")
    rendering_provider: Mapped[Provider | None] = relationship()

    @property
    def modifiers(self) -> list[str]:
        """The modifiers present, in SV101-3..6 order."""
        return [m for m in (self.modifier1, self.modifier2, self.modifier3, self.modifier4) if m]

    @property
    def unit_count(self) -> Decimal:
        """``units`` as an exact Decimal."""
        return Decimal(self.units)

    @property
    def pointer_positions(self) -> list[int]:
        """SV107 pointers as integers (positions in ``Claim.diagnoses``)."""
        return [int(p) for p in self.diagnosis_pointers.split(",") if p.strip()]
