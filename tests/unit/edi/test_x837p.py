"""837P generation (005010X222A1): pyx12 accepts what we write, and it parses back equal."""

from __future__ import annotations

import io
import json
import os
from dataclasses import replace
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
import pyx12.x12file

from edi.claims import (
    Address,
    Batch837,
    BillingProvider,
    CasAdjustment,
    Claim,
    ClaimKind,
    Diagnosis,
    LineAdjudication,
    OtherPayer,
    Patient,
    PayToAddress,
    Provider,
    ServiceLine,
    Subscriber,
)
from edi.reader import Delimiters, read_text
from edi.writer import X12WriteError
from edi.x837 import X837ParseError, parse_837, write_837, write_837_file, write_837_to
from tests.services import unavailable
from tests.unit.edi.support_837 import (
    BILLING,
    PAYER,
    RECEIVER,
    SECOND_PAYER,
    SUBMITTER,
    SUBSCRIBER,
    WHEN,
    pyx12_validate,
)

CORPUS = Path(__file__).resolve().parents[2] / "data" / "corpus"
DOS = date(2024, 5, 14)


def line(code: str = "99213", cents: int = 12500, **kw: object) -> ServiceLine:
    kw.setdefault("service_date", DOS)
    return ServiceLine(procedure=code, charge_cents=cents, **kw)  # type: ignore[arg-type]


def claim(pcn: str = "PCN001", **kw: object) -> Claim:
    kw.setdefault("billing_provider", BILLING)
    kw.setdefault("subscriber", SUBSCRIBER)
    kw.setdefault("payer", PAYER)
    kw.setdefault("lines", [line()])
    kw.setdefault("diagnoses", [Diagnosis("E119")])
    return Claim(patient_control_number=pcn, **kw)  # type: ignore[arg-type]


def batch(*claims: Claim) -> Batch837:
    return Batch837(SUBMITTER, RECEIVER, list(claims), created=WHEN, reference="BATCH1")


def write(b: Batch837, **kw: object) -> str:
    kw.setdefault("interchange_control", 101)
    kw.setdefault("group_control", 7)
    kw.setdefault("transaction_controls", ["0001", "0002", "0003"])
    return write_837(b, when=WHEN, usage="T", **kw)  # type: ignore[arg-type]


def roundtrip(*claims: Claim) -> str:
    """Write, assert pyx12 accepts with 0 errors, parse back, assert the same claims."""
    text = write(batch(*claims))
    verdict = pyx12_validate(text)
    assert verdict.accepted, verdict.errors
    parsed = parse_837(text.encode())
    assert len(parsed) == 1
    assert parsed[0].claims == list(claims)
    return text


def segments(text: str) -> list[list[str]]:
    return [s.elements for s in read_text(text)]


def test_simple_claim_round_trips_and_pyx12_accepts() -> None:
    text = roundtrip(claim())
    segs = segments(text)
    ids = [s[0] for s in segs]
    assert ids[:3] == ["ISA", "GS", "ST"]
    clm = next(s for s in segs if s[0] == "CLM")
    assert clm[1:3] == ["PCN001", "125"]
    assert clm[5] == "11:B:1"
    assert ["HI", "ABK:E119"] in segs
    assert ["SV1", "HC:99213", "125", "UN", "1", "", "", "1"] in segs
    assert ["SBR", "P", "18", "GRP001", "", "", "", "", "", "CI"] in segs
    assert "HL" in ids and "PAT" not in ids  # no 2000C when the patient is the subscriber
    se = next(s for s in segs if s[0] == "SE")
    st_index, se_index = ids.index("ST"), ids.index("SE")
    assert int(se[1]) == se_index - st_index + 1


def test_patient_not_subscriber_gets_2000c() -> None:
    child = Patient(
        last_name="DOE",
        first_name="SAM",
        relationship_code="19",
        birth_date=date(2015, 7, 1),
        sex="M",
        address=SUBSCRIBER.address,  # type: ignore[arg-type]
    )
    text = roundtrip(claim(patient=child))
    segs = segments(text)
    hls = [s for s in segs if s[0] == "HL"]
    assert [h[1:] for h in hls] == [["1", "", "20", "1"], ["2", "1", "22", "1"], ["3", "2", "23", "0"]]
    assert ["PAT", "19"] in segs
    sbr = next(s for s in segs if s[0] == "SBR")
    assert sbr[2] == ""  # SBR02 = 18 only when the subscriber is the patient


def test_secondary_claim_with_cob_loops_round_trips() -> None:
    primary_sub = Subscriber(last_name="DOE", first_name="JANE", member_id="PRI998877", responsibility="P")
    lines = [line("99214", 18000, line_control_number="LN1"), line("36415", 1500, line_control_number="LN2")]
    other = OtherPayer(
        payer=SECOND_PAYER,
        subscriber=primary_sub,
        paid_cents=12000,
        adjustments=(CasAdjustment("PR", "1", 2000), CasAdjustment("PR", "2", 500, Decimal(1))),
        remaining_patient_liability_cents=2500,
        payer_claim_control_number="EXM-CLAIM-1",
        adjudication_date=date(2024, 6, 1),
        line_adjudications=(
            LineAdjudication(
                1,
                11000,
                "99214",
                date(2024, 6, 1),
                adjustments=(CasAdjustment("CO", "45", 4500), CasAdjustment("PR", "1", 2500)),
            ),
            LineAdjudication(
                2, 1000, "36415", date(2024, 6, 1), adjustments=(CasAdjustment("CO", "45", 500),)
            ),
        ),
    )
    secondary = replace(SUBSCRIBER, responsibility="S")
    text = roundtrip(claim("SEC001", subscriber=secondary, lines=lines, other_payers=[other]))
    segs = segments(text)
    assert ["AMT", "D", "120"] in segs
    assert ["AMT", "EAF", "25"] in segs
    assert ["CAS", "PR", "1", "20", "", "2", "5", "1"] in segs
    assert ["SVD", "EXM02", "110", "HC:99214", "", "1"] in segs
    assert ["OI", "", "", "Y", "", "", "Y"] in segs
    ids = [s[0] for s in segs]
    assert ids.index("OI") < ids.index("LX")  # 2320 before 2400


def test_more_than_six_cas_triplets_split_into_segments_of_six() -> None:
    adjustments = tuple(CasAdjustment("CO", str(40 + i), 100) for i in range(8))
    other = OtherPayer(
        payer=SECOND_PAYER,
        subscriber=Subscriber(last_name="DOE", first_name="JANE", member_id="PRI1"),
        paid_cents=11700,
        adjustments=adjustments,
    )
    text = write(batch(claim(subscriber=replace(SUBSCRIBER, responsibility="S"), other_payers=[other])))
    cas = [s for s in segments(text) if s[0] == "CAS"]
    assert [(len(s) - 2 + 1) // 3 for s in cas] == [6, 2]  # the last empty quantity is trimmed
    assert parse_837(text)[0].claims[0].other_payers[0].adjustments == adjustments


def test_replacement_claim_carries_ref_f8() -> None:
    text = roundtrip(claim("REPL01", frequency_code="7", original_claim_number="PAYERICN0001"))
    segs = segments(text)
    assert ["REF", "F8", "PAYERICN0001"] in segs
    assert next(s for s in segs if s[0] == "CLM")[5] == "11:B:7"


def test_rich_claim_ndc_four_modifiers_twelve_dx_providers_round_trips() -> None:
    dx = [
        Diagnosis(c)
        for c in (
            "S52501A",
            "E119",
            "I10",
            "E785",
            "M545",
            "J069",
            "F419",
            "K219",
            "E559",
            "R05",
            "M25561",
            "Z23",
        )
    ]
    lines = [
        line(
            "20605",
            30000,
            modifiers=("RT", "59", "XS", "76"),
            diagnosis_pointers=(1, 2, 3, 4),
            line_control_number="A1",
            units=Decimal(2),
        ),
        line(
            "J1030",
            4500,
            ndc="00009307403",
            drug_quantity=Decimal("40"),
            drug_unit="ML",
            line_control_number="A2",
            diagnosis_pointers=(1,),
            place_of_service="22",
            rendering=Provider(
                npi="1487654326", last_name="LINE", first_name="RENDER", taxonomy="207X00000X"
            ),
        ),
        line("99999", 2000, description="UNLISTED SERVICE", service_date_end=date(2024, 5, 16)),
    ]
    c = claim(
        "RICH0001",
        lines=lines,
        diagnoses=dx,
        onset_date=date(2024, 5, 10),
        accident_date=date(2024, 5, 10),
        related_causes=("AA",),
        related_causes_state="IL",
        prior_authorization="AUTH42",
        referral_number="REF77",
        referring=Provider(npi="1629384756", last_name="REFER", first_name="RITA"),
        rendering=Provider(
            npi="1366554433",
            last_name="RENDER",
            first_name="ROY",
            middle_name="B",
            suffix="JR",
            taxonomy="207X00000X",
        ),
        service_facility=Provider(
            npi="1952637485",
            organization_name="SYNTHETIC SURGERY CENTER",
            address=Address("9 CLINIC RD", "SPRINGFIELD", "IL", "627029999"),
        ),
        supervising=Provider(npi="1700000007", last_name="SUPER", first_name="SUE"),
        billing_provider=replace(
            BILLING, pay_to=PayToAddress(Address("PO BOX 55", "SPRINGFIELD", "IL", "627050055"))
        ),
    )
    text = roundtrip(c)
    segs = segments(text)
    hi = next(s for s in segs if s[0] == "HI")
    assert len(hi) == 13 and hi[1] == "ABK:S52501A" and all(h.startswith("ABF:") for h in hi[2:])
    assert ["LIN", "", "N4", "00009307403"] in segs
    assert ["CTP", "", "", "", "40", "ML"] in segs
    assert ["SV1", "HC:20605:RT:59:XS:76", "300", "UN", "2", "", "", "1:2:3:4"] in segs
    assert ["SV1", "HC:99999:::::UNLISTED SERVICE", "20", "UN", "1", "", "", "1"] in segs
    assert ["DTP", "472", "RD8", "20240514-20240516"] in segs
    assert next(s for s in segs if s[0] == "CLM")[11] == "AA:::IL"
    assert ["NM1", "87", "2"] in segs


def test_multiple_billing_providers_build_the_hl_tree() -> None:
    other_bp = BillingProvider(
        npi="1245319599",
        address=Address("1 OTHER ST", "PEORIA", "IL", "616021111"),
        tax_id="987654321",
        last_name="SOLO",
        first_name="PAT",
        tax_id_qualifier="SY",
    )
    other_sub = replace(SUBSCRIBER, member_id="MEM999", first_name="JOHN")
    claims = [
        claim("A1"),
        claim("B1", billing_provider=other_bp),
        claim("A2"),
        claim("A3", subscriber=other_sub),
        claim("B2", billing_provider=other_bp),
    ]
    text = write(batch(*claims))
    assert pyx12_validate(text).accepted
    segs = segments(text)
    hls = [s[1:] for s in segs if s[0] == "HL"]
    assert hls == [
        ["1", "", "20", "1"],
        ["2", "1", "22", "0"],
        ["3", "1", "22", "0"],
        ["4", "", "20", "1"],
        ["5", "4", "22", "0"],
    ]
    pcns = [s[1] for s in segs if s[0] == "CLM"]
    assert pcns == ["A1", "A2", "A3", "B1", "B2"]
    parsed = parse_837(text)[0].claims
    assert sorted(parsed, key=lambda c: c.patient_control_number) == sorted(
        claims, key=lambda c: c.patient_control_number
    )


def test_5001_claims_split_into_two_transaction_sets() -> None:
    claims = [claim(f"P{n:05d}") for n in range(5001)]
    text = write(batch(*claims), transaction_controls=lambda i: f"{i + 1:04d}")
    segs = segments(text)
    sts = [s for s in segs if s[0] == "ST"]
    ses = [s for s in segs if s[0] == "SE"]
    assert [s[2] for s in sts] == ["0001", "0002"] == [s[2] for s in ses]
    assert sum(1 for s in segs if s[0] == "CLM") == 5001
    assert ["GE", "2", "7"] in segs
    # pyx12's envelope reader checks SE/GE/IEA counts and the HL/LX numbering.
    reader = pyx12.x12file.X12Reader(io.StringIO(text))
    for _ in reader:
        pass
    assert reader.pop_errors() == []
    parsed = parse_837(text)
    assert [len(p.claims) for p in parsed] == [5000, 1]
    assert [c.patient_control_number for p in parsed for c in p.claims] == [
        c.patient_control_number for c in claims
    ]


def test_name_with_delimiter_raises_and_leaves_nothing(tmp_path: Path) -> None:
    bad = claim("BAD1", subscriber=replace(SUBSCRIBER, last_name="O*BRIEN"))
    with pytest.raises(X12WriteError) as info:
        write(batch(claim("GOOD1"), bad))
    assert info.value.segment == "NM1" and info.value.element == "NM103"
    assert "O*BRIEN" not in str(info.value)
    target = tmp_path / "out.837"
    with pytest.raises(X12WriteError):
        write_837_file(
            target, batch(bad), interchange_control=1, group_control=1, transaction_controls=["0001"]
        )
    assert not target.exists()
    assert os.listdir(tmp_path) == []


def test_structural_limits_are_refused() -> None:
    with pytest.raises(X12WriteError) as info:
        write(batch(claim(lines=[line(modifiers=("25", "59", "XS", "76", "GT"))])))
    assert info.value.code == "TOO_MANY_MODIFIERS"
    with pytest.raises(X12WriteError) as info:
        write(batch(claim(diagnoses=[Diagnosis(f"Z{n:02d}") for n in range(13)])))
    assert info.value.code == "TOO_MANY_DIAGNOSES"
    with pytest.raises(X12WriteError) as info:
        write(batch(claim(lines=[line() for _ in range(51)])))
    assert info.value.code == "TOO_MANY_LINES"
    with pytest.raises(X12WriteError) as info:
        write(batch(claim(kind=ClaimKind.INSTITUTIONAL)))
    assert info.value.code == "KIND_MISMATCH"
    with pytest.raises(X12WriteError) as info:
        write(batch(*[claim(f"P{n}") for n in range(5001)]), transaction_controls=["0001"])
    assert info.value.code == "CONTROL_NUMBERS_EXHAUSTED"


def test_total_charge_defaults_to_sum_of_lines() -> None:
    c = claim(lines=[line(cents=12550), line("36415", 1575)])
    assert c.total_charge_cents == 14125 == c.lines_total_cents()
    assert next(s for s in segments(write(batch(c))) if s[0] == "CLM")[2] == "141.25"


def test_streaming_output_equals_in_memory_and_custom_delimiters_round_trip() -> None:
    claims = [claim(f"S{n}") for n in range(30)]
    sink = io.StringIO()
    write_837_to(
        sink,
        batch(*claims),
        interchange_control=101,
        group_control=7,
        transaction_controls=["0001"],
        when=WHEN,
        usage="T",
    )
    assert sink.getvalue() == write(batch(*claims))
    delims = Delimiters(element="|", component="^", repetition="{", segment="\n")
    text = write(batch(*claims), delimiters=delims)
    assert text.count("\n") == len(segments(text))
    assert parse_837(text)[0].claims == claims


def test_to_json_dict_has_amounts_as_two_decimal_strings() -> None:
    parsed = parse_837(write(batch(claim(lines=[line(cents=12550)]))))[0]
    data = parsed.to_json_dict()
    json.dumps(data)
    c = data["claims"][0]
    assert c["total_charge"] == "125.50"
    assert c["lines"][0]["charge"] == "125.50"
    assert c["lines"][0]["units"] == "1"
    assert c["subscriber"]["birth_date"] == "1980-02-29"
    assert data["control_number"] == "0001" and data["kind"] == "professional"


def test_unreadable_input_gives_structured_errors() -> None:
    with pytest.raises(X837ParseError) as info:
        parse_837(b"this is not an X12 file at all")
    assert info.value.code == "ISA_MISSING"
    text = write(batch(claim())).replace("*125***11:B:1", "*12X5***11:B:1")
    with pytest.raises(X837ParseError) as info:
        parse_837(text)
    assert info.value.segment == "CLM" and info.value.element == "CLM02"
    assert info.value.segment_ordinal is not None and "12X5" not in info.value.message
    text = write(batch(claim())).replace("DTP*472*D8*20240514", "DTP*472*D8*20241345")
    with pytest.raises(X837ParseError) as info:
        parse_837(text)
    assert info.value.to_dict()["element"] == "DTP03"


def _corpus_837() -> list[Path]:
    rows = (CORPUS / "MANIFEST.tsv").read_text().splitlines()
    return [CORPUS / r.split("\t")[0] for r in rows[1:] if r.split("\t")[7:8] == ["837"]]


def test_every_corpus_837_parses_or_fails_structurally() -> None:
    if not CORPUS.exists():
        unavailable(f"shared corpus not found at {CORPUS}")
    files = _corpus_837()
    assert len(files) >= 20
    parsed_files = 0
    for path in files:
        try:
            results = parse_837(path)
        except X837ParseError as exc:
            assert exc.code and exc.message
            continue
        parsed_files += 1
        for result in results:
            json.dumps(result.to_json_dict())
    assert parsed_files >= 15


def test_corpus_cob_claim_reads_into_dataclasses() -> None:
    if not CORPUS.exists():
        unavailable(f"shared corpus not found at {CORPUS}")
    path = next(p for p in _corpus_837() if p.name == "COB-claim-from-billing-provider-to-payer-b.edi")
    (result,) = parse_837(path)
    (c,) = result.claims
    assert c.patient_control_number == "26407789"
    assert c.total_charge_cents == 7904 == c.lines_total_cents()
    assert c.patient is not None and c.patient.relationship_code == "19"
    assert [d.code for d in c.diagnoses] == ["4779", "2724", "2780", "53081"] and c.diagnoses[0].icd9
    (other,) = c.other_payers
    assert other.paid_cents == 3915 and other.remaining_patient_liability_cents == 3689
    assert other.adjustments == (CasAdjustment("PR", "1", 2189), CasAdjustment("PR", "2", 1500))
    assert [a.paid_cents for a in other.line_adjudications] == [4000, 1500, 2104]
    assert other.line_adjudications[0].adjustments == (CasAdjustment("CO", "42", 300),)
    assert c.lines[0].diagnosis_pointers == (1, 2, 3, 4)
    assert c.billing_provider.pay_to is not None


def test_synthetic_generator_batch_is_accepted_and_round_trips() -> None:
    from benchmarks.synth_837 import synth_file

    text = synth_file(120)
    assert synth_file(120) == text  # deterministic
    verdict = pyx12_validate(text)
    assert verdict.accepted, verdict.errors[:5]
    parsed = parse_837(text)
    claims = [c for p in parsed for c in p.claims]
    assert len(claims) == 120
    assert all(c.total_charge_cents == c.lines_total_cents() for c in claims)
    assert sum(1 for c in claims if c.patient is not None) == 24
