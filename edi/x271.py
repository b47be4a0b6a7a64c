"""271 (005010X279A1) eligibility response: parsing into dataclasses, and generation.

The 271 answers a 270 level by level: 2000A the payer (information source), 2000B the
provider who asked, 2000C the subscriber, 2000D a dependent. Any level may carry AAA
segments, the payer's "I could not answer" (AAA01 N, AAA03 reason such as 75 subscriber
not found, AAA04 follow-up: resubmit, do not resubmit, wait). The subscriber and
dependent loops echo the trace number (TRN*2), and may correct the identifying data we
sent (INS03 001 / INS04 25: "change in identifying data elements"; the NM1/DMG then
hold the payer's values). Each EB segment (loop 2110) is one benefit fact: EB01 what
(1 active, 6 inactive, A co-insurance, B co-payment, C deductible, G out-of-pocket,
R other or additional payer ...), EB02 for whom (IND/FAM), EB03 service types, EB04
insurance type, EB05 plan, EB06 period (23 calendar year, 29 remaining ...), EB07 amount,
EB08 percent, EB09/EB10 quantity, EB11 authorization required, EB12 in network; with
its dates (DTP), messages (MSG), and related entities (loop 2120, e.g. the other payer
of an EB*R, or the primary care provider).

Parsing never raises on bad input: structural problems are the validator's
(:mod:`edi.validate` with our X279A1 guide); the parser records what it cannot read
(bad amounts, dates) as findings and keeps going.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from edi.envelope import TransactionSet, transaction_sets_of, unreadable
from edi.findings import Finding, Severity
from edi.numbers import amount_cents, read_decimal
from edi.reader import Delimiters, Segment, Source, X12SyntaxError
from edi.writer import X12Writer, format_amount, format_decimal
from edi.x270 import IMPLEMENTATION, Envelope, parse_date

__all__ = [
    "AAA_FOLLOW_UP",
    "AAA_REASONS",
    "Benefit",
    "BenefitDate",
    "Document271",
    "EligibilityResponse",
    "Entity",
    "MemberResponse",
    "RequestValidation",
    "Trace",
    "generate_271",
    "parse_271",
]

# AAA03 reject reason codes (X12 901) in our own words.
AAA_REASONS: dict[str, str] = {
    "04": "authorized quantity exceeded",
    "15": "required application data missing",
    "33": "input errors",
    "35": "out of network",
    "41": "authorization/access restrictions",
    "42": "unable to respond at current time",
    "43": "invalid or missing provider identification",
    "44": "invalid or missing provider name",
    "45": "invalid or missing provider specialty",
    "46": "invalid or missing provider phone number",
    "47": "invalid or missing provider state",
    "48": "invalid or missing referring provider identification number",
    "49": "provider is not primary care physician",
    "50": "provider ineligible for inquiries",
    "51": "provider not on file",
    "52": "service dates not within provider plan enrollment",
    "53": "inquired benefit inconsistent with provider type",
    "54": "inappropriate product or service ID qualifier",
    "55": "inappropriate product or service ID",
    "56": "inappropriate date",
    "57": "invalid or missing date(s) of service",
    "58": "invalid or missing date of birth",
    "60": "date of birth follows date(s) of service",
    "61": "date of death precedes date(s) of service",
    "62": "date of service not within allowable inquiry period",
    "63": "date of service in future",
    "64": "invalid or missing patient ID",
    "65": "invalid or missing patient name",
    "66": "invalid or missing patient gender code",
    "67": "patient not found",
    "68": "duplicate patient ID number",
    "69": "inconsistent with patient's age",
    "70": "inconsistent with patient's gender",
    "71": "patient birth date does not match that for the patient on the database",
    "72": "invalid or missing subscriber/insured ID",
    "73": "invalid or missing subscriber/insured name",
    "74": "invalid or missing subscriber/insured gender code",
    "75": "subscriber/insured not found",
    "76": "duplicate subscriber/insured ID number",
    "77": "subscriber found, patient not found",
    "78": "subscriber/insured not in group/plan identified",
    "79": "invalid participant identification",
    "80": "no response received - transaction terminated",
    "97": "invalid or missing provider address",
    "98": "experimental service or procedure",
    "AA": "authorization number not found",
    "AE": "requires primary care physician authorization",
    "AF": "invalid/missing diagnosis code(s)",
    "AG": "invalid/missing procedure code(s)",
    "AO": "additional patient condition information required",
    "CI": "certification information does not match patient",
    "E8": "requires medical review",
    "IA": "invalid authorization number format",
    "MA": "missing authorization number",
    "T4": "payer name or identifier missing",
}
# AAA04 follow-up action codes (X12 889).
AAA_FOLLOW_UP: dict[str, str] = {
    "C": "please correct and resubmit",
    "N": "resubmission not allowed",
    "P": "please resubmit original transaction",
    "R": "resubmission allowed",
    "S": "do not resubmit; inquiry initiated to a third party",
    "W": "please wait 30 days and resubmit",
    "X": "please wait 10 days and resubmit",
    "Y": "do not resubmit; we will hand over the information when it is available",
}


@dataclass(frozen=True, slots=True)
class RequestValidation:
    """One AAA: the payer could not answer (AAA01 N) and why, or a warning (AAA01 Y)."""

    valid_request: bool  # AAA01 Y: the request was valid, the answer still is a rejection
    reason: str  # AAA03
    follow_up: str  # AAA04
    loop: str  # where it was: 2000A, 2100A, 2100B, 2100C, 2100D, 2110C ...

    @property
    def reason_text(self) -> str:
        return AAA_REASONS.get(self.reason, "unknown reject reason")

    @property
    def follow_up_text(self) -> str:
        return AAA_FOLLOW_UP.get(self.follow_up, "unknown follow-up action")

    @property
    def retry_after_days(self) -> int | None:
        """When the same question may be asked again: None = not without a correction."""
        return {"P": 0, "R": 0, "X": 10, "W": 30}.get(self.follow_up)

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "valid_request": self.valid_request,
            "reason": self.reason,
            "reason_text": self.reason_text,
            "follow_up": self.follow_up,
            "follow_up_text": self.follow_up_text,
            "loop": self.loop,
        }


@dataclass(slots=True)
class Entity:
    """An NM1 party with its address, contacts and identifiers (payer, provider, other payer ...)."""

    entity_code: str  # NM101
    entity_type: str = ""  # NM102
    name: str = ""  # NM103
    first_name: str = ""  # NM104
    middle_name: str = ""  # NM105
    suffix: str = ""  # NM107
    id_qualifier: str = ""  # NM108
    identifier: str = ""  # NM109
    address: tuple[str, ...] = ()  # N301, N302
    city: str = ""
    state: str = ""
    postal_code: str = ""
    contacts: list[tuple[str, str]] = field(default_factory=list)  # (qualifier, number) from PER
    references: list[tuple[str, str]] = field(default_factory=list)  # REF01, REF02
    taxonomy: str = ""  # PRV03
    rejections: list[RequestValidation] = field(default_factory=list)

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "entity_code": self.entity_code,
            "entity_type": self.entity_type or None,
            "name": self.name,
            "first_name": self.first_name or None,
            "id_qualifier": self.id_qualifier or None,
            "identifier": self.identifier or None,
            "address": list(self.address),
            "city": self.city or None,
            "state": self.state or None,
            "postal_code": self.postal_code or None,
            "contacts": [{"qualifier": q, "number": n} for q, n in self.contacts],
            "references": [{"qualifier": q, "value": v} for q, v in self.references],
            "rejections": [r.to_json_dict() for r in self.rejections],
        }


@dataclass(frozen=True, slots=True)
class BenefitDate:
    """A DTP: qualifier (346 plan begin, 347 plan end, 291 plan, 307 eligibility ...) and dates."""

    qualifier: str
    start: date | None
    end: date | None = None

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "qualifier": self.qualifier,
            "start": self.start.isoformat() if self.start else None,
            "end": self.end.isoformat() if self.end else None,
        }


@dataclass(slots=True)
class Benefit:
    """One EB loop (2110C/2110D) with every element and what belongs to it."""

    code: str  # EB01
    coverage_level: str = ""  # EB02 IND, FAM, ...
    service_types: tuple[str, ...] = ()  # EB03 (repeating)
    insurance_type: str = ""  # EB04
    plan_description: str = ""  # EB05
    time_period: str = ""  # EB06
    amount_cents: int | None = None  # EB07
    percent: Decimal | None = None  # EB08 (0.2 = 20 %)
    quantity_qualifier: str = ""  # EB09
    quantity: Decimal | None = None  # EB10
    authorization_required: str = ""  # EB11 Y/N/U
    in_network: str = ""  # EB12 Y/N/U/W
    procedure: tuple[str, ...] = ()  # EB13: qualifier, code, modifiers
    diagnosis_pointers: tuple[str, ...] = ()  # EB14
    delivery: list[tuple[str, ...]] = field(default_factory=list)  # HSD elements
    references: list[tuple[str, str]] = field(default_factory=list)
    dates: list[BenefitDate] = field(default_factory=list)
    rejections: list[RequestValidation] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)
    additional_info: list[tuple[str, str, str]] = field(default_factory=list)  # III01, III02, III04
    entities: list[Entity] = field(default_factory=list)  # loop 2120

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "coverage_level": self.coverage_level or None,
            "service_types": list(self.service_types),
            "insurance_type": self.insurance_type or None,
            "plan_description": self.plan_description or None,
            "time_period": self.time_period or None,
            "amount": format_amount(self.amount_cents) if self.amount_cents is not None else None,
            "percent": format_decimal(self.percent) if self.percent is not None else None,
            "quantity_qualifier": self.quantity_qualifier or None,
            "quantity": format_decimal(self.quantity) if self.quantity is not None else None,
            "authorization_required": self.authorization_required or None,
            "in_network": self.in_network or None,
            "procedure": list(self.procedure),
            "diagnosis_pointers": list(self.diagnosis_pointers),
            "dates": [d.to_json_dict() for d in self.dates],
            "references": [{"qualifier": q, "value": v} for q, v in self.references],
            "messages": self.messages,
            "rejections": [r.to_json_dict() for r in self.rejections],
            "entities": [e.to_json_dict() for e in self.entities],
        }


@dataclass(frozen=True, slots=True)
class Trace:
    """TRN: type 2 echoes our 270's trace number (referenced), 1 is the payer's own."""

    type: str
    number: str
    originator: str = ""
    secondary: str = ""


@dataclass(slots=True)
class MemberResponse:
    """2000C/2100C (subscriber) or 2000D/2100D (dependent): who, corrections, benefits."""

    level: str  # "subscriber" or "dependent"
    person: Entity
    traces: list[Trace] = field(default_factory=list)
    birth_date: date | None = None
    sex: str = ""
    relationship: str = ""  # INS02
    maintenance_type: str = ""  # INS03 (001 change)
    maintenance_reason: str = ""  # INS04 (25 change in identifying data elements)
    dates: list[BenefitDate] = field(default_factory=list)
    rejections: list[RequestValidation] = field(default_factory=list)
    benefits: list[Benefit] = field(default_factory=list)
    dependents: list[MemberResponse] = field(default_factory=list)

    @property
    def corrected(self) -> bool:
        """INS03 001 + INS04 25: the payer changed the name, id or birth date we sent."""
        return self.maintenance_type == "001" and self.maintenance_reason == "25"

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "level": self.level,
            "person": self.person.to_json_dict(),
            "traces": [{"type": t.type, "number": t.number, "originator": t.originator} for t in self.traces],
            "birth_date": self.birth_date.isoformat() if self.birth_date else None,
            "sex": self.sex or None,
            "relationship": self.relationship or None,
            "corrected": self.corrected,
            "dates": [d.to_json_dict() for d in self.dates],
            "rejections": [r.to_json_dict() for r in self.rejections],
            "benefits": [b.to_json_dict() for b in self.benefits],
            "dependents": [d.to_json_dict() for d in self.dependents],
        }


@dataclass(slots=True)
class EligibilityResponse:
    """One 271 transaction set."""

    control_number: str  # ST02
    implementation: str = ""  # ST03
    purpose: str = ""  # BHT02: 11 response, 06 confirmation
    reference: str = ""  # BHT03
    created: datetime | None = None  # BHT04 + BHT05
    source: Entity | None = None  # 2100A payer
    source_rejections: list[RequestValidation] = field(default_factory=list)  # 2000A AAA
    receiver: Entity | None = None  # 2100B provider
    subscribers: list[MemberResponse] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)

    def members(self) -> list[MemberResponse]:
        """Every subscriber and dependent, in file order."""
        out: list[MemberResponse] = []
        for subscriber in self.subscribers:
            out.append(subscriber)
            out.extend(subscriber.dependents)
        return out

    def rejections(self) -> list[RequestValidation]:
        """Every AAA in the transaction set, outermost level first."""
        out = list(self.source_rejections)
        for entity in (self.source, self.receiver):
            if entity is not None:
                out.extend(entity.rejections)
        for member in self.members():
            out.extend(member.rejections)
            for benefit in member.benefits:
                out.extend(benefit.rejections)
        return out

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "control_number": self.control_number,
            "implementation": self.implementation,
            "purpose": self.purpose,
            "reference": self.reference or None,
            "created": self.created.isoformat() if self.created else None,
            "source": self.source.to_json_dict() if self.source else None,
            "source_rejections": [r.to_json_dict() for r in self.source_rejections],
            "receiver": self.receiver.to_json_dict() if self.receiver else None,
            "subscribers": [s.to_json_dict() for s in self.subscribers],
            "findings": [f.to_json_dict() for f in self.findings],
        }


@dataclass(slots=True)
class Document271:
    """Every 271 of a file."""

    responses: list[EligibilityResponse] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    readable: bool = True

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "transaction_set": "271",
            "readable": self.readable,
            "responses": [r.to_json_dict() for r in self.responses],
            "findings": [f.to_json_dict() for f in self.findings],
        }


# --------------------------------------------------------------------------------------
# Parsing
# --------------------------------------------------------------------------------------
_LEVEL_LOOPS = {"20": "2100A", "21": "2100B", "22": "2100C", "23": "2100D"}


class _Reader271:
    def __init__(self, response: EligibilityResponse, transaction_set: TransactionSet) -> None:
        self.response = response
        self.transaction_set = transaction_set
        self.level = ""
        self.entity: Entity | None = None  # the open NM1 owner (payer, provider, 2120 entity)
        self.member: MemberResponse | None = None
        self.subscriber: MemberResponse | None = None
        self.benefit: Benefit | None = None
        self.in_2120 = False
        self.seen_name = False  # NM1 of the current level read

    def problem(self, code: str, message: str, seg: Segment, element: str, value: str | None = None) -> None:
        self.response.findings.append(
            Finding(
                Severity.ERROR,
                code,
                message,
                segment=seg.id,
                segment_position=self.transaction_set.position(seg),
                loop=self.loop_id(),
                element=element,
                value=value,
                file_ordinal=seg.ordinal,
                transaction_set=self.response.control_number,
            )
        )

    def loop_id(self) -> str:
        suffix = {"22": "C", "23": "D"}.get(self.level, "")
        if self.benefit is not None:
            return f"2120{suffix}" if self.in_2120 else f"2110{suffix}"
        if not self.seen_name:
            return {"20": "2000A", "21": "2000B", "22": "2000C", "23": "2000D"}.get(self.level, "")
        return _LEVEL_LOOPS.get(self.level, "")

    def cents(self, seg: Segment, index: int) -> int | None:
        """EB07 and other amounts as cents (edi.numbers limits); None and a finding when unusable."""
        text = seg.get(index)
        if not text:
            return None
        cents, problem = amount_cents(text)
        if problem is None:
            return cents
        self.problem(
            "271_AMOUNT_INVALID",
            f"{seg.id}{index:02d}: not a usable amount ({problem.message})",
            seg,
            f"{seg.id}{index:02d}",
            text[:18],
        )
        return None

    def number(self, seg: Segment, index: int) -> Decimal | None:
        """EB08 percent, EB10 quantity (R 1/10 and R 1/15): a Decimal, or None and a finding."""
        text = seg.get(index)
        if not text:
            return None
        value, problem = read_decimal(text)
        if problem is not None:
            self.problem(
                "271_NUMBER_INVALID",
                f"{seg.id}{index:02d}: not a usable number ({problem.message})",
                seg,
                f"{seg.id}{index:02d}",
                text[:15],
            )
        return value

    def period(self, seg: Segment) -> BenefitDate:
        fmt, text = seg.get(2), seg.get(3)
        start_text, _, end_text = text.partition("-")
        start = parse_date(start_text)
        end = parse_date(end_text) if fmt == "RD8" else None
        if start is None or (fmt == "RD8" and end is None):
            self.problem("271_DATE_INVALID", "DTP03: not a valid CCYYMMDD date or range", seg, "DTP03")
        return BenefitDate(seg.get(1), start, end)

    def aaa(self, seg: Segment) -> RequestValidation:
        return RequestValidation(seg.get(1) == "Y", seg.get(3), seg.get(4), self.loop_id())

    def feed(self, seg: Segment) -> None:
        sid = seg.id
        response = self.response
        if sid == "BHT":
            response.purpose, response.reference = seg.get(2), seg.get(3)
            day = parse_date(seg.get(4))
            clock = seg.get(5)
            if day is not None:
                hour, minute = (
                    (int(clock[:2]), int(clock[2:4])) if len(clock) >= 4 and clock[:4].isdigit() else (0, 0)
                )
                response.created = datetime(day.year, day.month, day.day, min(hour, 23), min(minute, 59))
        elif sid == "HL":
            self.level = seg.get(3)
            self.benefit = None
            self.entity = None
            self.in_2120 = False
            self.seen_name = False
            if self.level == "22":
                self.member = MemberResponse("subscriber", Entity("IL"))
                self.subscriber = self.member
                response.subscribers.append(self.member)
            elif self.level == "23":
                self.member = MemberResponse("dependent", Entity("03"))
                if self.subscriber is None:
                    self.subscriber = MemberResponse("subscriber", Entity("IL"))
                    response.subscribers.append(self.subscriber)
                self.subscriber.dependents.append(self.member)
            else:
                self.member = None
        elif sid == "NM1":
            entity = Entity(
                seg.get(1), seg.get(2), seg.get(3), seg.get(4), seg.get(5), seg.get(7), seg.get(8), seg.get(9)
            )
            self.seen_name = True
            if self.benefit is not None:
                self.benefit.entities.append(entity)
                self.in_2120 = True
            elif self.level == "20":
                response.source = entity
            elif self.level == "21":
                response.receiver = entity
            elif self.member is not None:
                self.member.person = entity
            self.entity = entity
        elif sid == "AAA":
            rejection = self.aaa(seg)
            if self.benefit is not None:
                self.benefit.rejections.append(rejection)
            elif self.member is not None:
                self.member.rejections.append(rejection)
            elif self.entity is not None:
                self.entity.rejections.append(rejection)
            else:
                response.source_rejections.append(rejection)
        elif sid == "TRN" and self.member is not None:
            self.member.traces.append(Trace(seg.get(1), seg.get(2), seg.get(3), seg.get(4)))
        elif sid == "N3" and self.entity is not None:
            self.entity.address = tuple(a for a in (seg.get(1), seg.get(2)) if a)
        elif sid == "N4" and self.entity is not None:
            self.entity.city, self.entity.state, self.entity.postal_code = seg.get(1), seg.get(2), seg.get(3)
        elif sid == "PER" and self.entity is not None:
            for index in (3, 5, 7):
                if seg.get(index):
                    self.entity.contacts.append((seg.get(index), seg.get(index + 1)))
        elif sid == "PRV" and self.entity is not None:
            self.entity.taxonomy = seg.get(3)
        elif sid == "REF":
            if self.benefit is not None and not self.in_2120:
                self.benefit.references.append((seg.get(1), seg.get(2)))
            elif self.entity is not None:
                self.entity.references.append((seg.get(1), seg.get(2)))
        elif sid == "DMG" and self.member is not None:
            self.member.birth_date = parse_date(seg.get(2))
            self.member.sex = seg.get(3)
        elif sid == "INS" and self.member is not None:
            self.member.relationship = seg.get(2)
            self.member.maintenance_type = seg.get(3)
            self.member.maintenance_reason = seg.get(4)
        elif sid == "DTP":
            if self.benefit is not None:
                self.benefit.dates.append(self.period(seg))
            elif self.member is not None:
                self.member.dates.append(self.period(seg))
        elif sid == "EB" and self.member is not None:
            procedure = tuple(seg.components(13)) if seg.get(13) else ()
            self.benefit = Benefit(
                code=seg.get(1),
                coverage_level=seg.get(2),
                service_types=tuple(s for s in seg.repetitions(3) if s),
                insurance_type=seg.get(4),
                plan_description=seg.get(5),
                time_period=seg.get(6),
                amount_cents=self.cents(seg, 7),
                percent=self.number(seg, 8),
                quantity_qualifier=seg.get(9),
                quantity=self.number(seg, 10),
                authorization_required=seg.get(11),
                in_network=seg.get(12),
                procedure=procedure,
                diagnosis_pointers=tuple(p for p in seg.components(14) if p) if seg.get(14) else (),
            )
            self.member.benefits.append(self.benefit)
            self.entity = None
            self.in_2120 = False
        elif self.benefit is not None:
            if sid == "HSD":
                self.benefit.delivery.append(tuple(seg.elements[1:]))
            elif sid == "MSG":
                self.benefit.messages.append(seg.get(1))
            elif sid == "III":
                self.benefit.additional_info.append((seg.get(1), seg.get(2), seg.get(4)))
            elif sid == "LE":
                self.in_2120 = False
                self.entity = None


def parse_271(source: Source, *, file: str | None = None) -> Document271:
    """Every 271 transaction set in ``source``; never raises on bad input."""
    doc = Document271()
    try:
        for transaction_set in transaction_sets_of(source, "271", doc.findings, file=file):
            response = EligibilityResponse(transaction_set.control_number, transaction_set.implementation)
            doc.responses.append(response)
            reader = _Reader271(response, transaction_set)
            for seg in transaction_set:
                reader.feed(seg)
    except X12SyntaxError as exc:
        doc.readable = False
        doc.findings.append(unreadable(exc))
    return doc


# --------------------------------------------------------------------------------------
# Generation (the clearinghouse simulator answers 270s with these)
# --------------------------------------------------------------------------------------
def _d8(day: date) -> str:
    return day.strftime("%Y%m%d")


def _write_dates(writer: X12Writer, dates: Sequence[BenefitDate]) -> None:
    for d in dates:
        if d.start is None:
            continue
        if d.end is not None:
            writer.segment("DTP", d.qualifier, "RD8", f"{_d8(d.start)}-{_d8(d.end)}")
        else:
            writer.segment("DTP", d.qualifier, "D8", _d8(d.start))


def _write_aaa(writer: X12Writer, rejections: Sequence[RequestValidation]) -> None:
    for r in rejections:
        writer.segment("AAA", "Y" if r.valid_request else "N", None, r.reason, r.follow_up)


def _write_name(writer: X12Writer, e: Entity) -> None:
    writer.segment(
        "NM1",
        e.entity_code,
        e.entity_type or "1",
        e.name or None,
        e.first_name or None,
        e.middle_name or None,
        None,
        e.suffix or None,
        e.id_qualifier or None,
        e.identifier or None,
    )


def _write_benefit(writer: X12Writer, b: Benefit) -> None:
    # EB03 may repeat, but the writer refuses separators inside data; one EB loop per
    # service type says the same thing and every reader accepts it.
    for service_type in b.service_types or ("",):
        _write_one_benefit(writer, b, service_type)


def _write_one_benefit(writer: X12Writer, b: Benefit, service_type: str) -> None:
    writer.segment(
        "EB",
        b.code,
        b.coverage_level or None,
        service_type or None,
        b.insurance_type or None,
        b.plan_description or None,
        b.time_period or None,
        format_amount(b.amount_cents) if b.amount_cents is not None else None,
        format_decimal(b.percent) if b.percent is not None else None,
        b.quantity_qualifier or None,
        format_decimal(b.quantity) if b.quantity is not None else None,
        b.authorization_required or None,
        b.in_network or None,
        list(b.procedure) or None,
    )
    for qualifier, value in b.references:
        writer.segment("REF", qualifier, value)
    _write_dates(writer, b.dates)
    _write_aaa(writer, b.rejections)
    for message in b.messages:
        writer.segment("MSG", message)
    if b.entities:
        writer.segment("LS", "2120")
        for e in b.entities:
            _write_name(writer, e)
            if e.address:
                writer.segment("N3", *e.address)
            if e.city:
                writer.segment("N4", e.city, e.state or None, e.postal_code or None)
            if e.contacts:
                flat: list[str] = [item for pair in e.contacts[:3] for item in pair]
                writer.segment("PER", "IC", None, *flat)
        writer.segment("LE", "2120")


def _write_member(writer: X12Writer, m: MemberResponse) -> None:
    for t in m.traces:
        writer.segment("TRN", t.type, t.number, t.originator, t.secondary or None)
    _write_name(writer, m.person)
    if m.person.address:
        writer.segment("N3", *m.person.address)
    if m.person.city:
        writer.segment("N4", m.person.city, m.person.state or None, m.person.postal_code or None)
    _write_aaa(writer, m.rejections)
    if m.birth_date is not None:
        writer.segment("DMG", "D8", _d8(m.birth_date), m.sex or None)
    if m.relationship or m.maintenance_type:
        writer.segment(
            "INS",
            "Y" if m.level == "subscriber" else "N",
            m.relationship or None,
            m.maintenance_type or None,
            m.maintenance_reason or None,
        )
    _write_dates(writer, m.dates)
    for b in m.benefits:
        _write_benefit(writer, b)


def write_response(
    writer: X12Writer, r: EligibilityResponse, control_number: str, *, created: datetime
) -> None:
    """One 271 transaction set (ST..SE) into an open functional group."""
    writer.begin_transaction("271", control_number, IMPLEMENTATION)
    writer.segment(
        "BHT",
        "0022",
        r.purpose or "11",
        r.reference or None,
        created.strftime("%Y%m%d"),
        created.strftime("%H%M"),
    )
    has_receiver = r.receiver is not None
    source = writer.hl(None, "20", has_receiver)
    _write_aaa(writer, r.source_rejections)
    if r.source is not None:
        _write_name(writer, r.source)
        _write_aaa(writer, r.source.rejections)
    if r.receiver is not None:
        receiver = writer.hl(source, "21", bool(r.subscribers))
        _write_name(writer, r.receiver)
        _write_aaa(writer, r.receiver.rejections)
        for s in r.subscribers:
            subscriber = writer.hl(receiver, "22", bool(s.dependents))
            _write_member(writer, s)
            for d in s.dependents:
                writer.hl(subscriber, "23", False)
                _write_member(writer, d)
    writer.end_transaction()


def generate_271(
    responses: Sequence[EligibilityResponse], envelope: Envelope, *, delimiters: Delimiters | None = None
) -> str:
    """An interchange with one 271 transaction set per response (ST02 0001, 0002, ...)."""
    if not responses:
        raise ValueError("a 271 interchange needs at least one response")
    when = envelope.when or datetime.now()
    writer = X12Writer(delimiters or Delimiters())
    writer.begin_interchange(
        sender_qualifier=envelope.sender_qualifier,
        sender_id=envelope.sender_id,
        receiver_qualifier=envelope.receiver_qualifier,
        receiver_id=envelope.receiver_id,
        control_number=envelope.control_number,
        usage=envelope.usage,
        when=when,
    )
    writer.begin_group(
        functional_id="HB",
        sender_code=envelope.application_sender,
        receiver_code=envelope.application_receiver,
        control_number=envelope.control_number,
        version=IMPLEMENTATION,
        when=when,
    )
    for index, response in enumerate(responses, start=1):
        write_response(writer, response, f"{index:04d}", created=when)
    writer.end_group()
    writer.end_interchange()
    return writer.getvalue()
