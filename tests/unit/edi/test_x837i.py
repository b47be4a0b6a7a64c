"""837I generation (005010X223A2): pyx12 accepts what we write, and it parses back equal."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from decimal import Decimal

from edi.claims import (
    Batch837,
    CasAdjustment,
    Claim,
    ClaimKind,
    Diagnosis,
    LineAdjudication,
    OccurrenceCode,
    OtherPayer,
    Procedure,
    Provider,
    ServiceLine,
    Subscriber,
    ValueCode,
)
from edi.reader import read_text
from edi.x837 import parse_837, write_837
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

ATTENDING = Provider(npi="1234567893", last_name="ATTEND", first_name="ANN", taxonomy="207R00000X")


def inpatient(pcn: str = "INP0001", **kw: object) -> Claim:
    kw.setdefault("subscriber", SUBSCRIBER)
    kw.setdefault(
        "lines",
        [
            ServiceLine(
                "99223", 45000, revenue_code="0450", diagnosis_pointers=(), service_date=date(2024, 5, 1)
            ),
            ServiceLine(
                None,
                120000,
                units=Decimal(3),
                unit_basis="DA",
                revenue_code="0120",
                diagnosis_pointers=(),
                line_control_number="RB1",
            ),
            ServiceLine(
                "J1030",
                4000,
                revenue_code="0636",
                diagnosis_pointers=(),
                ndc="00009307403",
                drug_quantity=Decimal("1.5"),
                drug_unit="ML",
                non_covered_cents=1000,
            ),
        ],
    )
    kw.setdefault(
        "diagnoses",
        [
            Diagnosis("J189", present_on_admission="Y"),
            Diagnosis("E119", present_on_admission="N"),
            Diagnosis("I10"),
        ],
    )
    return Claim(
        patient_control_number=pcn,
        billing_provider=BILLING,
        payer=PAYER,
        kind=ClaimKind.INSTITUTIONAL,
        place_of_service="11",  # facility type: hospital inpatient
        statement_from=date(2024, 5, 1),
        statement_to=date(2024, 5, 4),
        admission_date=date(2024, 5, 1),
        admission_hour=14,
        admission_type="1",
        admission_source="7",
        patient_status="01",
        admitting_diagnosis=Diagnosis("R0602"),
        patient_reason_diagnoses=[Diagnosis("R0602"), Diagnosis("R509")],
        procedures=[Procedure("5A1955Z", date(2024, 5, 2)), Procedure("0BH17EZ", date(2024, 5, 2))],
        value_codes=[ValueCode("80", 300)],
        occurrence_codes=[OccurrenceCode("11", date(2024, 4, 29))],
        condition_codes=["39"],
        attending=ATTENDING,
        operating=Provider(npi="1629384756", last_name="OPERATE", first_name="OWEN"),
        prior_authorization="PA123",
        **kw,  # type: ignore[arg-type]
    )


def write(*claims: Claim) -> str:
    b = Batch837(
        SUBMITTER, RECEIVER, list(claims), kind=ClaimKind.INSTITUTIONAL, created=WHEN, reference="INST"
    )
    return write_837(
        b, interchange_control=5, group_control=5, transaction_controls=["0005"], when=WHEN, usage="T"
    )


def test_inpatient_claim_round_trips_and_pyx12_accepts() -> None:
    c = inpatient()
    text = write(c)
    verdict = pyx12_validate(text)
    assert verdict.accepted, verdict.errors
    (parsed,) = parse_837(text)
    assert parsed.kind is ClaimKind.INSTITUTIONAL and parsed.implementation == "005010X223A2"
    assert parsed.claims == [c]
    segs = [s.elements for s in read_text(text)]
    assert ["CLM", "INP0001", "1690", "", "", "11:A:1", "", "A", "Y", "Y"] in segs
    assert ["DTP", "434", "RD8", "20240501-20240504"] in segs
    assert ["DTP", "435", "DT", "202405011400"] in segs
    assert ["CL1", "1", "7", "01"] in segs
    assert ["HI", "ABK:J189:::::::Y"] in segs
    assert ["HI", "ABJ:R0602"] in segs
    assert ["HI", "APR:R0602", "APR:R509"] in segs
    assert ["HI", "ABF:E119:::::::N", "ABF:I10"] in segs
    assert ["HI", "BBR:5A1955Z:D8:20240502"] in segs
    assert ["HI", "BBQ:0BH17EZ:D8:20240502"] in segs
    assert ["HI", "BH:11:D8:20240429"] in segs
    assert ["HI", "BE:80:::3"] in segs
    assert ["HI", "BG:39"] in segs
    assert ["SV2", "0120", "", "1200", "DA", "3"] in segs
    assert ["SV2", "0636", "HC:J1030", "40", "UN", "1", "", "10"] in segs
    assert ["NM1", "71", "1", "ATTEND", "ANN", "", "", "", "XX", "1234567893"] in segs
    assert ["PRV", "AT", "PXC", "207R00000X"] in segs
    assert c.type_of_bill == "111"


def test_institutional_secondary_with_line_adjudication_round_trips() -> None:
    c = inpatient(
        "INP0002",
        subscriber=replace(SUBSCRIBER, responsibility="S"),
        other_payers=[
            OtherPayer(
                payer=SECOND_PAYER,
                subscriber=Subscriber(last_name="DOE", first_name="JANE", member_id="PRIMARY77"),
                paid_cents=100000,
                adjustments=(CasAdjustment("CO", "45", 60000), CasAdjustment("PR", "1", 9000)),
                adjudication_date=date(2024, 5, 20),
                line_adjudications=(
                    LineAdjudication(
                        1,
                        40000,
                        "99223",
                        date(2024, 5, 20),
                        revenue_code="0450",
                        adjustments=(CasAdjustment("CO", "45", 5000),),
                    ),
                ),
            )
        ],
    )
    text = write(c)
    verdict = pyx12_validate(text)
    assert verdict.accepted, verdict.errors
    assert parse_837(text)[0].claims == [c]
    segs = [s.elements for s in read_text(text)]
    assert ["SVD", "EXM02", "400", "HC:99223", "0450", "1"] in segs


def test_many_other_diagnoses_split_across_hi_segments() -> None:
    dx = [Diagnosis("J189")] + [Diagnosis(f"Z{n:03d}") for n in range(14)]
    text = write(inpatient(diagnoses=dx))
    other_hi = [s.elements for s in read_text(text) if s.id == "HI" and s.get(1).startswith("ABF")]
    assert [len(h) - 1 for h in other_hi] == [12, 2]
    assert parse_837(text)[0].claims[0].diagnoses == dx
