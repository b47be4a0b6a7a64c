"""277CA (005010X214) claim acknowledgment: the payer front end's verdict per claim.

The 277CA is a tree of HL levels: 20 information source (the payer), 21 information
receiver (the submitter: batch totals accepted/rejected), 19 billing provider, PT the
patient with one claim (2200D: TRN02 = our CLM01, REF*1K the payer's claim number, STC
the status), and 2220D service lines. Each STC carries up to three status composites
(STC01, STC10, STC11), each ``category:status:entity``; the category decides whether
the claim went into adjudication (A1/A2...) or came back rejected (A3, A6, A7, A8...).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

from edi.envelope import TransactionSet, transaction_sets_of, unreadable
from edi.findings import Finding, Severity
from edi.numbers import amount_cents, read_decimal
from edi.reader import X12SyntaxError

IMPLEMENTATION = "005010X214"

# Claim status category codes (code source 507), described in our own words, with the
# outcome a biller acts on: accepted (in adjudication), rejected (fix and resend),
# pending, finalized, request (payer wants something), error (ask again), info.
CATEGORIES: dict[str, tuple[str, str]] = {
    "A0": ("accepted", "received and forwarded to another entity"),
    "A1": ("accepted", "received by the payer front end (not yet a verdict on content)"),
    "A2": ("accepted", "accepted into the payer's adjudication system"),
    "A3": ("rejected", "returned as unprocessable"),
    "A4": ("rejected", "not found by the payer"),
    "A5": ("accepted", "split by the payer into separate claims"),
    "A6": ("rejected", "rejected because information is missing"),
    "A7": ("rejected", "rejected because information is invalid"),
    "A8": ("rejected", "rejected because related fields do not agree"),
    "DR01": ("accepted", "encounter data received"),
    "DR02": ("accepted", "encounter data accepted"),
    "DR03": ("rejected", "encounter data returned as unprocessable"),
    "DR04": ("rejected", "encounter data not found"),
    "DR05": ("rejected", "encounter data rejected: missing information"),
    "DR06": ("rejected", "encounter data rejected: invalid information"),
    "DR07": ("rejected", "encounter data rejected: related fields do not agree"),
    "DR08": ("rejected", "encounter data rejected: not acceptable by the payer"),
    "D0": ("error", "no matching data found for the request"),
    "E0": ("error", "the payer could not answer: error in the request data"),
    "E1": ("error", "the payer could not answer: its system is unavailable"),
    "E2": ("error", "the payer could not answer: error in the reply"),
    "E3": ("error", "the payer could not answer: the request must be sent again"),
    "E4": ("error", "the payer could not answer: trading partner agreement issue"),
    "F0": ("finalized", "finalized: adjudication complete"),
    "F1": ("finalized", "finalized and paid"),
    "F2": ("finalized", "finalized and denied"),
    "F3": ("finalized", "finalized as a revised adjudication"),
    "F3F": ("finalized", "finalized as a forwarded revised adjudication"),
    "F3N": ("finalized", "finalized as a revised adjudication, not forwarded"),
    "F4": ("finalized", "finalized: adjudication complete, no payment forthcoming"),
    "P0": ("pending", "pending: adjudication or review in progress"),
    "P1": ("pending", "pending: in process"),
    "P2": ("pending", "pending: payer review"),
    "P3": ("pending", "pending: waiting for information requested from the provider"),
    "P4": ("pending", "pending: waiting for information requested from the patient"),
    "P5": ("pending", "pending: payer administrative or system hold"),
    "R0": ("request", "the payer asks for more information: general"),
    "R1": ("request", "the payer asks for entity information"),
    "R3": ("request", "the payer asks for claim or line information"),
    "R4": ("request", "the payer asks for documentation about the patient's condition"),
    "R5": ("request", "the payer asks for information about the claim's services"),
    "R6": ("request", "the payer asks for regulatory or legal information"),
    "R7": ("request", "the payer asks for information about the patient"),
    "R8": ("request", "the payer asks for information about the provider"),
    "R9": ("request", "the payer asks for information about a related claim"),
    "R10": ("request", "the payer asks for COB information"),
    "R11": ("request", "the payer asks for entity identification"),
    "R12": ("request", "the payer asks for information about the insured"),
    "R13": ("request", "the payer asks for a completed form"),
    "R14": ("request", "the payer asks for an attachment"),
    "R15": ("request", "the payer asks for information from a third party"),
    "R16": ("request", "the payer asks for the original claim"),
    "RQ": ("request", "general information request"),
}

_OUTCOME_RANK = {
    "rejected": 6,
    "error": 5,
    "request": 4,
    "pending": 3,
    "finalized": 2,
    "accepted": 1,
    "unknown": 0,
}


def category_outcome(category: str) -> str:
    """accepted / rejected / pending / finalized / request / error, or unknown."""
    entry = CATEGORIES.get(category)
    return entry[0] if entry else "unknown"


@dataclass(slots=True)
class StatusCode:
    """One status composite (STC01, STC10 or STC11): category, status code, entity."""

    category: str
    code: str
    entity: str = ""
    code_list_qualifier: str = ""

    @property
    def outcome(self) -> str:
        return category_outcome(self.category)

    @property
    def category_description(self) -> str:
        entry = CATEGORIES.get(self.category)
        return entry[1] if entry else "unknown category code"


@dataclass(slots=True)
class Status:
    """One STC segment: up to three status composites, dates, action code, amounts, message."""

    codes: list[StatusCode]
    effective_date: date | None = None  # STC02
    action_code: str = ""  # STC03: WQ accepted, U rejected...
    charge_cents: int | None = None  # STC04: total claim charge
    payment_cents: int | None = None  # STC05
    message: str = ""  # STC12 free-form text

    @property
    def outcome(self) -> str:
        """The most serious outcome among the composites (rejected wins)."""
        return max((c.outcome for c in self.codes), key=lambda o: _OUTCOME_RANK[o], default="unknown")


@dataclass(slots=True)
class ServiceLineStatus:
    """2220D: one service line's status (SVC, STC, REF*FJ line item control number, DTP*472)."""

    procedure: str
    modifiers: tuple[str, ...]
    charge_cents: int | None
    paid_cents: int | None
    revenue_code: str = ""
    units: Decimal | None = None
    line_control_number: str = ""
    service_date: date | None = None
    service_date_end: date | None = None
    statuses: list[Status] = field(default_factory=list)


@dataclass(slots=True)
class Entity:
    """An HL level above the claim (payer, information receiver, provider): name, id, statuses."""

    level: str  # HL03: 20, 21, 19
    entity_code: str  # NM101
    name: str = ""
    id_qualifier: str = ""
    identifier: str = ""
    trace_number: str = ""  # TRN02
    statuses: list[Status] = field(default_factory=list)
    quantities: dict[str, Decimal] = field(default_factory=dict)  # QTY*90 accepted, QTY*AA rejected
    amounts: dict[str, int] = field(default_factory=dict)  # AMT*YU accepted, AMT*YY rejected


@dataclass(slots=True)
class ClaimStatus:
    """2200D/E: the payer front end's verdict on one claim."""

    patient_control_number: str  # TRN02 = our CLM01
    payer_claim_control_number: str = ""  # REF*1K
    clearinghouse_trace_number: str = ""  # REF*D9
    bill_type: str = ""  # REF*BLT (institutional)
    medical_record_number: str = ""  # REF*EA
    patient_last_name: str = ""  # NM103 (not repeated in messages: PHI)
    patient_first_name: str = ""
    member_id: str = ""  # NM109
    service_date: date | None = None  # DTP*472 (D8, or RD8 start)
    service_date_end: date | None = None
    statuses: list[Status] = field(default_factory=list)
    lines: list[ServiceLineStatus] = field(default_factory=list)
    provider_npi: str = ""  # from the 2000C provider level above
    transaction_set: str = ""  # ST02 of the 277CA

    @property
    def outcome(self) -> str:
        """rejected if any status says so, else the most serious outcome of claim and lines."""
        outcomes = [s.outcome for s in self.statuses] + [s.outcome for ln in self.lines for s in ln.statuses]
        return max(outcomes, key=lambda o: _OUTCOME_RANK[o], default="unknown")

    @property
    def accepted(self) -> bool:
        return self.outcome in ("accepted", "finalized", "pending")

    @property
    def rejected(self) -> bool:
        return self.outcome == "rejected"

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "patient_control_number": self.patient_control_number,
            "payer_claim_control_number": self.payer_claim_control_number or None,
            "clearinghouse_trace_number": self.clearinghouse_trace_number or None,
            "bill_type": self.bill_type or None,
            "outcome": self.outcome,
            "accepted": self.accepted,
            "service_date": self.service_date.isoformat() if self.service_date else None,
            "service_date_end": self.service_date_end.isoformat() if self.service_date_end else None,
            "provider_npi": self.provider_npi or None,
            "statuses": [_status_json(s) for s in self.statuses],
            "lines": [
                {
                    "procedure": ln.procedure,
                    "modifiers": list(ln.modifiers),
                    "charge": _money(ln.charge_cents),
                    "paid": _money(ln.paid_cents),
                    "revenue_code": ln.revenue_code or None,
                    "units": str(ln.units) if ln.units is not None else None,
                    "line_control_number": ln.line_control_number or None,
                    "service_date": ln.service_date.isoformat() if ln.service_date else None,
                    "statuses": [_status_json(s) for s in ln.statuses],
                }
                for ln in self.lines
            ],
        }


@dataclass(slots=True)
class ClaimAck277:
    """One 277CA transaction set."""

    control_number: str  # ST02
    implementation: str  # ST03
    reference: str = ""  # BHT03: the originator's batch reference
    created: date | None = None  # BHT04
    payer: Entity | None = None
    receivers: list[Entity] = field(default_factory=list)
    providers: list[Entity] = field(default_factory=list)
    claims: list[ClaimStatus] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "control_number": self.control_number,
            "implementation": self.implementation,
            "reference": self.reference or None,
            "created": self.created.isoformat() if self.created else None,
            "payer": _entity_json(self.payer) if self.payer else None,
            "receivers": [_entity_json(e) for e in self.receivers],
            "providers": [_entity_json(e) for e in self.providers],
            "claims": [c.to_json_dict() for c in self.claims],
            "accepted_claims": sum(1 for c in self.claims if c.accepted),
            "rejected_claims": sum(1 for c in self.claims if c.rejected),
            "findings": [f.to_json_dict() for f in self.findings],
        }


@dataclass(slots=True)
class Document277CA:
    transactions: list[ClaimAck277] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    readable: bool = True

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "transaction_set": "277CA",
            "readable": self.readable,
            "transactions": [t.to_json_dict() for t in self.transactions],
            "findings": [f.to_json_dict() for f in self.findings],
        }


def _money(cents: int | None) -> str | None:
    if cents is None:
        return None
    sign = "-" if cents < 0 else ""
    whole, frac = divmod(abs(cents), 100)
    return f"{sign}{whole}.{frac:02d}"


def _status_json(s: Status) -> dict[str, Any]:
    return {
        "outcome": s.outcome,
        "codes": [
            {
                "category": c.category,
                "category_description": c.category_description,
                "status": c.code,
                "entity": c.entity or None,
                "outcome": c.outcome,
            }
            for c in s.codes
        ],
        "effective_date": s.effective_date.isoformat() if s.effective_date else None,
        "action_code": s.action_code or None,
        "charge": _money(s.charge_cents),
        "payment": _money(s.payment_cents),
        "message": s.message or None,
    }


def _entity_json(e: Entity) -> dict[str, Any]:
    return {
        "level": e.level,
        "entity_code": e.entity_code,
        "name": e.name,
        "id_qualifier": e.id_qualifier or None,
        "identifier": e.identifier or None,
        "trace_number": e.trace_number or None,
        "statuses": [_status_json(s) for s in e.statuses],
        "quantities": {k: str(v) for k, v in e.quantities.items()},
        "amounts": {k: _money(v) for k, v in e.amounts.items()},
    }


def _date(text: str) -> date | None:
    if len(text) != 8 or not text.isascii() or not text.isdigit():
        return None
    try:
        return date(int(text[:4]), int(text[4:6]), int(text[6:8]))
    except ValueError:
        return None


class _Reader277:
    """Walks the HL tree of one 277CA; statuses attach to the innermost open level."""

    def __init__(self, tx: ClaimAck277, transaction_set: TransactionSet) -> None:
        self.tx = tx
        self.transaction_set = transaction_set
        self.level = ""
        self.entity: Entity | None = None
        self.provider: Entity | None = None
        self.claim: ClaimStatus | None = None
        self.line: ServiceLineStatus | None = None

    def problem(self, code: str, message: str, seg: Any, element: str | None = None, value: str = "") -> None:
        self.tx.findings.append(
            Finding(
                Severity.ERROR,
                code,
                message,
                segment=seg.id,
                segment_position=self.transaction_set.position(seg),
                loop=self.loop_id(),
                element=element,
                value=value[:20] or None,
                file_ordinal=seg.ordinal,
                transaction_set=self.tx.control_number,
            )
        )

    def cents(self, seg: Any, index: int) -> int | None:
        """An amount element as cents (edi.numbers), None when empty; a finding when unusable."""
        text = seg.get(index)
        if not text:
            return None
        cents, problem = amount_cents(text)
        if problem is None:
            return cents
        element = f"{seg.id}{index:02d}"
        self.problem(
            "277_AMOUNT_INVALID", f"{element}: not a usable amount ({problem.message})", seg, element, text
        )
        return None

    def quantity(self, seg: Any, index: int) -> Decimal | None:
        text = seg.get(index)
        if not text:
            return None
        value, problem = read_decimal(text)
        if problem is not None:
            element = f"{seg.id}{index:02d}"
            self.problem("277_QUANTITY_INVALID", f"{element}: {problem.message}", seg, element, text)
        return value

    def loop_id(self) -> str | None:
        if self.line is not None:
            return "2220D"
        return {"20": "2000A", "21": "2000B", "19": "2000C", "PT": "2000D", "DP": "2000E"}.get(self.level)

    def status(self, seg: Any) -> Status:
        codes: list[StatusCode] = []
        for index in (1, 10, 11):
            parts = seg.components(index)
            if parts and parts[0]:
                codes.append(
                    StatusCode(
                        parts[0],
                        parts[1] if len(parts) > 1 else "",
                        parts[2] if len(parts) > 2 else "",
                        parts[3] if len(parts) > 3 else "",
                    )
                )
                if parts[0] not in CATEGORIES:
                    self.problem(
                        "277_CATEGORY_UNKNOWN",
                        f"STC{index:02d}-1: not a known claim status category code",
                        seg,
                        f"STC{index:02d}-1",
                        parts[0],
                    )
        if not codes:
            self.problem("277_STC01_MISSING", "STC01 (status composite) is required", seg, "STC01")
        return Status(
            codes=codes,
            effective_date=_date(seg.get(2)),
            action_code=seg.get(3),
            charge_cents=self.cents(seg, 4),
            payment_cents=self.cents(seg, 5),
            message=seg.get(12),
        )

    def feed(self, seg: Any) -> None:
        sid = seg.id
        if sid == "BHT":
            self.tx.reference = seg.get(3)
            self.tx.created = _date(seg.get(4))
        elif sid == "HL":
            self.level = seg.get(3)
            self.line = None
            self.claim = None
            self.entity = None
            if self.level in ("20", "21", "19"):
                self.entity = Entity(level=self.level, entity_code="")
                if self.level == "20":
                    self.tx.payer = self.entity
                elif self.level == "21":
                    self.tx.receivers.append(self.entity)
                else:
                    self.tx.providers.append(self.entity)
                    self.provider = self.entity
        elif sid == "NM1":
            if self.entity is not None:
                self.entity.entity_code = seg.get(1)
                self.entity.name = seg.get(3)
                self.entity.id_qualifier = seg.get(8)
                self.entity.identifier = seg.get(9)
            elif self.level in ("PT", "DP"):
                self.claim = ClaimStatus(
                    patient_control_number="",
                    patient_last_name=seg.get(3),
                    patient_first_name=seg.get(4),
                    member_id=seg.get(9),
                    provider_npi=(
                        self.provider.identifier
                        if self.provider is not None and self.provider.id_qualifier == "XX"
                        else ""
                    ),
                    transaction_set=self.tx.control_number,
                )
                self.tx.claims.append(self.claim)
        elif sid == "TRN":
            if self.claim is not None:
                self.claim.patient_control_number = seg.get(2)
            elif self.entity is not None:
                self.entity.trace_number = seg.get(2)
        elif sid == "STC":
            status = self.status(seg)
            if self.line is not None:
                self.line.statuses.append(status)
            elif self.claim is not None:
                self.claim.statuses.append(status)
            elif self.entity is not None:
                self.entity.statuses.append(status)
        elif sid == "REF":
            qualifier, value = seg.get(1), seg.get(2)
            if self.line is not None and qualifier == "FJ":
                self.line.line_control_number = value
            elif self.claim is not None and self.line is None:
                if qualifier == "1K":
                    self.claim.payer_claim_control_number = value
                elif qualifier == "D9":
                    self.claim.clearinghouse_trace_number = value
                elif qualifier == "BLT":
                    self.claim.bill_type = value
                elif qualifier == "EA":
                    self.claim.medical_record_number = value
        elif sid == "DTP":
            qualifier, fmt, value = seg.get(1), seg.get(2), seg.get(3)
            if qualifier != "472":
                return
            start, _, end = value.partition("-")
            first, last = _date(start), _date(end) if fmt == "RD8" else None
            if first is None:
                self.problem("277_DATE_INVALID", "DTP03: not a valid CCYYMMDD date", seg, "DTP03", value)
            target = self.line if self.line is not None else self.claim
            if target is not None:
                target.service_date, target.service_date_end = first, last
        elif sid == "SVC" and self.claim is not None:
            parts = seg.components(1)
            self.line = ServiceLineStatus(
                procedure=parts[1] if len(parts) > 1 else "",
                modifiers=tuple(m for m in parts[2:6] if m),
                charge_cents=self.cents(seg, 2),
                paid_cents=self.cents(seg, 3),
                revenue_code=seg.get(4),
                units=self.quantity(seg, 7),
            )
            self.claim.lines.append(self.line)
        elif sid == "QTY" and self.entity is not None:
            value = self.quantity(seg, 2)
            if value is not None:
                self.entity.quantities[seg.get(1)] = value
        elif sid == "AMT" and self.entity is not None:
            cents = self.cents(seg, 2)
            if cents is not None:
                self.entity.amounts[seg.get(1)] = cents


def parse_277ca(source: Any, *, file: str | None = None) -> Document277CA:
    """Every 277CA transaction set in ``source``; never raises on bad input."""
    doc = Document277CA()
    try:
        for transaction_set in transaction_sets_of(source, "277", doc.findings, file=file):
            tx = ClaimAck277(transaction_set.control_number, transaction_set.implementation)
            doc.transactions.append(tx)
            if tx.implementation and not tx.implementation.startswith("005010X214"):
                tx.findings.append(
                    Finding(
                        Severity.WARNING,
                        "277_VERSION",
                        "ST03 is not 005010X214 (277CA); read with the 277CA layout",
                        segment="ST",
                        element="ST03",
                        value=tx.implementation,
                        file_ordinal=transaction_set.st.ordinal,
                        transaction_set=tx.control_number,
                    )
                )
            reader = _Reader277(tx, transaction_set)
            for seg in transaction_set:
                reader.feed(seg)
    except X12SyntaxError as exc:
        doc.readable = False
        doc.findings.append(unreadable(exc))
    return doc
