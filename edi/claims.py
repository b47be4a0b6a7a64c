"""The claim an 837 carries, as plain dataclasses shared by the scrubber and the server.

Money is integer cents, units are ``Decimal``, dates are ``datetime.date``. The parties
(billing provider, subscriber, payer, patient) are frozen and hashable so that a flat
list of claims can be grouped into the 837 HL tree (2000A billing provider → 2000B
subscriber → 2000C patient) by equality; claims themselves are plain and mutable.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum

__all__ = [
    "Address",
    "Batch837",
    "BillingProvider",
    "CasAdjustment",
    "Claim",
    "ClaimKind",
    "Contact",
    "Diagnosis",
    "LineAdjudication",
    "OccurrenceCode",
    "OtherPayer",
    "Patient",
    "PayToAddress",
    "Payer",
    "Procedure",
    "Provider",
    "Receiver",
    "ServiceLine",
    "Submitter",
    "Subscriber",
    "ValueCode",
]


class ClaimKind(StrEnum):
    """Which 837 a claim travels in: 837P (005010X222A1) or 837I (005010X223A2)."""

    PROFESSIONAL = "professional"
    INSTITUTIONAL = "institutional"

    @property
    def implementation(self) -> str:
        return "005010X222A1" if self is ClaimKind.PROFESSIONAL else "005010X223A2"


@dataclass(frozen=True, slots=True)
class Address:
    """N3/N4. ``zip_code`` is 5 or 9 digits without a hyphen (9 for billing/facility)."""

    line1: str
    city: str
    state: str
    zip_code: str
    line2: str | None = None
    country: str | None = None  # N404, only outside the US


@dataclass(frozen=True, slots=True)
class Contact:
    """PER*IC: a name and up to three numbers (TE phone, EM email, FX fax)."""

    name: str | None = None
    phone: str | None = None
    email: str | None = None
    fax: str | None = None
    phone_extension: str | None = None


@dataclass(frozen=True, slots=True)
class Submitter:
    """1000A: the entity sending the file; ``identifier`` is its ETIN (NM109, qualifier 46)."""

    name: str
    identifier: str
    contact: Contact
    first_name: str | None = None  # set when the submitter is a person (NM102 = 1)


@dataclass(frozen=True, slots=True)
class Receiver:
    """1000B: the clearinghouse or payer receiving the file."""

    name: str
    identifier: str


@dataclass(frozen=True, slots=True)
class PayToAddress:
    """2010AB: where payments go, sent only when it differs from the billing address."""

    address: Address


@dataclass(frozen=True, slots=True)
class BillingProvider:
    """2000A/2010AA. An organization (``organization_name``) or a person (last/first name).

    Exactly one tax id: ``tax_id_qualifier`` EI (EIN, 9 digits) or SY (SSN).
    """

    npi: str
    address: Address
    tax_id: str
    organization_name: str | None = None
    last_name: str | None = None
    first_name: str | None = None
    middle_name: str | None = None
    suffix: str | None = None
    tax_id_qualifier: str = "EI"
    taxonomy: str | None = None  # PRV*BI*PXC
    contact: Contact | None = None
    pay_to: PayToAddress | None = None


@dataclass(frozen=True, slots=True)
class Payer:
    """2010BB / 2330B: NM1*PR with the payer id (PI, or XV for a CMS plan id)."""

    name: str
    payer_id: str
    address: Address | None = None
    id_qualifier: str = "PI"


@dataclass(frozen=True, slots=True)
class Subscriber:
    """2000B/2010BA: the insured person, with the SBR data of that coverage.

    ``responsibility`` is SBR01 (P primary, S secondary, T tertiary...);
    ``claim_filing_indicator`` SBR09 (CI commercial, MB Medicare B, MC Medicaid...).
    """

    last_name: str
    member_id: str
    first_name: str | None = None
    middle_name: str | None = None
    suffix: str | None = None
    birth_date: date | None = None
    sex: str | None = None  # DMG03: F, M, U
    address: Address | None = None
    group_number: str | None = None
    group_name: str | None = None
    responsibility: str = "P"
    claim_filing_indicator: str = "CI"
    insurance_type_code: str | None = None  # SBR05, e.g. Medicare secondary payer type


@dataclass(frozen=True, slots=True)
class Patient:
    """2000C/2010CA, present only when the patient is not the subscriber.

    ``relationship_code`` is PAT01 (01 spouse, 19 child, 20 employee, 21 unknown,
    39 organ donor, 40 cadaver donor, 53 life partner, G8 other relationship).
    """

    last_name: str
    first_name: str | None
    relationship_code: str
    birth_date: date
    sex: str
    address: Address
    middle_name: str | None = None
    suffix: str | None = None


@dataclass(frozen=True, slots=True)
class Provider:
    """A claim- or line-level provider: referring, rendering, supervising, attending,
    operating, or a service facility (organization name + address)."""

    npi: str | None = None
    last_name: str | None = None
    first_name: str | None = None
    middle_name: str | None = None
    suffix: str | None = None
    organization_name: str | None = None
    taxonomy: str | None = None
    address: Address | None = None

    @property
    def is_organization(self) -> bool:
        return self.organization_name is not None


@dataclass(frozen=True, slots=True)
class Diagnosis:
    """An ICD code without the dot. The HI qualifier follows from where the claim puts
    it (837P: first ABK, the rest ABF; 837I: principal ABK, admitting ABJ, ...).

    ``icd9`` selects the ICD-9 qualifiers (BK/BF/BJ/PR) for dates of service before
    2015-10-01; ``present_on_admission`` (Y/N/U/W) is HI0n-9, 837I only.
    """

    code: str
    icd9: bool = False
    present_on_admission: str | None = None


@dataclass(frozen=True, slots=True)
class Procedure:
    """837I principal (BBR) / other (BBQ) ICD-10-PCS procedure with its date."""

    code: str
    date: date


@dataclass(frozen=True, slots=True)
class ValueCode:
    """837I value code (HI BE) with its amount in cents."""

    code: str
    amount_cents: int


@dataclass(frozen=True, slots=True)
class OccurrenceCode:
    """837I occurrence code (HI BH) with its date."""

    code: str
    date: date


@dataclass(frozen=True, slots=True)
class CasAdjustment:
    """One CAS triplet: group (CO, PR, OA, PI, CR), reason (CARC), amount, quantity."""

    group: str
    reason: str
    amount_cents: int
    quantity: Decimal | None = None


@dataclass(frozen=True, slots=True)
class ServiceLine:
    """2400: one service line (SV1 for 837P, SV2 for 837I).

    ``diagnosis_pointers`` are 1-based positions in the claim's diagnoses (837P, ≤ 4);
    ``place_of_service`` is set only when it differs from the claim's (SV105).
    """

    procedure: str | None
    charge_cents: int
    units: Decimal = Decimal(1)
    modifiers: tuple[str, ...] = ()
    unit_basis: str = "UN"  # UN units, MJ anesthesia minutes (837P); UN or DA days (837I)
    place_of_service: str | None = None
    diagnosis_pointers: tuple[int, ...] = (1,)
    service_date: date | None = None
    service_date_end: date | None = None
    line_control_number: str | None = None  # REF*6R, comes back in 835 REF*6R
    ndc: str | None = None  # 2410 LIN*N4, 11 digits 5-4-2
    drug_quantity: Decimal | None = None
    drug_unit: str | None = None  # CTP05-1: F2, GR, ME, ML, UN
    rendering: Provider | None = None  # 2420A (837P) / 2420C (837I) override
    revenue_code: str | None = None  # 837I SV201
    procedure_qualifier: str = "HC"
    description: str | None = None  # SV101-7, required for not-otherwise-classified codes
    non_covered_cents: int | None = None  # 837I SV207


@dataclass(frozen=True, slots=True)
class LineAdjudication:
    """2430: how a prior payer adjudicated one service line.

    ``line_number`` is the 1-based position of the line in ``Claim.lines`` (its LX).
    """

    line_number: int
    paid_cents: int
    procedure: str
    adjudication_date: date
    units: Decimal = Decimal(1)
    modifiers: tuple[str, ...] = ()
    adjustments: tuple[CasAdjustment, ...] = ()
    procedure_qualifier: str = "HC"
    revenue_code: str | None = None  # 837I SVD04


@dataclass(frozen=True, slots=True)
class OtherPayer:
    """2320/2330A/2330B: a payer that already adjudicated (or also covers) the claim.

    ``subscriber`` carries the other coverage's insured, SBR01 responsibility and SBR09;
    ``relationship_code`` is SBR02 (the patient's relationship to that insured).
    COB balances when ``claim charge - paid = Σ claim CAS + Σ line CAS`` for this payer.
    """

    payer: Payer
    subscriber: Subscriber
    relationship_code: str = "18"
    paid_cents: int | None = None  # AMT*D
    adjustments: tuple[CasAdjustment, ...] = ()  # claim-level CAS
    remaining_patient_liability_cents: int | None = None  # AMT*EAF
    payer_claim_control_number: str | None = None  # 2330B REF*F8
    adjudication_date: date | None = None  # 2330B DTP*573
    line_adjudications: tuple[LineAdjudication, ...] = ()
    benefits_assignment: str = "Y"  # OI03
    release_of_information: str = "Y"  # OI06

    @property
    def responsibility(self) -> str:
        return self.subscriber.responsibility


@dataclass(slots=True)
class Claim:
    """2300 with its parties and lines. ``total_charge_cents`` is CLM02; left ``None``
    it is computed as the sum of the line charges (TR3: CLM02 = Σ SV102)."""

    patient_control_number: str
    billing_provider: BillingProvider
    subscriber: Subscriber
    payer: Payer
    lines: list[ServiceLine]
    diagnoses: list[Diagnosis]
    kind: ClaimKind = ClaimKind.PROFESSIONAL
    patient: Patient | None = None
    total_charge_cents: int | None = None
    place_of_service: str = "11"  # CLM05-1; for 837I the facility type code (type of bill 1-2)
    frequency_code: str = "1"  # CLM05-3: 1 original, 7 replacement, 8 void
    original_claim_number: str | None = None  # REF*F8, required for frequency 7/8
    prior_authorization: str | None = None  # REF*G1
    referral_number: str | None = None  # REF*9F
    provider_signature: str = "Y"  # CLM06
    assignment_participation: str = "A"  # CLM07
    benefits_assignment: str = "Y"  # CLM08
    release_of_information: str = "Y"  # CLM09
    related_causes: tuple[str, ...] = ()  # CLM11-1..3: AA auto, EM employment, OA other
    related_causes_state: str | None = None  # CLM11-4, required with AA
    onset_date: date | None = None  # DTP*431
    accident_date: date | None = None  # DTP*439
    referring: Provider | None = None
    rendering: Provider | None = None
    supervising: Provider | None = None
    service_facility: Provider | None = None
    other_payers: list[OtherPayer] = field(default_factory=list)
    # 837I (institutional) fields.
    admission_date: date | None = None  # DTP*435
    admission_hour: int | None = None  # 0-23, makes DTP*435 a DT date-time
    admission_type: str | None = None  # CL1*01
    admission_source: str | None = None  # CL1*02
    patient_status: str | None = None  # CL1*03
    statement_from: date | None = None  # DTP*434 RD8
    statement_to: date | None = None
    admitting_diagnosis: Diagnosis | None = None  # HI ABJ
    patient_reason_diagnoses: list[Diagnosis] = field(default_factory=list)  # HI APR, ≤ 3
    procedures: list[Procedure] = field(default_factory=list)  # first BBR, then BBQ
    value_codes: list[ValueCode] = field(default_factory=list)  # HI BE
    occurrence_codes: list[OccurrenceCode] = field(default_factory=list)  # HI BH
    condition_codes: list[str] = field(default_factory=list)  # HI BG
    attending: Provider | None = None  # 2310A NM1*71
    operating: Provider | None = None  # 2310B NM1*72

    def __post_init__(self) -> None:
        if self.total_charge_cents is None:
            self.total_charge_cents = self.lines_total_cents()

    def lines_total_cents(self) -> int:
        """Σ line charges (SV102/SV203): what CLM02 must equal."""
        return sum(line.charge_cents for line in self.lines)

    @property
    def type_of_bill(self) -> str:
        """837I type of bill without the leading zero: facility type + frequency."""
        return self.place_of_service + self.frequency_code


@dataclass(slots=True)
class Batch837:
    """Everything one 837 interchange carries. Claims may mix billing providers and
    subscribers: the writer groups them into the HL tree, keeping first-seen order.
    All claims in a batch are of ``kind`` (837P and 837I never share a functional group).
    """

    submitter: Submitter
    receiver: Receiver
    claims: list[Claim]
    kind: ClaimKind = ClaimKind.PROFESSIONAL
    sender_qualifier: str = "ZZ"
    sender_id: str | None = None  # ISA06, defaults to the submitter's ETIN
    receiver_qualifier: str = "ZZ"
    receiver_id: str | None = None  # ISA08, defaults to the receiver's identifier
    application_sender_code: str | None = None  # GS02, defaults to ISA06
    application_receiver_code: str | None = None  # GS03, defaults to ISA08
    reference: str | None = None  # BHT03, defaults to the ST02 control number
    created: datetime | None = None  # BHT04/BHT05 and the envelope dates
    transaction_type: str = "CH"  # BHT06: CH chargeable, RP reporting (encounters)
