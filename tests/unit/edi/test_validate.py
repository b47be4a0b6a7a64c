"""Map-driven validation and the 837 guide rules: one clean file, one broken input per rule.

The clean 837P files below are synthetic (fictitious names, Luhn-valid NPIs) and pass
pyx12's full validation with no error, which one test asserts, so every finding in
the other tests comes from the single change that test makes.
"""

from __future__ import annotations

import datetime as dt
import io
import logging

import pytest

from edi.findings import Severity
from edi.validate import ValidationReport, validate

TODAY = dt.date(2024, 6, 10)

ISA = "ISA*00*          *00*          *ZZ*SUBMIT01       *ZZ*CLEAR01        *240603*0930*^*00501*000000001*0*T*:"

HEADER_837P = [
    "BHT*0019*00*SYNTH*20240603*0930*CH",
    "NM1*41*2*SYNTHETIC BILLING*****46*SUBMIT01",
    "PER*IC*BILLING DESK*TE*2175550100",
    "NM1*40*2*SYNTHETIC CLEARINGHOUSE*****46*CLEAR01",
    "HL*1**20*1",
    "PRV*BI*PXC*207Q00000X",
    "NM1*85*2*SYNTHETIC CLINIC*****XX*1745669543",
    "N3*100 MAIN ST",
    "N4*SPRINGFIELD*IL*627011000",
    "REF*EI*377943081",
]
SUBSCRIBER = [
    "HL*2*1*22*0",
    "SBR*P*18*G4237******CI",
    "NM1*IL*1*LOPEZ*QUINN****MI*M000000000",
    "N3*2412 MAIN ST",
    "N4*SPRINGFIELD*IL*62704",
    "DMG*D8*19930902*F",
    "NM1*PR*2*SYNTHETIC HEALTH PLAN*****PI*SYN01",
]
CLAIM = [
    "CLM*PCN0001*102***11:B:1*Y*A*Y*Y",
    "HI*ABK:E785*ABF:E119",
    "NM1*82*1*DOCTOR*QUINN****XX*1863851154",
    "PRV*PE*PXC*207Q00000X",
]
LINES = [
    "LX*1",
    "SV1*HC:93000*60*UN*1***1:2",
    "DTP*472*D8*20240401",
    "REF*6R*L000000001",
    "LX*2",
    "SV1*HC:80053*42*UN*1***1",
    "DTP*472*D8*20240401",
    "REF*6R*L000000002",
]
# A secondary claim: the primary payer (PAYERA) paid 92.00 of 102.00, the rest is CO-45.
SECONDARY_SUBSCRIBER = ["HL*2*1*22*0", "SBR*S*18*G4237******CI", *SUBSCRIBER[2:]]
OTHER_PAYER = [
    "SBR*P*18*G1111******CI",
    "AMT*D*92",
    "OI***Y***Y",
    "NM1*IL*1*LOPEZ*QUINN****MI*M000000000",
    "NM1*PR*2*PRIMARY PAYER*****PI*PAYERA",
]
COB_LINES = [
    "LX*1",
    "SV1*HC:93000*60*UN*1***1:2",
    "DTP*472*D8*20240401",
    "SVD*PAYERA*55*HC:93000**1",
    "CAS*CO*45*5",
    "DTP*573*D8*20240501",
    "LX*2",
    "SV1*HC:80053*42*UN*1***1",
    "DTP*472*D8*20240401",
    "SVD*PAYERA*37*HC:80053**1",
    "CAS*CO*45*5",
    "DTP*573*D8*20240501",
]


def transaction(
    body: list[str], *, st02: str = "0001", st01: str = "837", implementation: str = "005010X222A1"
) -> list[str]:
    """ST + body + SE with the right count."""
    return [f"ST*{st01}*{st02}*{implementation}", *body, f"SE*{len(body) + 2}*{st02}"]


def interchange(*sets: list[str], gs08: str = "005010X222A1", gs01: str = "HC", isa: str = ISA) -> str:
    segments = [isa, f"GS*{gs01}*SUBMIT01*CLEAR01*20240603*0930*1*X*{gs08}"]
    for one in sets:
        segments.extend(one)
    segments += [f"GE*{len(sets)}*1", "IEA*1*000000001"]
    return "~\n".join(segments) + "~\n"


def clean_837p() -> str:
    return interchange(transaction([*HEADER_837P, *SUBSCRIBER, *CLAIM, *LINES]))


def cob_837p() -> str:
    return interchange(transaction([*HEADER_837P, *SECONDARY_SUBSCRIBER, *CLAIM, *OTHER_PAYER, *COB_LINES]))


def replace(text: str, old: str, new: str) -> str:
    assert old in text, old
    return text.replace(old, new, 1)


def recount(text: str) -> str:
    """Set every SE01 to the real segment count, so a test changes only what it means to."""
    segments = text.split("~\n")
    start = 0
    for index, seg in enumerate(segments):
        if seg.startswith("ST*"):
            start = index
        elif seg.startswith("SE*"):
            parts = seg.split("*")
            parts[1] = str(index - start + 1)
            segments[index] = "*".join(parts)
    return "~\n".join(segments)


def run(text: str, **kwargs: object) -> ValidationReport:
    return validate(recount(text).encode(), today=TODAY, **kwargs)  # type: ignore[arg-type]


def codes(report: ValidationReport) -> set[str]:
    return {f.code for f in report.findings if f.is_error}


def pyx12_errors(text: str) -> bool:
    """pyx12's full validation verdict on ``text`` (True: valid)."""
    import pyx12.params
    import pyx12.x12n_document

    logging.disable(logging.CRITICAL)
    try:
        return pyx12.x12n_document.x12n_document(
            pyx12.params.params(), io.StringIO(text), io.StringIO(), None
        )
    finally:
        logging.disable(logging.NOTSET)


# ------------------------------------------------------------------------- clean files
@pytest.mark.parametrize("make", [clean_837p, cob_837p], ids=["primary", "secondary-cob"])
def test_clean_837p_has_no_findings_and_pyx12_agrees(make) -> None:
    text = make()
    report = run(text)
    assert [f for f in report.findings if f.severity is not Severity.INFO] == []
    assert report.valid and report.readable
    (ts,) = report.transaction_sets
    assert (ts.st01, ts.st02, ts.st03, ts.gs01, ts.gs06, ts.gs08) == (
        "837",
        "0001",
        "005010X222A1",
        "HC",
        "1",
        "005010X222A1",
    )
    assert ts.accepted and ts.ik5_code == "A" and ts.guide == "837.5010.X222.A1.xml"
    assert ts.claim_refs == {19: "PCN0001"}
    assert pyx12_errors(text) is True


def test_report_json_shape() -> None:
    report = run(replace(clean_837p(), "CLM*PCN0001*102*", "CLM*PCN0001*103*"))
    data = report.to_json_dict()
    assert data["valid"] is False
    assert data["transaction_sets"][0]["st02"] == "0001"
    finding = next(f for f in data["findings"] if f["code"] == "X12.CLM02_BALANCE")
    assert {"severity", "code", "message", "segment", "segment_position", "loop", "element", "value"} <= set(
        finding
    )
    assert (
        finding["severity"] == "error" and finding["segment"] == "CLM" and finding["segment_position"] == 19
    )
    assert finding["element"] == "CLM02" and finding["value"] == "103.00" and finding["loop"] == "2300"


# ------------------------------------------------------------------------- structure (IK3)
def test_missing_mandatory_segment_is_ik3_3() -> None:
    report = run(clean_837p().replace("N3*100 MAIN ST~\n", ""))
    missing = [f for f in report.findings if f.code == "X12.SEGMENT_MISSING"]
    assert [(f.segment, f.ik3, f.loop) for f in missing] == [("N3", "3", "2010AA")]


def test_segment_over_max_use_is_ik3_5() -> None:
    report = run(replace(clean_837p(), "REF*EI*377943081~\n", "REF*EI*377943081~\nREF*EI*377943081~\n"))
    (f,) = [f for f in report.findings if f.code == "X12.SEGMENT_REPEAT"]
    assert (f.segment, f.segment_position, f.ik3) == ("REF", 12, "5")


def test_loop_over_max_is_ik3_4() -> None:
    billing = "NM1*85*2*SYNTHETIC CLINIC*****XX*1745669543~\nN3*100 MAIN ST~\nN4*SPRINGFIELD*IL*627011000~\n"
    report = run(replace(clean_837p(), billing, billing + billing))
    (f,) = [f for f in report.findings if f.code == "X12.LOOP_REPEAT"]
    assert (f.segment, f.loop, f.ik3) == ("NM1", "2010AA", "4")


def test_unknown_and_unexpected_segments() -> None:
    report = run(
        replace(
            clean_837p(), "DMG*D8*19930902*F~", "DMG*D8*19930902*F~\nZZZ*1~\nBHT*0019*00*X*20240603*0930*CH~"
        )
    )
    found = {(f.code, f.segment, f.ik3) for f in report.findings}
    assert ("X12.SEGMENT_UNRECOGNIZED", "ZZZ", "1") in found
    assert ("X12.SEGMENT_UNEXPECTED", "BHT", "2") in found


def test_mandatory_loop_missing() -> None:
    text = clean_837p().replace("NM1*PR*2*SYNTHETIC HEALTH PLAN*****PI*SYN01~\n", "")
    found = [(f.code, f.loop) for f in run(text).findings if f.ik3 == "3"]
    assert ("X12.LOOP_MISSING", "2010BB") in found


# ------------------------------------------------------------------------- elements (IK4)
@pytest.mark.parametrize(
    ("old", "new", "element", "ik4"),
    [
        ("CLM*PCN0001*102***11:B:1*Y*A*Y*Y", "CLM*PCN0001*102***11:B:1*Y*A**Y", "CLM08", "1"),
        ("SBR*P*18*G4237******CI", "SBR*P*18*G4237******Q9", "SBR09", "7"),
        ("DTP*472*D8*20240401", "DTP*472*D8*20241345", "DTP03", "8"),
        ("BHT*0019*00*SYNTH*20240603*0930*CH", "BHT*0019*00*SYNTH*20240603*2575*CH", "BHT05", "9"),
        ("SV1*HC:80053*42*UN*1***1", "SV1*HC:80053*4X*UN*1***1", "SV102", "6"),
        ("N4*SPRINGFIELD*IL*62704", "N4*SPRINGFIELD*IL*62", "N403", "4"),
        ("PRV*PE*PXC*207Q00000X", "PRV*PE*PXC*207Q00000X" + "1" * 50, "PRV03", "5"),
        ("NM1*82*1*DOCTOR*QUINN****XX*1863851154", "NM1*82*1*DOCTOR*QUINN****XX*1863851154*X", "NM110", "10"),
        ("DMG*D8*19930902*F", "DMG*D8*19930902*F" + "*" * 8 + "*X*Y", "DMG12", "3"),
        ("HI*ABK:E785*ABF:E119", "HI*ABK:E785:D8:20240101:1:2:3:4:5:6*ABF:E119", "HI01", "13"),
        ("NM1*IL*1*LOPEZ*QUINN****MI*M000000000", "NM1*IL*1*LOPEZ*QUINN****MI", "NM109", "2"),
        ("REF*6R*L000000001", "REF*6R*L00^0001", "REF02", "12"),
    ],
    ids=[
        "missing",
        "code",
        "date",
        "time",
        "numeric",
        "short",
        "long",
        "not-used",
        "too-many-elements",
        "too-many-components",
        "conditional",
        "repetition",
    ],
)
def test_element_errors_carry_ik4(old: str, new: str, element: str, ik4: str) -> None:
    report = run(replace(clean_837p(), old, new))
    matches = [f for f in report.findings if f.element == element and f.ik4 == ik4]
    assert matches, [(f.code, f.element, f.ik4) for f in report.findings]
    assert all(f.ik3 == "8" and f.transaction_set == "0001" and f.segment_position for f in matches)


def test_phi_values_stay_out_of_findings() -> None:
    long_name = "X" * 61
    report = run(replace(clean_837p(), "NM1*IL*1*LOPEZ*", f"NM1*IL*1*{long_name}*"))
    (f,) = [f for f in report.findings if f.element == "NM103"]
    assert f.ik4 == "5" and f.value is None and long_name not in f.message


# ------------------------------------------------------------------------- HL / LX
def test_hl_numbering_and_parent() -> None:
    text = replace(clean_837p(), "HL*2*1*22*0", "HL*3*7*22*0")
    found = {f.code for f in run(text).findings}
    assert {"X12.HL01_SEQUENCE", "X12.HL02_PARENT"} <= found


def test_hl04_child_code_must_match_children() -> None:
    assert "X12.HL04_CHILD_CODE" in codes(run(replace(clean_837p(), "HL*2*1*22*0", "HL*2*1*22*1")))


def test_lx_numbering() -> None:
    (f,) = [f for f in run(replace(clean_837p(), "LX*2", "LX*3")).findings if f.code == "X12.LX_SEQUENCE"]
    assert (f.element, f.value, f.segment_position) == ("LX01", "3", 27)


# ------------------------------------------------------------------------- guide rules
@pytest.mark.parametrize(
    ("old", "new", "code", "element"),
    [
        ("XX*1745669543", "XX*1745669544", "X12.NPI_CHECK_DIGIT", "NM109"),
        ("CLM*PCN0001*", "CLM*PCN0001PCN0001PCN0001*", "X12.CLM01_LENGTH", "CLM01"),
        ("CLM*PCN0001*102*", "CLM*PCN0001*100*", "X12.CLM02_BALANCE", "CLM02"),
        ("SV1*HC:80053*42*UN*1***1", "SV1*HC:80053*42*UN*1***3", "X12.DX_POINTER", "SV107"),
        ("SV1*HC:80053*42*UN*1***1", "SV1*HC:80053*42*UN*1***1:1", "X12.DX_POINTER", "SV107"),
        ("N4*SPRINGFIELD*IL*627011000", "N4*SPRINGFIELD*IL*62701", "X12.BILLING_PROVIDER_ZIP4", "N403"),
        ("11:B:1*", "11:B:7*", "X12.REF_F8_REQUIRED", "CLM05-3"),
        ("SBR*P*18*G4237", "SBR*S*18*G4237", "X12.PRIMARY_PAYER", "SBR01"),
        ("HI*ABK:E785*ABF:E119", "HI*ABK:E785*ABF:E785", "X12.DX_DUPLICATE", None),
        ("REF*6R*L000000002", "REF*6R*L000000001", "X12.REF_6R", "REF02"),
        ("REF*6R*L000000002", "REF*6R*" + "L" * 31, "X12.REF_6R", "REF02"),
        ("BHT*0019*00*SYNTH*20240603", "BHT*0019*00*SYNTH*20240620", "X12.BHT04_FUTURE", "BHT04"),
    ],
)
def test_guide_rule_findings(old: str, new: str, code: str, element: str | None) -> None:
    report = run(replace(clean_837p(), old, new))
    matches = [f for f in report.findings if f.code == code]
    assert matches, sorted(codes(report))
    assert matches[0].element == element and matches[0].is_error and matches[0].transaction_set == "0001"
    # The map alone (rules=False) does not catch these: they are what pyx12 misses.
    assert code not in codes(run(replace(clean_837p(), old, new), rules=False))


def test_corrected_claim_with_ref_f8_passes() -> None:
    text = replace(clean_837p(), "11:B:1*", "11:B:7*")
    text = replace(text, "HI*ABK:E785", "REF*F8*PAYERICN123~\nHI*ABK:E785")
    assert codes(run(text)) == set()


def test_dx_count_over_12() -> None:
    dx = "*".join(f"ABF:Z{i:04d}" for i in range(12))
    text = replace(clean_837p(), "HI*ABK:E785*ABF:E119", f"HI*ABK:E785*{dx}")
    assert "X12.DX_COUNT" in codes(run(text))


def test_more_than_50_lines() -> None:
    lines = "".join(f"LX*{n}~\nSV1*HC:80053*1*UN*1***1~\nDTP*472*D8*20240401~\n" for n in range(1, 52))
    body = clean_837p()
    start = body.index("LX*1~")
    end = body.index("SE*")
    text = body[:start] + lines + body[end:]
    text = text.replace("CLM*PCN0001*102*", "CLM*PCN0001*51*")
    report = run(text)
    (f,) = [f for f in report.findings if f.code == "X12.LINE_COUNT"]
    assert f.ik3 == "4" and f.segment == "LX"


def test_cob_claim_balance() -> None:
    report = run(replace(cob_837p(), "AMT*D*92", "AMT*D*90"))
    assert "X12.COB_CLAIM_BALANCE" in codes(report)


def test_cob_line_balance() -> None:
    report = run(replace(cob_837p(), "SVD*PAYERA*55*", "SVD*PAYERA*50*"))
    assert "X12.COB_LINE_BALANCE" in codes(report)


def test_exactly_one_primary_across_2000b_and_2320() -> None:
    report = run(replace(cob_837p(), "SBR*S*18*G4237", "SBR*P*18*G4237"))
    (f,) = [f for f in report.findings if f.code == "X12.PRIMARY_PAYER"]
    assert "found 2" in f.message


# ------------------------------------------------------------------------- streaming, other sets
def test_error_in_one_transaction_set_leaves_the_other_accepted() -> None:
    body = [*HEADER_837P, *SUBSCRIBER, *CLAIM, *LINES]
    bad = [s.replace("SV1*HC:80053*42", "SV1*HC:80053*4X") for s in body]
    report = run(interchange(transaction(body, st02="0001"), transaction(bad, st02="0002")))
    first, second = report.transaction_sets
    assert first.accepted and not second.accepted
    assert all(f.transaction_set == "0002" for f in second.findings)
    assert not report.valid


def test_transaction_set_without_a_guide_is_unchecked_not_valid() -> None:
    body = ["BHT*0010*13*10001234*20240603*1319", "HL*1**20*1", "NM1*PR*2*PAYER*****PI*12345"]
    report = run(
        interchange(transaction(body, st01="276", implementation="005010X212"), gs08="005010X212", gs01="HR")
    )
    (note,) = [f for f in report.findings if f.code == "X12.NO_MAP"]
    assert note.severity is Severity.WARNING and "unchecked" in note.message
    (ts,) = report.transaction_sets
    assert ts.guide is None and not ts.checked and ts.verdict == "unchecked"
    # Nothing is wrong, but nothing was checked against a guide: never "valid".
    assert not report.errors and report.verdict == "unchecked"
    data = report.to_json_dict()
    assert data["verdict"] == "unchecked" and data["valid"] is False
    assert ts.ik5_code == "E" and ts.ik5_noted == ["I6"]


def test_835_is_walked_through_its_map() -> None:
    body = [
        "BPR*I*100*C*ACH*CCP*01*999999999*DA*123456*1512345678**01*999999999*DA*98765*20240603",
        "TRN*1*12345*1512345678",
        "N1*PR*PAYER",
        "N3*1 MAIN ST",
        "N4*SPRINGFIELD*IL*62701",
        "PER*BL*EDI DESK*TE*2175550100",
        "N1*PE*CLINIC*XX*1745669543",
        "LX*1",
        "CLP*PCN0001*1*102*100**12*ICN1",
        "NM1*QC*1*LOPEZ*QUINN",
        "SVC*HC:93000*60*60",
        "SVC*HC:80053*42*40",
        "CAS*CO*45*2",
    ]
    text = interchange(
        transaction(body, st01="835", implementation="005010X221A1"), gs08="005010X221A1", gs01="HP"
    )
    report = run(text)
    assert report.transaction_sets[0].guide == "835.5010.X221.A1.xml"
    assert codes(report) == set()
    broken = run(text.replace("PER*BL*EDI DESK*TE*2175550100~\n", ""))
    assert [f.segment for f in broken.findings if f.code == "X12.SEGMENT_MISSING"] == ["PER"]


def test_not_x12_is_unreadable_not_an_exception() -> None:
    report = validate(b"hello, this is not an interchange")
    assert not report.readable and not report.valid
    (f,) = report.findings
    assert f.code == "X12.ISA_MISSING" and f.is_error


def test_missing_file_is_a_finding(tmp_path) -> None:
    report = validate(str(tmp_path / "absent.x12"))
    assert not report.readable and report.findings[0].code == "X12.UNREADABLE_FILE"


def test_path_and_file_object_sources(tmp_path) -> None:
    path = tmp_path / "claim.x12"
    path.write_text(clean_837p())
    assert validate(str(path), today=TODAY).valid
    with open(path, "rb") as fh:
        assert validate(fh, today=TODAY).valid


def test_more_than_5000_claims_in_one_transaction_set() -> None:
    claims = []
    for n in range(5001):
        claims += SUBSCRIBER if n % 50 == 0 else []  # a new subscriber every 50 claims (2300 repeat)
        claims += [CLAIM[0].replace("PCN0001", f"PCN{n}"), *CLAIM[1:], *LINES]
    hl = 1
    body = []
    for seg in [*HEADER_837P, *claims]:
        if seg.startswith("HL*2*"):
            hl += 1
            seg = f"HL*{hl}*1*22*0"
        body.append(seg)
    report = run(interchange(transaction(body)))
    (f,) = [f for f in report.findings if f.code == "X12.CLAIM_COUNT"]
    assert f.segment == "CLM" and f.ik3 == "4"
    assert len(report.transaction_sets[0].claim_refs) == 5001
