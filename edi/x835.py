"""835 (005010X221A1) health care claim payment/advice: a streaming parser.

``iter_835(source)`` walks a file once and yields, per transaction set, a
:class:`RemittanceHeader` (BPR/TRN/payer/payee), then one :class:`ClaimPayment` per CLP
as soon as the claim is complete, then a :class:`RemittanceEnd` (PLB and the payment
balancing verdict). Nothing but the current claim is held, so memory stays flat on a
25,000-claim remittance. ``parse_835(source)`` collects the same events into
:class:`Remittance835` objects for small files.

Amounts are integer cents (X12 decimals are converted exactly; more than two decimals
is a finding), quantities are ``Decimal``. Every balancing rule of the TR3 (section
1.10.2.1) is checked and reported as a :class:`~edi.findings.Finding`, never ignored:

* line: SVC02 - sum(line CAS) = SVC03
* claim: CLP03 - sum(claim CAS) - sum(line CAS) = CLP04 (claim CAS only without SVC)
* transaction: sum(CLP04) - sum(PLB amounts) = BPR02 (a positive PLB reduces the payment)
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any, BinaryIO

from edi.findings import Finding, Severity, error, warning
from edi.numbers import QUANTITY_MAX_LENGTH, amount_cents, parse_amount_cents, read_decimal
from edi.reader import (
    INDENT_START,
    ReaderNotes,
    X12SyntaxError,
    iter_blocks,
    read_element_lists,
    strip_indent,
)

Source = str | bytes | os.PathLike[str] | BinaryIO

IMPLEMENTATION = "005010X221A1"

# Finding codes that mean the money does not add up (or an amount could not be read).
BALANCING_CODES = frozenset(
    {
        "835_LINE_UNBALANCED",
        "835_CLAIM_UNBALANCED",
        "835_PAYMENT_UNBALANCED",
        "835_AMOUNT_INVALID",
        "835_AMOUNT_MISSING",
        "835_AMOUNT_PRECISION",
        "835_AMOUNT_OUT_OF_RANGE",
    }
)
# Envelope findings that mean the file is not all there (truncated, or a transaction set,
# group or segment run the parser could not read as part of an 835): what was read may
# balance, but the file as sent cannot be known, so it is neither balanced nor postable.
STRUCTURE_CODES = frozenset(
    {
        "835_SE_MISSING",
        "835_GE_MISSING",
        "835_IEA_MISSING",
        "835_GE01_COUNT",
        "835_IEA01_COUNT",
        "835_OUTSIDE_TRANSACTION",
        "SEGMENT_UNTERMINATED",  # the reader's: the last segment has no terminator
    }
)
# Findings that make a remittance unpostable: an amount X12 or the ledger cannot hold, or
# a file that is not all there (STRUCTURE_CODES). remittance/posting.py refuses the whole
# file when any event carries one.
UNPOSTABLE_CODES = frozenset({"835_AMOUNT_OUT_OF_RANGE"}) | STRUCTURE_CODES

# CLP02 claim status codes (X12 code list 1029 as used by the 835 TR3), described in our words.
CLAIM_STATUS: dict[str, str] = {
    "1": "processed as primary",
    "2": "processed as secondary",
    "3": "processed as tertiary",
    "4": "denied",
    "19": "processed as primary, forwarded to additional payer(s)",
    "20": "processed as secondary, forwarded to additional payer(s)",
    "21": "processed as tertiary, forwarded to additional payer(s)",
    "22": "reversal of previous payment",
    "23": "not our claim, forwarded to additional payer(s)",
    "25": "predetermination pricing only, no payment",
}

# BPR04 payment method codes.
PAYMENT_METHODS: dict[str, str] = {
    "ACH": "automated clearing house transfer",
    "BOP": "financial institution option",
    "CHK": "check",
    "FWT": "federal reserve funds/wire transfer, nonrepetitive",
    "NON": "non-payment data",
}

# MIA (inpatient adjudication) and MOA (outpatient adjudication): every element, by kind.
# "a" = monetary amount, "q" = quantity, "r" = remark code, "p" = percentage.
_MIA_ELEMENTS: tuple[tuple[str, str], ...] = (
    ("covered_days_or_visits", "q"),
    ("pps_operating_outlier", "a"),
    ("lifetime_psychiatric_days", "q"),
    ("claim_drg", "a"),
    ("remark", "r"),
    ("disproportionate_share", "a"),
    ("msp_pass_through", "a"),
    ("pps_capital", "a"),
    ("pps_capital_fsp_drg", "a"),
    ("pps_capital_hsp_drg", "a"),
    ("pps_capital_dsh_drg", "a"),
    ("old_capital", "a"),
    ("pps_capital_ime", "a"),
    ("pps_operating_hospital_specific_drg", "a"),
    ("cost_report_days", "q"),
    ("pps_operating_federal_specific_drg", "a"),
    ("pps_capital_outlier", "a"),
    ("indirect_teaching", "a"),
    ("nonpayable_professional_component", "a"),
    ("remark", "r"),
    ("remark", "r"),
    ("remark", "r"),
    ("remark", "r"),
    ("pps_capital_exception", "a"),
)
_MOA_ELEMENTS: tuple[tuple[str, str], ...] = (
    ("reimbursement_rate", "p"),
    ("hcpcs_payable", "a"),
    ("remark", "r"),
    ("remark", "r"),
    ("remark", "r"),
    ("remark", "r"),
    ("remark", "r"),
    ("esrd_payment", "a"),
    ("nonpayable_professional_component", "a"),
)

_NM1_ROLES = {
    "QC": "patient",
    "IL": "insured",
    "74": "corrected_patient",
    "82": "rendering_provider",
    "TT": "crossover_carrier",
    "PR": "corrected_priority_payer",
}


# --------------------------------------------------------------------------- data


@dataclass(slots=True)
class Adjustment:
    """One CAS triplet: group (CO/PR/OA/PI/CR), CARC reason, amount, optional units."""

    group: str
    reason: str
    amount_cents: int
    quantity: Decimal | None = None


@dataclass(slots=True)
class Reference:
    qualifier: str
    value: str
    description: str = ""


@dataclass(slots=True)
class Contact:
    """PER: function code, name and (qualifier, number) pairs such as ("TE", "8005551212")."""

    function: str
    name: str = ""
    numbers: list[tuple[str, str]] = field(default_factory=list)


@dataclass(slots=True)
class Address:
    lines: list[str] = field(default_factory=list)
    city: str = ""
    state: str = ""
    postal_code: str = ""
    country: str = ""
    subdivision: str = ""


@dataclass(slots=True)
class Party:
    """An N1 or NM1 entity: payer, payee, patient, insured, rendering provider..."""

    entity_code: str
    name: str = ""
    entity_type: str = ""  # NM102: 1 person, 2 non-person (empty for N1)
    first_name: str = ""
    middle_name: str = ""
    prefix: str = ""
    suffix: str = ""
    id_qualifier: str = ""
    identifier: str = ""
    address: Address | None = None
    references: list[Reference] = field(default_factory=list)
    contacts: list[Contact] = field(default_factory=list)

    def reference(self, qualifier: str) -> str | None:
        for ref in self.references:
            if ref.qualifier == qualifier:
                return ref.value
        return None

    @property
    def npi(self) -> str | None:
        return self.identifier if self.id_qualifier == "XX" else None

    @property
    def tax_id(self) -> str | None:
        if self.id_qualifier == "FI":
            return self.identifier
        return self.reference("TJ")

    def to_json_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "entity_code": self.entity_code,
            "name": self.name,
            "id_qualifier": self.id_qualifier or None,
            "identifier": self.identifier or None,
        }
        if self.entity_type:
            data["entity_type"] = self.entity_type
        if self.first_name:
            data["first_name"] = self.first_name
        if self.middle_name:
            data["middle_name"] = self.middle_name
        if self.address is not None:
            a = self.address
            data["address"] = {
                "lines": list(a.lines),
                "city": a.city,
                "state": a.state,
                "postal_code": a.postal_code,
                "country": a.country or None,
            }
        if self.references:
            data["references"] = [{"qualifier": r.qualifier, "value": r.value} for r in self.references]
        if self.contacts:
            data["contacts"] = [
                {"function": c.function, "name": c.name, "numbers": [list(n) for n in c.numbers]}
                for c in self.contacts
            ]
        return data


@dataclass(slots=True)
class Payment:
    """BPR + TRN: how much, how and when the payer paid, and the trace (check/EFT) number."""

    handling_code: str  # BPR01: C payment+advice, D payment only, H notification only, I info, P prenote
    amount_cents: int  # BPR02
    credit_debit: str  # BPR03: C credit, D debit
    method: str  # BPR04: ACH, CHK, NON, FWT, BOP
    format: str = ""  # BPR05: CCP, CTX
    sender_dfi_qualifier: str = ""  # BPR06
    sender_dfi_id: str = ""  # BPR07
    sender_account_qualifier: str = ""  # BPR08
    sender_account: str = ""  # BPR09
    originating_company_id: str = ""  # BPR10
    originating_company_supplemental: str = ""  # BPR11
    receiver_dfi_qualifier: str = ""  # BPR12
    receiver_dfi_id: str = ""  # BPR13
    receiver_account_qualifier: str = ""  # BPR14
    receiver_account: str = ""  # BPR15
    date: date | None = None  # BPR16: check issue or EFT effective date
    trace_type: str = ""  # TRN01
    trace_number: str = ""  # TRN02: check or EFT trace number, the key to reassociate dollars and data
    payer_identifier: str = ""  # TRN03: "1" + payer TIN, usually
    payer_supplemental: str = ""  # TRN04


@dataclass(slots=True)
class ServiceId:
    """A procedure composite (SVC01 / SVC06): qualifier, code, up to 4 modifiers, description."""

    qualifier: str
    code: str
    modifiers: tuple[str, ...] = ()
    description: str = ""

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "qualifier": self.qualifier,
            "code": self.code,
            "modifiers": list(self.modifiers),
            "description": self.description or None,
        }


@dataclass(slots=True)
class Remark:
    """LQ: remark code with its list qualifier (HE = RARC, RX = NCPDP reject code)."""

    qualifier: str
    code: str


@dataclass(slots=True)
class ProviderSummary:
    """Loop 2000 header number (LX) and the optional TS3/TS2 provider summary, raw."""

    header_number: str
    ts3: tuple[str, ...] = ()
    ts2: tuple[str, ...] = ()


@dataclass(slots=True)
class Adjudication:
    """MIA or MOA, every element kept: amounts in cents, quantities, remark codes."""

    kind: str  # "MIA" or "MOA"
    elements: tuple[str, ...]
    amounts: dict[str, int] = field(default_factory=dict)
    quantities: dict[str, Decimal] = field(default_factory=dict)
    remarks: list[str] = field(default_factory=list)


@dataclass(slots=True, init=False)
class LinePayment:
    """Loop 2110: one adjudicated service line (SVC and what follows it).

    The ``__init__`` is written out: with six container fields the generated one costs
    2.5 times as much, and a large remittance builds one of these per SVC.
    """

    procedure: ServiceId
    charge_cents: int
    paid_cents: int
    revenue_code: str = ""  # SVC04 (institutional)
    units: Decimal | None = None  # SVC05 units paid
    original_procedure: ServiceId | None = None  # SVC06: what was billed, when the payer changed it
    original_units: Decimal | None = None  # SVC07
    dates: dict[str, date] = field(default_factory=dict)  # DTM 472 / 150 / 151
    adjustments: list[Adjustment] = field(default_factory=list)
    references: list[Reference] = field(default_factory=list)
    amounts: dict[str, int] = field(default_factory=dict)  # AMT: B6 allowed, KH, T, T2, ZK...
    quantities: dict[str, Decimal] = field(default_factory=dict)
    remarks: list[Remark] = field(default_factory=list)
    segment_position: int = 0

    def __init__(
        self,
        procedure: ServiceId,
        charge_cents: int,
        paid_cents: int,
        revenue_code: str = "",
        units: Decimal | None = None,
        original_procedure: ServiceId | None = None,
        original_units: Decimal | None = None,
        segment_position: int = 0,
    ) -> None:
        self.procedure = procedure
        self.charge_cents = charge_cents
        self.paid_cents = paid_cents
        self.revenue_code = revenue_code
        self.units = units
        self.original_procedure = original_procedure
        self.original_units = original_units
        self.dates = {}
        self.adjustments = []
        self.references = []
        self.amounts = {}
        self.quantities = {}
        self.remarks = []
        self.segment_position = segment_position

    def reference(self, qualifier: str) -> str | None:
        for ref in self.references:
            if ref.qualifier == qualifier:
                return ref.value
        return None

    @property
    def line_control_number(self) -> str | None:
        """REF*6R: our 837 line item control number echoed back (6B as a payer variant)."""
        return self.reference("6R") or self.reference("6B")

    @property
    def allowed_cents(self) -> int | None:
        return self.amounts.get("B6")

    @property
    def service_date(self) -> date | None:
        return self.dates.get("472") or self.dates.get("150")

    def adjustment_total_cents(self) -> int:
        return sum(a.amount_cents for a in self.adjustments)

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "procedure": self.procedure.code,
            "procedure_qualifier": self.procedure.qualifier,
            "modifiers": list(self.procedure.modifiers),
            "charge": format_cents(self.charge_cents),
            "paid": format_cents(self.paid_cents),
            "revenue_code": self.revenue_code or None,
            "units": _format_decimal(self.units),
            "original_procedure": (
                self.original_procedure.to_json_dict() if self.original_procedure is not None else None
            ),
            "original_units": _format_decimal(self.original_units),
            "line_control_number": self.line_control_number,
            "service_dates": {k: v.isoformat() for k, v in self.dates.items()},
            "allowed": format_cents(self.amounts["B6"]) if "B6" in self.amounts else None,
            "adjustments": [_adjustment_json(a) for a in self.adjustments],
            "remarks": [r.code for r in self.remarks],
            "remark_codes": [{"qualifier": r.qualifier, "code": r.code} for r in self.remarks],
            "references": [{"qualifier": r.qualifier, "value": r.value} for r in self.references],
        }


@dataclass(slots=True, init=False)
class ClaimPayment:
    """Loop 2100: one CLP with every element, its CAS, parties, MIA/MOA and lines.

    ``__init__`` takes the CLP elements; parties, references and the other containers
    start empty (written out for speed, as for :class:`LinePayment`).
    """

    patient_control_number: str  # CLP01 = our CLM01
    status: str  # CLP02, see CLAIM_STATUS
    charge_cents: int  # CLP03
    paid_cents: int  # CLP04
    patient_responsibility_cents: int | None = None  # CLP05
    filing_indicator: str = ""  # CLP06
    payer_claim_control_number: str = ""  # CLP07, REF*F8 on a corrected claim
    facility_type: str = ""  # CLP08 (place of service or bill type position 1-2)
    frequency: str = ""  # CLP09
    patient_status: str = ""  # CLP10 (not used in 5010, kept when present)
    drg_code: str = ""  # CLP11
    drg_weight: Decimal | None = None  # CLP12
    discharge_fraction: Decimal | None = None  # CLP13
    yes_no_condition: str = ""  # CLP14
    transaction_set: str = ""  # ST02 of the 835 it came in
    summary: ProviderSummary | None = None
    adjustments: list[Adjustment] = field(default_factory=list)
    patient: Party | None = None
    insured: Party | None = None
    corrected_patient: Party | None = None
    rendering_provider: Party | None = None
    crossover_carrier: Party | None = None
    corrected_priority_payer: Party | None = None
    other_parties: list[Party] = field(default_factory=list)
    inpatient: Adjudication | None = None  # MIA
    outpatient: Adjudication | None = None  # MOA
    references: list[Reference] = field(default_factory=list)
    dates: dict[str, date] = field(default_factory=dict)  # 232/233 statement, 036 expiry, 050 received
    contacts: list[Contact] = field(default_factory=list)
    amounts: dict[str, int] = field(default_factory=dict)  # AMT: AU coverage, D8, DY, F5, I, ZK...
    quantities: dict[str, Decimal] = field(default_factory=dict)  # QTY: CA, CD, LA, ...
    lines: list[LinePayment] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    segment_position: int = 0
    file_ordinal: int = 0

    def __init__(
        self,
        patient_control_number: str,
        status: str,
        charge_cents: int,
        paid_cents: int,
        patient_responsibility_cents: int | None = None,
        filing_indicator: str = "",
        payer_claim_control_number: str = "",
        facility_type: str = "",
        frequency: str = "",
        patient_status: str = "",
        drg_code: str = "",
        drg_weight: Decimal | None = None,
        discharge_fraction: Decimal | None = None,
        yes_no_condition: str = "",
        transaction_set: str = "",
        summary: ProviderSummary | None = None,
        segment_position: int = 0,
        file_ordinal: int = 0,
    ) -> None:
        self.patient_control_number = patient_control_number
        self.status = status
        self.charge_cents = charge_cents
        self.paid_cents = paid_cents
        self.patient_responsibility_cents = patient_responsibility_cents
        self.filing_indicator = filing_indicator
        self.payer_claim_control_number = payer_claim_control_number
        self.facility_type = facility_type
        self.frequency = frequency
        self.patient_status = patient_status
        self.drg_code = drg_code
        self.drg_weight = drg_weight
        self.discharge_fraction = discharge_fraction
        self.yes_no_condition = yes_no_condition
        self.transaction_set = transaction_set
        self.summary = summary
        self.adjustments = []
        self.patient = self.insured = self.corrected_patient = self.rendering_provider = None
        self.crossover_carrier = self.corrected_priority_payer = None
        self.other_parties = []
        self.inpatient = self.outpatient = None
        self.references = []
        self.dates = {}
        self.contacts = []
        self.amounts = {}
        self.quantities = {}
        self.lines = []
        self.findings = []
        self.segment_position = segment_position
        self.file_ordinal = file_ordinal

    @property
    def status_description(self) -> str:
        return CLAIM_STATUS.get(self.status, "unknown claim status code")

    @property
    def is_denied(self) -> bool:
        return self.status == "4"

    @property
    def is_reversal(self) -> bool:
        return self.status == "22"

    @property
    def is_crossover(self) -> bool:
        """Forwarded to another payer (status 19/20/21), normally with NM1*TT."""
        return self.status in ("19", "20", "21") or self.crossover_carrier is not None

    @property
    def statement_from(self) -> date | None:
        return self.dates.get("232")

    @property
    def statement_to(self) -> date | None:
        return self.dates.get("233")

    @property
    def received(self) -> date | None:
        return self.dates.get("050")

    @property
    def balanced(self) -> bool:
        """Lines and claim balance, and every amount they rest on was readable."""
        return not any(f.code in BALANCING_CODES for f in self.findings)

    def reference(self, qualifier: str) -> str | None:
        for ref in self.references:
            if ref.qualifier == qualifier:
                return ref.value
        return None

    def adjustment_total_cents(self) -> int:
        """Claim-level plus line-level CAS amounts."""
        return sum(a.amount_cents for a in self.adjustments) + sum(
            line.adjustment_total_cents() for line in self.lines
        )

    def to_json_dict(self) -> dict[str, Any]:
        parties = {
            role: getattr(self, role).to_json_dict()
            for role in _NM1_ROLES.values()
            if getattr(self, role) is not None
        }
        return {
            "patient_control_number": self.patient_control_number,
            "status": self.status,
            "status_description": self.status_description,
            "charge": format_cents(self.charge_cents),
            "paid": format_cents(self.paid_cents),
            "patient_responsibility": (
                format_cents(self.patient_responsibility_cents)
                if self.patient_responsibility_cents is not None
                else None
            ),
            "filing_indicator": self.filing_indicator or None,
            "payer_claim_control_number": self.payer_claim_control_number or None,
            "facility_type": self.facility_type or None,
            "frequency": self.frequency or None,
            "drg_code": self.drg_code or None,
            "drg_weight": _format_decimal(self.drg_weight),
            "discharge_fraction": _format_decimal(self.discharge_fraction),
            "header_number": self.summary.header_number if self.summary is not None else None,
            "statement_from": self.statement_from.isoformat() if self.statement_from else None,
            "statement_to": self.statement_to.isoformat() if self.statement_to else None,
            "dates": {k: v.isoformat() for k, v in self.dates.items()},
            "parties": parties,
            "adjustments": [_adjustment_json(a) for a in self.adjustments],
            "references": [{"qualifier": r.qualifier, "value": r.value} for r in self.references],
            "amounts": {k: format_cents(v) for k, v in self.amounts.items()},
            "quantities": {k: _format_decimal(v) for k, v in self.quantities.items()},
            "inpatient": _adjudication_json(self.inpatient),
            "outpatient": _adjudication_json(self.outpatient),
            "lines": [line.to_json_dict() for line in self.lines],
            "balanced": self.balanced,
            "findings": [f.to_json_dict() for f in self.findings],
        }


@dataclass(slots=True)
class ProviderAdjustment:
    """One PLB reason/reference/amount pair (a PLB segment holds up to six).

    A positive amount reduces the payment (e.g. a recovered overpayment, WO), a negative
    one increases it (e.g. interest, L6).
    """

    provider_identifier: str
    fiscal_period_date: date | None
    reason: str
    reference: str
    amount_cents: int
    segment_position: int | None = None  # of its PLB in the transaction set (ST = 1)


@dataclass(slots=True)
class RemittanceHeader:
    """Table 1 of one 835 transaction set: envelope context, payment, payer, payee."""

    control_number: str  # ST02
    implementation: str  # ST03 (or GS08 when ST03 is absent)
    payment: Payment
    currency: str = ""  # CUR02
    receiver_identifier: str = ""  # REF*EV
    version_identification: str = ""  # REF*F2
    production_date: date | None = None  # DTM*405
    payer: Party | None = None
    payee: Party | None = None
    interchange_control_number: str = ""  # ISA13
    interchange_sender: str = ""  # ISA06
    interchange_receiver: str = ""  # ISA08
    group_control_number: str = ""  # GS06
    version: str = ""  # GS08
    findings: list[Finding] = field(default_factory=list)


@dataclass(slots=True)
class RemittanceEnd:
    """Summary of one transaction set: PLB, totals and the payment balancing verdict."""

    control_number: str
    provider_adjustments: list[ProviderAdjustment]
    claim_count: int
    total_paid_cents: int  # sum of CLP04
    provider_adjustment_cents: int  # sum of PLB amounts
    balanced: bool  # every line, claim and the payment balance
    findings: list[Finding] = field(default_factory=list)
    provider_adjustment_segments: int = 0  # PLB segments read (each holds up to six pairs)


Event835 = RemittanceHeader | ClaimPayment | RemittanceEnd | Finding


@dataclass(slots=True)
class Remittance835:
    """One 835 transaction set collected in memory (for small files; see iter_835)."""

    header: RemittanceHeader
    claims: list[ClaimPayment] = field(default_factory=list)
    provider_adjustments: list[ProviderAdjustment] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)  # header + claims + summary
    balanced: bool = True
    provider_adjustment_segments: int = 0

    @property
    def control_number(self) -> str:
        return self.header.control_number

    @property
    def payment(self) -> Payment:
        return self.header.payment

    @property
    def payer(self) -> Party | None:
        return self.header.payer

    @property
    def payee(self) -> Party | None:
        return self.header.payee

    def to_json_dict(self) -> dict[str, Any]:
        h = self.header
        p = h.payment
        return {
            "control_number": h.control_number,
            "implementation": h.implementation,
            "payment": {
                "handling_code": p.handling_code,
                "method": p.method,
                "amount": format_cents(p.amount_cents),
                "credit_debit": p.credit_debit,
                "date": p.date.isoformat() if p.date else None,
                "trace_number": p.trace_number,
                "payer_identifier": p.payer_identifier or None,
            },
            "currency": h.currency or None,
            "production_date": h.production_date.isoformat() if h.production_date else None,
            "payer": h.payer.to_json_dict() if h.payer is not None else None,
            "payee": h.payee.to_json_dict() if h.payee is not None else None,
            "claims": [c.to_json_dict() for c in self.claims],
            "provider_adjustments": [
                {
                    "provider_identifier": a.provider_identifier,
                    "fiscal_period_date": a.fiscal_period_date.isoformat() if a.fiscal_period_date else None,
                    "reason": a.reason,
                    "reference": a.reference or None,
                    "amount": format_cents(a.amount_cents),
                }
                for a in self.provider_adjustments
            ],
            "balanced": self.balanced,
            "findings": [f.to_json_dict() for f in self.findings],
        }


@dataclass(slots=True)
class Remittance835Document:
    """Every 835 transaction set of a file plus file-level findings (unreadable, not 835...)."""

    transactions: list[Remittance835] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    readable: bool = True

    @property
    def balanced(self) -> bool:
        """Every transaction set balances and the file is all there (no envelope finding
        saying a set, group or trailer is missing)."""
        return all(t.balanced for t in self.transactions) and not any(
            f.code in STRUCTURE_CODES for f in self.findings
        )

    def all_findings(self) -> list[Finding]:
        return [*self.findings, *(f for t in self.transactions for f in t.findings)]

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "transaction_set": "835",
            "readable": self.readable,
            "balanced": self.balanced,
            "transactions": [t.to_json_dict() for t in self.transactions],
            "findings": [f.to_json_dict() for f in self.findings],
        }


# --------------------------------------------------------------------------- helpers


def format_cents(cents: int) -> str:
    """Integer cents as a string with two decimals: -1250 -> "-12.50"."""
    sign = "-" if cents < 0 else ""
    whole, frac = divmod(abs(cents), 100)
    return f"{sign}{whole}.{frac:02d}"


def _format_decimal(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def _adjustment_json(a: Adjustment) -> dict[str, Any]:
    return {
        "group": a.group,
        "reason": a.reason,
        "amount": format_cents(a.amount_cents),
        "quantity": _format_decimal(a.quantity),
    }


def _adjudication_json(a: Adjudication | None) -> dict[str, Any] | None:
    if a is None:
        return None
    return {
        "amounts": {k: format_cents(v) for k, v in a.amounts.items()},
        "quantities": {k: str(v) for k, v in a.quantities.items()},
        "remarks": list(a.remarks),
    }


_DATE_CACHE: dict[str, date | None] = {}
# Units and quantities ("1", "2", "0.5") repeat on nearly every line; Decimal is immutable.
_DECIMAL_CACHE: dict[str, Decimal] = {}


def _parse_date(text: str) -> date | None:
    """CCYYMMDD -> date (None when invalid). A remittance repeats a handful of service and
    statement dates thousands of times, so parsed values are memoized (bounded)."""
    try:
        return _DATE_CACHE[text]
    except KeyError:
        pass
    value: date | None = None
    if len(text) == 8 and text.isascii() and text.isdigit():
        try:
            value = date(int(text[:4]), int(text[4:6]), int(text[6:8]))
        except ValueError:
            value = None
    if len(_DATE_CACHE) < 8192:
        _DATE_CACHE[text] = value
    return value


# --------------------------------------------------------------------------- tokenizer


def iter_element_lists(source: Source, *, file: str | None = None) -> Iterator[list[str]]:
    """Each segment as its element list; kept as this module's name for the reader's fast path."""
    return read_element_lists(source, file=file)


# --------------------------------------------------------------------------- parser


class _Parser:
    """State machine over element lists; events are appended to ``out``."""

    def __init__(self) -> None:
        self.component = ":"
        self.out: list[Event835] = []
        self.ordinal = 0  # 1-based segment number in the file
        self.st_ordinal = 0  # file ordinal of the current ST: position in the set = ordinal - st_ordinal + 1
        self.isa13 = ""
        self.isa06 = ""
        self.isa08 = ""
        self.gs06 = ""
        self.gs08 = ""
        self.in_835 = False
        self.loop = ""
        self.st02 = ""
        self.st03 = ""
        self.header: RemittanceHeader | None = None
        self.header_sent = False
        self.party: Party | None = None
        self.summary: ProviderSummary | None = None
        self.claim: ClaimPayment | None = None
        self.line: LinePayment | None = None
        self.plb: list[ProviderAdjustment] = []
        self.plb_segments = 0
        self.claim_count = 0
        self.total_paid = 0
        self.unbalanced = False
        self.tx_findings: list[Finding] = []
        # Envelope bookkeeping, so that no transaction set is lost without a finding:
        # open interchange / group, the sets and groups counted for GE01 / IEA01, a set
        # that is not an 835 (skipped on purpose), and a run of segments outside any set.
        self.isa_open = False
        self.gs_open = False
        self.group_count = 0
        self.set_count = 0
        self.in_other_set = False
        self.outside_reported = False
        self.handlers = {
            "ISA": self.on_isa,
            "GS": self.on_gs,
            "ST": self.on_st,
            "SE": self.on_se,
            "GE": self.on_ge,
            "IEA": self.on_iea,
            "BPR": self.on_bpr,
            "TRN": self.on_trn,
            "CUR": self.on_cur,
            "REF": self.on_ref,
            "DTM": self.on_dtm,
            "N1": self.on_n1,
            "N3": self.on_n3,
            "N4": self.on_n4,
            "PER": self.on_per,
            "RDM": self.on_ignore,
            "LX": self.on_lx,
            "TS3": self.on_ts3,
            "TS2": self.on_ts2,
            "CLP": self.on_clp,
            "CAS": self.on_cas,
            "NM1": self.on_nm1,
            "MIA": self.on_mia,
            "MOA": self.on_moa,
            "AMT": self.on_amt,
            "QTY": self.on_qty,
            "SVC": self.on_svc,
            "LQ": self.on_lq,
            "PLB": self.on_plb,
        }
        # Outside an 835 transaction set (envelope, or an ST that is not 835) only the
        # envelope segments mean anything; iter_835 reads ``handlers`` in place.
        self.transaction_handlers = dict(self.handlers)
        self.envelope_handlers = {k: self.handlers[k] for k in ("ISA", "GS", "ST", "SE", "GE", "IEA")}
        self.set_in_835(False)

    # ----------------------------------------------------------------- findings

    def finding(
        self,
        severity: Severity,
        code: str,
        message: str,
        segment: str,
        element: str | None = None,
        value: str | None = None,
        *,
        position: int | None = None,
        ordinal: int | None = None,
        loop: str | None = None,
    ) -> Finding:
        return Finding(
            severity,
            code,
            message,
            segment=segment,
            segment_position=position if position is not None else (self.position if self.in_835 else None),
            loop=loop if loop is not None else (self.loop or None),
            element=element,
            value=value,
            file_ordinal=ordinal if ordinal is not None else self.ordinal,
            transaction_set=self.st02 if self.in_835 else None,
        )

    def report(self, f: Finding) -> None:
        """Attach a finding to the claim being read, the transaction, or the file."""
        if self.claim is not None:
            self.claim.findings.append(f)
        elif self.in_835:
            if self.header is not None and not self.header_sent:
                self.header.findings.append(f)
            else:
                self.tx_findings.append(f)
        else:
            self.out.append(f)

    def amount(self, els: list[str], index: int, segment: str, required: bool = True) -> int:
        text = els[index] if index < len(els) else ""
        if not text:
            if required:
                self.report(
                    self.finding(
                        Severity.ERROR,
                        "835_AMOUNT_MISSING",
                        f"{segment}{index:02d} is required: amount missing",
                        segment,
                        f"{segment}{index:02d}",
                    )
                )
            return 0
        cents = parse_amount_cents(text)
        if cents is not None:
            return cents
        return self.bad_amount(text, segment, index)

    def optional_amount(self, els: list[str], index: int, segment: str) -> int | None:
        text = els[index] if index < len(els) else ""
        if not text:
            return None
        cents = parse_amount_cents(text)
        return cents if cents is not None else self.bad_amount(text, segment, index)

    def bad_amount(self, text: str, segment: str, index: int) -> int:
        """An amount the fast parser refused: a finding saying why (edi.numbers), and the
        cents to total with (rounded for too many decimals, else 0)."""
        element = f"{segment}{index:02d}"
        cents, problem = amount_cents(text)
        assert problem is not None
        if problem.code == "PRECISION":
            # More than two decimals: X12 allows it in type R, money does not. Rounded half
            # up to the cent so totals stay usable, and said so.
            code, tail = "835_AMOUNT_PRECISION", "rounded to the cent"
        elif problem.code == "NOT_A_NUMBER":
            code, tail = "835_AMOUNT_INVALID", "counted as 0.00"
        else:
            # Longer than X12 allows or beyond what the ledger holds: the file cannot be
            # posted (remittance posting refuses it), whatever else it says.
            code, tail = "835_AMOUNT_OUT_OF_RANGE", "the remittance cannot be posted"
        self.report(
            self.finding(
                Severity.ERROR,
                code,
                f"{element}: {problem.message}; {tail}",
                segment,
                element,
                text[:20],
            )
        )
        return cents if cents is not None else 0

    def quantity(self, els: list[str], index: int, segment: str) -> Decimal | None:
        text = els[index] if index < len(els) else ""
        if not text:
            return None
        value = _DECIMAL_CACHE.get(text)
        if value is not None:
            return value
        value, problem = read_decimal(text, max_length=QUANTITY_MAX_LENGTH)
        if value is not None:
            if len(_DECIMAL_CACHE) < 4096:
                _DECIMAL_CACHE[text] = value
        else:
            self.report(
                self.finding(
                    Severity.ERROR,
                    "835_QUANTITY_INVALID",
                    f"{segment}{index:02d}: not a valid X12 decimal quantity ({problem.message})",
                    segment,
                    f"{segment}{index:02d}",
                    text[:20],
                )
            )
        return value

    def date_value(self, text: str, segment: str, element: str) -> date | None:
        if not text:
            return None
        value = _parse_date(text)
        if value is None:
            self.report(
                self.finding(
                    Severity.ERROR,
                    "835_DATE_INVALID",
                    f"{element}: not a valid CCYYMMDD date",
                    segment,
                    element,
                    text[:20],
                )
            )
        return value

    # ----------------------------------------------------------------- envelope

    @property
    def position(self) -> int:
        """Segment position within the transaction set (ST = 1), as the 999 counts it."""
        return self.ordinal - self.st_ordinal + 1

    def envelope_finding(self, code: str, message: str, segment: str, element: str | None = None) -> None:
        """A file-level error about the envelope (yielded as a Finding event)."""
        self.out.append(error(code, message, segment=segment, element=element, file_ordinal=self.ordinal))

    def end_open_set(self) -> None:
        """An envelope segment arrived while a set is open: that set has no SE."""
        if self.in_835:
            self.close_transaction(missing_se=True)
        self.in_other_set = False

    def end_open_group(self, where: str) -> None:
        self.end_open_set()
        if self.gs_open:
            self.envelope_finding(
                "835_GE_MISSING",
                f"functional group {self.gs06 or '?'} has no GE trailer before {where}: "
                "the file may be truncated",
                "GE",
            )
            self.gs_open = False

    def end_open_interchange(self, where: str) -> None:
        self.end_open_group(where)
        if self.isa_open:
            self.envelope_finding(
                "835_IEA_MISSING",
                f"interchange {self.isa13 or '?'} has no IEA trailer before {where}: "
                "the file may be truncated",
                "IEA",
            )
            self.isa_open = False

    def on_isa(self, els: list[str]) -> None:
        self.end_open_interchange("the next ISA")
        self.component = els[16][:1] if len(els) > 16 and els[16] else ":"
        self.isa06 = els[6].strip() if len(els) > 6 else ""
        self.isa08 = els[8].strip() if len(els) > 8 else ""
        self.isa13 = els[13] if len(els) > 13 else ""
        self.isa_open = True
        self.group_count = 0
        self.outside_reported = False
        if len(els) != 17 or sum(map(len, els)) + 16 != 105:
            # Read by its separators (edi.reader), so nothing is lost; a strict receiver
            # rejects such an interchange (TA1), which `edi validate` reports per element.
            self.out.append(
                warning(
                    "ISA_WIDTH",
                    "the ISA is not 106 characters of 16 fixed-width elements; read by its separators",
                    segment="ISA",
                    file_ordinal=self.ordinal,
                )
            )

    def on_gs(self, els: list[str]) -> None:
        self.end_open_group("the next GS")
        self.gs06 = els[6] if len(els) > 6 else ""
        self.gs08 = els[8] if len(els) > 8 else ""
        self.gs_open = True
        self.group_count += 1
        self.set_count = 0
        self.outside_reported = False

    def on_ge(self, els: list[str]) -> None:
        self.end_open_set()
        if self.gs_open:
            ge01 = els[1] if len(els) > 1 else ""
            if ge01 != str(self.set_count):
                # The group says it holds more (or fewer) transaction sets than were read:
                # one may have been lost on the way, so the file cannot be posted as is.
                self.envelope_finding(
                    "835_GE01_COUNT",
                    f"GE01 says {ge01[:9]!r} transaction sets; {self.set_count} were read in group "
                    f"{self.gs06 or '?'}",
                    "GE",
                    "GE01",
                )
        self.gs_open = False
        self.gs06 = self.gs08 = ""
        self.outside_reported = False

    def on_iea(self, els: list[str]) -> None:
        self.end_open_group("IEA")
        if self.isa_open:
            iea01 = els[1] if len(els) > 1 else ""
            if iea01 != str(self.group_count):
                self.envelope_finding(
                    "835_IEA01_COUNT",
                    f"IEA01 says {iea01[:9]!r} functional groups; {self.group_count} were read in "
                    f"interchange {self.isa13 or '?'}",
                    "IEA",
                    "IEA01",
                )
        self.isa_open = False
        self.outside_reported = False

    def on_ignore(self, els: list[str]) -> None:
        return None

    def outside(self, els: list[str]) -> None:
        """A segment outside every transaction set (not an envelope segment, not a TA1
        between ISA and GS, not inside a set that is not an 835): its data would be lost
        silently, so the first of each run is reported and the file cannot be posted."""
        sid = els[0]
        if self.in_other_set or not sid or (sid == "TA1" and self.isa_open and not self.gs_open):
            return
        if self.outside_reported:
            return
        self.outside_reported = True
        self.envelope_finding(
            "835_OUTSIDE_TRANSACTION",
            f"segment {sid[:3]!r} is outside any transaction set (ST..SE); it and the segments "
            "after it up to the next envelope segment were not read",
            sid[:3],
        )

    def set_in_835(self, value: bool) -> None:
        self.in_835 = value
        self.handlers.clear()
        self.handlers.update(self.transaction_handlers if value else self.envelope_handlers)

    def on_st(self, els: list[str]) -> None:
        self.end_open_set()
        self.set_count += 1
        self.outside_reported = False
        self.st_ordinal = self.ordinal
        st01 = els[1] if len(els) > 1 else ""
        if st01 != "835":
            self.in_other_set = True
            self.out.append(
                warning(
                    "835_NOT_835",
                    "transaction set is not an 835; skipped by the 835 parser",
                    segment="ST",
                    element="ST01",
                    value=st01[:10],
                    file_ordinal=self.ordinal,
                    transaction_set=els[2] if len(els) > 2 else None,
                )
            )
            return
        self.set_in_835(True)
        self.loop = "HEADER"
        self.st02 = els[2] if len(els) > 2 else ""
        self.st03 = els[3] if len(els) > 3 else ""
        self.header = None
        self.header_sent = False
        self.party = self.summary = self.claim = self.line = None
        self.plb = []
        self.plb_segments = 0
        self.claim_count = 0
        self.total_paid = 0
        self.unbalanced = False
        self.tx_findings = []
        implementation = self.st03 or self.gs08
        if implementation and not implementation.startswith("005010X221"):
            self.tx_findings.append(
                self.finding(
                    Severity.WARNING,
                    "835_VERSION",
                    "835 implementation is not 005010X221A1; parsed with the 5010 layout",
                    "ST",
                    "ST03" if self.st03 else None,
                    implementation,
                )
            )

    def on_se(self, els: list[str]) -> None:
        if self.in_835:
            se01 = els[1] if len(els) > 1 else ""
            if se01 != str(self.position):
                self.tx_findings.append(
                    self.finding(
                        Severity.ERROR,
                        "835_SE01_COUNT",
                        f"SE01 says {se01[:9]!r} segments; the transaction set holds {self.position} "
                        "(ST and SE included)",
                        "SE",
                        "SE01",
                        se01[:9],
                    )
                )
            se02 = els[2] if len(els) > 2 else ""
            if se02 != self.st02:
                self.tx_findings.append(
                    self.finding(
                        Severity.ERROR,
                        "835_SE02_MISMATCH",
                        "SE02 does not match the ST02 transaction set control number",
                        "SE",
                        "SE02",
                        se02[:9],
                    )
                )
            self.close_transaction(missing_se=False)
        elif self.in_other_set:
            self.in_other_set = False
        else:
            self.outside(els)

    # ----------------------------------------------------------------- table 1

    def on_bpr(self, els: list[str]) -> None:
        els = els + [""] * (17 - len(els)) if len(els) < 17 else els
        self.loop = "HEADER"
        payment = Payment(
            handling_code=els[1],
            amount_cents=0,
            credit_debit=els[3],
            method=els[4],
            format=els[5],
            sender_dfi_qualifier=els[6],
            sender_dfi_id=els[7],
            sender_account_qualifier=els[8],
            sender_account=els[9],
            originating_company_id=els[10],
            originating_company_supplemental=els[11],
            receiver_dfi_qualifier=els[12],
            receiver_dfi_id=els[13],
            receiver_account_qualifier=els[14],
            receiver_account=els[15],
        )
        self.header = RemittanceHeader(
            control_number=self.st02,
            implementation=self.st03 or self.gs08,
            payment=payment,
            interchange_control_number=self.isa13,
            interchange_sender=self.isa06,
            interchange_receiver=self.isa08,
            group_control_number=self.gs06,
            version=self.gs08,
            findings=self.tx_findings,
        )
        self.tx_findings = []
        payment.amount_cents = self.amount(els, 2, "BPR")
        if payment.amount_cents < 0:
            # BPR02 is the money actually moved to the provider: never negative. A payer
            # that owes less than nothing carries the balance forward with PLB "FB"
            # (X221A1 1.10.2, balance forward processing).
            self.report(
                self.finding(
                    Severity.ERROR,
                    "835_PAYMENT_NEGATIVE",
                    "BPR02 total actual provider payment amount must not be negative "
                    "(a negative balance is carried forward with PLB FB)",
                    "BPR",
                    "BPR02",
                    format_cents(payment.amount_cents),
                )
            )
        payment.date = self.date_value(els[16], "BPR", "BPR16")

    def require_header(self, segment: str) -> RemittanceHeader:
        if self.header is None:
            # BPR is required first in table 1; keep going with an empty payment so the
            # claims are still read, and say why the payment cannot balance.
            self.header = RemittanceHeader(
                control_number=self.st02,
                implementation=self.st03 or self.gs08,
                payment=Payment("", 0, "", ""),
                interchange_control_number=self.isa13,
                interchange_sender=self.isa06,
                interchange_receiver=self.isa08,
                group_control_number=self.gs06,
                version=self.gs08,
                findings=self.tx_findings,
            )
            self.tx_findings = []
            self.report(
                self.finding(
                    Severity.ERROR,
                    "835_BPR_MISSING",
                    "BPR (financial information) must follow ST in an 835",
                    segment,
                )
            )
        return self.header

    def on_trn(self, els: list[str]) -> None:
        header = self.require_header("TRN")
        p = header.payment
        n = len(els)
        p.trace_type = els[1] if n > 1 else ""
        p.trace_number = els[2] if n > 2 else ""
        p.payer_identifier = els[3] if n > 3 else ""
        p.payer_supplemental = els[4] if n > 4 else ""

    def on_cur(self, els: list[str]) -> None:
        self.require_header("CUR").currency = els[2] if len(els) > 2 else ""

    def on_n1(self, els: list[str]) -> None:
        header = self.require_header("N1")
        n = len(els)
        party = Party(
            entity_code=els[1] if n > 1 else "",
            name=els[2] if n > 2 else "",
            id_qualifier=els[3] if n > 3 else "",
            identifier=els[4] if n > 4 else "",
        )
        if party.entity_code == "PR":
            self.loop = "1000A"
            header.payer = party
        else:
            self.loop = "1000B"
            if header.payee is None or party.entity_code == "PE":
                header.payee = party
        self.party = party

    def on_n3(self, els: list[str]) -> None:
        if self.party is None or self.loop not in ("1000A", "1000B"):
            self.unexpected(els)
            return
        if self.party.address is None:
            self.party.address = Address()
        self.party.address.lines.extend(e for e in els[1:3] if e)

    def on_n4(self, els: list[str]) -> None:
        if self.party is None or self.loop not in ("1000A", "1000B"):
            self.unexpected(els)
            return
        if self.party.address is None:
            self.party.address = Address()
        a = self.party.address
        n = len(els)
        a.city = els[1] if n > 1 else ""
        a.state = els[2] if n > 2 else ""
        a.postal_code = els[3] if n > 3 else ""
        a.country = els[4] if n > 4 else ""
        a.subdivision = els[7] if n > 7 else ""

    def on_per(self, els: list[str]) -> None:
        n = len(els)
        contact = Contact(function=els[1] if n > 1 else "", name=els[2] if n > 2 else "")
        for i in (3, 5, 7):
            if i + 1 < n and els[i]:
                contact.numbers.append((els[i], els[i + 1]))
        if self.loop == "2100" and self.claim is not None:
            self.claim.contacts.append(contact)
        elif self.party is not None and self.loop in ("1000A", "1000B"):
            self.party.contacts.append(contact)
        else:
            self.unexpected(els)

    def on_ref(self, els: list[str]) -> None:
        n = len(els)
        ref = Reference(els[1] if n > 1 else "", els[2] if n > 2 else "", els[3] if n > 3 else "")
        loop = self.loop
        if loop == "2110":
            self.line.references.append(ref)  # type: ignore[union-attr]
        elif loop == "2100":
            self.claim.references.append(ref)  # type: ignore[union-attr]
        elif loop in ("1000A", "1000B"):
            self.party.references.append(ref)  # type: ignore[union-attr]
        elif loop == "HEADER":
            header = self.require_header("REF")
            if ref.qualifier == "EV":
                header.receiver_identifier = ref.value
            elif ref.qualifier == "F2":
                header.version_identification = ref.value
            else:
                self.unexpected(els)
        else:
            self.unexpected(els)

    def on_dtm(self, els: list[str]) -> None:
        if len(els) < 3:
            els = [*els, "", ""]
        qualifier = els[1]
        value = _DATE_CACHE.get(els[2]) or self.date_value(els[2], "DTM", "DTM02")
        if value is None:
            return
        loop = self.loop
        if loop == "2110":
            self.line.dates[qualifier] = value  # type: ignore[union-attr]
        elif loop == "2100":
            self.claim.dates[qualifier] = value  # type: ignore[union-attr]
        elif loop == "HEADER" and qualifier == "405":
            self.require_header("DTM").production_date = value
        else:
            self.unexpected(els)

    # ----------------------------------------------------------------- detail

    def on_lx(self, els: list[str]) -> None:
        self.flush_claim()
        self.send_header()
        self.loop = "2000"
        self.summary = ProviderSummary(header_number=els[1] if len(els) > 1 else "")

    def on_ts3(self, els: list[str]) -> None:
        if self.summary is None or self.loop != "2000":
            self.unexpected(els)
            return
        self.summary.ts3 = tuple(els[1:])

    def on_ts2(self, els: list[str]) -> None:
        if self.summary is None or self.loop != "2000":
            self.unexpected(els)
            return
        self.summary.ts2 = tuple(els[1:])

    def on_clp(self, els: list[str]) -> None:
        self.flush_claim()
        self.send_header()
        self.loop = "2100"
        n = len(els)
        if n < 15:
            els = els + [""] * (15 - n)
        claim = ClaimPayment(
            els[1],
            els[2],
            0,
            0,
            None,
            els[6],
            els[7],
            els[8],
            els[9],
            els[10],
            els[11],
            None,
            None,
            els[14],
            self.st02,
            self.summary,
            self.ordinal - self.st_ordinal + 1,
            self.ordinal,
        )
        self.claim = claim
        cents = parse_amount_cents(els[3]) if els[3] else None
        claim.charge_cents = cents if cents is not None else self.amount(els, 3, "CLP")
        cents = parse_amount_cents(els[4]) if els[4] else None
        claim.paid_cents = cents if cents is not None else self.amount(els, 4, "CLP")
        if els[5]:
            claim.patient_responsibility_cents = self.optional_amount(els, 5, "CLP")
        if els[12]:
            claim.drg_weight = self.quantity(els, 12, "CLP")
        if els[13]:
            claim.discharge_fraction = self.quantity(els, 13, "CLP")
        if not claim.patient_control_number:
            self.report(
                self.finding(
                    Severity.ERROR,
                    "835_CLP01_MISSING",
                    "CLP01 (patient control number) is required to match the claim",
                    "CLP",
                    "CLP01",
                )
            )

    def on_cas(self, els: list[str]) -> None:
        loop = self.loop
        if loop == "2110":
            target = self.line.adjustments  # type: ignore[union-attr]
        elif loop == "2100":
            target = self.claim.adjustments  # type: ignore[union-attr]
        else:
            self.unexpected(els)
            return
        n = len(els)
        group = els[1] if n > 1 else ""
        if (n == 4 or n == 5) and els[2]:
            # One triplet, with or without a quantity: by far the most common CAS.
            cents = parse_amount_cents(els[3]) if els[3] else None
            if cents is None:
                cents = self.amount(els, 3, "CAS")
            quantity = None
            if n == 5 and els[4]:
                quantity = _DECIMAL_CACHE.get(els[4]) or self.quantity(els, 4, "CAS")
            target.append(Adjustment(group, els[2], cents, quantity))
            return
        # Up to six reason/amount/quantity triplets: CAS02-04, 05-07, ... 17-19.
        last = min(n, 20)
        i = 2
        while i < last:
            reason = els[i]
            if reason:
                text = els[i + 1] if i + 1 < n else ""
                cents = parse_amount_cents(text) if text else None
                if cents is None:
                    cents = self.amount(els, i + 1, "CAS")
                quantity = self.quantity(els, i + 2, "CAS") if i + 2 < n and els[i + 2] else None
                target.append(Adjustment(group, reason, cents, quantity))
            i += 3

    def on_nm1(self, els: list[str]) -> None:
        if self.loop != "2100" or self.claim is None:
            self.unexpected(els)
            return
        n = len(els)
        if n < 10:
            els = els + [""] * (10 - n)
        party = Party(els[1], els[3], els[2], els[4], els[5], els[6], els[7], els[8], els[9])
        role = _NM1_ROLES.get(party.entity_code)
        if role is None:
            self.claim.other_parties.append(party)
        else:
            setattr(self.claim, role, party)

    def adjudication(self, els: list[str], kind: str, table: tuple[tuple[str, str], ...]) -> Adjudication:
        result = Adjudication(kind, tuple(els[1:]))
        for index, (name, how) in enumerate(table, start=1):
            if index >= len(els) or not els[index]:
                continue
            if how == "a":
                result.amounts[name] = self.amount(els, index, kind)
            elif how == "r":
                result.remarks.append(els[index])
            else:
                value = self.quantity(els, index, kind)
                if value is not None:
                    result.quantities[name] = value
        return result

    def on_mia(self, els: list[str]) -> None:
        if self.loop != "2100" or self.claim is None:
            self.unexpected(els)
            return
        self.claim.inpatient = self.adjudication(els, "MIA", _MIA_ELEMENTS)

    def on_moa(self, els: list[str]) -> None:
        if self.loop != "2100" or self.claim is None:
            self.unexpected(els)
            return
        self.claim.outpatient = self.adjudication(els, "MOA", _MOA_ELEMENTS)

    def on_amt(self, els: list[str]) -> None:
        loop = self.loop
        if loop == "2110":
            target = self.line.amounts  # type: ignore[union-attr]
        elif loop == "2100":
            target = self.claim.amounts  # type: ignore[union-attr]
        else:
            self.unexpected(els)
            return
        cents = parse_amount_cents(els[2]) if len(els) > 2 and els[2] else None
        target[els[1] if len(els) > 1 else ""] = cents if cents is not None else self.amount(els, 2, "AMT")

    def on_qty(self, els: list[str]) -> None:
        loop = self.loop
        if loop == "2110":
            target = self.line.quantities  # type: ignore[union-attr]
        elif loop == "2100":
            target = self.claim.quantities  # type: ignore[union-attr]
        else:
            self.unexpected(els)
            return
        value = self.quantity(els, 2, "QTY")
        if value is not None:
            target[els[1] if len(els) > 1 else ""] = value

    def service_id(self, text: str) -> ServiceId:
        parts = text.split(self.component)
        n = len(parts)
        if n == 2:
            return ServiceId(parts[0], parts[1])
        modifiers = parts[2:6]
        return ServiceId(
            parts[0],
            parts[1] if n > 1 else "",
            tuple(modifiers) if "" not in modifiers else tuple(m for m in modifiers if m),
            parts[6] if n > 6 else "",
        )

    def on_svc(self, els: list[str]) -> None:
        if self.claim is None or self.loop not in ("2100", "2110"):
            self.unexpected(els)
            return
        self.loop = "2110"
        if len(els) < 8:
            els = els + [""] * (8 - len(els))
        charge = parse_amount_cents(els[2]) if els[2] else None
        if charge is None:
            charge = self.amount(els, 2, "SVC")
        paid = parse_amount_cents(els[3]) if els[3] else None
        if paid is None:
            paid = self.amount(els, 3, "SVC")
        units = els[5]
        line = LinePayment(
            self.service_id(els[1]),
            charge,
            paid,
            els[4],
            (_DECIMAL_CACHE.get(units) or self.quantity(els, 5, "SVC")) if units else None,
            None,
            None,
            self.ordinal - self.st_ordinal + 1,
        )
        if els[6]:
            line.original_procedure = self.service_id(els[6])
        if els[7]:
            line.original_units = self.quantity(els, 7, "SVC")
        self.claim.lines.append(line)
        self.line = line

    def on_lq(self, els: list[str]) -> None:
        if self.loop != "2110":
            self.unexpected(els)
            return
        n = len(els)
        self.line.remarks.append(Remark(els[1] if n > 1 else "", els[2] if n > 2 else ""))  # type: ignore[union-attr]

    def on_plb(self, els: list[str]) -> None:
        self.flush_claim()
        self.send_header()
        self.loop = "SUMMARY"
        n = len(els)
        provider = els[1] if n > 1 else ""
        fiscal = self.date_value(els[2] if n > 2 else "", "PLB", "PLB02")
        component = self.component
        self.plb_segments += 1
        # Up to six adjustment identifier (reason:reference) / amount pairs: PLB03-04 ... 13-14.
        for i in range(3, min(n, 15), 2):
            if not els[i]:
                if i + 1 < n and els[i + 1]:
                    # An amount without its reason: still money the payer moved, so it is
                    # kept (reason "") and the transaction says why it cannot be explained.
                    self.report(
                        self.finding(
                            Severity.ERROR,
                            "835_PLB_REASON_MISSING",
                            f"PLB{i:02d} adjustment identifier is missing for the amount in PLB{i + 1:02d}",
                            "PLB",
                            f"PLB{i:02d}",
                        )
                    )
                    self.plb.append(
                        ProviderAdjustment(
                            provider, fiscal, "", "", self.amount(els, i + 1, "PLB"), self.position
                        )
                    )
                continue
            reason, _, reference = els[i].partition(component)
            self.plb.append(
                ProviderAdjustment(
                    provider, fiscal, reason, reference, self.amount(els, i + 1, "PLB"), self.position
                )
            )

    def unexpected(self, els: list[str]) -> None:
        self.report(
            self.finding(
                Severity.WARNING,
                "835_SEGMENT_UNEXPECTED",
                f"{els[0][:3]} is not expected in loop {self.loop or 'envelope'} of an 835; ignored",
                els[0][:3],
            )
        )

    # ----------------------------------------------------------------- boundaries

    def send_header(self) -> None:
        if not self.header_sent:
            self.out.append(self.require_header("LX"))
            self.header_sent = True

    def flush_claim(self) -> None:
        claim = self.claim
        if claim is None:
            return
        self.claim = None
        self.line = None
        self.check_claim(claim)
        self.claim_count += 1
        self.total_paid += claim.paid_cents
        if claim.findings and not claim.balanced:
            self.unbalanced = True
        self.out.append(claim)

    def check_claim(self, claim: ClaimPayment) -> None:
        line_adjustments = 0
        for line in claim.lines:
            adjusted = 0
            for adjustment in line.adjustments:
                adjusted += adjustment.amount_cents
            line_adjustments += adjusted
            if line.charge_cents - adjusted != line.paid_cents:
                claim.findings.append(
                    self.finding(
                        Severity.ERROR,
                        "835_LINE_UNBALANCED",
                        "service line does not balance: SVC02 "
                        f"{format_cents(line.charge_cents)} - line CAS {format_cents(adjusted)} "
                        f"!= SVC03 {format_cents(line.paid_cents)}",
                        "SVC",
                        "SVC03",
                        format_cents(line.paid_cents),
                        position=line.segment_position,
                        ordinal=claim.file_ordinal + line.segment_position - claim.segment_position,
                        loop="2110",
                    )
                )
        claim_adjustments = 0
        for adjustment in claim.adjustments:
            claim_adjustments += adjustment.amount_cents
        # With service lines, the TR3 balances the charge against claim and line CAS
        # together; without them, claim CAS alone explains CLP03 - CLP04.
        expected = claim.charge_cents - claim_adjustments - line_adjustments
        if expected != claim.paid_cents:
            what = "claim CAS + line CAS" if claim.lines else "claim CAS"
            claim.findings.append(
                self.finding(
                    Severity.ERROR,
                    "835_CLAIM_UNBALANCED",
                    f"claim does not balance: CLP03 {format_cents(claim.charge_cents)} - {what} "
                    f"{format_cents(claim_adjustments + line_adjustments)} != CLP04 "
                    f"{format_cents(claim.paid_cents)}",
                    "CLP",
                    "CLP04",
                    format_cents(claim.paid_cents),
                    position=claim.segment_position,
                    ordinal=claim.file_ordinal,
                    loop="2100",
                )
            )

    def close_transaction(self, *, missing_se: bool) -> None:
        self.flush_claim()
        self.send_header()
        header = self.header
        assert header is not None
        findings = self.tx_findings
        if missing_se:
            findings.append(
                self.finding(
                    Severity.ERROR,
                    "835_SE_MISSING",
                    "transaction set ended without SE: it may be truncated, so it is neither "
                    "balanced nor postable",
                    "ST",
                )
            )
        plb_total = sum(a.amount_cents for a in self.plb)
        # BPR02 = sum(CLP04) - sum(PLB): a positive PLB amount is money the payer keeps.
        expected = self.total_paid - plb_total
        payment_ok = expected == header.payment.amount_cents
        if not payment_ok:
            findings.append(
                self.finding(
                    Severity.ERROR,
                    "835_PAYMENT_UNBALANCED",
                    f"payment does not balance: sum of CLP04 {format_cents(self.total_paid)} - "
                    f"sum of PLB {format_cents(plb_total)} != BPR02 "
                    f"{format_cents(header.payment.amount_cents)}",
                    "BPR",
                    "BPR02",
                    format_cents(header.payment.amount_cents),
                    position=None,
                    loop="HEADER",
                )
            )
        money_errors = any(f.code in BALANCING_CODES for f in (*findings, *header.findings))
        self.out.append(
            RemittanceEnd(
                control_number=self.st02,
                provider_adjustments=self.plb,
                claim_count=self.claim_count,
                total_paid_cents=self.total_paid,
                provider_adjustment_cents=plb_total,
                provider_adjustment_segments=self.plb_segments,
                balanced=payment_ok and not self.unbalanced and not money_errors and not missing_se,
                findings=findings,
            )
        )
        self.set_in_835(False)
        self.loop = ""
        self.header = None
        self.plb = []
        self.tx_findings = []

    def finish(self) -> None:
        self.end_open_interchange("the end of the file")


def iter_835(source: Source, *, file: str | None = None) -> Iterator[Event835]:
    """Stream the 835 transaction sets of ``source`` as events, one claim at a time.

    Yields, per 835 transaction set: a :class:`RemittanceHeader`, then each
    :class:`ClaimPayment` (lines included, balancing findings attached), then a
    :class:`RemittanceEnd`. File-level problems (a transaction set that is not an 835,
    segments outside any set, a missing or miscounted GE/IEA, indented segments) are
    yielded as :class:`Finding`. Nothing is dropped silently: every transaction set is
    yielded or named in a finding, and a file that is not all there (``STRUCTURE_CODES``:
    a missing SE/GE/IEA, GE01/IEA01 counts that disagree with what was read, segments
    outside any set) carries a finding in ``UNPOSTABLE_CODES``. Raises
    :class:`X12SyntaxError` (structured: code, file, segment ordinal) when the input is
    not X12 at all.
    """
    parser = _Parser()
    dispatch = parser.handlers.get
    out = parser.out
    base = 0  # segments in earlier blocks
    notes = ReaderNotes()
    indented = notes.indented
    indented_count = 0
    first_indented = 0
    try:
        for pieces, delimiters in iter_blocks(source, file=file, notes=notes):
            if notes.text_before_isa and not base:
                out.append(
                    error(
                        "TEXT_BEFORE_ISA",
                        f"{notes.text_before_isa} characters of text come before the first ISA; "
                        "they are not X12 and were skipped",
                        segment="ISA",
                        file_ordinal=1,
                    )
                )
            if indented:
                # Blanks or tabs before a block's first segment id, read past by the
                # reader; the others are stripped below. Nothing is lost: counted here
                # and reported once at the end of the file.
                first_indented = first_indented or indented[0]
                indented_count += len(indented)
                indented.clear()
            separator = delimiters.element
            for ordinal, piece in enumerate(pieces, base + 1):
                els = piece.split(separator)
                parser.ordinal = ordinal
                handler = dispatch(els[0])
                if handler is None and els[0][:1] in INDENT_START:
                    # An indented segment: looked at only when its id is not known, so
                    # the common path pays nothing for it.
                    els = strip_indent(piece).split(separator)
                    first_indented = first_indented or ordinal
                    indented_count += 1
                    handler = dispatch(els[0])
                if handler is not None:
                    handler(els)
                elif parser.in_835:
                    if els[0]:
                        parser.unexpected(els)
                else:
                    parser.outside(els)
                if out:
                    yield from out
                    out.clear()
            base += len(pieces)
    except X12SyntaxError:
        if base:
            # Unreadable past this point (a truncated last segment, a broken later ISA):
            # the set being read is closed as truncated (835_SE_MISSING, not balanced) and
            # yielded with the open trailers' findings, so nothing read is lost, then the
            # reader's error goes to the caller.
            parser.ordinal = base
            parser.finish()
            yield from out
        raise
    parser.finish()
    if indented_count:
        out.append(
            warning(
                "SEGMENT_LEADING_SPACE",
                f"{indented_count} segment(s) start with blanks or tabs (first at segment "
                f"#{first_indented} of the file); they were read past, nothing was skipped",
                file_ordinal=first_indented,
            )
        )
    yield from out


def _collect(events: Iterable[Event835], document: Remittance835Document) -> None:
    current: Remittance835 | None = None
    for event in events:
        if isinstance(event, ClaimPayment):
            assert current is not None
            current.claims.append(event)
            current.findings.extend(event.findings)
        elif isinstance(event, RemittanceHeader):
            current = Remittance835(header=event, findings=list(event.findings))
        elif isinstance(event, RemittanceEnd):
            assert current is not None
            current.provider_adjustments = event.provider_adjustments
            current.provider_adjustment_segments = event.provider_adjustment_segments
            current.findings.extend(event.findings)
            current.balanced = event.balanced
            document.transactions.append(current)
            current = None
        else:
            document.findings.append(event)


def parse_835(source: Source, *, file: str | None = None) -> list[Remittance835]:
    """Every 835 transaction set of a (small) file, collected in memory.

    Raises :class:`X12SyntaxError` when the input is not X12; use
    :func:`parse_835_document` to get that as a finding instead.
    """
    document = Remittance835Document()
    _collect(iter_835(source, file=file), document)
    return document.transactions


def parse_835_document(source: Source, *, file: str | None = None) -> Remittance835Document:
    """Like :func:`parse_835`, but never raises on bad input: unreadable X12 becomes a
    finding (``readable=False``) and the transaction sets read before it are kept."""
    document = Remittance835Document()
    try:
        _collect(iter_835(source, file=file), document)
    except X12SyntaxError as exc:
        # A truncated tail, or a broken later interchange, still leaves what came before.
        document.readable = exc.code == "SEGMENT_UNTERMINATED" or bool(document.transactions)
        document.findings.append(
            error(
                exc.code,
                exc.message,
                segment="ISA" if exc.code.startswith("ISA") else None,
                file_ordinal=exc.segment_ordinal,
            )
        )
    return document
