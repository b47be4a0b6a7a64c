"""Every 835 of the corpus (tests/data/corpus) through the 835 parser, with the verdict expected per file."""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from edi import reader, x835
from edi.reader import X12SyntaxError, read_segments
from edi.x835 import iter_element_lists, parse_835_document

CORPUS = Path(__file__).resolve().parents[2] / "data" / "corpus"
STUPIDEDI_835 = "kputnam_stupidedi/spec/fixtures/005010/X221A1_HP835_Health_Care_Claim_Payment_Advice/pass/"

# file -> (readable, transaction sets, claims, balanced, finding codes)
EXPECTED: dict[str, tuple[bool, int, int, bool, set[str]]] = {
    "LinuxForHealth_x12/demo-file/demo.835": (True, 1, 2, True, set()),
    "LinuxForHealth_x12/src/tests/resources/835_005010X221A1/cob-contractural-adjustment.835": (
        True,
        1,
        1,
        True,
        set(),
    ),
    # BPR16 = 20002316 is not a date; the money still balances.
    "LinuxForHealth_x12/src/tests/resources/835_005010X221A1/managed-care.835": (
        True,
        1,
        2,
        True,
        {"835_DATE_INVALID"},
    ),
    # 4010: read with a version warning; its PLB/BPR totals really do not add up.
    "azoner_pyx12/pyx12/test/x12testdata/835id.x12": (
        True,
        1,
        3,
        False,
        {"835_VERSION", "835_PAYMENT_UNBALANCED"},
    ),
    "azoner_pyx12/pyx12/tests/835_mult_loops.txt": (True, 1, 1, True, set()),
    # ST..SE without any ISA: not an interchange.
    "keironstoddart_edi-835-parser/tests/test_edi_835_files/blue_cross_nc_sample.txt": (
        False,
        0,
        0,
        True,
        {"ISA_MISSING"},
    ),
    "keironstoddart_edi-835-parser/tests/test_edi_835_files/emedny_sample.txt": (True, 1, 3, True, set()),
    "keironstoddart_edi-835-parser/tests/test_edi_835_files/united_healthcare_legacy_sample.txt": (
        True,
        1,
        2,
        True,
        set(),
    ),
    # Malformed ISA (ISA06 is 30 characters wide): read by its separators, with a warning
    # (a strict receiver rejects it; `edi validate` says so per element), money intact.
    "kputnam_stupidedi/spec/fixtures/004010/X091A1_HP835_Health_Care_Claim_Payment_Advice/case/1.edi": (
        True,
        1,
        1,
        True,
        {"ISA_WIDTH", "835_VERSION"},
    ),
    STUPIDEDI_835 + "dollars-and-data-sent-separate.edi": (True, 1, 2, True, set()),
    STUPIDEDI_835 + "dollars-and-data-sent-together.edi": (True, 1, 2, True, set()),
    STUPIDEDI_835 + "era-sample.edi": (True, 1, 1, True, set()),
    STUPIDEDI_835 + "multiple-claims-single-check.edi": (True, 1, 9, True, set()),
    STUPIDEDI_835 + "secondary-payment-with-higher-fee-schedule.edi": (True, 1, 1, True, set()),
    STUPIDEDI_835 + "secondary-payments.edi": (True, 1, 2, True, set()),
    STUPIDEDI_835 + "tertiary-payments.edi": (True, 1, 1, True, set()),
    # CLP*9999999*4*385.21*0*385.20 with PR-27 385.20: one cent unexplained, in both sets;
    # BPR*H*-6173.50: BPR02 is never negative (a balance is carried forward with PLB FB).
    "moov-io_x12/examples/example_5010_835/sample1.txt": (
        True,
        2,
        2,
        False,
        {"835_CLAIM_UNBALANCED", "835_PAYMENT_NEGATIVE"},
    ),
    # CLP04 4000.00 but the line pays 2998.00 and nothing explains the rest; BPR16 20990080.
    "moov-io_x12/examples/example_5010_835/sample2.txt": (
        True,
        1,
        1,
        False,
        {"835_CLAIM_UNBALANCED", "835_DATE_INVALID"},
    ),
}


def _corpus_835s() -> list[str]:
    found = []
    for path in sorted(CORPUS.rglob("*")):
        if (
            path.is_file()
            and path.suffix not in (".tsv", ".md")
            and re.search(rb"ST[*|]835[*|]", path.read_bytes())
        ):
            found.append(str(path.relative_to(CORPUS)))
    return found


def test_expectations_cover_every_835_in_the_corpus() -> None:
    assert set(_corpus_835s()) == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_corpus_835_verdict(name: str) -> None:
    readable, transactions, claims, balanced, finding_codes = EXPECTED[name]
    document = parse_835_document(CORPUS / name)
    assert document.readable is readable
    assert len(document.transactions) == transactions
    assert sum(len(t.claims) for t in document.transactions) == claims
    assert document.balanced is balanced
    assert {f.code for f in document.all_findings()} == finding_codes
    document.to_json_dict()


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_tokenizer_agrees_with_the_reader(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    try:
        expected: object = [s.elements for s in read_segments(CORPUS / name)]
    except X12SyntaxError as exc:
        expected = exc.code
    monkeypatch.setattr(reader, "CHUNK_SIZE", 13)
    try:
        got: object = list(iter_element_lists(CORPUS / name))
    except X12SyntaxError as exc:
        got = exc.code
    assert got == expected


def test_medicare_part_a_values() -> None:
    (tx,) = parse_835_document(CORPUS / "LinuxForHealth_x12/demo-file/demo.835").transactions
    assert tx.payment.amount_cents == 15_000_000 and tx.payment.method == "ACH"
    assert tx.payment.trace_number == "12345"
    first, second = tx.claims
    assert first.patient_control_number == "666123"
    assert (first.charge_cents, first.paid_cents, first.facility_type) == (21_136_697, 13_801_840, "11")
    assert first.inpatient is not None
    assert first.inpatient.quantities["covered_days_or_visits"] == Decimal("0")
    assert first.inpatient.amounts["claim_drg"] == 13_801_840
    assert first.quantities == {"CA": Decimal("8.00")}
    assert first.statement_from == date(2002, 8, 16) and first.statement_to == date(2002, 8, 24)
    assert first.summary is not None and first.summary.ts3[0] == "6543210903"
    assert second.outpatient is not None and second.outpatient.remarks == ["MA02"]
    assert [(a.reason, a.reference, a.amount_cents) for a in tx.provider_adjustments] == [("CV", "CP", -127)]


def test_reversal_in_the_4010_file_keeps_negative_amounts() -> None:
    (tx,) = parse_835_document(CORPUS / "azoner_pyx12/pyx12/test/x12testdata/835id.x12").transactions
    reversal, correction, second_reversal = tx.claims
    assert reversal.is_reversal and (reversal.charge_cents, reversal.paid_cents) == (-31_000, -21_000)
    assert (
        reversal.lines[0].adjustments[0].group == "CR"
        and reversal.lines[0].adjustments[0].amount_cents == -10_000
    )
    assert correction.status == "1" and correction.paid_cents == 20_000
    assert second_reversal.lines[0].procedure.modifiers == ("TG",)
    assert [a.amount_cents for a in tx.provider_adjustments] == [-100_810, 2_421, 595]


def test_denial_and_non_payment() -> None:
    (tx,) = parse_835_document(CORPUS / "azoner_pyx12/pyx12/tests/835_mult_loops.txt").transactions
    assert tx.payment.method == "NON" and tx.payment.amount_cents == 0
    (claim,) = tx.claims
    assert claim.is_denied and claim.paid_cents == 0 and len(claim.lines) == 3


def test_uhc_legacy_component_separator_and_multi_triplet_cas() -> None:
    path = (
        CORPUS / "keironstoddart_edi-835-parser/tests/test_edi_835_files/united_healthcare_legacy_sample.txt"
    )
    (tx,) = parse_835_document(path).transactions
    procedures = [line.procedure for claim in tx.claims for line in claim.lines]
    assert all(p.qualifier == "HC" and p.code for p in procedures)
    assert any(len(cas_group) > 1 for cas_group in _cas_groups(tx))


def _cas_groups(tx: x835.Remittance835) -> list[list[x835.Adjustment]]:
    groups: list[list[x835.Adjustment]] = []
    for claim in tx.claims:
        for line in claim.lines:
            by_group: dict[str, list[x835.Adjustment]] = {}
            for adj in line.adjustments:
                by_group.setdefault(adj.group, []).append(adj)
            groups.extend(by_group.values())
    return groups


def test_two_transaction_sets_with_plb_and_negative_payment() -> None:
    document = parse_835_document(CORPUS / "moov-io_x12/examples/example_5010_835/sample1.txt")
    first, second = document.transactions
    assert (first.control_number, second.control_number) == ("0001", "0002")
    assert first.payment.handling_code == "H" and first.payment.amount_cents == -617_350
    (claim,) = first.claims
    assert claim.corrected_patient is not None and claim.insured is not None
    assert [(a.reason, a.reference, a.amount_cents) for a in first.provider_adjustments] == [
        ("50", "111", 617_350)
    ]
    # The payment itself balances: 0.00 paid - 6173.50 PLB = -6173.50.
    assert not any(f.code == "835_PAYMENT_UNBALANCED" for f in first.findings)
