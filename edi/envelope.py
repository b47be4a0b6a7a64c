"""Streaming envelope checks (ISA/IEA, GS/GE, ST/SE) and a light summary of a file.

One pass over :func:`edi.reader.read_segments`; only the open interchange, group and
transaction set are held, so memory stays flat. Every problem is a
:class:`~edi.findings.Finding` whose ``code`` names the rule; :func:`ack_codes` tells
which acknowledgment code a clearinghouse would answer with (TA1 note code for the
interchange, AK9 for a group, IK5 for a transaction set), following the X12 code lists:

* TA105: 001 ISA13 ≠ IEA02, 005-020 an invalid ISA field, 021 IEA01 count,
  022 invalid control structure, 023 premature end of file, 024 invalid interchange
  content, 025 duplicate ISA13, 027 invalid component separator.
* AK905: 3 GE missing, 4 GS06 ≠ GE02, 5 GE01 count, 6 GS06 syntax, 19 GS06 not unique.
* IK502: 2 SE missing, 3 ST02 ≠ SE02, 4 SE01 count, 6 ST01 not a set of the group's
  functional identifier (GS01, :data:`FUNCTIONAL_GROUP_OF`), 7 invalid ST02, 23 ST02 not
  unique in the group, I6 ST03 does not name the group's implementation guide (GS08).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass, field

from edi.charset import is_x12_text
from edi.findings import Finding, Severity, error, warning
from edi.reader import Segment, Source, X12SyntaxError, read_segments

# ISA element widths (5010 and 4010 alike): the ISA is fixed-width, 106 characters.
ISA_WIDTHS = (2, 10, 2, 10, 2, 15, 2, 15, 6, 4, 1, 5, 9, 1, 1, 1)
# TA105 note code for an invalid value in each ISA element (ISA01..ISA16).
ISA_TA1_CODES = (
    "010",
    "011",
    "012",
    "013",
    "005",
    "006",
    "007",
    "008",
    "014",
    "015",
    "016",
    "017",
    "018",
    "019",
    "020",
    "027",
)
ISA_ID_QUALIFIERS = frozenset({"01", "14", "20", "27", "28", "29", "30", "33", "ZZ"})

TA1_BY_CODE = {
    "X12.IEA02_MISMATCH": "001",
    "X12.IEA01_COUNT": "021",
    "X12.CONTROL_STRUCTURE": "022",
    "X12.IEA_MISSING": "023",
    "X12.ISA13_DUPLICATE": "025",
    # GS/GE/IEA holding a character outside the X12 character sets (edi.charset).
    "X12.ENVELOPE_INVALID_CHARACTER": "024",
}
AK9_BY_CODE = {
    "X12.GE_MISSING": "3",
    "X12.GE02_MISMATCH": "4",
    "X12.GE01_COUNT": "5",
    "X12.GS06_INVALID": "6",
    "X12.GS06_DUPLICATE": "19",
}
IK5_BY_CODE = {
    "X12.SE_MISSING": "2",
    "X12.SE02_MISMATCH": "3",
    "X12.SE01_COUNT": "4",
    "X12.GS01_MISMATCH": "6",
    "X12.ST02_INVALID": "7",
    "X12.ST02_DUPLICATE": "23",
    "X12.ST03_MISMATCH": "I6",
}

# ST01 -> the GS01 functional identifier code of the group that may hold it (X12 code
# list 479, as the HIPAA TR3s use it). A set under another GS01 is in the wrong group:
# its receiver routes and checks it as the group says (a 271 under HS is read as a 270).
FUNCTIONAL_GROUP_OF = {
    "270": "HS",
    "271": "HB",
    "275": "PI",
    "276": "HR",
    "277": "HN",
    "278": "HI",
    "820": "RA",
    "824": "AG",
    "834": "BE",
    "835": "HP",
    "837": "HC",
    "997": "FA",
    "999": "FA",
}


@dataclass(frozen=True, slots=True)
class AckCodes:
    """The acknowledgment codes one envelope finding maps onto (None where not applicable)."""

    ta1: str | None = None
    ak9: str | None = None
    ik5: str | None = None


def ack_codes(finding: Finding) -> AckCodes:
    """TA1 note / AK9 / IK5 code for an envelope finding (see the module docstring)."""
    if finding.code == "X12.ISA_INVALID" and finding.element and finding.element.startswith("ISA"):
        try:
            return AckCodes(ta1=ISA_TA1_CODES[int(finding.element[3:5]) - 1])
        except (ValueError, IndexError):
            return AckCodes(ta1="022")
    return AckCodes(
        ta1=TA1_BY_CODE.get(finding.code),
        ak9=AK9_BY_CODE.get(finding.code),
        ik5=IK5_BY_CODE.get(finding.code),
    )


@dataclass(slots=True)
class TransactionSetSummary:
    st01: str
    st02: str
    st03: str
    first_ordinal: int
    last_ordinal: int | None = None
    segment_count: int = 0  # ST..SE inclusive, as counted
    findings: list[Finding] = field(default_factory=list)


@dataclass(slots=True)
class GroupSummary:
    gs01: str
    gs02: str
    gs03: str
    gs06: str
    gs08: str
    first_ordinal: int
    last_ordinal: int | None = None
    transaction_sets: list[TransactionSetSummary] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)


@dataclass(slots=True)
class InterchangeSummary:
    isa13: str
    sender_qualifier: str
    sender_id: str
    receiver_qualifier: str
    receiver_id: str
    date: str  # ISA09 YYMMDD
    time: str  # ISA10 HHMM
    version: str  # ISA12
    ack_requested: str  # ISA14
    usage: str  # ISA15
    first_ordinal: int
    last_ordinal: int | None = None
    isa_elements: list[str] = field(default_factory=list)  # the ISA as read, for a TA1 reply
    groups: list[GroupSummary] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)


def _valid_date(value: str, fmt: str) -> bool:
    if not value.isdigit():
        return False
    try:
        dt.datetime.strptime(value, fmt)
    except ValueError:
        return False
    return True


def _valid_time(value: str) -> bool:
    """HHMM[SS[D..]] as X12 TM."""
    if not value.isdigit() or len(value) not in (4, 6, 7, 8):
        return False
    if value[:2] > "23" or value[2:4] > "59":
        return False
    return len(value) == 4 or value[4:6] <= "59"


class EnvelopeChecker:
    """Feed segments in file order; collects envelope findings and the summary.

    ``feed`` returns the findings raised by that segment, so a caller validating
    transaction sets can attribute them as it goes.
    """

    def __init__(self, file: str | None = None) -> None:
        self.file = file
        self.interchanges: list[InterchangeSummary] = []
        self.findings: list[Finding] = []
        self.isa: InterchangeSummary | None = None
        self.gs: GroupSummary | None = None
        self.st: TransactionSetSummary | None = None
        self._isa13_seen: set[str] = set()
        self._gs06_seen: set[str] = set()
        self._st02_seen: set[str] = set()
        self._out: list[Finding] = []

    # -- helpers -------------------------------------------------------------------
    def _add(self, finding: Finding) -> None:
        self._out.append(finding)
        self.findings.append(finding)
        if self.st is not None and finding.transaction_set is not None:
            self.st.findings.append(finding)
        elif self.gs is not None and (finding.segment in ("GS", "GE") or AK9_BY_CODE.get(finding.code)):
            self.gs.findings.append(finding)
        elif self.isa is not None:
            self.isa.findings.append(finding)

    def _err(
        self,
        code: str,
        message: str,
        seg: Segment | None,
        *,
        element: str | None = None,
        value: str | None = None,
        severity: Severity = Severity.ERROR,
        position: int | None = None,
    ) -> None:
        make = error if severity is Severity.ERROR else warning
        self._add(
            make(
                code,
                message,
                segment=seg.id if seg is not None else None,
                file_ordinal=seg.ordinal if seg is not None else None,
                element=element,
                value=value,
                segment_position=position,
                transaction_set=self.st.st02 if self.st is not None else None,
            )
        )

    # -- the state machine -----------------------------------------------------------
    def feed(self, seg: Segment) -> list[Finding]:
        self._out = []
        sid = seg.id
        if self.st is not None:
            self.st.segment_count += 1
        handler = _HANDLERS.get(sid)
        if handler is not None:
            handler(self, seg)
        elif self.st is None:
            if sid == "TA1" and self.isa is not None and self.gs is None:
                pass  # TA1 sits between ISA and GS by design
            else:
                self._err(
                    "X12.CONTROL_STRUCTURE", f"segment {sid[:3]!r} is outside a transaction set (ST..SE)", seg
                )
        return self._out

    def finish(self) -> list[Finding]:
        """End of input: every open envelope is a missing trailer (truncated file)."""
        self._out = []
        if self.st is not None:
            self._err("X12.SE_MISSING", f"transaction set {self.st.st02} has no SE trailer", None)
            self.st = None
        if self.gs is not None:
            self._err("X12.GE_MISSING", f"functional group {self.gs.gs06} has no GE trailer", None)
            self.gs = None
        if self.isa is not None:
            self._err(
                "X12.IEA_MISSING",
                f"interchange {self.isa.isa13} has no IEA trailer (premature end of file)",
                None,
            )
            self.isa = None
        return self._out

    def _isa(self, seg: Segment) -> None:
        if self.isa is not None:
            self.finish_open_for_new_isa()
        e = seg.elements
        values = [seg.get(i) for i in range(1, 17)]
        self.isa = InterchangeSummary(
            isa13=values[12],
            sender_qualifier=values[4],
            sender_id=values[5].strip(),
            receiver_qualifier=values[6],
            receiver_id=values[7].strip(),
            date=values[8],
            time=values[9],
            version=values[11],
            ack_requested=values[13],
            usage=values[14],
            first_ordinal=seg.ordinal,
            isa_elements=list(e),
        )
        self.interchanges.append(self.isa)
        self._gs06_seen = set()
        if len(e) != 17:
            self._err(
                "X12.ISA_INVALID",
                f"ISA has {len(e) - 1} elements; it must have exactly 16",
                seg,
                element="ISA16",
            )
        for index, value in enumerate(values, start=1):
            if not is_x12_text(value):
                # A byte outside the basic/extended character sets (a NUL, "\xff", an "é"):
                # the TA1 note code of that element rejects the interchange. The value is
                # not quoted: it cannot be written back, and it may be anything.
                self._err(
                    "X12.ISA_INVALID",
                    f"ISA{index:02d} holds a character outside the X12 basic and extended character sets",
                    seg,
                    element=f"ISA{index:02d}",
                )
        for index, width in enumerate(ISA_WIDTHS, start=1):
            value = values[index - 1]
            if len(value) != width:
                self._err(
                    "X12.ISA_INVALID",
                    f"ISA{index:02d} must be exactly {width} characters (fixed-width ISA), found {len(value)}",
                    seg,
                    element=f"ISA{index:02d}",
                )
        checks = (
            (1, values[0] in ("00", "03"), "ISA01 authorization qualifier must be 00 or 03"),
            (3, values[2] in ("00", "01"), "ISA03 security qualifier must be 00 or 01"),
            (5, values[4] in ISA_ID_QUALIFIERS, "ISA05 sender ID qualifier is not a valid code"),
            (7, values[6] in ISA_ID_QUALIFIERS, "ISA07 receiver ID qualifier is not a valid code"),
            (9, _valid_date(values[8], "%y%m%d"), "ISA09 interchange date must be a valid YYMMDD date"),
            (
                10,
                _valid_time(values[9]) and len(values[9]) == 4,
                "ISA10 interchange time must be a valid HHMM",
            ),
            (13, values[12].isdigit() and len(values[12]) == 9, "ISA13 control number must be 9 digits"),
            (14, values[13] in ("0", "1"), "ISA14 acknowledgment requested must be 0 or 1"),
            (15, values[14] in ("P", "T"), "ISA15 usage indicator must be P or T"),
        )
        for index, ok, message in checks:
            if not ok:
                value = values[index - 1]
                self._err(
                    "X12.ISA_INVALID",
                    message,
                    seg,
                    element=f"ISA{index:02d}",
                    value=value if index not in (2, 4) else None,
                )
        version = values[11]
        if version == "00401":
            self._err(
                "X12.ISA12_VERSION",
                "ISA12 00401 is a 4010 interchange; HIPAA requires 5010 (00501)",
                seg,
                element="ISA12",
                value=version,
                severity=Severity.WARNING,
            )
            if values[10] != "U":
                self._err(
                    "X12.ISA_INVALID",
                    "ISA11 must be U (standards identifier) in a 4010 interchange",
                    seg,
                    element="ISA11",
                    value=values[10],
                )
        elif version != "00501":
            self._err("X12.ISA_INVALID", "ISA12 version must be 00501", seg, element="ISA12", value=version)
        elif values[10].isalnum() or values[10] == " ":
            # 4010's "U" left in a 5010 ISA11 is common and harmless (no element repeats then);
            # clearinghouses accept it, so it is a warning, not a TA1 rejection.
            self._err(
                "X12.ISA11_NOT_SEPARATOR",
                "ISA11 should be the repetition separator in a 5010 interchange",
                seg,
                element="ISA11",
                value=values[10],
                severity=Severity.WARNING,
            )
        if values[12] in self._isa13_seen:
            self._err(
                "X12.ISA13_DUPLICATE",
                "ISA13 interchange control number is repeated in this file",
                seg,
                element="ISA13",
                value=values[12],
            )
        self._isa13_seen.add(values[12])

    def finish_open_for_new_isa(self) -> None:
        """A new ISA while the previous interchange is open: its trailers are missing."""
        if self.st is not None:
            self._err("X12.SE_MISSING", f"transaction set {self.st.st02} has no SE trailer", None)
            self.st = None
        if self.gs is not None:
            self._err("X12.GE_MISSING", f"functional group {self.gs.gs06} has no GE trailer", None)
            self.gs = None
        if self.isa is not None:
            self._err("X12.IEA_MISSING", f"interchange {self.isa.isa13} has no IEA trailer", None)
            self.isa = None

    def _iea(self, seg: Segment) -> None:
        if self.isa is None:
            self._err("X12.CONTROL_STRUCTURE", "IEA without an open ISA", seg)
            return
        self._close_group_and_set(seg)
        isa = self.isa
        isa.last_ordinal = seg.ordinal
        if seg.get(2) != isa.isa13:
            self._err(
                "X12.IEA02_MISMATCH",
                "IEA02 does not match ISA13 interchange control number",
                seg,
                element="IEA02",
                value=seg.get(2),
            )
        if seg.get(1) != str(len(isa.groups)):
            self._err(
                "X12.IEA01_COUNT",
                f"IEA01 says {seg.get(1)!r} functional groups; the interchange holds {len(isa.groups)}",
                seg,
                element="IEA01",
                value=seg.get(1),
            )
        self.isa = None

    def _close_group_and_set(self, seg: Segment) -> None:
        if self.st is not None:
            self._err("X12.SE_MISSING", f"transaction set {self.st.st02} has no SE trailer", seg)
            self.st = None
        if self.gs is not None:
            self._err("X12.GE_MISSING", f"functional group {self.gs.gs06} has no GE trailer", seg)
            self.gs = None

    def _gs(self, seg: Segment) -> None:
        if self.isa is None:
            self._err("X12.CONTROL_STRUCTURE", "GS outside an interchange (no ISA before it)", seg)
        self._close_group_and_set(seg)
        self.gs = GroupSummary(
            gs01=seg.get(1),
            gs02=seg.get(2),
            gs03=seg.get(3),
            gs06=seg.get(6),
            gs08=seg.get(8),
            first_ordinal=seg.ordinal,
        )
        if self.isa is not None:
            self.isa.groups.append(self.gs)
        self._st02_seen = set()
        gs06 = seg.get(6)
        if not (gs06.isdigit() and 1 <= len(gs06) <= 9):
            self._err(
                "X12.GS06_INVALID",
                "GS06 group control number must be 1-9 digits",
                seg,
                element="GS06",
                value=gs06,
            )
        if gs06 in self._gs06_seen:
            self._err(
                "X12.GS06_DUPLICATE",
                "GS06 group control number is repeated in this interchange",
                seg,
                element="GS06",
                value=gs06,
            )
        self._gs06_seen.add(gs06)
        if not seg.get(8):
            self._err(
                "X12.GS_INVALID", "GS08 version/release/industry identifier is missing", seg, element="GS08"
            )
        if not _valid_date(seg.get(4), "%Y%m%d"):
            self._err(
                "X12.GS_INVALID", "GS04 must be a valid CCYYMMDD date", seg, element="GS04", value=seg.get(4)
            )
        if not _valid_time(seg.get(5)):
            self._err(
                "X12.GS_INVALID", "GS05 must be a valid HHMM[SS] time", seg, element="GS05", value=seg.get(5)
            )

    def _ge(self, seg: Segment) -> None:
        if self.gs is None:
            self._err("X12.CONTROL_STRUCTURE", "GE without an open GS", seg)
            return
        if self.st is not None:
            self._err("X12.SE_MISSING", f"transaction set {self.st.st02} has no SE trailer", seg)
            self.st = None
        gs = self.gs
        gs.last_ordinal = seg.ordinal
        if seg.get(2) != gs.gs06:
            self._err(
                "X12.GE02_MISMATCH",
                "GE02 does not match GS06 group control number",
                seg,
                element="GE02",
                value=seg.get(2),
            )
        if seg.get(1) != str(len(gs.transaction_sets)):
            self._err(
                "X12.GE01_COUNT",
                f"GE01 says {seg.get(1)!r} transaction sets; the group holds {len(gs.transaction_sets)}",
                seg,
                element="GE01",
                value=seg.get(1),
            )
        self.gs = None

    def _st(self, seg: Segment) -> None:
        if self.gs is None:
            self._err("X12.CONTROL_STRUCTURE", "ST outside a functional group (no GS before it)", seg)
        if self.st is not None:
            self._err("X12.SE_MISSING", f"transaction set {self.st.st02} has no SE trailer", None)
        st02 = seg.get(2)
        self.st = TransactionSetSummary(
            st01=seg.get(1), st02=st02, st03=seg.get(3), first_ordinal=seg.ordinal, segment_count=1
        )
        if self.gs is not None:
            self.gs.transaction_sets.append(self.st)
        if not (4 <= len(st02) <= 9):
            self._err(
                "X12.ST02_INVALID",
                "ST02 transaction set control number must be 4-9 characters",
                seg,
                element="ST02",
                value=st02,
                position=1,
            )
        if st02 in self._st02_seen:
            self._err(
                "X12.ST02_DUPLICATE",
                "ST02 control number is not unique within the functional group",
                seg,
                element="ST02",
                value=st02,
                position=1,
            )
        self._st02_seen.add(st02)
        st01 = seg.get(1)
        expected_gs01 = FUNCTIONAL_GROUP_OF.get(st01)
        if expected_gs01 and self.gs is not None and self.gs.gs01 != expected_gs01:
            self._err(
                "X12.GS01_MISMATCH",
                f"a {st01} belongs in a functional group with GS01 {expected_gs01}, not {self.gs.gs01[:3]!r}",
                seg,
                element="ST01",
                value=st01,
                position=1,
            )
        st03 = seg.get(3)
        if st03 and self.gs is not None and st03 != self.gs.gs08:
            self._err(
                "X12.ST03_MISMATCH",
                "ST03 implementation guide must equal GS08",
                seg,
                element="ST03",
                value=st03,
                position=1,
            )

    def _se(self, seg: Segment) -> None:
        st = self.st
        if st is None:
            self._err("X12.CONTROL_STRUCTURE", "SE without an open ST", seg)
            return
        st.last_ordinal = seg.ordinal
        if seg.get(2) != st.st02:
            self._err(
                "X12.SE02_MISMATCH",
                "SE02 does not match ST02 transaction set control number",
                seg,
                element="SE02",
                value=seg.get(2),
                position=st.segment_count,
            )
        if seg.get(1) != str(st.segment_count):
            self._err(
                "X12.SE01_COUNT",
                f"SE01 says {seg.get(1)!r} segments; the transaction set holds {st.segment_count} "
                "(ST and SE included)",
                seg,
                element="SE01",
                value=seg.get(1),
                position=st.segment_count,
            )
        self.st = None


_HANDLERS = {
    "ISA": EnvelopeChecker._isa,
    "IEA": EnvelopeChecker._iea,
    "GS": EnvelopeChecker._gs,
    "GE": EnvelopeChecker._ge,
    "ST": EnvelopeChecker._st,
    "SE": EnvelopeChecker._se,
}


@dataclass(slots=True)
class EnvelopeReport:
    interchanges: list[InterchangeSummary]
    findings: list[Finding]
    readable: bool = True

    @property
    def valid(self) -> bool:
        return self.readable and not any(f.is_error for f in self.findings)


def check_envelope(source: Source, *, file: str | None = None) -> EnvelopeReport:
    """Envelope-check a whole file in one streaming pass; never raises on bad input."""
    checker = EnvelopeChecker(file)
    try:
        for seg in read_segments(source, file=file):
            checker.feed(seg)
    except X12SyntaxError as exc:
        checker.finish()
        checker.findings.append(unreadable(exc))
        return EnvelopeReport(checker.interchanges, checker.findings, readable=checker.interchanges != [])
    checker.finish()
    return EnvelopeReport(checker.interchanges, checker.findings)


# --------------------------------------------------------------------------------------
# One walk over interchanges, groups and transaction sets, shared by every parser
# --------------------------------------------------------------------------------------
# An envelope segment inside ST..SE means the SE is missing: the set ends there, and the
# segment is read again as the envelope segment it is.
_ENDS_TRANSACTION_SET = frozenset({"ST", "GS", "GE", "ISA", "IEA"})


@dataclass(frozen=True, slots=True)
class InterchangeEnvelope:
    """The ISA a transaction set (or a TA1) travels in."""

    control_number: str  # ISA13
    sender_qualifier: str  # ISA05
    sender_id: str  # ISA06, padding removed
    receiver_qualifier: str  # ISA07
    receiver_id: str  # ISA08, padding removed
    date: str  # ISA09 YYMMDD
    time: str  # ISA10 HHMM
    usage: str  # ISA15 P or T
    ordinal: int  # file ordinal of the ISA

    @classmethod
    def from_isa(cls, seg: Segment) -> InterchangeEnvelope:
        return cls(
            control_number=seg.get(13),
            sender_qualifier=seg.get(5),
            sender_id=seg.get(6).strip(),
            receiver_qualifier=seg.get(7),
            receiver_id=seg.get(8).strip(),
            date=seg.get(9),
            time=seg.get(10),
            usage=seg.get(15),
            ordinal=seg.ordinal,
        )


@dataclass(frozen=True, slots=True)
class GroupEnvelope:
    """The GS a transaction set travels in."""

    functional_id: str  # GS01 (HC, HB, HS, HN, FA, ...)
    application_sender: str  # GS02
    application_receiver: str  # GS03
    control_number: str  # GS06
    version: str  # GS08, the implementation guide
    ordinal: int  # file ordinal of the GS

    @classmethod
    def from_gs(cls, seg: Segment) -> GroupEnvelope:
        return cls(seg.get(1), seg.get(2), seg.get(3), seg.get(6), seg.get(8), seg.ordinal)


class TransactionSet:
    """One ST..SE and the envelopes around it; iterate it once for the body segments.

    The body (ST and SE excluded) is read lazily from the file as the caller iterates,
    so a transaction set of any size costs no memory here. After the body is read,
    ``se`` is the SE segment, or None when the set ended without one (the next envelope
    segment, or the end of the file, closed it).
    """

    __slots__ = ("_ended", "_next", "_segments", "group", "interchange", "se", "st")

    def __init__(
        self,
        st: Segment,
        interchange: InterchangeEnvelope | None,
        group: GroupEnvelope | None,
        segments: Iterator[Segment],
    ) -> None:
        self.st = st
        self.interchange = interchange
        self.group = group
        self.se: Segment | None = None
        self._segments = segments
        self._ended = False
        self._next: Segment | None = None  # the envelope segment that ended a set without SE

    @property
    def id(self) -> str:
        """ST01: 271, 277, 999, 835, ..."""
        return self.st.get(1)

    @property
    def control_number(self) -> str:
        """ST02."""
        return self.st.get(2)

    @property
    def implementation(self) -> str:
        """ST03: the implementation guide (e.g. 005010X279A1)."""
        return self.st.get(3)

    def position(self, seg: Segment) -> int:
        """The segment's position in this transaction set, ST being 1 (IK302, SE01 counting)."""
        return seg.ordinal - self.st.ordinal + 1

    def __iter__(self) -> Iterator[Segment]:
        if self._ended:
            return
        for seg in self._segments:
            sid = seg.id
            if sid == "SE":
                self.se = seg
                self._ended = True
                return
            if sid in _ENDS_TRANSACTION_SET:
                self._next = seg
                self._ended = True
                return
            yield seg
        self._ended = True

    def _finish(self) -> Segment | None:
        """Skip what the caller left unread; the envelope segment to read next, if any."""
        for _ in self:
            pass
        return self._next


@dataclass(frozen=True, slots=True)
class OutsideSegment:
    """A segment outside every ST..SE other than ISA/IEA/GS/GE: a TA1, or a stray segment."""

    segment: Segment
    interchange: InterchangeEnvelope | None
    group: GroupEnvelope | None


def iter_envelope(source: Source, *, file: str | None = None) -> Iterator[TransactionSet | OutsideSegment]:
    """Walk ``source`` once: each transaction set, and each segment outside one, in file order.

    A yielded :class:`TransactionSet` must be iterated (or left) before the walk goes
    on; what the caller does not read is skipped. Only the current envelopes are held,
    so memory stays flat. Structural checking is :class:`EnvelopeChecker`'s job; this
    walk is lenient (a missing SE ends the set at the next envelope segment). Raises
    :class:`~edi.reader.X12SyntaxError` when the input is not X12.
    """
    segments = read_segments(source, file=file)
    interchange: InterchangeEnvelope | None = None
    group: GroupEnvelope | None = None
    pending: Segment | None = None
    while True:
        if pending is not None:
            seg, pending = pending, None
        else:
            seg = next(segments, None)
            if seg is None:
                return
        sid = seg.id
        if sid == "ST":
            transaction_set = TransactionSet(seg, interchange, group, segments)
            yield transaction_set
            pending = transaction_set._finish()
        elif sid == "ISA":
            interchange, group = InterchangeEnvelope.from_isa(seg), None
        elif sid == "GS":
            group = GroupEnvelope.from_gs(seg)
        elif sid == "GE":
            group = None
        elif sid == "IEA":
            interchange = group = None
        else:
            yield OutsideSegment(seg, interchange, group)


def iter_transaction_sets(source: Source, *, file: str | None = None) -> Iterator[TransactionSet]:
    """Every transaction set of ``source`` with its envelopes (see :func:`iter_envelope`)."""
    for part in iter_envelope(source, file=file):
        if isinstance(part, TransactionSet):
            yield part


@dataclass(frozen=True, slots=True)
class FirstTransaction:
    """A file's head, read up to its first ST: enough to tell which transaction it carries."""

    st01: str  # "" when the file holds no transaction set
    st03: str
    gs08: str  # of the GS around the first ST; "" when there is none
    has_ta1: bool  # a TA1 comes before the first ST
    interchange: InterchangeEnvelope | None  # the ISA around the first ST, TA1 or stray segment


def first_transaction(source: Source, *, file: str | None = None) -> FirstTransaction:
    """ST01/ST03/GS08 of the first transaction set and whether a TA1 precedes it, reading
    only up to that ST (see :func:`iter_envelope`). Raises
    :class:`~edi.reader.X12SyntaxError` when the input is not X12."""
    has_ta1 = False
    interchange: InterchangeEnvelope | None = None
    for part in iter_envelope(source, file=file):
        interchange = interchange or part.interchange
        if isinstance(part, TransactionSet):
            gs08 = part.group.version if part.group is not None else ""
            return FirstTransaction(part.id, part.implementation, gs08, has_ta1, interchange)
        has_ta1 = has_ta1 or part.segment.id == "TA1"
    return FirstTransaction("", "", "", has_ta1, interchange)


def transaction_sets_of(
    source: Source, expected: str, findings: list[Finding], *, file: str | None = None
) -> Iterator[TransactionSet]:
    """The ``expected`` (ST01) transaction sets of ``source``; each other kind is skipped
    with a warning ``<expected>_NOT_<expected>`` appended to ``findings``."""
    for transaction_set in iter_transaction_sets(source, file=file):
        if transaction_set.id == expected:
            yield transaction_set
        else:
            findings.append(
                warning(
                    f"{expected}_NOT_{expected}",
                    f"transaction set is not a {expected}; skipped",
                    segment="ST",
                    file_ordinal=transaction_set.st.ordinal,
                )
            )


def unreadable(exc: X12SyntaxError) -> Finding:
    """The finding a parser keeps when the input stops being X12 (readable=False)."""
    return error(exc.code, exc.message, file_ordinal=exc.segment_ordinal)
