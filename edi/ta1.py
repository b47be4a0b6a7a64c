"""TA1 interchange acknowledgment: parse and generate.

A TA1 answers an interchange (ISA/IEA) as a whole, before any functional group is
looked at: TA101 echoes the ISA13 control number, TA102/TA103 the ISA09 date and ISA10
time, TA104 says A (accepted), E (accepted with errors) or R (rejected), and TA105 the
note code below. It travels in an interchange of its own with no functional group
(IEA01 = 0), or next to the groups of a reply interchange.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time
from typing import Any

from edi.envelope import OutsideSegment, iter_envelope, unreadable
from edi.findings import Finding, Severity
from edi.reader import Delimiters, X12SyntaxError
from edi.writer import X12WriteError, X12Writer

# TA105 interchange note codes, 000-031, described in our own words.
NOTE_CODES: dict[str, str] = {
    "000": "no error",
    "001": "ISA13 and IEA02 interchange control numbers differ",
    "002": "the control standard (ISA11 in 4010) is not supported",
    "003": "this version of the interchange control segments is not supported",
    "004": "the segment terminator is not valid",
    "005": "the sender ID qualifier (ISA05) is not valid",
    "006": "the sender ID (ISA06) is not valid",
    "007": "the receiver ID qualifier (ISA07) is not valid",
    "008": "the receiver ID (ISA08) is not valid",
    "009": "the receiver ID (ISA08) is not known to us",
    "010": "the authorization information qualifier (ISA01) is not valid",
    "011": "the authorization information (ISA02) is not valid",
    "012": "the security information qualifier (ISA03) is not valid",
    "013": "the security information (ISA04) is not valid",
    "014": "the interchange date (ISA09) is not valid",
    "015": "the interchange time (ISA10) is not valid",
    "016": "the standards identifier / repetition separator (ISA11) is not valid",
    "017": "the interchange version (ISA12) is not valid",
    "018": "the interchange control number (ISA13) is not valid",
    "019": "the acknowledgment requested flag (ISA14) is not valid",
    "020": "the usage (test/production) indicator (ISA15) is not valid",
    "021": "IEA01 does not match the number of functional groups",
    "022": "the control structure is not valid (envelopes out of order or missing)",
    "023": "the file ended before the interchange did (premature end of file)",
    "024": "the interchange content is not valid (for example a bad GS segment)",
    "025": "this interchange control number was already received (duplicate)",
    "026": "the data element separator is not valid",
    "027": "the component element separator is not valid",
    "028": "the delivery date of a deferred delivery request is not valid",
    "029": "the delivery time of a deferred delivery request is not valid",
    "030": "the delivery time code of a deferred delivery request is not valid",
    "031": "the grade of service code is not valid",
}

ACK_CODES: dict[str, str] = {
    "A": "interchange accepted with no errors",
    "E": "interchange accepted, errors noted",
    "R": "interchange rejected because of errors",
}


@dataclass(slots=True)
class InterchangeAck:
    """One TA1 segment, plus the envelope of the interchange that carried it."""

    control_number: str  # TA101: ISA13 of the acknowledged interchange
    interchange_date: date | None  # TA102 (ISA09 of the acknowledged interchange)
    interchange_time: time | None  # TA103 (ISA10)
    status: str  # TA104: A, E, R
    note_code: str  # TA105
    carrier_control_number: str = ""  # ISA13 of the interchange holding the TA1
    sender: str = ""  # ISA06 of that interchange (who acknowledges)
    receiver: str = ""  # ISA08
    findings: list[Finding] = field(default_factory=list)

    @property
    def accepted(self) -> bool:
        return self.status in ("A", "E")

    @property
    def note(self) -> str:
        return NOTE_CODES.get(self.note_code, "unknown note code")

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "control_number": self.control_number,
            "interchange_date": self.interchange_date.isoformat() if self.interchange_date else None,
            "interchange_time": self.interchange_time.strftime("%H:%M") if self.interchange_time else None,
            "status": self.status,
            "status_description": ACK_CODES.get(self.status, "unknown acknowledgment code"),
            "accepted": self.accepted,
            "note_code": self.note_code,
            "note": self.note,
            "carrier_control_number": self.carrier_control_number,
            "sender": self.sender,
            "receiver": self.receiver,
            "findings": [f.to_json_dict() for f in self.findings],
        }


@dataclass(slots=True)
class DocumentTA1:
    """Every TA1 found in a file, plus findings about the file itself."""

    acks: list[InterchangeAck] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    readable: bool = True

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "transaction_set": "TA1",
            "readable": self.readable,
            "acknowledgments": [a.to_json_dict() for a in self.acks],
            "findings": [f.to_json_dict() for f in self.findings],
        }


def _isa_date(text: str) -> date | None:
    """ISA09 / TA102 YYMMDD. Two-digit years: X12 interchanges are from 2000 on."""
    if len(text) != 6 or not text.isascii() or not text.isdigit():
        return None
    try:
        return date(2000 + int(text[:2]), int(text[2:4]), int(text[4:6]))
    except ValueError:
        return None


def _isa_time(text: str) -> time | None:
    if len(text) != 4 or not text.isascii() or not text.isdigit():
        return None
    try:
        return time(int(text[:2]), int(text[2:4]))
    except ValueError:
        return None


def parse_ta1(source: Any, *, file: str | None = None) -> DocumentTA1:
    """Every TA1 in ``source`` (path, bytes, binary file or X12 text); never raises on bad input."""
    doc = DocumentTA1()
    try:
        for part in iter_envelope(source, file=file):
            if isinstance(part, OutsideSegment) and part.segment.id == "TA1":
                seg, interchange = part.segment, part.interchange
                ack = InterchangeAck(
                    control_number=seg.get(1),
                    interchange_date=_isa_date(seg.get(2)),
                    interchange_time=_isa_time(seg.get(3)),
                    status=seg.get(4),
                    note_code=seg.get(5),
                    carrier_control_number=interchange.control_number if interchange else "",
                    sender=interchange.sender_id if interchange else "",
                    receiver=interchange.receiver_id if interchange else "",
                )
                checks = (
                    (len(seg.get(1)) == 9 and seg.get(1).isdigit(), "TA101", "control number is 9 digits"),
                    (ack.interchange_date is not None, "TA102", "date is YYMMDD"),
                    (ack.interchange_time is not None, "TA103", "time is HHMM"),
                    (ack.status in ACK_CODES, "TA104", "acknowledgment code is A, E or R"),
                    (ack.note_code in NOTE_CODES, "TA105", "note code is 000-031"),
                )
                for ok, element, rule in checks:
                    if not ok:
                        ack.findings.append(
                            Finding(
                                Severity.ERROR,
                                "TA1_ELEMENT_INVALID",
                                f"{element}: {rule}",
                                segment="TA1",
                                element=element,
                                value=seg.get(int(element[3:]))[:20],
                                file_ordinal=seg.ordinal,
                            )
                        )
                doc.acks.append(ack)
    except X12SyntaxError as exc:
        doc.readable = False
        doc.findings.append(unreadable(exc))
    if doc.readable and not doc.acks:
        doc.findings.append(Finding(Severity.WARNING, "TA1_NONE", "no TA1 segment in the interchange"))
    return doc


def write_ta1(
    writer: X12Writer,
    *,
    control_number: str | int,
    interchange_date: date | str,
    interchange_time: time | str,
    status: str,
    note_code: str,
) -> None:
    """Write one TA1 segment into an open interchange of ``writer``."""
    if status not in ACK_CODES:
        raise X12WriteError(
            "TA1 TA104: acknowledgment code is A, E or R", code="TA104", segment="TA1", element="TA104"
        )
    if note_code not in NOTE_CODES:
        raise X12WriteError("TA1 TA105: note code is 000-031", code="TA105", segment="TA1", element="TA105")
    number = str(control_number).strip()
    if not number.isdigit() or len(number) > 9:
        raise X12WriteError(
            "TA1 TA101: the acknowledged ISA13 is up to 9 digits",
            code="TA101",
            segment="TA1",
            element="TA101",
        )
    when_date = interchange_date if isinstance(interchange_date, str) else interchange_date.strftime("%y%m%d")
    when_time = interchange_time if isinstance(interchange_time, str) else interchange_time.strftime("%H%M")
    if _isa_date(when_date) is None or _isa_time(when_time) is None:
        raise X12WriteError(
            "TA1 TA102/TA103: date is YYMMDD and time HHMM", code="TA102", segment="TA1", element="TA102"
        )
    writer.segment("TA1", number.zfill(9), when_date, when_time, status, note_code)


def generate_ta1(
    *,
    acknowledged_isa: Sequence[str],
    note_code: str,
    control_number: int,
    status: str | None = None,
    usage: str | None = None,
    when: datetime | None = None,
    delimiters: Delimiters = Delimiters(),  # noqa: B008 - frozen dataclass
    line_breaks: bool = False,
) -> str:
    """A TA1 interchange answering the interchange whose ISA elements are ``acknowledged_isa``.

    ``acknowledged_isa`` is the ISA as read (``elements[0] == "ISA"``, so ISA06 is index
    6). The reply swaps sender and receiver, echoes ISA13/ISA09/ISA10 and keeps the
    usage indicator (ISA15) unless told otherwise. ``status`` defaults to A for note
    000 and R for any other note. ``control_number`` is our own ISA13 for the reply.
    """
    isa = list(acknowledged_isa)
    if len(isa) < 17 or isa[0] != "ISA":
        raise X12WriteError(
            "acknowledged_isa must be the 17 elements of an ISA segment", code="ISA_FIELDS", segment="ISA"
        )
    writer = X12Writer(delimiters, line_breaks=line_breaks)
    writer.begin_interchange(
        sender_qualifier=isa[7].strip(),
        sender_id=isa[8].strip(),
        receiver_qualifier=isa[5].strip(),
        receiver_id=isa[6].strip(),
        control_number=control_number,
        usage=usage or (isa[15] if isa[15] in ("P", "T") else "P"),
        when=when,
    )
    write_ta1(
        writer,
        control_number=isa[13],
        interchange_date=isa[9],
        interchange_time=isa[10],
        status=status or ("A" if note_code == "000" else "R"),
        note_code=note_code,
    )
    writer.end_interchange()
    return writer.getvalue()
