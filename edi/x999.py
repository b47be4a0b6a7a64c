"""999 (005010X231A1) implementation acknowledgment: parse one, and generate ours.

A 999 answers one functional group (AK1) per transaction set: per acknowledged
transaction set an AK2, its segment errors (IK3, with CTX naming the claim, CLM01, when
the error sits inside one), element errors (IK4: position, code, copy of the bad
value), the verdict (IK5 A/E/R) and, for the group, AK9 (A/E/P/R and the counts).

Generation takes plain input (:class:`GroupResult` holding :class:`TransactionSetResult`
per inbound transaction set, each with its findings) so any validator can feed it;
:func:`groups_from_report` adapts an ``edi.validate.ValidationReport``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from edi.envelope import TransactionSet, transaction_sets_of, unreadable
from edi.findings import Finding, Severity
from edi.numbers import parse_count
from edi.reader import Delimiters, X12SyntaxError
from edi.writer import X12Writer

IMPLEMENTATION = "005010X231A1"

# IK304: implementation segment syntax error codes (our wording).
SEGMENT_ERROR_CODES: dict[str, str] = {
    "1": "unrecognized segment id",
    "2": "unexpected segment",
    "3": "required segment missing",
    "4": "loop occurs more often than allowed",
    "5": "segment exceeds its maximum use",
    "6": "segment not in the defined transaction set",
    "7": "segment not in proper sequence",
    "8": "segment has data element errors",
    "I4": "segment the implementation guide marks not used is present",
    "I6": "implementation-dependent segment missing",
    "I7": "implementation loop occurs fewer times than required",
    "I8": "implementation segment used fewer times than required",
    "I9": "implementation-dependent not-used segment present",
}

# IK403: implementation data element syntax error codes.
ELEMENT_ERROR_CODES: dict[str, str] = {
    "1": "required data element missing",
    "2": "conditional required data element missing",
    "3": "too many data elements",
    "4": "data element too short",
    "5": "data element too long",
    "6": "invalid character in data element",
    "7": "invalid code value",
    "8": "invalid date",
    "9": "invalid time",
    "10": "exclusion condition violated",
    "12": "too many repetitions",
    "13": "too many components",
    "I6": "code value not used in this implementation",
    "I9": "implementation-dependent data element missing",
    "I10": "data element the implementation guide marks not used is present",
    "I11": "implementation: too few repetitions",
    "I12": "implementation pattern match failure",
    "I13": "implementation-dependent not-used data element present",
}

# IK501 / AK901 acknowledgment codes.
ACK_CODES: dict[str, str] = {
    "A": "accepted",
    "E": "accepted, but errors were noted",
    "M": "rejected, message authentication code failed",
    "P": "partially accepted: at least one transaction set was rejected",
    "R": "rejected",
    "W": "rejected, assurance failed validity tests",
    "X": "rejected, content after decryption could not be analyzed",
}

# IK502-IK506: transaction set syntax error codes.
TRANSACTION_ERROR_CODES: dict[str, str] = {
    "1": "transaction set not supported",
    "2": "transaction set trailer missing",
    "3": "ST02 and SE02 control numbers do not match",
    "4": "SE01 does not match the number of segments",
    "5": "one or more segments in error",
    "6": "missing or invalid transaction set identifier",
    "7": "missing or invalid transaction set control number",
    "8": "authentication key name unknown",
    "9": "encryption key name unknown",
    "10": "requested service (authentication or encryption) not available",
    "11": "unknown security recipient",
    "12": "incorrect message length (encryption)",
    "13": "message authentication code failed",
    "15": "unknown security originator",
    "16": "syntax error in decrypted text",
    "17": "security not supported",
    "18": "transaction set not in functional group",
    "19": "invalid transaction set implementation convention reference",
    "23": "transaction set control number not unique within the functional group",
    "24": "S3E security end segment missing for S3S security start segment",
    "25": "S3S security start segment missing for S3E security end segment",
    "26": "S4E security end segment missing for S4S security start segment",
    "27": "S4S security start segment missing for S4E security end segment",
    "I5": "implementation: one or more segments in error",
    "I6": "implementation convention not supported",
}

# AK905-AK909: functional group syntax error codes.
GROUP_ERROR_CODES: dict[str, str] = {
    "1": "functional group not supported",
    "2": "functional group version not supported",
    "3": "functional group trailer missing",
    "4": "GS06 and GE02 group control numbers do not match",
    "5": "GE01 does not match the number of transaction sets",
    "6": "group control number violates syntax",
    "10": "authentication key name unknown",
    "11": "encryption key name unknown",
    "12": "requested service not available",
    "13": "unknown security recipient",
    "14": "unknown security originator",
    "15": "syntax error in decrypted text",
    "16": "security not supported",
    "17": "incorrect message length (encryption)",
    "18": "message authentication code failed",
    "19": "functional group control number not unique within the interchange",
    "23": "S3E security end segment missing for S3S security start segment",
    "24": "S3S security start segment missing for S3E security end segment",
    "25": "S4E security end segment missing for S4S security start segment",
    "26": "S4S security start segment missing for S4E security end segment",
}

_ELEMENT_REF = re.compile(r"^([A-Z][A-Z0-9]{1,2}?)(\d{2})(?:-(\d{1,2}))?$")
_CLAIM_LOOPS = ("23", "24")  # 837 loops 2300-2330x and 2400-2430 sit inside a claim
_IK404_MAX = 99


# --------------------------------------------------------------------------- generation input


@dataclass(slots=True)
class TransactionSetResult:
    """What a validator found in one inbound transaction set (input to :func:`write_999`).

    ``claim_refs`` maps the position (ST = 1) of each CLM segment to its CLM01, so an
    error inside a claim is answered with ``CTX*CLM01:<patient control number>``.
    ``syntax_errors`` are IK502 codes for problems of the set as a whole (e.g. "4": SE01
    count wrong); segment errors add "5" by themselves.
    """

    st01: str
    control_number: str
    implementation: str | None
    findings: list[Finding] = field(default_factory=list)
    claim_refs: dict[int, str] = field(default_factory=dict)
    syntax_errors: Sequence[str] = ()
    # IK502 codes noted on a set that is accepted all the same: "I6" (implementation
    # convention not supported) for a set whose guide was not checked, so its IK5 is
    # "E" with I6, never "A" (docs/edi-reading.md, "What a 999 says").
    noted: Sequence[str] = ()


@dataclass(slots=True)
class GroupResult:
    """One inbound functional group: GS01, GS06, GS08 and its transaction sets."""

    functional_id: str
    control_number: str
    version: str
    transaction_sets: list[TransactionSetResult] = field(default_factory=list)
    syntax_errors: Sequence[str] = ()  # AK905-AK909 codes (e.g. "5": GE01 count wrong)
    transaction_count: int | None = None  # GE01 as received, when it differs from what was read


# --------------------------------------------------------------------------- parsed 999


@dataclass(slots=True)
class Context:
    """CTX: a business identifier (``CLM01`` -> patient control number) or a situational trigger."""

    name: str
    value: str = ""
    elements: tuple[str, ...] = ()


@dataclass(slots=True)
class ElementError:
    """IK4: element position (IK401-1), component (-2), repetition (-3), reference, code, bad value."""

    position: int | None
    component: int | None
    repetition: int | None
    reference_number: str
    code: str
    bad_value: str = ""
    contexts: list[Context] = field(default_factory=list)

    @property
    def description(self) -> str:
        return ELEMENT_ERROR_CODES.get(self.code, "unknown element error code")


@dataclass(slots=True)
class SegmentError:
    """IK3: segment id, position in the transaction set, loop, error code, and CTX/IK4 below it."""

    segment_id: str
    position: int | None
    loop: str
    code: str
    contexts: list[Context] = field(default_factory=list)
    element_errors: list[ElementError] = field(default_factory=list)

    @property
    def description(self) -> str:
        return SEGMENT_ERROR_CODES.get(self.code, "unknown segment error code") if self.code else ""

    @property
    def patient_control_number(self) -> str | None:
        """CLM01 of the claim the error is in (from ``CTX*CLM01:<value>``)."""
        for ctx in self.contexts:
            if ctx.name == "CLM01":
                return ctx.value
        return None


@dataclass(slots=True)
class TransactionSetAck:
    """AK2 ... IK5: the verdict on one acknowledged transaction set."""

    st01: str
    control_number: str
    implementation: str = ""
    status: str = ""  # IK501: A, E, R (M, W, X)
    syntax_errors: list[str] = field(default_factory=list)  # IK502-IK506
    segment_errors: list[SegmentError] = field(default_factory=list)

    @property
    def accepted(self) -> bool:
        return self.status in ("A", "E")

    @property
    def rejected_claims(self) -> list[str]:
        """Patient control numbers named in CTX*CLM01 under this set's IK3 errors."""
        seen: list[str] = []
        for err in self.segment_errors:
            pcn = err.patient_control_number
            if pcn and pcn not in seen:
                seen.append(pcn)
        return seen

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "st01": self.st01,
            "control_number": self.control_number,
            "implementation": self.implementation or None,
            "status": self.status,
            "status_description": ACK_CODES.get(self.status, "unknown"),
            "accepted": self.accepted,
            "syntax_errors": [
                {"code": c, "description": TRANSACTION_ERROR_CODES.get(c, "unknown")}
                for c in self.syntax_errors
            ],
            "segment_errors": [
                {
                    "segment": e.segment_id,
                    "position": e.position,
                    "loop": e.loop or None,
                    "code": e.code or None,
                    "description": e.description or None,
                    "patient_control_number": e.patient_control_number,
                    "contexts": [{"name": c.name, "value": c.value} for c in e.contexts],
                    "element_errors": [
                        {
                            "position": x.position,
                            "component": x.component,
                            "repetition": x.repetition,
                            "reference_number": x.reference_number or None,
                            "code": x.code,
                            "description": x.description,
                            "bad_value": x.bad_value or None,
                        }
                        for x in e.element_errors
                    ],
                }
                for e in self.segment_errors
            ],
            "rejected_claims": self.rejected_claims,
        }


@dataclass(slots=True)
class Ack999:
    """One 999 transaction set: acknowledges functional group AK102 (GS06)."""

    control_number: str  # ST02 of the 999
    implementation: str  # ST03
    functional_id: str  # AK101: GS01 of the acknowledged group (HC for 837)
    group_control_number: str  # AK102: GS06 of the acknowledged group
    version: str  # AK103: GS08 of the acknowledged group
    transaction_sets: list[TransactionSetAck] = field(default_factory=list)
    group_status: str = ""  # AK901: A, E, P, R
    included: int | None = None  # AK902
    received: int | None = None  # AK903
    accepted: int | None = None  # AK904
    group_syntax_errors: list[str] = field(default_factory=list)  # AK905-AK909
    interchange_control_number: str = ""  # ISA13 of the 999's interchange
    sender: str = ""  # ISA06
    receiver: str = ""  # ISA08

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "control_number": self.control_number,
            "implementation": self.implementation,
            "functional_id": self.functional_id,
            "group_control_number": self.group_control_number,
            "version": self.version,
            "group_status": self.group_status,
            "group_status_description": ACK_CODES.get(self.group_status, "unknown"),
            "included": self.included,
            "received": self.received,
            "accepted": self.accepted,
            "group_syntax_errors": [
                {"code": c, "description": GROUP_ERROR_CODES.get(c, "unknown")}
                for c in self.group_syntax_errors
            ],
            "transaction_sets": [t.to_json_dict() for t in self.transaction_sets],
            "interchange_control_number": self.interchange_control_number,
            "sender": self.sender,
            "receiver": self.receiver,
        }


@dataclass(slots=True)
class Document999:
    """Every 999 of a file, plus findings about the file itself (unreadable, not a 999)."""

    acks: list[Ack999] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    readable: bool = True

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "transaction_set": "999",
            "readable": self.readable,
            "acknowledgments": [a.to_json_dict() for a in self.acks],
            "findings": [f.to_json_dict() for f in self.findings],
        }


# --------------------------------------------------------------------------- parsing


def _int_or_none(text: str) -> int | None:
    """IK3/IK4 positions and AK9 counts (N0 1/10 at most), via the one number reader."""
    return parse_count(text, max_length=10)


def parse_999(source: Any, *, file: str | None = None) -> Document999:
    """Read every 999 transaction set in ``source`` (path, bytes, binary file or X12 text).

    Never raises on bad input: unreadable X12 or a segment out of place becomes a
    finding in ``Document999.findings``.
    """
    doc = Document999()
    try:
        for transaction_set in transaction_sets_of(source, "999", doc.findings, file=file):
            ack = _read_999(transaction_set)
            doc.acks.append(ack)
            if transaction_set.se is None:
                doc.findings.append(
                    _file_finding(
                        "999_SE_MISSING", "999 transaction set ended without SE", None, "ST", Severity.ERROR
                    )
                )
    except X12SyntaxError as exc:
        doc.readable = False
        doc.findings.append(unreadable(exc))
    return doc


def _read_999(transaction_set: TransactionSet) -> Ack999:
    """One 999: AK1, then per acknowledged set AK2 / IK3 / IK4 / CTX / IK5, then AK9."""
    ack = Ack999(transaction_set.control_number, transaction_set.implementation, "", "", "")
    interchange = transaction_set.interchange
    if interchange is not None:
        ack.interchange_control_number = interchange.control_number
        ack.sender, ack.receiver = interchange.sender_id, interchange.receiver_id
    tx: TransactionSetAck | None = None
    seg_err: SegmentError | None = None
    el_err: ElementError | None = None
    for seg in transaction_set:
        sid = seg.id
        get = seg.get
        if sid == "AK1":
            ack.functional_id, ack.group_control_number, ack.version = get(1), get(2), get(3)
        elif sid == "AK2":
            tx = TransactionSetAck(get(1), get(2), get(3))
            ack.transaction_sets.append(tx)
            seg_err = el_err = None
        elif sid == "IK3" and tx is not None:
            seg_err = SegmentError(get(1), _int_or_none(get(2)), get(3), get(4))
            tx.segment_errors.append(seg_err)
            el_err = None
        elif sid == "IK4" and seg_err is not None:
            parts = seg.components(1)
            el_err = ElementError(
                position=_int_or_none(parts[0]) if parts else None,
                component=_int_or_none(parts[1]) if len(parts) > 1 else None,
                repetition=_int_or_none(parts[2]) if len(parts) > 2 else None,
                reference_number=get(2),
                code=get(3),
                bad_value=get(4),
            )
            seg_err.element_errors.append(el_err)
        elif sid == "CTX":
            parts = seg.components(1)
            ctx = Context(
                parts[0] if parts else "", parts[1] if len(parts) > 1 else "", tuple(seg.elements[1:])
            )
            if el_err is not None:
                el_err.contexts.append(ctx)
            elif seg_err is not None:
                seg_err.contexts.append(ctx)
        elif sid == "IK5" and tx is not None:
            tx.status = get(1)
            tx.syntax_errors = [c for c in seg.elements[2:7] if c]
            tx = seg_err = el_err = None
        elif sid == "AK9":
            ack.group_status = get(1)
            ack.included, ack.received, ack.accepted = (
                _int_or_none(get(2)),
                _int_or_none(get(3)),
                _int_or_none(get(4)),
            )
            ack.group_syntax_errors = [c for c in seg.elements[5:10] if c]
    return ack


def _file_finding(
    code: str, message: str, ordinal: int | None, segment: str | None, sev: Severity
) -> Finding:
    return Finding(sev, code, message, segment=segment, file_ordinal=ordinal)


# --------------------------------------------------------------------------- generation


def _element_position(f: Finding) -> tuple[str, str] | None:
    """``CLM05-1`` -> ("5", "1"); ``NM109`` -> ("9", ""); None when there is no element."""
    if not f.element:
        return None
    m = _ELEMENT_REF.match(f.element)
    if m is None:
        return None
    return str(int(m.group(2))), (str(int(m.group(3))) if m.group(3) else "")


def _claim_for(
    position: int, loop: str | None, claim_positions: list[int], refs: dict[int, str]
) -> str | None:
    """CLM01 of the claim holding the segment at ``position`` (nearest CLM at or before it).

    A finding that names a loop outside the claim (2000B, 2010BA ...) is not inside it
    even when it comes after a CLM: the next subscriber's segments follow the claim.
    """
    if not claim_positions or (loop and not loop.startswith(_CLAIM_LOOPS)):
        return None
    best = None
    for p in claim_positions:
        if p <= position:
            best = p
        else:
            break
    return refs[best] if best is not None else None


def _safe_value(value: str | None, delimiters: Delimiters) -> str | None:
    """IK404 copy of the bad value: omitted when it holds a delimiter (it cannot be escaped)."""
    if not value:
        return None
    if any(c and c in value for c in (*delimiters.all(), "\r", "\n")):
        return None
    return value[:_IK404_MAX]


def _ik5(result: TransactionSetResult, segment_errors: bool) -> tuple[str, list[str]]:
    errors = [f for f in result.findings if f.severity is Severity.ERROR]
    warnings = [f for f in result.findings if f.severity is Severity.WARNING]
    codes = [c for c in result.syntax_errors if c]
    if errors or codes:
        if segment_errors and "5" not in codes:
            codes.append("5")
        return "R", (codes or ["5"])[:5]
    noted = [c for c in result.noted if c]
    if warnings or noted:
        return "E", ((["5"] if segment_errors else []) + noted)[:5]
    return "A", []


def write_999_transaction(
    writer: X12Writer,
    group: GroupResult,
    control_number: str,
    *,
    max_segment_errors: int | None = None,
) -> tuple[str, int]:
    """Write one 999 transaction set (ST..SE) answering ``group``; return (AK901, accepted).

    Per inbound transaction set: AK2, one IK3 per segment in error (IK304 the segment
    code, or 8 when only its elements are wrong) with ``CTX*CLM01`` when it sits in a
    claim, one IK4 per element error, then IK5. AK9 closes with the counts.
    """
    delimiters = writer.delimiters
    writer.begin_transaction("999", control_number, IMPLEMENTATION)
    writer.segment("AK1", group.functional_id, group.control_number, group.version)
    accepted = 0
    statuses: list[str] = []
    for ts in group.transaction_sets:
        writer.segment("AK2", ts.st01, ts.control_number, ts.implementation or None)
        claim_positions = sorted(ts.claim_refs)
        # Group the findings by segment: one IK3 per segment, its element errors below it.
        by_segment: dict[tuple[int, str], list[Finding]] = {}
        for f in ts.findings:
            # ST/SE problems (counts, control numbers) belong to IK5, not to an IK3.
            if (
                f.severity is Severity.INFO
                or f.segment_position is None
                or f.segment in (None, "", "ST", "SE")
            ):
                continue
            if f.severity is Severity.WARNING and not (f.ik3 or f.ik4):
                continue
            by_segment.setdefault((f.segment_position, f.segment), []).append(f)
        written = 0
        for (position, segment_id), found in sorted(by_segment.items()):
            if max_segment_errors is not None and written >= max_segment_errors:
                break
            written += 1
            segment_codes = [f.ik3 for f in found if f.ik3 and f.ik3 != "8" and _element_position(f) is None]
            element_findings = [f for f in found if _element_position(f) is not None]
            code = segment_codes[0] if segment_codes else "8"
            loop = next((f.loop for f in found if f.loop), None)
            # IK303 holds at most 4 characters (element 447): 2010AA is reported as 2010.
            writer.segment("IK3", segment_id[:3], str(position), loop[:4] if loop else None, code)
            pcn = _claim_for(position, loop, claim_positions, ts.claim_refs)
            if pcn and not any(c in pcn for c in delimiters.all()):
                writer.segment("CTX", ["CLM01", pcn])
            seen: set[tuple[str, str, str]] = set()
            for f in element_findings[:99]:
                where = _element_position(f)
                assert where is not None
                element_code = f.ik4 or "I12"
                key = (*where, element_code)
                if key in seen:
                    continue
                seen.add(key)
                writer.segment(
                    "IK4", [where[0], where[1]], None, element_code, _safe_value(f.value, delimiters)
                )
        status, codes = _ik5(ts, bool(by_segment))
        writer.segment("IK5", status, *codes)
        statuses.append(status)
        if status in ("A", "E"):
            accepted += 1
    received = len(group.transaction_sets)
    included = group.transaction_count if group.transaction_count is not None else received
    group_codes = [c for c in group.syntax_errors if c][:5]
    if group_codes or (received and accepted == 0):
        ak901 = "R"
    elif accepted < received:
        ak901 = "P"
    elif "E" in statuses:
        ak901 = "E"
    else:
        ak901 = "A"
    writer.segment("AK9", ak901, str(included), str(received), str(accepted), *group_codes)
    writer.end_transaction()
    return ak901, accepted


def generate_999(
    groups: Iterable[GroupResult],
    *,
    sender_qualifier: str,
    sender_id: str,
    receiver_qualifier: str,
    receiver_id: str,
    interchange_control_number: int,
    group_control_number: int,
    application_sender: str,
    application_receiver: str,
    first_transaction_control_number: int = 1,
    usage: str = "P",
    when: datetime | None = None,
    delimiters: Delimiters = Delimiters(),  # noqa: B008 - frozen dataclass
    line_breaks: bool = False,
    max_segment_errors: int | None = None,
) -> str:
    """A complete interchange holding one 999 per acknowledged functional group.

    The sender/receiver are ours and the original sender's (swap the inbound ISA06/08
    and GS02/03); control numbers come from the caller, who keeps them unique.
    """
    writer = X12Writer(delimiters, line_breaks=line_breaks)
    writer.begin_interchange(
        sender_qualifier=sender_qualifier,
        sender_id=sender_id,
        receiver_qualifier=receiver_qualifier,
        receiver_id=receiver_id,
        control_number=interchange_control_number,
        usage=usage,
        when=when,
    )
    writer.begin_group(
        functional_id="FA",
        sender_code=application_sender,
        receiver_code=application_receiver,
        control_number=group_control_number,
        version=IMPLEMENTATION,
        when=when,
    )
    for offset, group in enumerate(groups):
        write_999_transaction(
            writer,
            group,
            f"{first_transaction_control_number + offset:04d}",
            max_segment_errors=max_segment_errors,
        )
    writer.end_group()
    writer.end_interchange()
    return writer.getvalue()


def groups_from_report(report: Any) -> list[GroupResult]:
    """Build 999 input from an ``edi.validate.ValidationReport`` (read by attribute only).

    Transaction sets are grouped by (ISA13, GS06) in file order; each set's
    ``ik5_reasons`` become its IK502 codes (``ik5_noted``: I6 for a set whose guide was
    not checked). Acknowledgments are never acknowledged (X12.6; the 999 TR3 X231A1 and
    the 997 alike): sets of a GS01 "FA" group (999, 997) are left out, so a file holding
    only those gives no group at all.
    """
    groups: dict[tuple[str, str], GroupResult] = {}
    for ts in report.transaction_sets:
        if is_acknowledgment(ts.gs01, ts.st01):
            continue
        key = (getattr(ts, "isa13", ""), ts.gs06)
        group = groups.get(key)
        if group is None:
            group = groups[key] = GroupResult(ts.gs01, ts.gs06, ts.gs08)
        reasons = [c for c in getattr(ts, "ik5_reasons", []) if c != "5"]
        group.transaction_sets.append(
            TransactionSetResult(
                st01=ts.st01,
                control_number=ts.st02,
                implementation=ts.st03 or None,
                findings=list(ts.findings),
                claim_refs=dict(ts.claim_refs),
                syntax_errors=tuple(reasons),
                noted=tuple(getattr(ts, "ik5_noted", ())),
            )
        )
    return list(groups.values())


def is_acknowledgment(gs01: str, st01: str) -> bool:
    """A 999/997 (functional group FA), or a set under an FA group: never acknowledged."""
    return gs01 == "FA" or st01 in ("997", "999")


def generate_999_for_report(
    report: Any,
    *,
    interchange_control_number: int,
    group_control_number: int,
    when: datetime | None = None,
    usage: str = "P",
    delimiters: Delimiters = Delimiters(),  # noqa: B008 - frozen dataclass
) -> str:
    """Our 999 answering everything ``report`` (an ``edi.validate.ValidationReport``) read.

    Addressed back to the sender of the first interchange: its ISA05/ISA06 become our
    receiver and its ISA07/ISA08 our sender (also used as GS02/GS03 application codes).
    """
    if not report.interchanges:
        raise ValueError("the report holds no interchange to acknowledge")
    if not groups_from_report(report):
        raise ValueError("nothing to acknowledge: no functional group other than acknowledgments")
    first = report.interchanges[0]
    their_qualifier, _, their_id = first.sender.partition(":")
    our_qualifier, _, our_id = first.receiver.partition(":")
    return generate_999(
        groups_from_report(report),
        sender_qualifier=our_qualifier,
        sender_id=our_id,
        receiver_qualifier=their_qualifier,
        receiver_id=their_id,
        interchange_control_number=interchange_control_number,
        group_control_number=group_control_number,
        application_sender=our_id,
        application_receiver=their_id,
        usage=usage,
        when=when,
        delimiters=delimiters,
    )
