"""edi.numbers: the one reader of X12 numbers, and its limits in every reader that uses it."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as hst

from edi.numbers import (
    AMOUNT_MAX_LENGTH,
    MAX_AMOUNT_CENTS,
    amount_cents,
    parse_amount_cents,
    parse_count,
    parse_decimal,
    read_decimal,
)
from edi.x271 import parse_271
from edi.x277ca import parse_277ca
from edi.x835 import parse_835_document
from edi.x837 import X837ParseError, parse_837

HUGE = "1" + "0" * 30  # the value of the CLP04


def test_max_amount_fits_a_bigint_with_room_to_add() -> None:
    assert MAX_AMOUNT_CENTS * 9000 < 2**63 - 1
    assert len(str(MAX_AMOUNT_CENTS)) <= AMOUNT_MAX_LENGTH


@pytest.mark.parametrize(
    ("text", "code"),
    [
        (HUGE, "TOO_LONG"),
        ("9" * 19, "TOO_LONG"),
        ("0.0000000000000000001", "TOO_LONG"),
        ("10000000000000", "OUT_OF_RANGE"),  # 14 digits of dollars
        ("-10000000000000.00", "OUT_OF_RANGE"),
        ("1E+30", "NOT_A_NUMBER"),
        ("Infinity", "NOT_A_NUMBER"),
        ("NaN", "NOT_A_NUMBER"),
        ("1_000", "NOT_A_NUMBER"),
        ("\u0661\u0662", "NOT_A_NUMBER"),  # Arabic-Indic digits: int() would take them
        (" 1", "NOT_A_NUMBER"),
        ("1.005", "PRECISION"),
    ],
)
def test_amount_problems(text: str, code: str) -> None:
    assert parse_amount_cents(text) is None
    cents, problem = amount_cents(text)
    assert problem is not None and problem.code == code
    assert (cents is not None) == (code == "PRECISION")
    assert text not in problem.message


def test_the_largest_amounts() -> None:
    assert parse_amount_cents("9999999999999.99") == MAX_AMOUNT_CENTS
    assert parse_amount_cents("-9999999999999.99") == -MAX_AMOUNT_CENTS
    assert amount_cents("1.005") == (101, amount_cents("1.005")[1])


@settings(max_examples=300)
@given(hst.integers(min_value=-MAX_AMOUNT_CENTS, max_value=MAX_AMOUNT_CENTS))
def test_every_amount_in_range_reads_back(cents: int) -> None:
    sign = "-" if cents < 0 else ""
    whole, frac = divmod(abs(cents), 100)
    assert parse_amount_cents(f"{sign}{whole}.{frac:02d}") == cents
    assert amount_cents(f"{sign}{whole}.{frac:02d}") == (cents, None)


@pytest.mark.parametrize("text", [".-", "1.-", "-.-", "1.-5", "5.+"])
def test_a_sign_after_the_point_is_no_number(text: str) -> None:
    assert parse_amount_cents(text) is None
    assert (
        amount_cents(text) == (None, amount_cents(text)[1]) and amount_cents(text)[1].code == "NOT_A_NUMBER"
    )


@settings(max_examples=300)
@given(hst.text(alphabet="0123456789.-+eE _", max_size=40))
def test_any_text_is_an_amount_within_limits_or_a_problem(text: str) -> None:
    cents, problem = amount_cents(text)
    if problem is None or problem.code == "PRECISION":
        assert cents is not None and abs(cents) <= MAX_AMOUNT_CENTS
        assert Decimal(text) * 100 - cents <= Decimal("0.5")
    else:
        assert cents is None


def test_decimals_and_counts() -> None:
    assert parse_decimal("1.5") == Decimal("1.5")
    assert parse_decimal("9" * 15) == Decimal("9" * 15)
    assert parse_decimal("9" * 16) is None
    assert read_decimal("1E5")[1].code == "NOT_A_NUMBER"  # type: ignore[union-attr]
    assert parse_count("12") == 12
    assert parse_count("1" * 5000) is None  # int() would raise past 4,300 digits
    assert parse_count("\u0661") is None


# -- the readers --------------------------------------------------------------------------------
ISA = "ISA*00*          *00*          *ZZ*SENDER         *ZZ*RECEIVER       *240603*0930*^*00501*000000001*0*P*:~"


def _835(clp04: str) -> bytes:
    body = [
        "GS*HP*SENDER*RECEIVER*20240603*0930*1*X*005010X221A1",
        "ST*835*0001",
        "BPR*I*100*C*CHK************20240603",
        "TRN*1*T1*1512345678",
        "N1*PR*PAYER",
        "N1*PE*CLINIC*XX*1234567893",
        "LX*1",
        f"CLP*PCN1*1*100*{clp04}*0*12*X1",
        "SE*9*0001",
        "GE*1*1",
        "IEA*1*000000001",
    ]
    return (ISA + "~".join(body) + "~").encode()


def test_835_reader_reports_the_overflowing_clp04() -> None:
    doc = parse_835_document(_835(HUGE))
    claim = doc.transactions[0].claims[0]
    assert claim.paid_cents == 0
    (finding,) = [f for f in doc.all_findings() if f.code == "835_AMOUNT_OUT_OF_RANGE"]
    assert (finding.segment, finding.element) == ("CLP", "CLP04")
    good = parse_835_document(_835("100"))
    assert not [f for f in good.all_findings() if f.code.startswith("835_AMOUNT")]


def test_277ca_reader_reports_an_overflowing_stc04() -> None:
    body = [
        "GS*HN*SENDER*RECEIVER*20240603*0930*1*X*005010X214",
        "ST*277*0001*005010X214",
        "BHT*0085*08*REF1*20240603*0930*TH",
        "HL*1**20*1",
        "NM1*PR*2*PAYER*****PI*P1",
        "HL*2*1*21*1",
        "NM1*41*2*CLINIC*****46*S1",
        "HL*3*2*19*1",
        "NM1*85*2*CLINIC*****XX*1234567893",
        "HL*4*3*PT",
        "NM1*QC*1*DOE*JANE",
        "TRN*2*PCN1",
        f"STC*A1:20*20240603*WQ*{HUGE}",
        "SE*14*0001",
        "GE*1*1",
        "IEA*1*000000001",
    ]
    doc = parse_277ca((ISA + "~".join(body) + "~").encode())
    findings = [f for t in doc.transactions for f in t.findings if f.code == "277_AMOUNT_INVALID"]
    assert [(f.segment, f.element) for f in findings] == [("STC", "STC04")]


def test_271_reader_reports_an_overflowing_eb07() -> None:
    body = [
        "GS*HB*SENDER*RECEIVER*20240603*0930*1*X*005010X279A1",
        "ST*271*0001*005010X279A1",
        "BHT*0022*11*REF1*20240603*0930",
        "HL*1**20*1",
        "NM1*PR*2*PAYER*****PI*P1",
        "HL*2*1*21*1",
        "NM1*1P*2*CLINIC*****XX*1234567893",
        "HL*3*2*22*0",
        "TRN*2*T1*1512345678",
        "NM1*IL*1*DOE*JANE****MI*M1",
        f"EB*C*IND*30****{HUGE}",
        "SE*11*0001",
        "GE*1*1",
        "IEA*1*000000001",
    ]
    doc = parse_271((ISA + "~".join(body) + "~").encode())
    findings = [f for f in doc.findings if f.code == "271_AMOUNT_INVALID"] + [
        f for r in doc.responses for f in getattr(r, "findings", []) if f.code == "271_AMOUNT_INVALID"
    ]
    assert [(f.segment, f.element) for f in findings] == [("EB", "EB07")]


def test_837_reader_refuses_an_overflowing_clm02() -> None:
    from tests.unit.edi.test_x837p import batch, claim, write

    text = write(batch(claim("PCN001")))
    clm = next(s for s in text.split("~") if s.startswith("CLM*"))
    parts = clm.split("*")
    parts[2] = HUGE
    with pytest.raises(X837ParseError) as info:
        parse_837(text.replace(clm, "*".join(parts)).encode())
    assert info.value.element == "CLM02" and HUGE not in str(info.value)
