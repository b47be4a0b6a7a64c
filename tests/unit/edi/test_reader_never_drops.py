"""Issue 17, the X12 reader: nothing is dropped, nothing is called valid that was not checked.

D1 an indented interchange loses no transaction set (parse, posting's iter_835 and
validate agree); a truncated or unbalanced 835 parses with exit 1 and ``balanced: false``;
D2 acknowledgments are never acknowledged; D3 a set without a guide is "unchecked" and
answered IK5*E*I6; D4 the guide comes from ST01 + ST03 and GS01 is checked against ST01;
D5 an 837D is refused, never read as professional; D6 a TA1-only interchange gets no 999;
a negative BPR02 is invalid.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from claims_server.cli_edi import edi_group
from edi import x835
from edi.ack import NothingToAcknowledge, acknowledge
from edi.validate import validate
from edi.x837 import X837ParseError, parse_837
from tests.unit.edi.test_validate import clean_837p, recount
from tests.unit.edi.test_x835 import ISA, remittance

CORPUS = Path(__file__).resolve().parents[2] / "data" / "corpus"
EXTERNAL = Path(__file__).resolve().parents[2] / "data" / "corpus-external"
PATIENT = "NM1*QC*1*DOE*JOHN****MI*123456"


def invoke(*args: str):
    return CliRunner().invoke(edi_group, list(args))


def _sets(text: str) -> list[str]:
    """The ST..SE segments of a one-set interchange made by test_x835.remittance."""
    segments = text.rstrip("~").split("~")
    return segments[2:-2]


def three_remittances(*, indent: str = "  \t") -> str:
    """Two 835s in a first interchange whose segments are indented, one more in a second
    interchange that is not: BPR02 70.00 + 20.00 + 30.00, one claim each."""
    a = remittance("70", "CLP*PCN1*1*100*70**12*PCCN1*11*1", "CAS*CO*45*30", PATIENT, st02="0001")
    b = remittance("20", "CLP*PCN2*1*50*20**12*PCCN2*11*1", "CAS*CO*45*30", PATIENT, st02="0002")
    first = [ISA, "GS*HP*PAYER*PROVIDER*20240110*1200*7*X*005010X221A1", *_sets(a), *_sets(b)]
    first += ["GE*2*7", "IEA*1*000000101"]
    other_isa = ISA.replace("000000101", "000000102")
    c = remittance(
        "30", "CLP*PCN3*1*60*30**12*PCCN3*11*1", "CAS*CO*45*30", PATIENT, st02="0003", isa=other_isa
    )
    c = c.replace("IEA*1*000000101", "IEA*1*000000102")
    return "".join(f"{indent}{segment}~\n" for segment in first) + c.replace("~", "~\n")


# --------------------------------------------------------------------------- D1


def test_d1_an_indented_interchange_loses_no_transaction_set(tmp_path: Path) -> None:
    text = three_remittances()
    document = x835.parse_835_document(text.encode())
    assert [t.control_number for t in document.transactions] == ["0001", "0002", "0003"]
    assert [t.payment.amount_cents for t in document.transactions] == [7000, 2000, 3000]
    assert sum(len(t.claims) for t in document.transactions) == 3
    assert document.balanced
    (note,) = document.findings
    assert note.code == "SEGMENT_LEADING_SPACE" and not note.is_error
    indented_segments = text.count("  \t") - 1  # blanks before the very first ISA are not counted
    assert f"{indented_segments} segment(s)" in note.message and note.file_ordinal == 2

    # Posting reads the same events: three remittances, nothing it would refuse.
    events = list(x835.iter_835(text.encode()))
    assert sum(isinstance(e, x835.RemittanceHeader) for e in events) == 3
    assert sum(isinstance(e, x835.RemittanceEnd) and e.balanced for e in events) == 3
    findings = [f for e in events for f in ([e] if isinstance(e, x835.Finding) else e.findings)]
    assert not {f.code for f in findings} & x835.UNPOSTABLE_CODES

    # validate sees the same three sets and reports every indented segment.
    report = validate(text.encode())
    assert [ts.st02 for ts in report.transaction_sets] == ["0001", "0002", "0003"]
    indented = [f for f in report.findings if f.code == "X12.SEGMENT_LEADING_SPACE"]
    assert len(indented) == indented_segments and all(f.is_error and f.ik3 == "1" for f in indented)
    assert {f.code for f in report.findings} == {"X12.SEGMENT_LEADING_SPACE"}

    # The CLI parse shows all three, exit 0 (a warning, the money is all there).
    path = tmp_path / "indented.835"
    path.write_text(text)
    result = invoke("parse", str(path))
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert [t["payment"]["amount"] for t in data["transactions"]] == ["70.00", "20.00", "30.00"]
    assert [f["code"] for f in data["findings"]] == ["SEGMENT_LEADING_SPACE"]


def test_d1_without_indentation_the_same_file_is_clean() -> None:
    text = three_remittances(indent="")
    assert validate(text.encode()).verdict == "valid"
    document = x835.parse_835_document(text.encode())
    assert len(document.transactions) == 3 and document.findings == []


def test_a_transaction_set_the_parser_cannot_enter_is_reported_and_unpostable() -> None:
    # "ST" mangled: the set's segments are outside any ST..SE; they are named, not dropped.
    text = three_remittances(indent="").replace("ST*835*0002", "5T*835*0002", 1)
    document = x835.parse_835_document(text.encode())
    assert [t.control_number for t in document.transactions] == ["0001", "0003"]
    codes = [f.code for f in document.findings]
    assert "835_OUTSIDE_TRANSACTION" in codes and "835_GE01_COUNT" in codes
    assert set(codes) & x835.UNPOSTABLE_CODES and not document.balanced
    (outside,) = [f for f in document.findings if f.code == "835_OUTSIDE_TRANSACTION"]
    assert outside.segment == "5T" and outside.is_error


def test_a_group_count_that_disagrees_with_what_was_read_is_unpostable() -> None:
    text = three_remittances(indent="").replace("GE*2*7", "GE*3*7", 1)
    document = x835.parse_835_document(text.encode())
    assert len(document.transactions) == 3
    (count,) = document.findings
    assert count.code == "835_GE01_COUNT" and count.code in x835.UNPOSTABLE_CODES
    assert not document.balanced


# --------------------------------------------------------------------------- truncated / unbalanced


def test_truncated_835_without_se_ge_iea(tmp_path: Path) -> None:
    text = remittance("70", "CLP*PCN1*1*100*70**12*PCCN1*11*1", "CAS*CO*45*30", PATIENT)
    cut = text[: text.index("SE*")]  # every segment up to the SE, each with its terminator
    document = x835.parse_835_document(cut.encode())
    (remit,) = document.transactions
    assert len(remit.claims) == 1 and not remit.balanced and not document.balanced
    assert "835_SE_MISSING" in {f.code for f in remit.findings}
    assert [f.code for f in document.findings] == ["835_GE_MISSING", "835_IEA_MISSING"]
    # Posting (same events) finds a code it must refuse the file for.
    (end,) = [e for e in x835.iter_835(cut.encode()) if isinstance(e, x835.RemittanceEnd)]
    assert {f.code for f in end.findings} & x835.UNPOSTABLE_CODES

    path = tmp_path / "truncated.835"
    path.write_text(cut)
    result = invoke("parse", str(path))
    assert result.exit_code == 1
    data = json.loads(result.stdout)
    assert data["balanced"] is False and data["transactions"][0]["balanced"] is False
    assert validate(path).verdict == "invalid"


def test_truncated_in_the_middle_of_a_segment_keeps_the_set_as_truncated() -> None:
    text = remittance("70", "CLP*PCN1*1*100*70**12*PCCN1*11*1", "CAS*CO*45*30", PATIENT)
    cut = text[: text.index("SE*") + 3]  # "SE*" without terminator
    document = x835.parse_835_document(cut.encode())
    (remit,) = document.transactions
    assert not remit.balanced and "835_SE_MISSING" in {f.code for f in remit.findings}
    assert "SEGMENT_UNTERMINATED" in {f.code for f in document.findings}
    assert not document.balanced


def test_unbalanced_835_parses_with_exit_1(tmp_path: Path) -> None:
    # BPR02 75.00, but CLP04 70.00 and no PLB.
    text = remittance("75", "CLP*PCN1*1*100*70**12*PCCN1*11*1", "CAS*CO*45*30", PATIENT)
    path = tmp_path / "unbalanced.835"
    path.write_text(text)
    result = invoke("parse", str(path))
    assert result.exit_code == 1
    data = json.loads(result.stdout)
    assert data["balanced"] is False
    assert [f["code"] for f in data["transactions"][0]["findings"]] == ["835_PAYMENT_UNBALANCED"]
    # validate says the same, from the same parser.
    report = validate(path)
    (finding,) = report.errors
    assert finding.code == "X12.835_PAYMENT_UNBALANCED" and finding.segment_position == 2
    assert (finding.element, finding.ik3, finding.ik4) == ("BPR02", "8", "I12")


def test_balanced_835_parses_with_exit_0(tmp_path: Path) -> None:
    path = tmp_path / "balanced.835"
    path.write_text(remittance("70", "CLP*PCN1*1*100*70**12*PCCN1*11*1", "CAS*CO*45*30", PATIENT))
    result = invoke("parse", str(path))
    assert result.exit_code == 0 and json.loads(result.stdout)["balanced"] is True


def test_negative_bpr02_is_invalid(tmp_path: Path) -> None:
    # A reversal bigger than the new payment: CLP04 -70.00; BPR02 -70.00 balances, but an
    # 835 never pays a negative amount (a balance is carried forward with PLB FB).
    text = remittance("-70", "CLP*PCN1*22*-100*-70**12*PCCN1*11*1", "CAS*CO*45*-30", PATIENT)
    document = x835.parse_835_document(text.encode())
    (remit,) = document.transactions
    assert [f.code for f in remit.findings] == ["835_PAYMENT_NEGATIVE"]
    assert remit.findings[0].value == "-70.00"
    report = validate(text.encode())
    assert report.verdict == "invalid"
    assert [f.code for f in report.errors] == ["X12.835_PAYMENT_NEGATIVE"]
    path = tmp_path / "negative.835"
    path.write_text(text)
    assert invoke("parse", str(path)).exit_code == 1


def test_plb_amount_without_its_reason_is_kept_and_reported() -> None:
    text = remittance(
        "60", "CLP*PCN1*1*100*70**12*PCCN1*11*1", "CAS*CO*45*30", PATIENT, "PLB*123*20240110**10"
    )
    (remit,) = x835.parse_835(text.encode())
    # The amount is kept (BPR02 60.00 = CLP04 70.00 - PLB 10.00 still holds) and reported.
    assert [(a.reason, a.amount_cents) for a in remit.provider_adjustments] == [("", 1000)]
    assert [f.code for f in remit.findings] == ["835_PLB_REASON_MISSING"] and remit.balanced


def test_text_before_the_isa_is_read_past_and_reported(tmp_path: Path) -> None:
    text = "Remittance for March, as pasted from the portal:\n\n" + remittance(
        "70", "CLP*PCN1*1*100*70**12*PCCN1*11*1", "CAS*CO*45*30", PATIENT
    )
    document = x835.parse_835_document(text.encode())
    assert len(document.transactions) == 1 and document.transactions[0].balanced
    assert [f.code for f in document.findings] == ["TEXT_BEFORE_ISA"]
    assert [f.code for f in validate(text.encode()).errors] == ["X12.TEXT_BEFORE_ISA"]


# --------------------------------------------------------------------------- D2 / D6


def test_d2_a_999_is_never_acknowledged() -> None:
    path = CORPUS / "imsweb_x12-parser/src/test/resources/837_5010/x12_999_rejected.txt"
    report = validate(path)
    assert report.verdict == "valid"
    with pytest.raises(NothingToAcknowledge) as caught:
        acknowledge(report, control_number=5)
    assert "GS01 FA" in str(caught.value) and "never acknowledged" in str(caught.value)
    result = invoke("ack", str(path))
    assert result.exit_code == 0
    assert result.stdout == ""  # no X12 at all
    assert "NO_ACKNOWLEDGMENT" in result.stderr and "no 999" in result.stderr


def test_d2_a_mixed_interchange_gets_a_999_for_the_claims_only(tmp_path: Path) -> None:
    claims = recount(clean_837p())
    fa_group = (
        "GS*FA*SUBMIT01*CLEAR01*20240603*0930*2*X*005010X231A1~\n"
        "ST*999*0001*005010X231A1~\nAK1*HC*1*005010X222A1~\nAK9*A*0*0*0~\nSE*4*0001~\nGE*1*2~\n"
    )
    mixed = claims.replace("IEA*1*", fa_group + "IEA*2*")
    report = validate(mixed.encode())
    assert report.verdict == "valid", [f.code for f in report.findings]
    ack = acknowledge(report, control_number=9)
    assert ack.kind == "999" and ack.accepted
    assert "AK1*HC*1*005010X222A1~" in ack.text and "AK1*FA" not in ack.text
    assert ack.text.count("ST*999") == 1
    (note,) = ack.notes
    assert "functional group 2 (GS01 FA" in note
    path = tmp_path / "mixed.x12"
    path.write_text(mixed)
    result = invoke("ack", str(path))
    assert result.exit_code == 0 and "AK1*HC" in result.stdout
    assert "NOT_ACKNOWLEDGED" in result.stderr


def test_d6_an_interchange_of_ta1s_only_gets_no_999(tmp_path: Path) -> None:
    text = (
        ISA.replace("000000101", "000000201")
        + "~TA1*000000123*240603*0930*A*000~TA1*000000124*240603*0931*A*000~IEA*0*000000201~"
    )
    report = validate(text.encode())
    assert report.verdict == "valid" and report.transaction_sets == []
    with pytest.raises(NothingToAcknowledge) as caught:
        acknowledge(report, control_number=5)
    assert "TA1" in str(caught.value)
    path = tmp_path / "ta1s.x12"
    path.write_text(text)
    result = invoke("ack", str(path))
    assert result.exit_code == 0 and result.stdout == ""
    assert "GS*FA" not in result.output and "NO_ACKNOWLEDGMENT" in result.stderr


# --------------------------------------------------------------------------- D3


@pytest.mark.parametrize(
    "name",
    [
        "LinuxForHealth_x12/src/tests/resources/837_005010X222A2/demo.example1.837",
        "LinuxForHealth_x12/src/tests/resources/837_005010X223A3/two-claims-single-provider.837i",
        "kputnam_stupidedi/spec/fixtures/005010/X224A2_HC837_Health_Care_Claim_Dental/pass/"
        "commercial-health-insurance.edi",
        "kputnam_stupidedi/spec/fixtures/005010/X212_HR276_Health_Care_Claim_Status_Request_and_Response/pass/"
        "claim-request.edi",
        "kputnam_stupidedi/spec/fixtures/005010/X212_HN277_Health_Care_Claim_Status_Request_and_Response/pass/"
        "claim-response.edi",
    ],
)
def test_d3_a_set_without_a_guide_is_unchecked_and_acknowledged_as_such(name: str) -> None:
    path = CORPUS / name
    report = validate(path)
    assert report.verdict == "unchecked"
    (ts,) = report.transaction_sets
    assert not ts.checked and ts.ik5_code == "E"
    ack = acknowledge(report, control_number=3)
    # Accepted (envelope and syntax), implementation convention not supported: never IK5*A.
    assert "IK5*E*I6~" in ack.text and "IK5*A" not in ack.text and "AK9*E*1*1*1~" in ack.text
    assert invoke("validate", str(path)).exit_code == 3
    assert "unchecked" in invoke("validate", str(path)).output


def test_d3_gs08_5010_is_no_guide(tmp_path: Path) -> None:
    text = recount(clean_837p()).replace("005010X222A1", "5010")
    report = validate(text.encode())
    assert report.verdict == "unchecked" and not report.transaction_sets[0].checked
    assert "IK5*E*I6" in acknowledge(report, control_number=1).text


def test_d3_a_checked_valid_set_still_gets_ik5_a() -> None:
    report = validate(recount(clean_837p()).encode())
    assert report.verdict == "valid"
    assert "IK5*A~" in acknowledge(report, control_number=1).text


# --------------------------------------------------------------------------- D4


def _271_under(gs01: str) -> bytes:
    path = (
        CORPUS / "LinuxForHealth_x12/src/tests/resources/271_005010X279A1/subscriber-health-benefit-check.271"
    )
    return path.read_bytes().replace(b"GS*HB*", f"GS*{gs01}*".encode(), 1)


def test_d4_a_271_under_gs_hs_is_invalid_and_still_walked_through_the_271_guide() -> None:
    assert validate(_271_under("HB")).verdict == "valid"
    report = validate(_271_under("HS"))
    assert report.verdict == "invalid"
    (mismatch,) = report.errors
    assert mismatch.code == "X12.GS01_MISMATCH" and mismatch.element == "ST01" and mismatch.value == "271"
    (ts,) = report.transaction_sets
    assert ts.checked and "271" in (ts.guide or "")
    assert ts.ik5_reasons == ["6"]
    # The 271 rules run: a broken 271 under HS reports its 271 errors too.
    broken = _271_under("HS").replace(b"BHT*0022*", b"BHT*0099*", 1)
    errors = validate(broken).errors
    assert "X12.GS01_MISMATCH" in {f.code for f in errors}
    assert any(f.segment == "BHT" and f.segment_position == 2 for f in errors)


def test_d4_the_guide_is_chosen_by_st03_not_gs08() -> None:
    # GS08 names the 837P guide; ST03 names the 837I one: the set is walked as an 837I
    # (and ST03 ≠ GS08 is itself an error, IK502 I6).
    text = recount(clean_837p()).replace("ST*837*0001*005010X222A1", "ST*837*0001*005010X223A2")
    report = validate(text.encode())
    (ts,) = report.transaction_sets
    assert ts.guide and "X223" in ts.guide
    assert "X12.ST03_MISMATCH" in {f.code for f in report.errors}


@pytest.mark.parametrize(("st01", "gs01"), [("835", "HC"), ("837", "HP"), ("999", "HC"), ("270", "HB")])
def test_d4_gs01_must_match_st01(st01: str, gs01: str) -> None:
    from edi.envelope import FUNCTIONAL_GROUP_OF

    assert FUNCTIONAL_GROUP_OF[st01] != gs01
    text = recount(clean_837p()).replace("GS*HC*", f"GS*{gs01}*").replace("ST*837*", f"ST*{st01}*")
    assert "X12.GS01_MISMATCH" in {f.code for f in validate(text.encode()).errors}


# --------------------------------------------------------------------------- D5


def test_d5_an_837d_is_refused_never_read_as_professional(tmp_path: Path) -> None:
    path = CORPUS / "moov-io_x12/examples/example_5010_837d/sample.txt"
    with pytest.raises(X837ParseError) as caught:
        parse_837(path)
    assert caught.value.code == "UNSUPPORTED_837D" and caught.value.element == "ST03"
    result = invoke("parse", str(path))
    assert result.exit_code == 1
    data = json.loads(result.stdout)
    assert data["error"]["code"] == "UNSUPPORTED_837D" and "dental" in data["error"]["message"]
    assert "professional" not in json.dumps(data.get("transactions", ""))


def test_d5_dental_lines_in_a_set_labelled_professional_are_refused() -> None:
    text = recount(clean_837p())
    sv1 = next(s for s in text.split("~\n") if s.startswith("SV1*"))
    dental = recount(text.replace(sv1, "SV3*AD:D0120*40****1", 1))
    with pytest.raises(X837ParseError) as caught:
        parse_837(dental.encode())
    assert caught.value.code == "UNSUPPORTED_837D"


def test_d5_a_line_without_a_service_segment_is_refused() -> None:
    text = recount(clean_837p())
    sv1 = next(s for s in text.split("~\n") if s.startswith("SV1*"))
    without = recount(text.replace(sv1 + "~\n", "", 1))
    with pytest.raises(X837ParseError) as caught:
        parse_837(without.encode())
    assert caught.value.code == "LINE_WITHOUT_SERVICE"


@pytest.mark.parametrize(
    "name",
    sorted(
        str(p.relative_to(EXTERNAL))
        for p in (
            EXTERNAL / "kputnam_stupidedi/spec/fixtures/005010/X224A2_HC837_Health_Care_Claim_Dental/pass"
        ).glob("*.edi")
    ),
)
def test_d5_every_corpus_837d_is_refused_with_the_same_code(name: str) -> None:
    result = invoke("parse", str(EXTERNAL / name))
    assert result.exit_code == 1
    assert json.loads(result.stdout)["error"]["code"] == "UNSUPPORTED_837D"
