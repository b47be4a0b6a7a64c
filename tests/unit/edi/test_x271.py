"""271 parsing (every EB element, AAA, corrections, 2120 entities) and generation round trips."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from edi.validate import validate
from edi.x270 import Envelope
from edi.x271 import (
    Benefit,
    BenefitDate,
    EligibilityResponse,
    Entity,
    MemberResponse,
    RequestValidation,
    Trace,
    generate_271,
    parse_271,
)

ENVELOPE = Envelope("PAYER01", "CLINIC01", "PAYER01", "CLINIC01", 7, when=datetime(2026, 3, 2, 9, 31))

FULL_271 = """ISA*00*          *00*          *ZZ*PAYER01        *ZZ*CLINIC01       *260302*0931*^*00501*000000007*0*P*:~
GS*HB*PAYER01*CLINIC01*20260302*0931*7*X*005010X279A1~
ST*271*0001*005010X279A1~
BHT*0022*11*TRACE0002*20260302*0931~
HL*1**20*1~
NM1*PR*2*SUMMIT MUTUAL*****PI*DEMOSUMMIT~
PER*IC*PROVIDER SERVICES*TE*8005550100*UR*WWW.EXAMPLE.ORG~
HL*2*1*21*1~
NM1*1P*2*SYNTHETIC CLINIC*****XX*1234567893~
HL*3*2*22*1~
NM1*IL*1*DOE*JOHN****MI*SMT0000000101~
REF*6P*GRP1007~
INS*Y*18*001*25~
HL*4*3*23*0~
TRN*2*TRACE0002*1987654321~
TRN*1*PAYERTRACE9*9999999999~
NM1*03*1*DOE*KID~
DMG*D8*20150601*M~
INS*N*19~
DTP*346*D8*20260101~
EB*1*FAM*30^98^62*HM*GOLD PLAN~
EB*C*IND*30***23*500*****Y~
EB*C*IND*30***29*325.5*****Y~
EB*A*IND*30*****0.2****Y~
EB*B*IND*98***27*30*****Y~
MSG*COPAY WAIVED FOR PREVENTIVE CARE~
EB*1*IND*62********Y*Y*HC:70551~
HSD*VS*12***22~
AAA*Y**AE*C~
EB*F*IND*33***23**8*VS*20~
DTP*292*RD8*20260101-20261231~
EB*R**30*C1~
MSG*OTHER PAYER IS PRIMARY~
LS*2120~
NM1*PRP*2*OTHER HEALTH PLAN*****PI*OTHER01~
N3*1 PLAN WAY~
N4*SPRINGFIELD*IL*62704~
PER*IC**TE*8005550199~
LE*2120~
SE*38*0001~
GE*1*7~
IEA*1*000000007~
"""


def test_full_271_validates_against_our_guide() -> None:
    report = validate(FULL_271.encode())
    assert report.valid, [(f.code, f.segment, f.segment_position, f.element) for f in report.findings]


def test_every_eb_element_and_the_loops_around_it() -> None:
    doc = parse_271(FULL_271.encode())
    assert doc.readable and not doc.findings
    response = doc.responses[0]
    assert (response.control_number, response.purpose, response.reference) == ("0001", "11", "TRACE0002")
    assert response.created == datetime(2026, 3, 2, 9, 31)
    assert response.source is not None and response.source.contacts == [
        ("TE", "8005550100"),
        ("UR", "WWW.EXAMPLE.ORG"),
    ]
    subscriber = response.subscribers[0]
    assert subscriber.person.identifier == "SMT0000000101" and subscriber.corrected
    assert subscriber.person.references == [("6P", "GRP1007")]
    dependent = subscriber.dependents[0]
    assert [t.number for t in dependent.traces] == ["TRACE0002", "PAYERTRACE9"]
    assert (dependent.birth_date, dependent.sex, dependent.relationship) == (date(2015, 6, 1), "M", "19")
    assert dependent.dates == [BenefitDate("346", date(2026, 1, 1))]
    active, deductible, remaining, coinsurance, copay, imaging, visits, other = dependent.benefits
    assert (active.code, active.coverage_level, active.service_types) == ("1", "FAM", ("30", "98", "62"))
    assert (active.insurance_type, active.plan_description) == ("HM", "GOLD PLAN")
    assert (deductible.time_period, deductible.amount_cents, deductible.in_network) == ("23", 50000, "Y")
    assert remaining.amount_cents == 32550
    assert coinsurance.percent == Decimal("0.2")
    assert (copay.amount_cents, copay.messages) == (3000, ["COPAY WAIVED FOR PREVENTIVE CARE"])
    assert imaging.procedure == ("HC", "70551") and imaging.authorization_required == "Y"
    assert imaging.delivery == [("VS", "12", "", "", "22")]
    assert imaging.rejections == [RequestValidation(True, "AE", "C", "2110D")]
    assert (visits.quantity_qualifier, visits.quantity, visits.percent) == ("VS", Decimal(20), Decimal(8))
    assert visits.dates == [BenefitDate("292", date(2026, 1, 1), date(2026, 12, 31))]
    assert other.code == "R" and other.messages == ["OTHER PAYER IS PRIMARY"]
    payer = other.entities[0]
    assert (payer.entity_code, payer.name, payer.identifier) == ("PRP", "OTHER HEALTH PLAN", "OTHER01")
    assert (payer.address, payer.city, payer.state, payer.postal_code) == (
        ("1 PLAN WAY",),
        "SPRINGFIELD",
        "IL",
        "62704",
    )
    assert payer.contacts == [("TE", "8005550199")]


def test_bad_amounts_and_dates_are_findings_not_exceptions() -> None:
    text = FULL_271.replace("EB*C*IND*30***23*500*", "EB*C*IND*30***23*5X0*").replace(
        "DTP*346*D8*20260101", "DTP*346*D8*20261301"
    )
    response = parse_271(text.encode()).responses[0]
    codes = {(f.code, f.element) for f in response.findings}
    assert codes == {("271_AMOUNT_INVALID", "EB07"), ("271_DATE_INVALID", "DTP03")}
    assert response.subscribers[0].dependents[0].benefits[1].amount_cents is None


def test_guide_rejects_a_broken_271() -> None:
    text = FULL_271.replace("EB*A*IND*30*****0.2****Y", "EB*A*IND*30***99**0.2****Y")
    report = validate(text.encode())
    assert any(f.code == "X12.ELEMENT_INVALID_CODE" and f.element == "EB06" for f in report.errors)
    text = FULL_271.replace("LE*2120~", "").replace("SE*38*0001", "SE*37*0001")
    assert validate(text.encode()).valid  # LE is situational
    text = FULL_271.replace("EB*F*IND*33***23**8*VS*20", "EB*F*IND*33***23**8*VS")
    assert any(
        f.code == "X12.SYNTAX_CONDITIONAL" and f.element == "EB10" for f in validate(text.encode()).errors
    )


def test_generated_271_round_trips_through_guide_and_parser() -> None:
    subscriber = MemberResponse(
        "subscriber",
        Entity("IL", "1", "DOE", "JANE", id_qualifier="MI", identifier="SMT00000001"),
        traces=[Trace("2", "TRACE0001", "1987654321")],
        birth_date=date(1980, 1, 2),
        sex="F",
        benefits=[
            Benefit("1", "IND", ("30", "98"), "C1", "SILVER", dates=[BenefitDate("346", date(2026, 1, 1))]),
            Benefit("C", "IND", ("30",), time_period="29", amount_cents=12345, in_network="Y"),
            Benefit("A", "IND", ("30",), percent=Decimal("0.25"), in_network="N"),
        ],
    )
    response = EligibilityResponse(
        "",
        purpose="11",
        reference="TRACE0001",
        source=Entity("PR", "2", "SUMMIT MUTUAL", id_qualifier="PI", identifier="DEMOSUMMIT"),
        receiver=Entity("1P", "2", "SYNTHETIC CLINIC", id_qualifier="XX", identifier="1234567893"),
        subscribers=[subscriber],
    )
    text = generate_271([response], ENVELOPE)
    assert validate(text.encode()).valid
    assert "EB*1*IND*30*C1*SILVER~DTP*346*D8*20260101~EB*1*IND*98*C1*SILVER~" in text
    back = parse_271(text.encode()).responses[0].subscribers[0]
    assert [b.service_types for b in back.benefits] == [("30",), ("98",), ("30",), ("30",)]
    assert back.benefits[2].amount_cents == 12345 and back.benefits[3].percent == Decimal("0.25")


def test_rejection_only_271_from_the_payer_level() -> None:
    response = EligibilityResponse(
        "", source=Entity("PR", "2", "SUMMIT MUTUAL", id_qualifier="PI", identifier="DEMOSUMMIT")
    )
    response.source.rejections.append(RequestValidation(False, "42", "R", "2100A"))  # type: ignore[union-attr]
    text = generate_271([response], ENVELOPE)
    assert "HL*1**20*0~NM1*PR*2*SUMMIT MUTUAL*****PI*DEMOSUMMIT~AAA*N**42*R~SE" in text
    assert validate(text.encode()).valid
    parsed = parse_271(text.encode()).responses[0]
    (rejection,) = parsed.rejections()
    assert (rejection.reason_text, rejection.follow_up_text, rejection.retry_after_days) == (
        "unable to respond at current time",
        "resubmission allowed",
        0,
    )
