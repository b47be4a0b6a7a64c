"""270 (005010X279A1) eligibility inquiry: dataclasses, generation and parsing.

One :class:`EligibilityInquiry` is one question about one patient: the payer (2100A,
information source), the provider asking (2100B, information receiver), the subscriber
(2100C) and, when the patient is a dependent without a member id of their own, the
dependent (2100D). The TR3 puts the trace number (TRN), the date of service (DTP*291)
and the questions (EQ, loop 2110) on the level of the patient: 2000C when the patient
is the subscriber, 2000D when a dependent.

Generation writes one transaction set per inquiry (each with its own TRN) in one
functional group, through :class:`edi.writer.X12Writer`, which computes every count
and refuses any value that holds a delimiter. Parsing reads our own and others' 270s
back into the same dataclasses (the clearinghouse simulator answers them).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from edi.envelope import transaction_sets_of, unreadable
from edi.findings import Finding, Severity
from edi.reader import Delimiters, Segment, Source, X12SyntaxError
from edi.writer import X12Writer

__all__ = [
    "IMPLEMENTATION",
    "EligibilityInquiry",
    "Envelope",
    "InquiryParty",
    "Member",
    "ParsedInquiries",
    "ServiceInquiry",
    "generate_270",
    "parse_270",
]

IMPLEMENTATION = "005010X279A1"
GENERAL_MEDICAL = "30"  # service type 30: health benefit plan coverage (the general question)


@dataclass(frozen=True, slots=True)
class InquiryParty:
    """The payer (NM1*PR, PI payer id) or the provider asking (NM1*1P, XX NPI)."""

    entity_code: str  # NM101: PR payer, 1P provider, FA facility
    name: str  # NM103 organization or last name
    id_qualifier: str  # NM108: PI payer id, XX NPI, SV service provider number
    identifier: str  # NM109
    entity_type: str = "2"  # NM102: 1 person, 2 organization
    first_name: str = ""  # NM104 (a person)
    taxonomy: str = ""  # 2100B PRV*PE*PXC, when the payer answers by specialty


@dataclass(frozen=True, slots=True)
class Member:
    """A subscriber (2100C) or dependent (2100D): who the question is about.

    Every field is PHI: never logged, never put in a finding.
    """

    last_name: str
    first_name: str
    member_id: str = ""  # NM109 with NM108 = MI (subscriber only; dependents use the subscriber's)
    middle_name: str = ""
    suffix: str = ""
    birth_date: date | None = None  # DMG02
    sex: str = ""  # DMG03 F/M/U
    group_number: str = ""  # REF*6P
    relationship: str = ""  # INS02 for a dependent (01 spouse, 19 child, ...)


@dataclass(frozen=True, slots=True)
class ServiceInquiry:
    """The questions of one EQ loop: service types (EQ01) or, instead, a procedure (EQ02)."""

    service_types: tuple[str, ...] = (GENERAL_MEDICAL,)
    procedure_qualifier: str = ""  # EQ02-1: HC (CPT/HCPCS)
    procedure_code: str = ""  # EQ02-2
    modifiers: tuple[str, ...] = ()
    coverage_level: str = ""  # EQ03: IND or FAM
    place_of_service: str = ""  # III*ZZ*<POS>


@dataclass(frozen=True, slots=True)
class EligibilityInquiry:
    """One 270 transaction set: a question about one patient's coverage."""

    trace_number: str  # TRN02: our reference, echoed by the 271 (TRN*2)
    trace_originator: str  # TRN03: "1" + our EIN (10 characters)
    payer: InquiryParty
    provider: InquiryParty
    subscriber: Member
    dependent: Member | None = None
    service_date: date | None = None  # DTP*291 (D8), or the start of an RD8 range
    service_date_end: date | None = None  # RD8 end
    inquiries: tuple[ServiceInquiry, ...] = (ServiceInquiry(),)
    reference: str = ""  # BHT03 submitter transactional identifier
    control_number: str = ""  # ST02 (filled by the parser; the generator numbers sets itself)

    @property
    def patient(self) -> Member:
        return self.dependent if self.dependent is not None else self.subscriber

    @property
    def service_types(self) -> tuple[str, ...]:
        """Every service type asked about, in order, without repeats."""
        seen: list[str] = []
        for inquiry in self.inquiries:
            for code in inquiry.service_types:
                if code not in seen:
                    seen.append(code)
        return tuple(seen)


@dataclass(frozen=True, slots=True)
class Envelope:
    """ISA/GS parties and control numbers of the interchange that carries the inquiries."""

    sender_id: str  # ISA06 (our submitter id at the clearinghouse)
    receiver_id: str  # ISA08
    application_sender: str  # GS02
    application_receiver: str  # GS03
    control_number: int  # ISA13 and GS06
    sender_qualifier: str = "ZZ"
    receiver_qualifier: str = "ZZ"
    usage: str = "P"  # ISA15
    when: datetime | None = None


def _d8(day: date) -> str:
    return day.strftime("%Y%m%d")


def _write_member(writer: X12Writer, member: Member, *, dependent: bool) -> None:
    if dependent:
        writer.segment(
            "NM1",
            "03",
            "1",
            member.last_name,
            member.first_name,
            member.middle_name or None,
            None,
            member.suffix,
        )
    else:
        writer.segment(
            "NM1",
            "IL",
            "1",
            member.last_name,
            member.first_name,
            member.middle_name or None,
            None,
            member.suffix or None,
            "MI" if member.member_id else None,
            member.member_id or None,
        )
        if member.group_number:
            writer.segment("REF", "6P", member.group_number)
    if member.birth_date is not None:
        writer.segment("DMG", "D8", _d8(member.birth_date), member.sex or None)
    if dependent and member.relationship:
        writer.segment("INS", "N", member.relationship)


def _write_questions(writer: X12Writer, inquiry: EligibilityInquiry) -> None:
    if inquiry.service_date is not None:
        if inquiry.service_date_end is not None and inquiry.service_date_end != inquiry.service_date:
            writer.segment(
                "DTP", "291", "RD8", f"{_d8(inquiry.service_date)}-{_d8(inquiry.service_date_end)}"
            )
        else:
            writer.segment("DTP", "291", "D8", _d8(inquiry.service_date))
    for question in inquiry.inquiries:
        procedure = None
        if question.procedure_code:
            procedure = [question.procedure_qualifier or "HC", question.procedure_code, *question.modifiers]
        # EQ01 may repeat, but one service type per EQ is what every payer accepts (the
        # writer refuses repetition separators in data), so each code gets its own 2110 loop.
        # A procedure question (EQ02) carries no service type: payers answer one or the other.
        for code in ("",) if procedure else question.service_types:
            writer.segment("EQ", code or None, procedure, question.coverage_level or None)
            if question.place_of_service:
                writer.segment("III", "ZZ", question.place_of_service)


def write_inquiry(
    writer: X12Writer, inquiry: EligibilityInquiry, control_number: str, *, created: datetime
) -> None:
    """One 270 transaction set (ST..SE) into an open functional group."""
    writer.begin_transaction("270", control_number, IMPLEMENTATION)
    writer.segment(
        "BHT",
        "0022",
        "13",
        inquiry.reference or inquiry.trace_number,
        created.strftime("%Y%m%d"),
        created.strftime("%H%M"),
    )
    source = writer.hl(None, "20", True)
    payer = inquiry.payer
    writer.segment(
        "NM1",
        payer.entity_code,
        payer.entity_type,
        payer.name,
        None,
        None,
        None,
        None,
        payer.id_qualifier,
        payer.identifier,
    )
    receiver = writer.hl(source, "21", True)
    provider = inquiry.provider
    writer.segment(
        "NM1",
        provider.entity_code,
        provider.entity_type,
        provider.name,
        provider.first_name or None,
        None,
        None,
        None,
        provider.id_qualifier,
        provider.identifier,
    )
    if provider.taxonomy:
        writer.segment("PRV", "PE", "PXC", provider.taxonomy)
    dependent = inquiry.dependent
    subscriber = writer.hl(receiver, "22", dependent is not None)
    trace = ("TRN", "1", inquiry.trace_number, inquiry.trace_originator)
    if dependent is None:
        writer.segment(*trace)
    _write_member(writer, inquiry.subscriber, dependent=False)
    if dependent is None:
        _write_questions(writer, inquiry)
    else:
        writer.hl(subscriber, "23", False)
        writer.segment(*trace)
        _write_member(writer, dependent, dependent=True)
        _write_questions(writer, inquiry)
    writer.end_transaction()


def generate_270(
    inquiries: Sequence[EligibilityInquiry], envelope: Envelope, *, delimiters: Delimiters | None = None
) -> str:
    """An interchange with one 270 transaction set per inquiry (ST02 0001, 0002, ...).

    Raises :class:`edi.writer.X12WriteError` (naming the segment and element, never the
    value) when a value holds a delimiter or an envelope field is out of range.
    """
    if not inquiries:
        raise ValueError("a 270 interchange needs at least one inquiry")
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
        functional_id="HS",
        sender_code=envelope.application_sender,
        receiver_code=envelope.application_receiver,
        control_number=envelope.control_number,
        version=IMPLEMENTATION,
        when=when,
    )
    for index, inquiry in enumerate(inquiries, start=1):
        write_inquiry(writer, inquiry, f"{index:04d}", created=when)
    writer.end_group()
    writer.end_interchange()
    return writer.getvalue()


# --------------------------------------------------------------------------------------
# Parsing
# --------------------------------------------------------------------------------------
@dataclass(slots=True)
class ParsedInquiries:
    """Every 270 transaction set of a file, plus what kept any of them from being read."""

    inquiries: list[EligibilityInquiry] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    readable: bool = True
    isa13: str = ""
    sender_id: str = ""  # ISA06
    receiver_id: str = ""  # ISA08
    application_sender: str = ""  # GS02
    application_receiver: str = ""  # GS03
    usage: str = "P"

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "transaction_set": "270",
            "readable": self.readable,
            "inquiries": [_inquiry_json(i) for i in self.inquiries],
            "findings": [f.to_json_dict() for f in self.findings],
        }


def _member_json(member: Member) -> dict[str, Any]:
    return {
        "last_name": member.last_name,
        "first_name": member.first_name,
        "member_id": member.member_id or None,
        "birth_date": member.birth_date.isoformat() if member.birth_date else None,
        "sex": member.sex or None,
        "group_number": member.group_number or None,
        "relationship": member.relationship or None,
    }


def _inquiry_json(inquiry: EligibilityInquiry) -> dict[str, Any]:
    return {
        "control_number": inquiry.control_number,
        "trace_number": inquiry.trace_number,
        "trace_originator": inquiry.trace_originator,
        "payer": {"name": inquiry.payer.name, "id": inquiry.payer.identifier},
        "provider": {"name": inquiry.provider.name, "id": inquiry.provider.identifier},
        "subscriber": _member_json(inquiry.subscriber),
        "dependent": _member_json(inquiry.dependent) if inquiry.dependent else None,
        "service_date": inquiry.service_date.isoformat() if inquiry.service_date else None,
        "service_date_end": inquiry.service_date_end.isoformat() if inquiry.service_date_end else None,
        "service_types": list(inquiry.service_types),
        "procedures": [q.procedure_code for q in inquiry.inquiries if q.procedure_code],
    }


def parse_date(text: str) -> date | None:
    """CCYYMMDD to a date; None when it is not one."""
    if len(text) != 8 or not text.isdigit():
        return None
    try:
        return date(int(text[:4]), int(text[4:6]), int(text[6:8]))
    except ValueError:
        return None


class _InquiryReader:
    def __init__(self, control_number: str) -> None:
        self.control_number = control_number
        self.level = ""
        self.reference = ""
        self.payer: InquiryParty | None = None
        self.provider: InquiryParty | None = None
        self.members: dict[str, dict[str, Any]] = {}
        self.trace = ("", "")
        self.service_date: date | None = None
        self.service_date_end: date | None = None
        self.questions: list[ServiceInquiry] = []

    def feed(self, seg: Segment) -> None:
        sid = seg.id
        if sid == "BHT":
            self.reference = seg.get(3)
        elif sid == "HL":
            self.level = seg.get(3)
        elif sid == "NM1":
            if self.level == "20":
                self.payer = InquiryParty(seg.get(1), seg.get(3), seg.get(8), seg.get(9), seg.get(2) or "2")
            elif self.level == "21":
                self.provider = InquiryParty(
                    seg.get(1), seg.get(3), seg.get(8), seg.get(9), seg.get(2) or "2", seg.get(4)
                )
            elif self.level in ("22", "23"):
                self.members[self.level] = {
                    "last_name": seg.get(3),
                    "first_name": seg.get(4),
                    "middle_name": seg.get(5),
                    "suffix": seg.get(7),
                    "member_id": seg.get(9),
                }
        elif sid == "TRN":
            self.trace = (seg.get(2), seg.get(3))
        elif sid == "REF" and seg.get(1) == "6P" and self.level in self.members:
            self.members[self.level]["group_number"] = seg.get(2)
        elif sid == "DMG" and self.level in self.members:
            self.members[self.level]["birth_date"] = parse_date(seg.get(2))
            self.members[self.level]["sex"] = seg.get(3)
        elif sid == "INS" and self.level in self.members:
            self.members[self.level]["relationship"] = seg.get(2)
        elif sid == "DTP" and seg.get(1) == "291":
            start, _, end = seg.get(3).partition("-")
            self.service_date = parse_date(start)
            self.service_date_end = parse_date(end) if seg.get(2) == "RD8" else None
        elif sid == "EQ":
            parts = seg.components(2)
            self.questions.append(
                ServiceInquiry(
                    service_types=tuple(s for s in seg.repetitions(1) if s),
                    procedure_qualifier=parts[0] if parts and parts[0] else "",
                    procedure_code=parts[1] if len(parts) > 1 else "",
                    modifiers=tuple(m for m in parts[2:6] if m),
                    coverage_level=seg.get(3),
                )
            )
        elif sid == "III" and self.questions and seg.get(1) == "ZZ":
            last = self.questions[-1]
            self.questions[-1] = ServiceInquiry(
                last.service_types,
                last.procedure_qualifier,
                last.procedure_code,
                last.modifiers,
                last.coverage_level,
                seg.get(2),
            )

    def result(self) -> EligibilityInquiry | None:
        subscriber = self.members.get("22")
        if self.payer is None or self.provider is None or subscriber is None:
            return None
        dependent = self.members.get("23")
        return EligibilityInquiry(
            trace_number=self.trace[0],
            trace_originator=self.trace[1],
            payer=self.payer,
            provider=self.provider,
            subscriber=Member(**subscriber),
            dependent=Member(**dependent) if dependent else None,
            service_date=self.service_date,
            service_date_end=self.service_date_end,
            inquiries=tuple(self.questions),
            reference=self.reference,
            control_number=self.control_number,
        )


def parse_270(source: Source, *, file: str | None = None) -> ParsedInquiries:
    """Every 270 in ``source`` as :class:`EligibilityInquiry` objects; never raises on bad input.

    A transaction set without a payer, provider or subscriber cannot be answered: it is
    skipped with an error finding naming its ST02 (structural detail is the validator's).
    """
    parsed = ParsedInquiries()
    try:
        for transaction_set in transaction_sets_of(source, "270", parsed.findings, file=file):
            if (interchange := transaction_set.interchange) is not None:
                parsed.isa13 = interchange.control_number
                parsed.sender_id, parsed.receiver_id = interchange.sender_id, interchange.receiver_id
                parsed.usage = interchange.usage or "P"
            if (group := transaction_set.group) is not None:
                parsed.application_sender = group.application_sender
                parsed.application_receiver = group.application_receiver
            reader = _InquiryReader(transaction_set.control_number)
            for seg in transaction_set:
                reader.feed(seg)
            se = transaction_set.se
            if se is None:
                continue  # no SE: structure is the validator's to report, as for a truncated file
            inquiry = reader.result()
            if inquiry is None:
                parsed.findings.append(
                    Finding(
                        Severity.ERROR,
                        "270_INCOMPLETE",
                        "the 270 names no payer (2100A), provider (2100B) or subscriber (2100C)",
                        segment="SE",
                        file_ordinal=se.ordinal,
                        transaction_set=reader.control_number,
                    )
                )
            else:
                parsed.inquiries.append(inquiry)
    except X12SyntaxError as exc:
        parsed.readable = False
        parsed.findings.append(unreadable(exc))
    return parsed
