"""Envelope checks: one broken envelope per rule, each mapped to its TA1 / AK9 / IK5 code."""

from __future__ import annotations

import pytest

from edi.envelope import ack_codes, check_envelope
from edi.findings import Severity
from edi.validate import validate
from tests.unit.edi.test_validate import (
    CLAIM,
    HEADER_837P,
    ISA,
    LINES,
    SUBSCRIBER,
    interchange,
    replace,
    transaction,
)

BODY = [*HEADER_837P, *SUBSCRIBER, *CLAIM, *LINES]


def clean() -> str:
    return interchange(transaction(BODY))


def errors(text: str) -> list:
    return [f for f in check_envelope(text.encode()).findings if f.severity is Severity.ERROR]


def test_clean_envelope_and_summary() -> None:
    text = interchange(transaction(BODY, st02="0001"), transaction(BODY, st02="0002"))
    report = check_envelope(text.encode())
    assert report.valid and report.findings == []
    (isa,) = report.interchanges
    assert (isa.isa13, isa.sender_qualifier, isa.sender_id, isa.receiver_id, isa.version, isa.usage) == (
        "000000001",
        "ZZ",
        "SUBMIT01",
        "CLEAR01",
        "00501",
        "T",
    )
    (group,) = isa.groups
    assert (group.gs01, group.gs06, group.gs08) == ("HC", "1", "005010X222A1")
    assert [(t.st01, t.st02, t.st03, t.segment_count) for t in group.transaction_sets] == [
        ("837", "0001", "005010X222A1", 31),
        ("837", "0002", "005010X222A1", 31),
    ]
    first = group.transaction_sets[0]
    assert first.last_ordinal - first.first_ordinal == 30
    assert (isa.first_ordinal, isa.last_ordinal) == (1, 66)


@pytest.mark.parametrize(
    ("old", "new", "code", "element", "ack"),
    [
        ("IEA*1*000000001", "IEA*1*000000002", "X12.IEA02_MISMATCH", "IEA02", ("ta1", "001")),
        ("IEA*1*", "IEA*2*", "X12.IEA01_COUNT", "IEA01", ("ta1", "021")),
        ("GE*1*1", "GE*1*2", "X12.GE02_MISMATCH", "GE02", ("ak9", "4")),
        ("GE*1*1", "GE*3*1", "X12.GE01_COUNT", "GE01", ("ak9", "5")),
        ("SE*31*0001", "SE*31*0002", "X12.SE02_MISMATCH", "SE02", ("ik5", "3")),
        ("SE*31*0001", "SE*30*0001", "X12.SE01_COUNT", "SE01", ("ik5", "4")),
        ("ST*837*0001*005010X222A1", "ST*837*0001*005010X223A2", "X12.ST03_MISMATCH", "ST03", ("ik5", "I6")),
        ("ST*837*0001*", "ST*837*01*", "X12.ST02_INVALID", "ST02", ("ik5", "7")),
        ("*0*T*:", "*2*T*:", "X12.ISA_INVALID", "ISA14", ("ta1", "019")),
        ("*0*T*:", "*0*X*:", "X12.ISA_INVALID", "ISA15", ("ta1", "020")),
        ("*240603*0930*", "*241303*0930*", "X12.ISA_INVALID", "ISA09", ("ta1", "014")),
        ("*240603*0930*", "*240603*2561*", "X12.ISA_INVALID", "ISA10", ("ta1", "015")),
        ("*00501*", "*00601*", "X12.ISA_INVALID", "ISA12", ("ta1", "017")),
        ("*000000001*0*", "*00000000A*0*", "X12.ISA_INVALID", "ISA13", ("ta1", "018")),
        ("ISA*00*", "ISA*07*", "X12.ISA_INVALID", "ISA01", ("ta1", "010")),
        ("*ZZ*SUBMIT01       *", "*XX*SUBMIT01       *", "X12.ISA_INVALID", "ISA05", ("ta1", "005")),
        (
            "GS*HC*SUBMIT01*CLEAR01*20240603*0930*1*",
            "GS*HC*SUBMIT01*CLEAR01*20240603*0930*A1*",
            "X12.GS06_INVALID",
            "GS06",
            ("ak9", "6"),
        ),
    ],
)
def test_each_envelope_rule(old: str, new: str, code: str, element: str, ack: tuple[str, str]) -> None:
    found = [f for f in errors(replace(clean(), old, new)) if f.code == code]
    assert found, [f.code for f in errors(replace(clean(), old, new))]
    assert found[0].element == element
    assert getattr(ack_codes(found[0]), ack[0]) == ack[1]


def test_isa_field_width() -> None:
    # Same length overall, but ISA06 one character short and ISA08 one long: widths are fixed.
    text = replace(clean(), "*SUBMIT01       *ZZ*CLEAR01        *", "*SUBMIT01      *ZZ*CLEAR01         *")
    found = {f.element for f in errors(text) if f.code == "X12.ISA_INVALID"}
    assert {"ISA06", "ISA08"} <= found


def test_4010_version_is_a_warning() -> None:
    text = clean().replace("*^*00501*", "*U*00401*")
    report = check_envelope(text.encode())
    (f,) = [f for f in report.findings if f.code == "X12.ISA12_VERSION"]
    assert f.severity is Severity.WARNING and report.valid


def test_duplicate_st02_in_group() -> None:
    text = interchange(transaction(BODY, st02="0001"), transaction(BODY, st02="0001"))
    (f,) = [f for f in errors(text) if f.code == "X12.ST02_DUPLICATE"]
    assert ack_codes(f).ik5 == "23" and f.transaction_set == "0001"


def test_duplicate_isa13_in_file() -> None:
    one = clean()
    assert "X12.ISA13_DUPLICATE" in {f.code for f in errors(one + one)}


@pytest.mark.parametrize(
    ("cut_before", "codes"),
    [
        ("IEA*", {"X12.IEA_MISSING"}),
        ("GE*", {"X12.GE_MISSING", "X12.IEA_MISSING"}),
        ("SE*", {"X12.SE_MISSING", "X12.GE_MISSING", "X12.IEA_MISSING"}),
    ],
)
def test_truncated_file_reports_missing_trailers(cut_before: str, codes: set[str]) -> None:
    text = clean()
    truncated = text[: text.index(cut_before)]
    found = {f.code for f in errors(truncated)}
    assert codes <= found
    iea = next(f for f in errors(truncated) if f.code == "X12.IEA_MISSING")
    assert ack_codes(iea).ta1 == "023"


def test_segments_outside_an_envelope() -> None:
    text = replace(clean(), "GE*1*1~", "NM1*85*2*STRAY~\nGE*1*1~")
    (f,) = [f for f in errors(text) if f.code == "X12.CONTROL_STRUCTURE"]
    assert f.segment == "NM1" and ack_codes(f).ta1 == "022"


def test_st_outside_group() -> None:
    text = ISA + "~\nST*837*0001*005010X222A1~\nSE*2*0001~\nIEA*0*000000001~\n"
    found = {f.code for f in errors(text)}
    assert "X12.CONTROL_STRUCTURE" in found


def test_validate_carries_envelope_findings_to_the_transaction_set() -> None:
    report = validate(replace(clean(), "SE*31*0001", "SE*29*0001").encode())
    (ts,) = report.transaction_sets
    assert not ts.accepted and "4" in ts.ik5_reasons
    assert report.interchanges[0].ta1_note == "000"


def test_interchange_report_ta1_note() -> None:
    report = validate(replace(clean(), "IEA*1*000000001", "IEA*1*000000009").encode())
    assert report.interchanges[0].ta1_note == "001"
    assert report.transaction_sets[0].accepted
