"""835 remittances as received: payment (BPR/TRN), claims (CLP), lines (SVC), CAS, PLB.

These rows record what the payer said, exactly; what it did to balances lives in the
ledger. ``Adjustment.amount_cents`` keeps the CAS sign (negative amounts are legal,
e.g. on reversals).
"""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import TYPE_CHECKING

from sqlalchemy import BigInteger, CheckConstraint, Date, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from claims_server.db import Base
from claims_server.models.common import (
    CreatedMixin,
    EnumText,
    IdType,
    JsonType,
    PublicIdMixin,
    TimestampMixin,
    UTCDateTime,
    enum_check,
)

if TYPE_CHECKING:
    from claims_server.models.claims import Claim, ServiceLine
    from claims_server.models.edi_files import EdiFile
    from claims_server.models.payers import Payer


class RemittanceState(StrEnum):
    RECEIVED = "received"  # parsed and stored, not posted
    POSTED = "posted"  # every claim payment posted or queued
    FAILED = "failed"  # posting stopped with an error; nothing was applied
    # Every claim of the file repeats an adjudication already posted (a re-issued 835):
    # its money waits in unapplied payments until a supervisor posts or rejects it.
    HELD = "held"


class AdjudicationKind(StrEnum):
    """What one CLP is in its payer's history of the claim (docs/adjudication-history.md)."""

    ORIGINAL = "original"  # the first current adjudication of the claim by this payer
    CORRECTION = "correction"  # an adjudication after the payer reversed (or denied) an earlier one
    REVERSAL = "reversal"  # CLP02 = 22: takes back a named earlier adjudication
    UNMATCHED = "unmatched"  # matched none of our claims (money in unapplied payments)
    INFORMATIONAL = "informational"  # CLP02 23/25: no money moves


class AdjudicationState(StrEnum):
    """Where one CLP stands; the ledger reflects the ``current`` (and ``applied``) ones only."""

    CURRENT = "current"  # posted and in force
    REVERSED = "reversed"  # posted, then taken back by a reversal (its entry mirrored)
    SUPERSEDED = "superseded"  # a denial (CLP02 4, no money) replaced by a later adjudication
    APPLIED = "applied"  # a reversal that took back its original
    HELD = "held"  # not posted: its money waits in unapplied payments (see hold_reason)
    REJECTED = "rejected"  # a held adjudication a supervisor rejected (its hold undone)
    UNMATCHED = "unmatched"  # no claim of ours: money in unapplied payments, a work item
    NONE = "none"  # informational: nothing posted


class AdjudicationHold(StrEnum):
    """Why an adjudication is held rather than posted."""

    POSSIBLE_DUPLICATE = "possible_duplicate"  # a second original with no reversal between
    WOULD_OVERDRAW = "would_overdraw"  # posting would leave a payer's A/R below zero
    REVERSAL_UNMATCHED = "reversal_unmatched"  # a reversal naming no current adjudication


class AdjustmentGroup(StrEnum):
    """CAS01 claim adjustment group codes."""

    CONTRACTUAL = "CO"
    PATIENT_RESPONSIBILITY = "PR"
    OTHER = "OA"
    PAYER_INITIATED = "PI"
    CORRECTION_REVERSAL = "CR"


class Remittance(PublicIdMixin, TimestampMixin, Base):
    """One 835 transaction set: a payment (or non-payment) from one payer.

    Unique (payer_identifier, trace_number) is the reassociation key of the TR3
    (TRN02 + TRN03): the same payment posted twice is refused by the database.
    """

    __tablename__ = "remittances"
    __table_args__ = (
        UniqueConstraint("payer_identifier", "trace_number"),
        enum_check("state", RemittanceState),
    )

    id: Mapped[int] = mapped_column(IdType, primary_key=True)
    edi_file_id: Mapped[int] = mapped_column(IdType, ForeignKey("edi_files.id"), index=True)
    payer_id: Mapped[int | None] = mapped_column(IdType, ForeignKey("payers.id"), index=True)  # NULL: unknown
    transaction_control_number: Mapped[str | None] = mapped_column(String(9))  # ST02 within the file
    handling_code: Mapped[str] = mapped_column(String(1))  # BPR01: I, H, C, D, P, U, X
    payment_amount_cents: Mapped[int] = mapped_column(BigInteger)  # BPR02
    credit_debit_flag: Mapped[str] = mapped_column(String(1), default="C")  # BPR03
    payment_method: Mapped[str] = mapped_column(String(3))  # BPR04: ACH, CHK, BOP, FWT, NON
    payment_date: Mapped[date | None] = mapped_column(Date)  # BPR16
    trace_number: Mapped[str] = mapped_column(String(50))  # TRN02: check or EFT trace number
    payer_identifier: Mapped[str] = mapped_column(String(10))  # TRN03: 1 + payer EIN, usually
    payer_name: Mapped[str | None] = mapped_column(String(60))  # N1*PR N102
    payee_npi: Mapped[str | None] = mapped_column(String(10))  # N1*PE N104 (XX)
    production_date: Mapped[date | None] = mapped_column(Date)  # DTM*405
    state: Mapped[RemittanceState] = mapped_column(
        EnumText(RemittanceState, 16), default=RemittanceState.RECEIVED
    )
    posted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    edi_file: Mapped[EdiFile] = relationship()
    payer: Mapped[Payer | None] = relationship()
    claim_payments: Mapped[list[ClaimPayment]] = relationship(
        back_populates="remittance",
        cascade="all, delete-orphan",
        passive_deletes=True,
        order_by="ClaimPayment.position",
    )
    provider_adjustments: Mapped[list[ProviderAdjustment]] = relationship(
        back_populates="remittance", cascade="all, delete-orphan", passive_deletes=True
    )


class ClaimPayment(CreatedMixin, Base):
    """One CLP loop (2100): the payer's decision on one claim; claim NULL when unmatched.

    Each matched CLP is one step of its payer's adjudication history of the encounter,
    keyed by (``ledger_claim_id``, ``payer_id``) with ``payer_claim_control_number``
    (CLP07) naming the payer's claim: ``adjudication_kind`` says what it is, and
    ``adjudication_state`` whether the ledger reflects it (docs/adjudication-history.md).
    """

    __tablename__ = "claim_payments"
    __table_args__ = (
        enum_check("adjudication_kind", AdjudicationKind),
        enum_check("adjudication_state", AdjudicationState),
        enum_check("hold_reason", AdjudicationHold),
        Index("ix_claim_payments_history", "ledger_claim_id", "payer_id"),
    )

    id: Mapped[int] = mapped_column(IdType, primary_key=True)
    remittance_id: Mapped[int] = mapped_column(
        IdType, ForeignKey("remittances.id", ondelete="CASCADE"), index=True
    )
    claim_id: Mapped[int | None] = mapped_column(IdType, ForeignKey("claims.id"), index=True)
    position: Mapped[int] = mapped_column(Integer, default=1)  # order within the 835
    patient_control_number: Mapped[str] = mapped_column(String(38), index=True)  # CLP01
    status_code: Mapped[str] = mapped_column(String(2))  # CLP02: 1, 2, 3, 4, 19, 20, 21, 22, 23
    charge_cents: Mapped[int] = mapped_column(BigInteger)  # CLP03
    paid_cents: Mapped[int] = mapped_column(BigInteger)  # CLP04
    patient_responsibility_cents: Mapped[int | None] = mapped_column(BigInteger)  # CLP05
    claim_filing_indicator: Mapped[str | None] = mapped_column(String(2))  # CLP06
    payer_claim_control_number: Mapped[str | None] = mapped_column(String(50))  # CLP07
    facility_type_code: Mapped[str | None] = mapped_column(String(2))  # CLP08
    claim_frequency_code: Mapped[str | None] = mapped_column(String(1))  # CLP09
    crossover_payer_name: Mapped[str | None] = mapped_column(String(60))  # NM1*TT NM103
    crossover_payer_id: Mapped[str | None] = mapped_column(String(80))  # NM1*TT NM109
    service_date_from: Mapped[date | None] = mapped_column(Date)  # DTM*232
    service_date_to: Mapped[date | None] = mapped_column(Date)  # DTM*233
    # The adjudication history (NULL on rows written before it existed and on unmatched CLPs).
    payer_id: Mapped[int | None] = mapped_column(IdType, ForeignKey("payers.id"))  # who adjudicated
    ledger_claim_id: Mapped[int | None] = mapped_column(IdType, ForeignKey("claims.id"))  # A/R's claim
    adjudication_kind: Mapped[AdjudicationKind | None] = mapped_column(EnumText(AdjudicationKind, 16))
    adjudication_state: Mapped[AdjudicationState | None] = mapped_column(EnumText(AdjudicationState, 16))
    hold_reason: Mapped[AdjudicationHold | None] = mapped_column(EnumText(AdjudicationHold, 24))
    reverses_claim_payment_id: Mapped[int | None] = mapped_column(
        IdType, ForeignKey("claim_payments.id"), index=True
    )  # on a reversal: the adjudication it took back
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime())  # a supervisor's post / reject
    decided_by: Mapped[str | None] = mapped_column(String(100))  # username or integration, never PHI

    remittance: Mapped[Remittance] = relationship(back_populates="claim_payments")
    claim: Mapped[Claim | None] = relationship(foreign_keys="ClaimPayment.claim_id")
    line_payments: Mapped[list[LinePayment]] = relationship(
        back_populates="claim_payment",
        cascade="all, delete-orphan",
        passive_deletes=True,
        order_by="LinePayment.position",
    )
    adjustments: Mapped[list[Adjustment]] = relationship(
        back_populates="claim_payment", cascade="all, delete-orphan", passive_deletes=True
    )


class LinePayment(Base):
    """One SVC loop (2110); service line NULL when it matched no line of ours."""

    __tablename__ = "line_payments"

    id: Mapped[int] = mapped_column(IdType, primary_key=True)
    claim_payment_id: Mapped[int] = mapped_column(
        IdType, ForeignKey("claim_payments.id", ondelete="CASCADE"), index=True
    )
    # SET NULL: removing a (draft) line must not erase what the payer reported.
    service_line_id: Mapped[int | None] = mapped_column(
        IdType, ForeignKey("service_lines.id", ondelete="SET NULL"), index=True
    )
    position: Mapped[int] = mapped_column(Integer, default=1)
    procedure_qualifier: Mapped[str] = mapped_column(String(2), default="HC")  # SVC01-1
    procedure_code: Mapped[str] = mapped_column(String(48))  # SVC01-2
    modifier1: Mapped[str | None] = mapped_column(String(2))  # SVC01-3
    modifier2: Mapped[str | None] = mapped_column(String(2))
    modifier3: Mapped[str | None] = mapped_column(String(2))
    modifier4: Mapped[str | None] = mapped_column(String(2))
    charge_cents: Mapped[int] = mapped_column(BigInteger)  # SVC02
    paid_cents: Mapped[int] = mapped_column(BigInteger)  # SVC03
    revenue_code: Mapped[str | None] = mapped_column(String(4))  # SVC04
    units: Mapped[str | None] = mapped_column(String(15))  # SVC05, decimal string
    original_procedure_code: Mapped[str | None] = mapped_column(String(48))  # SVC06-2 when recoded
    line_control_number: Mapped[str | None] = mapped_column(String(50))  # REF*6R
    service_date: Mapped[date | None] = mapped_column(Date)  # DTM*472
    allowed_cents: Mapped[int | None] = mapped_column(BigInteger)  # AMT*B6
    remark_codes: Mapped[list[str]] = mapped_column(JsonType, default=list)  # LQ*HE RARCs

    claim_payment: Mapped[ClaimPayment] = relationship(back_populates="line_payments")
    service_line: Mapped[ServiceLine | None] = relationship()
    adjustments: Mapped[list[Adjustment]] = relationship(
        back_populates="line_payment", cascade="all, delete-orphan", passive_deletes=True
    )


class Adjustment(Base):
    """One CAS reason/amount triple, at claim level (2100) or line level (2110)."""

    __tablename__ = "adjustments"
    __table_args__ = (
        enum_check("group_code", AdjustmentGroup),
        CheckConstraint(
            "(claim_payment_id IS NOT NULL AND line_payment_id IS NULL)"
            " OR (claim_payment_id IS NULL AND line_payment_id IS NOT NULL)",
            name="one_parent",
        ),
    )

    id: Mapped[int] = mapped_column(IdType, primary_key=True)
    claim_payment_id: Mapped[int | None] = mapped_column(
        IdType, ForeignKey("claim_payments.id", ondelete="CASCADE"), index=True
    )
    line_payment_id: Mapped[int | None] = mapped_column(
        IdType, ForeignKey("line_payments.id", ondelete="CASCADE"), index=True
    )
    group_code: Mapped[AdjustmentGroup] = mapped_column(EnumText(AdjustmentGroup, 2))  # CAS01
    reason_code: Mapped[str] = mapped_column(String(5))  # CAS02 (CARC)
    amount_cents: Mapped[int] = mapped_column(BigInteger)  # CAS03, signed
    quantity: Mapped[str | None] = mapped_column(String(15))  # CAS04, decimal string

    claim_payment: Mapped[ClaimPayment | None] = relationship(back_populates="adjustments")
    line_payment: Mapped[LinePayment | None] = relationship(back_populates="adjustments")


class ProviderAdjustment(Base):
    """One PLB adjustment: positive amounts reduce the payment, negative ones add to it."""

    __tablename__ = "provider_adjustments"

    id: Mapped[int] = mapped_column(IdType, primary_key=True)
    remittance_id: Mapped[int] = mapped_column(
        IdType, ForeignKey("remittances.id", ondelete="CASCADE"), index=True
    )
    provider_identifier: Mapped[str] = mapped_column(String(50))  # PLB01
    fiscal_period_date: Mapped[date | None] = mapped_column(Date)  # PLB02
    reason_code: Mapped[str] = mapped_column(String(2))  # PLB03-1: WO, L6, FB, 72, ...
    reference: Mapped[str | None] = mapped_column(String(50))  # PLB03-2
    amount_cents: Mapped[int] = mapped_column(BigInteger)  # PLB04, signed
    # What PLB03-2 names, when it names one of ours: a claim (by CLP01 or CLP07).
    reference_kind: Mapped[str | None] = mapped_column(String(16))  # claim | payer_claim | other | none
    claim_id: Mapped[int | None] = mapped_column(IdType, ForeignKey("claims.id"), index=True)
    claim_payment_id: Mapped[int | None] = mapped_column(IdType, ForeignKey("claim_payments.id"))

    remittance: Mapped[Remittance] = relationship(back_populates="provider_adjustments")
