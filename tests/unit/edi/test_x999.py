"""999: our generator (checked by our parser and by pyx12's 999 map) and the corpus 999s."""

from __future__ import annotations

import io
import json
import os
import tempfile
from datetime import datetime
from pathlib import Path

import pytest
import pyx12.params
import pyx12.x12n_document

from edi.findings import Finding, Severity, error, warning
from edi.reader import Delimiters
from edi.validate import validate
from edi.x999 import (
    GroupResult,
    TransactionSetResult,
    generate_999,
    generate_999_for_report,
    groups_from_report,
    parse_999,
)

CORPUS = Path(__file__).resolve().parents[2] / "data" / "corpus"
WHEN = datetime(2024, 6, 3, 9, 30)


def make_999(*groups: GroupResult, delimiters: Delimiters = Delimiters()) -> str:  # noqa: B008
    return generate_999(
        groups,
        sender_qualifier="ZZ",
        sender_id="CLEARINGHOUSE",
        receiver_qualifier="ZZ",
        receiver_id="SUBMIT01",
        interchange_control_number=901,
        group_control_number=902,
        application_sender="CLEAR01",
        application_receiver="SUBMIT01",
        when=WHEN,
        delimiters=delimiters,
    )


def pyx12_errors(text: str) -> list[str]:
    """pyx12's full map validation (the reference) of X12 held in a string: its error list."""
    fd, path = tempfile.mkstemp(suffix=".x12")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        report = io.StringIO()
        ok = pyx12.x12n_document.x12n_document(
            param=pyx12.params.params(), src_file=path, fd_997=io.StringIO(), fd_html=None, fd_json=report
        )
    finally:
        os.unlink(path)
    errors: list[str] = []

    def collect(node: object) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "errors" and value:
                    errors.extend(json.dumps(v) for v in value)
                else:
                    collect(value)
        elif isinstance(node, list):
            for item in node:
                collect(item)

    if report.getvalue().strip():
        collect(json.loads(report.getvalue()))
    if not ok and not errors:
        errors.append("pyx12 returned False")
    return errors


def assert_pyx12_accepts(text: str) -> None:
    assert pyx12_errors(text) == []


CLEAN = TransactionSetResult("837", "0001", "005010X222A1")


def bad_claim_set(control: str = "0002") -> TransactionSetResult:
    return TransactionSetResult(
        "837",
        control,
        "005010X222A1",
        findings=[
            error(
                "X12.ELEMENT_INVALID_CODE",
                "CLM05-1: not a valid place of service",
                segment="CLM",
                segment_position=19,
                loop="2300",
                element="CLM05-1",
                value="AA",
                ik3="8",
                ik4="7",
            ),
            error(
                "X12.NPI_CHECK_DIGIT",
                "NM109: NPI check digit wrong",
                segment="NM1",
                segment_position=24,
                loop="2310B",
                element="NM109",
                value="1234567890",
            ),
            error(
                "X12.SEGMENT_MISSING", "N3 missing", segment="N3", segment_position=8, loop="2010AA", ik3="3"
            ),
            error("X12.SE01_COUNT", "SE01 wrong", segment="SE", segment_position=30, element="SE01"),
        ],
        claim_refs={19: "PCN001"},
        syntax_errors=("4",),
    )


def test_accepting_999_round_trips_and_passes_pyx12() -> None:
    text = make_999(GroupResult("HC", "17", "005010X222A1", [CLEAN]))
    assert "IK5*A~" in text and "AK9*A*1*1*1~" in text
    (ack,) = parse_999(text).acks
    assert (ack.functional_id, ack.group_control_number, ack.version) == ("HC", "17", "005010X222A1")
    assert ack.implementation == "005010X231A1" and ack.interchange_control_number == "000000901"
    (ts,) = ack.transaction_sets
    assert (ts.st01, ts.control_number, ts.implementation, ts.status) == ("837", "0001", "005010X222A1", "A")
    assert ts.accepted and ts.segment_errors == []
    assert (ack.group_status, ack.included, ack.received, ack.accepted) == ("A", 1, 1, 1)
    assert_pyx12_accepts(text)


def test_rejecting_999_names_segments_elements_and_the_claim() -> None:
    text = make_999(GroupResult("HC", "17", "005010X222A1", [bad_claim_set()]))
    (ack,) = parse_999(text.encode()).acks
    (ts,) = ack.transaction_sets
    assert ts.status == "R" and ts.syntax_errors == ["4", "5"]
    by_segment = {(e.segment_id, e.position): e for e in ts.segment_errors}
    assert set(by_segment) == {("N3", 8), ("CLM", 19), ("NM1", 24)}  # SE goes to IK5, not IK3
    clm = by_segment[("CLM", 19)]
    assert (clm.loop, clm.code, clm.patient_control_number) == ("2300", "8", "PCN001")
    (element,) = clm.element_errors
    assert (element.position, element.component, element.code, element.bad_value) == (5, 1, "7", "AA")
    nm1 = by_segment[("NM1", 24)]
    assert nm1.patient_control_number == "PCN001"  # 2310B sits inside the claim
    assert nm1.element_errors[0].code == "I12" and nm1.element_errors[0].position == 9
    n3 = by_segment[("N3", 8)]
    assert (n3.code, n3.loop, n3.patient_control_number, n3.element_errors) == ("3", "2010", None, [])
    assert ts.rejected_claims == ["PCN001"]
    assert (ack.group_status, ack.included, ack.received, ack.accepted) == ("R", 1, 1, 0)
    assert_pyx12_accepts(text)


def test_partial_acceptance_rejects_only_the_bad_set() -> None:
    text = make_999(GroupResult("HC", "17", "005010X222A1", [CLEAN, bad_claim_set()]))
    (ack,) = parse_999(text).acks
    assert [t.status for t in ack.transaction_sets] == ["A", "R"]
    assert (ack.group_status, ack.included, ack.received, ack.accepted) == ("P", 2, 2, 1)
    assert_pyx12_accepts(text)


def test_warnings_give_accepted_with_errors() -> None:
    noted = TransactionSetResult(
        "837",
        "0003",
        "005010X222A1",
        findings=[
            warning(
                "X12.ELEMENT",
                "odd code",
                segment="DMG",
                segment_position=12,
                loop="2010BA",
                element="DMG03",
                value="U",
                ik3="8",
                ik4="7",
            ),
            Finding(Severity.INFO, "X12.NOTE", "just a note", segment="CLM", segment_position=19),
        ],
    )
    text = make_999(GroupResult("HC", "17", "005010X222A1", [noted]))
    (ack,) = parse_999(text).acks
    (ts,) = ack.transaction_sets
    assert ts.status == "E" and ts.accepted
    assert [e.segment_id for e in ts.segment_errors] == ["DMG"]
    assert ack.group_status == "E" and ack.accepted == 1
    assert_pyx12_accepts(text)


def test_values_holding_delimiters_are_left_out() -> None:
    result = TransactionSetResult(
        "837",
        "0004",
        "005010X222A1",
        findings=[
            error(
                "X12.X",
                "bad",
                segment="NM1",
                segment_position=20,
                loop="2300",
                element="NM103",
                value="O*BRIEN",
                ik3="8",
                ik4="6",
            ),
            error(
                "X12.Y",
                "long",
                segment="NTE",
                segment_position=21,
                loop="2300",
                element="NTE02",
                value="X" * 150,
                ik3="8",
                ik4="5",
            ),
        ],
        claim_refs={19: "PCN:WITH:COLONS"},
    )
    text = make_999(GroupResult("HC", "17", "005010X222A1", [result]))
    (ts,) = parse_999(text).acks[0].transaction_sets
    first, second = ts.segment_errors
    assert first.element_errors[0].bad_value == "" and first.patient_control_number is None
    assert second.element_errors[0].bad_value == "X" * 99
    assert_pyx12_accepts(text)


def test_group_level_codes_reject_the_group() -> None:
    text = make_999(
        GroupResult("HC", "17", "005010X222A1", [CLEAN], syntax_errors=("5",), transaction_count=2)
    )
    (ack,) = parse_999(text).acks
    assert (ack.group_status, ack.included, ack.received, ack.accepted, ack.group_syntax_errors) == (
        "R",
        2,
        1,
        1,
        ["5"],
    )


def test_several_groups_make_several_999s_with_other_delimiters() -> None:
    delimiters = Delimiters(element="|", component=">", repetition="^", segment="~")
    text = make_999(
        GroupResult("HC", "17", "005010X222A1", [CLEAN]),
        GroupResult("HC", "18", "005010X223A2", [bad_claim_set("0005")]),
        delimiters=delimiters,
    )
    assert "CTX|CLM01>PCN001~" in text
    acks = parse_999(text).acks
    assert [(a.control_number, a.group_control_number, a.group_status) for a in acks] == [
        ("0001", "17", "A"),
        ("0002", "18", "R"),
    ]


@pytest.mark.parametrize(
    ("name", "statuses", "group_status"),
    [
        ("imsweb_x12-parser/src/test/resources/837_5010/x12_segment_errors.txt", ["R"], "R"),
        ("imsweb_x12-parser/src/test/resources/837_5010/x12_multiple_st.txt", ["R", "R"], "R"),
    ],
)
def test_999_for_a_validated_file(name: str, statuses: list[str], group_status: str) -> None:
    report = validate(CORPUS / name)
    groups = groups_from_report(report)
    text = make_999(*groups)
    acks = parse_999(text).acks
    assert [t.status for a in acks for t in a.transaction_sets] == statuses
    assert acks[0].group_status == group_status
    assert [t.control_number for a in acks for t in a.transaction_sets] == [
        t.st02 for t in report.transaction_sets
    ]
    assert_pyx12_accepts(text)


def test_corpus_999_with_bom_and_ctx() -> None:
    path = CORPUS / (
        "kputnam_stupidedi/spec/fixtures/005010/X231A1_FA999_Implementation_Acknowledgment_for_Health_Care_Insurance"
        "/pass/response-to-functional-group-containing-3-837s.edi"
    )
    document = parse_999(path)
    (ack,) = document.acks
    assert document.readable and document.findings == []
    assert (ack.functional_id, ack.group_control_number, ack.version) == ("HC", "17456", "005010X222A2")
    first, second, third = ack.transaction_sets
    assert (first.control_number, first.status) == ("0001", "A")
    assert second.status == "R" and second.syntax_errors == ["5"]
    (clm,) = second.segment_errors
    assert (clm.segment_id, clm.position, clm.code, clm.patient_control_number) == (
        "CLM",
        22,
        "8",
        "123456789",
    )
    (element,) = clm.element_errors
    assert (element.position, element.reference_number, element.code) == (2, "782", "1")
    (ref,) = third.segment_errors
    assert (ref.segment_id, ref.position, ref.code) == ("REF", 57, "3")
    assert [c.name for c in ref.contexts] == ["SITUATIONAL TRIGGER", "CLM01"]
    assert ref.patient_control_number == "987654321"
    assert (ack.group_status, ack.included, ack.received, ack.accepted) == ("P", 3, 3, 1)
    data = document.to_json_dict()
    assert data["acknowledgments"][0]["transaction_sets"][2]["rejected_claims"] == ["987654321"]


def test_corpus_999_rejection_with_pipe_component_separator() -> None:
    (ack,) = parse_999(CORPUS / "imsweb_x12-parser/src/test/resources/837_5010/x12_999_rejected.txt").acks
    assert (ack.version, ack.group_status) == ("005010X223A2", "R")
    (ts,) = ack.transaction_sets
    assert (ts.control_number, ts.status, ts.syntax_errors) == ("0028", "R", ["5"])
    assert [(e.segment_id, e.position, e.code) for e in ts.segment_errors] == [("NM", 17, "1")]


def test_corpus_999_accepting_an_834() -> None:
    (ack,) = parse_999(CORPUS / "azoner_pyx12/pyx12/tests/834_ls_le_ls_5010.999.txt").acks
    assert ack.functional_id == "BE" and ack.transaction_sets[0].st01 == "834"
    assert ack.transaction_sets[0].accepted and ack.group_status == "A"


def test_unreadable_input_is_a_finding() -> None:
    document = parse_999(b"not x12 at all")
    assert not document.readable and [f.code for f in document.findings] == ["ISA_MISSING"]


def test_the_pyx12_oracle_does_reject_a_broken_999() -> None:
    text = make_999(GroupResult("HC", "17", "005010X222A1", [CLEAN]))
    assert pyx12_errors(text.replace("IK5*A", "IK5*Z")) != []
    assert pyx12_errors(text.replace("AK9*A*1*1*1", "AK9*A*1*1")) != []


def test_999_for_a_report_is_addressed_back_to_the_sender() -> None:
    report = validate(CORPUS / "imsweb_x12-parser/src/test/resources/837_5010/x12_multiple_st.txt")
    text = generate_999_for_report(report, interchange_control_number=5, group_control_number=6, when=WHEN)
    sender, receiver = report.interchanges[0].sender.split(":"), report.interchanges[0].receiver.split(":")
    (ack,) = parse_999(text).acks
    assert (ack.sender, ack.receiver) == (receiver[1], sender[1])
    assert len(ack.transaction_sets) == 2
    assert_pyx12_accepts(text)


X222_PASS = CORPUS / "kputnam_stupidedi/spec/fixtures/005010/X222A1_HC837_Health_Care_Claim_Professional/pass"


@pytest.mark.parametrize(
    ("name", "rules", "expected", "in_claim"),
    [
        ("ambulance.edi", False, "A", set()),  # structurally clean 837P
        ("ambulance.edi", True, "R", set()),  # billing provider (2010AA) NPI fails the check digit
        ("oxygen.edi", True, "R", {"PWK"}),  # PWK02 = AD is not a 5010 code (pyx12 agrees), in 2400
    ],
)
def test_999_for_good_and_bad_837s(name: str, rules: bool, expected: str, in_claim: set[str]) -> None:
    report = validate(X222_PASS / name, rules=rules)
    text = generate_999_for_report(report, interchange_control_number=11, group_control_number=12, when=WHEN)
    (ack,) = parse_999(text).acks
    (ts,) = ack.transaction_sets
    assert ts.status == expected == report.transaction_sets[0].ik5_code
    assert ack.group_status == expected
    if expected == "R":
        assert ts.segment_errors and all(e.position for e in ts.segment_errors)
    claims = set(report.transaction_sets[0].claim_refs.values())
    for error_ in ts.segment_errors:
        if error_.segment_id in in_claim:
            assert error_.patient_control_number in claims
        if error_.loop.startswith("20"):
            assert error_.patient_control_number is None
    assert_pyx12_accepts(text)
