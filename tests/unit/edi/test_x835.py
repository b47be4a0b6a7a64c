"""835 parser: hand-written remittances, one per case the server must post correctly."""

from __future__ import annotations

import io
import sys
import tracemalloc
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edi import reader, x835
from edi.findings import Finding
from edi.reader import X12SyntaxError, read_text
from edi.x835 import (
    ClaimPayment,
    RemittanceEnd,
    RemittanceHeader,
    format_cents,
    iter_835,
    iter_element_lists,
    parse_835,
    parse_835_document,
    parse_amount_cents,
)

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "benchmarks"))

import synth_835

ISA = "ISA*00*          *00*          *ZZ*PAYERSENDER    *ZZ*PROVIDERRCV    *240110*1200*^*00501*000000101*0*P*:"

HEADER = [
    "BPR*I*{paid}*C*ACH*CCP*01*999999992*DA*123456*1512345678**01*999988880*DA*98765*20240110",
    "TRN*1*EFT12345*1512345678",
    "DTM*405*20240109",
    "N1*PR*SYNTHETIC HEALTH PLAN",
    "N3*100 EXAMPLE AVENUE",
    "N4*ANYTOWN*PA*191030000",
    "REF*2U*99999",
    "PER*BL*PROVIDER SERVICES*TE*8005550100",
    "N1*PE*SYNTHETIC MEDICAL GROUP*XX*1234567893",
    "REF*TJ*999999999",
    "LX*1",
]


def remittance(paid: str, *body: str, st02: str = "0001", isa: str = ISA) -> str:
    """An interchange with one 835 whose SE01 is counted here."""
    segments = [f"ST*835*{st02}", *(s.replace("{paid}", paid) for s in HEADER), *body]
    segments.append(f"SE*{len(segments) + 1}*{st02}")
    return (
        "~".join(
            [
                isa,
                "GS*HP*PAYER*PROVIDER*20240110*1200*7*X*005010X221A1",
                *segments,
                "GE*1*7",
                "IEA*1*000000101",
            ]
        )
        + "~"
    )


def only(text: str) -> x835.Remittance835:
    result = parse_835(text)
    assert len(result) == 1
    return result[0]


def codes(findings: list[Finding]) -> list[str]:
    return [f.code for f in findings]


PRIMARY = (
    "CLP*PCN0001*1*250*150*30*12*PAYERCN0001*11*1",
    "NM1*QC*1*DOE*JANE****MI*MEM123",
    "NM1*82*1*SMITH*JOHN****XX*1234567893",
    "DTM*232*20240105",
    "DTM*233*20240105",
    "AMT*AU*220",
    "SVC*HC:99213:25*150*90**1",
    "DTM*472*20240105",
    "CAS*CO*45*40",
    "CAS*PR*1*15*1*2*5",
    "REF*6R*LINE-1",
    "AMT*B6*110",
    "LQ*HE*N130",
    "LQ*HE*M15",
    "SVC*HC:85025*100*60**1",
    "DTM*472*20240105",
    "CAS*CO*45*30*1",
    "CAS*PR*3*10",
    "REF*6R*LINE-2",
)


def test_primary_claim_with_lines_is_read_completely_and_balances() -> None:
    remit = only(remittance("150", *PRIMARY))
    payment = remit.payment
    assert (payment.handling_code, payment.amount_cents, payment.credit_debit, payment.method) == (
        "I",
        15000,
        "C",
        "ACH",
    )
    assert payment.date == date(2024, 1, 10)
    assert (payment.trace_number, payment.payer_identifier) == ("EFT12345", "1512345678")
    assert remit.header.production_date == date(2024, 1, 9)
    assert remit.payer is not None and remit.payer.name == "SYNTHETIC HEALTH PLAN"
    assert remit.payer.reference("2U") == "99999"
    assert remit.payer.address is not None and remit.payer.address.postal_code == "191030000"
    assert remit.payer.contacts[0].numbers == [("TE", "8005550100")]
    assert remit.payee is not None and remit.payee.npi == "1234567893" and remit.payee.tax_id == "999999999"

    (claim,) = remit.claims
    assert claim.patient_control_number == "PCN0001"
    assert (claim.status, claim.charge_cents, claim.paid_cents, claim.patient_responsibility_cents) == (
        "1",
        25000,
        15000,
        3000,
    )
    assert (
        claim.filing_indicator,
        claim.payer_claim_control_number,
        claim.facility_type,
        claim.frequency,
    ) == (
        "12",
        "PAYERCN0001",
        "11",
        "1",
    )
    assert claim.patient is not None and claim.patient.identifier == "MEM123"
    assert claim.rendering_provider is not None and claim.rendering_provider.npi == "1234567893"
    assert claim.statement_from == claim.statement_to == date(2024, 1, 5)
    assert claim.amounts == {"AU": 22000}
    first, second = claim.lines
    assert (first.procedure.code, first.procedure.modifiers, first.charge_cents, first.paid_cents) == (
        "99213",
        ("25",),
        15000,
        9000,
    )
    assert first.units == Decimal("1")
    assert first.service_date == date(2024, 1, 5)
    assert first.line_control_number == "LINE-1"
    assert first.allowed_cents == 11000
    assert [(a.group, a.reason, a.amount_cents, a.quantity) for a in first.adjustments] == [
        ("CO", "45", 4000, None),
        ("PR", "1", 1500, Decimal("1")),
        ("PR", "2", 500, None),
    ]
    assert [(r.qualifier, r.code) for r in first.remarks] == [("HE", "N130"), ("HE", "M15")]
    assert second.line_control_number == "LINE-2"
    assert claim.findings == []
    assert claim.balanced and remit.balanced
    assert remit.findings == []


def test_json_shape_uses_two_decimal_strings() -> None:
    data = parse_835_document(remittance("150", *PRIMARY)).to_json_dict()
    (tx,) = data["transactions"]
    assert tx["payment"] == {
        "handling_code": "I",
        "method": "ACH",
        "amount": "150.00",
        "credit_debit": "C",
        "date": "2024-01-10",
        "trace_number": "EFT12345",
        "payer_identifier": "1512345678",
    }
    claim = tx["claims"][0]
    assert (claim["charge"], claim["paid"], claim["patient_responsibility"]) == ("250.00", "150.00", "30.00")
    assert claim["adjustments"] == []
    line = claim["lines"][0]
    assert (line["procedure"], line["modifiers"], line["charge"], line["paid"], line["units"]) == (
        "99213",
        ["25"],
        "150.00",
        "90.00",
        "1",
    )
    assert line["line_control_number"] == "LINE-1"
    assert line["adjustments"][1] == {"group": "PR", "reason": "1", "amount": "15.00", "quantity": "1"}
    assert line["remarks"] == ["N130", "M15"]
    assert tx["balanced"] is True and tx["provider_adjustments"] == []


@pytest.mark.parametrize(("status", "crossover"), [("2", False), ("3", False), ("19", True), ("20", True)])
def test_secondary_tertiary_and_crossover_statuses_come_through(status: str, crossover: bool) -> None:
    body = [
        f"CLP*PCN2*{status}*100*40*10*MB*PCCN2*11*1",
        "NM1*QC*1*DOE*JANE****MI*MEM123",
    ]
    if crossover:
        body.append("NM1*TT*2*SYNTHETIC MEDIGAP PLAN*****PI*MEDIGAP01")
    body.append("NM1*PR*2*CORRECTED PRIMARY PLAN*****PI*PRIM01")
    body.append("MOA***MA18*MA01")
    body.append("SVC*HC:99213*100*40**1")
    body.append("CAS*OA*23*50")
    body.append("CAS*PR*2*10")
    remit = only(remittance("40", *body))
    (claim,) = remit.claims
    assert claim.status == status
    assert claim.is_crossover is crossover
    if crossover:
        assert (
            claim.crossover_carrier is not None and claim.crossover_carrier.name == "SYNTHETIC MEDIGAP PLAN"
        )
    assert (
        claim.corrected_priority_payer is not None and claim.corrected_priority_payer.identifier == "PRIM01"
    )
    assert claim.outpatient is not None and claim.outpatient.remarks == ["MA18", "MA01"]
    assert [(a.group, a.reason) for a in claim.lines[0].adjustments] == [("OA", "23"), ("PR", "2")]
    assert remit.balanced, codes(remit.findings)


def test_denied_claim_keeps_its_adjustments_and_remarks() -> None:
    remit = only(
        remittance(
            "0",
            "CLP*PCN3*4*300*0**12*PCCN3*11*1",
            "NM1*QC*1*DOE*JANE****MI*MEM123",
            "MOA***MA130",
            "SVC*HC:97110*300*0**2",
            "CAS*CO*50*300",
            "LQ*HE*N115",
        )
    )
    (claim,) = remit.claims
    assert claim.is_denied and claim.status_description == "denied"
    assert claim.patient_responsibility_cents is None
    assert claim.lines[0].adjustments[0].reason == "50"
    assert claim.lines[0].remarks[0].code == "N115"
    assert claim.lines[0].units == Decimal("2")
    assert remit.balanced


def test_reversal_and_correction_pair_balance_with_negative_amounts() -> None:
    remit = only(
        remittance(
            "-10",
            "CLP*PCN4*22*-100*-60**12*PCCN4*11*1",
            "CAS*CO*45*-40",
            "CLP*PCN4*1*100*50**12*PCCN4B*11*1",
            "CAS*CO*45*50",
        )
    )
    reversal, correction = remit.claims
    assert reversal.is_reversal and (reversal.charge_cents, reversal.paid_cents) == (-10000, -6000)
    assert reversal.adjustments[0].amount_cents == -4000
    assert correction.paid_cents == 5000
    assert remit.balanced
    assert format_cents(reversal.paid_cents) == "-60.00"


def test_cas_with_six_triplets() -> None:
    remit = only(
        remittance(
            "70",
            "CLP*PCN5*1*100*70**12*PCCN5*11*1",
            "CAS*CO*45*10*1*253*2**A2*3*2*59*4**B10*5**97*6*1",
        )
    )
    (claim,) = remit.claims
    assert [(a.reason, a.amount_cents, a.quantity) for a in claim.adjustments] == [
        ("45", 1000, Decimal("1")),
        ("253", 200, None),
        ("A2", 300, Decimal("2")),
        ("59", 400, None),
        ("B10", 500, None),
        ("97", 600, Decimal("1")),
    ]
    assert {a.group for a in claim.adjustments} == {"CO"}
    assert remit.balanced


def test_plb_pairs_adjust_the_payment() -> None:
    # CLP04 100.00; PLB: interest -5.25 raises the payment, recovery 30.00 and levy 4.75 lower it.
    remit = only(
        remittance(
            "70.5",
            "CLP*PCN6*1*120*100**12*PCCN6*11*1",
            "CAS*CO*45*20",
            "PLB*1234567893*20241231*L6:INT01*-5.25*WO:OVERPAY77*30*FB*4.75",
        )
    )
    assert [(a.reason, a.reference, a.amount_cents) for a in remit.provider_adjustments] == [
        ("L6", "INT01", -525),
        ("WO", "OVERPAY77", 3000),
        ("FB", "", 475),
    ]
    assert remit.provider_adjustments[0].fiscal_period_date == date(2024, 12, 31)
    assert remit.balanced
    data = remit.to_json_dict()
    assert data["provider_adjustments"][1] == {
        "provider_identifier": "1234567893",
        "fiscal_period_date": "2024-12-31",
        "reason": "WO",
        "reference": "OVERPAY77",
        "amount": "30.00",
    }


def test_changed_procedure_in_svc06_and_original_units() -> None:
    remit = only(
        remittance(
            "80",
            "CLP*PCN7*1*100*80**12*PCCN7*11*1",
            "SVC*HC:99213*100*80**1*HC:99214:25*2",
            "CAS*CO*45*20",
        )
    )
    line = remit.claims[0].lines[0]
    assert line.procedure.code == "99213"
    assert line.original_procedure is not None
    assert (line.original_procedure.code, line.original_procedure.modifiers) == ("99214", ("25",))
    assert line.original_units == Decimal("2")


def test_unbalanced_line_claim_and_payment_are_reported_with_coordinates() -> None:
    text = remittance(
        "95",
        "CLP*PCN8*1*100*80**12*PCCN8*11*1",
        "SVC*HC:99213*100*80**1",
        "CAS*CO*45*15",
    )
    remit = only(text)
    (claim,) = remit.claims
    assert not claim.balanced and not remit.balanced
    line_finding = next(f for f in claim.findings if f.code == "835_LINE_UNBALANCED")
    assert (line_finding.segment, line_finding.element, line_finding.loop) == ("SVC", "SVC03", "2110")
    # ST=1, 11 header segments, CLP at 13, SVC at 14.
    assert line_finding.segment_position == 14 and line_finding.transaction_set == "0001"
    assert list(read_text(text))[(line_finding.file_ordinal or 0) - 1].id == "SVC"
    claim_finding = next(f for f in claim.findings if f.code == "835_CLAIM_UNBALANCED")
    assert (claim_finding.element, claim_finding.segment_position) == ("CLP04", 13)
    payment_finding = next(f for f in remit.findings if f.code == "835_PAYMENT_UNBALANCED")
    assert payment_finding.element == "BPR02" and "95.00" in payment_finding.message


def test_claim_without_lines_balances_on_claim_adjustments_only() -> None:
    good = only(remittance("70", "CLP*PCN9*1*100*70**12*PCCN9*11*1", "CAS*CO*45*30"))
    assert good.balanced
    bad = only(remittance("70", "CLP*PCN9*1*100*70**12*PCCN9*11*1", "CAS*CO*45*20"))
    assert codes(bad.claims[0].findings) == ["835_CLAIM_UNBALANCED"]


def test_amount_precision_and_invalid_amounts_are_findings() -> None:
    remit = only(remittance("70", "CLP*PCN10*1*100.005*70**12*PCCN10*11*1", "CAS*CO*45*3O"))
    found = codes(remit.claims[0].findings)
    assert "835_AMOUNT_PRECISION" in found and "835_AMOUNT_INVALID" in found
    assert remit.claims[0].charge_cents == 10001  # rounded half up to the cent, and flagged
    assert not remit.balanced


def test_iter_835_streams_events_in_order() -> None:
    text = remittance("150", *PRIMARY, "CLP*PCN9*1*100*0**12*PCCN9*11*1", "CAS*CO*45*100")
    events = list(iter_835(text.encode()))
    assert [type(e).__name__ for e in events] == [
        "RemittanceHeader",
        "ClaimPayment",
        "ClaimPayment",
        "RemittanceEnd",
    ]
    header, end = events[0], events[-1]
    assert isinstance(header, RemittanceHeader) and header.interchange_control_number == "000000101"
    assert header.group_control_number == "7" and header.version == "005010X221A1"
    assert isinstance(end, RemittanceEnd) and end.claim_count == 2 and end.total_paid_cents == 15000
    assert end.balanced


class _CountingReader(io.RawIOBase):
    """A binary file that records how many bytes the parser pulled so far."""

    def __init__(self, data: bytes) -> None:
        self._inner = io.BytesIO(data)
        self.consumed = 0

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        block = self._inner.read(size)
        self.consumed += len(block)
        return block


def test_first_claim_arrives_before_the_file_is_read() -> None:
    data = synth_835.generate_835(6000).encode()
    source = _CountingReader(data)
    for event in iter_835(source):  # type: ignore[arg-type]
        if isinstance(event, ClaimPayment):
            break
    assert source.consumed < len(data) // 2


def test_synthetic_remittance_balances_everywhere() -> None:
    (remit,) = parse_835(synth_835.generate_835(300, line_breaks=True).encode())
    assert len(remit.claims) == 300 and remit.balanced and remit.findings == []
    statuses = {c.status for c in remit.claims}
    assert statuses == {"1", "2", "4"}
    assert len(remit.provider_adjustments) == 2


def test_two_interchanges_with_different_delimiters() -> None:
    first = remittance("70", "CLP*PCN11*1*100*70**12*PCCN11*11*1", "CAS*CO*45*30")
    other_isa = ISA.replace("000000101", "000000102")
    second = remittance("20", "CLP*PCN12*1*50*20**12*PCCN12*11*1", "CAS*CO*45*30", st02="0002", isa=other_isa)
    # Second interchange: element "|", component ">", segment "!" instead of "*", ":", "~".
    second = second.replace("*", "|").replace("~", "!\n").replace("HC:", "HC>")
    second = second[:104] + ">" + second[105:]
    remits = parse_835(first + "\r\n" + second)
    assert [r.control_number for r in remits] == ["0001", "0002"]
    assert remits[1].claims[0].patient_control_number == "PCN12"
    assert remits[1].header.interchange_control_number == "000000102"
    assert all(r.balanced for r in remits)


def test_other_transaction_sets_are_skipped_with_a_finding() -> None:
    text = remittance("70", "CLP*PCN13*1*100*70**12*PCCN13*11*1", "CAS*CO*45*30")
    text = text.replace("GE*1*7", "ST*999*0009*005010X231A1~AK1*HC*1~SE*3*0009~GE*2*7")
    document = parse_835_document(text)
    assert len(document.transactions) == 1
    assert codes(document.findings) == ["835_NOT_835"]


@pytest.mark.parametrize(
    ("data", "code"),
    [(b"", "EMPTY"), (b"hello world", "ISA_MISSING"), (ISA.encode()[:60], "ISA_")],
)
def test_not_x12_is_a_structured_error(data: bytes, code: str) -> None:
    with pytest.raises(X12SyntaxError) as raised:
        parse_835(data)
    assert raised.value.code.startswith(code)
    document = parse_835_document(data)
    assert not document.readable
    assert [f.code.startswith(code) for f in document.findings] == [True]


def test_truncated_file_keeps_what_was_read() -> None:
    text = remittance("70", "CLP*PCN14*1*100*70**12*PCCN14*11*1", "CAS*CO*45*30")
    document = parse_835_document(text[:-5])
    # The IEA is cut: the set read is kept, but the file is not all there.
    assert codes(document.findings) == ["835_IEA_MISSING", "SEGMENT_UNTERMINATED"]
    assert len(document.transactions) == 1 and not document.balanced


@pytest.mark.parametrize(
    ("text", "cents"),
    [
        ("0", 0),
        ("12", 1200),
        ("12.5", 1250),
        ("-12.5", -1250),
        ("0.01", 1),
        (".5", 50),
        ("-.05", -5),
        ("7.", 700),
    ],
)
def test_parse_amount_cents(text: str, cents: int) -> None:
    assert parse_amount_cents(text) == cents


@pytest.mark.parametrize("text", ["", ".", "-", "1.234", "+5", " 5", "1_000", "1e3", "12,50", "--1", "١٢"])
def test_parse_amount_cents_rejects(text: str) -> None:
    assert parse_amount_cents(text) is None


@given(st.integers(min_value=-(10**12), max_value=10**12))
def test_amounts_round_trip_through_text(cents: int) -> None:
    assert parse_amount_cents(format_cents(cents)) == cents


@given(st.decimals(min_value=-(10**9), max_value=10**9, places=2, allow_nan=False, allow_infinity=False))
def test_amount_parser_agrees_with_decimal(value: Decimal) -> None:
    assert parse_amount_cents(format(value, "f")) == int(value * 100)


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_mutated_remittances_never_raise_anything_unstructured(data: st.DataObject) -> None:
    base = bytearray(remittance("150", *PRIMARY).encode())
    for _ in range(data.draw(st.integers(min_value=1, max_value=6))):
        where = data.draw(st.integers(min_value=0, max_value=len(base) - 1))
        base[where] = data.draw(st.integers(min_value=0, max_value=255))
    document = parse_835_document(bytes(base))
    assert document.readable or document.findings
    document.to_json_dict()


def test_element_lists_match_the_reference_tokenizer(monkeypatch: pytest.MonkeyPatch) -> None:
    text = remittance("150", *PRIMARY).replace("~", "~\r\n")
    expected = [s.elements for s in read_text(text)]
    monkeypatch.setattr(reader, "CHUNK_SIZE", 7)
    assert list(iter_element_lists(text.encode())) == expected


def _streaming_peak(path: Path, claims: int) -> int:
    with path.open("w", encoding="ascii", newline="") as fh:
        synth_835.write_835(fh, claims)
    tracemalloc.start()
    try:
        seen = sum(1 for event in iter_835(path) if isinstance(event, ClaimPayment))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert seen == claims
    return peak


def test_memory_stays_flat_while_streaming(tmp_path: Path) -> None:
    small = _streaming_peak(tmp_path / "small.835", 1500)
    large = _streaming_peak(tmp_path / "large.835", 9000)  # six times the claims, about 3.3 MB
    assert large < small * 1.25
    assert large < (tmp_path / "large.835").stat().st_size
