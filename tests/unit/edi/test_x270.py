"""270 generation (validated by our X279A1 guide) and parsing back; guide catches broken 270s."""

from __future__ import annotations

from datetime import date, datetime

import pytest

from edi.validate import validate
from edi.writer import X12WriteError
from edi.x270 import (
    EligibilityInquiry,
    Envelope,
    InquiryParty,
    Member,
    ServiceInquiry,
    generate_270,
    parse_270,
)

PAYER = InquiryParty("PR", "SUMMIT MUTUAL", "PI", "DEMOSUMMIT")
PROVIDER = InquiryParty("1P", "SYNTHETIC CLINIC", "XX", "1234567893")
ENVELOPE = Envelope("SENDER01", "RECEIVER01", "SENDER01", "RECEIVER01", 42, when=datetime(2026, 3, 2, 9, 30))


def subscriber_inquiry(**overrides: object) -> EligibilityInquiry:
    values: dict[str, object] = {
        "trace_number": "TRACE0001",
        "trace_originator": "1987654321",
        "payer": PAYER,
        "provider": PROVIDER,
        "subscriber": Member("DOE", "JANE", member_id="SMT00000001", birth_date=date(1980, 1, 2), sex="F"),
        "service_date": date(2026, 3, 3),
        "inquiries": (ServiceInquiry(("30",)), ServiceInquiry(("98",)), ServiceInquiry((), "HC", "70551")),
    }
    values.update(overrides)
    return EligibilityInquiry(**values)  # type: ignore[arg-type]


def dependent_inquiry() -> EligibilityInquiry:
    return subscriber_inquiry(
        trace_number="TRACE0002",
        subscriber=Member("DOE", "JOHN", member_id="SMT00000001", group_number="GRP1007"),
        dependent=Member("DOE", "KID", birth_date=date(2015, 6, 1), sex="M", relationship="19"),
        inquiries=(ServiceInquiry(("30",)),),
    )


def segments(text: str) -> list[str]:
    return [s for s in text.split("~") if s]


def test_subscriber_270_validates_and_has_the_tr3_shape() -> None:
    text = generate_270([subscriber_inquiry()], ENVELOPE)
    report = validate(text.encode())
    assert report.valid, [(f.code, f.segment, f.element) for f in report.findings]
    assert report.transaction_sets[0].guide and "X279" in report.transaction_sets[0].guide
    segs = segments(text)
    assert segs[1] == "GS*HS*SENDER01*RECEIVER01*20260302*0930*42*X*005010X279A1"
    body = segs[segs.index("ST*270*0001*005010X279A1") :]
    assert body[:10] == [
        "ST*270*0001*005010X279A1",
        "BHT*0022*13*TRACE0001*20260302*0930",
        "HL*1**20*1",
        "NM1*PR*2*SUMMIT MUTUAL*****PI*DEMOSUMMIT",
        "HL*2*1*21*1",
        "NM1*1P*2*SYNTHETIC CLINIC*****XX*1234567893",
        "HL*3*2*22*0",
        "TRN*1*TRACE0001*1987654321",
        "NM1*IL*1*DOE*JANE****MI*SMT00000001",
        "DMG*D8*19800102*F",
    ]
    assert body[10:14] == ["DTP*291*D8*20260303", "EQ*30", "EQ*98", "EQ**HC:70551"]
    assert body[14] == "SE*15*0001"


def test_dependent_270_puts_trace_and_questions_on_the_dependent_level() -> None:
    text = generate_270([subscriber_inquiry(), dependent_inquiry()], ENVELOPE)
    report = validate(text.encode())
    assert report.valid, [(f.code, f.segment, f.element) for f in report.findings]
    second = segments(text)[segments(text).index("ST*270*0002*005010X279A1") :]
    assert second[6:15] == [
        "HL*3*2*22*1",
        "NM1*IL*1*DOE*JOHN****MI*SMT00000001",
        "REF*6P*GRP1007",
        "HL*4*3*23*0",
        "TRN*1*TRACE0002*1987654321",
        "NM1*03*1*DOE*KID",
        "DMG*D8*20150601*M",
        "INS*N*19",
        "DTP*291*D8*20260303",
    ]
    assert segments(text)[-2] == "GE*2*42"


def test_parse_270_reads_back_what_was_written() -> None:
    parsed = parse_270(generate_270([subscriber_inquiry(), dependent_inquiry()], ENVELOPE).encode())
    assert parsed.readable and not parsed.findings
    first, second = parsed.inquiries
    assert first.trace_number == "TRACE0001" and first.subscriber.member_id == "SMT00000001"
    assert first.service_types == ("30", "98") and first.inquiries[2].procedure_code == "70551"
    assert first.patient.birth_date == date(1980, 1, 2)
    assert second.dependent is not None and second.dependent.relationship == "19"
    assert second.patient is second.dependent and second.subscriber.group_number == "GRP1007"
    assert (parsed.sender_id, parsed.receiver_id, parsed.isa13) == ("SENDER01", "RECEIVER01", "000000042")


def test_a_delimiter_in_a_name_is_refused_without_showing_the_name() -> None:
    bad = subscriber_inquiry(subscriber=Member("DO*E", "JANE", member_id="SMT00000001"))
    with pytest.raises(X12WriteError) as caught:
        generate_270([bad], ENVELOPE)
    assert caught.value.element == "NM103" and "DO*E" not in str(caught.value)


@pytest.mark.parametrize(
    ("old", "new", "code", "element"),
    [
        ("EQ*98", "EQ*98*HC:99213*XYZ", "X12.ELEMENT_INVALID_CODE", "EQ03"),
        ("DMG*D8*19800102*F", "DMG*D8*19801302*F", "X12.ELEMENT_INVALID_DATE", "DMG02"),
        ("TRN*1*TRACE0001*1987654321", "TRN*1*TRACE0001*19876", "X12.ELEMENT_TOO_SHORT", "TRN03"),
        ("BHT*0022*13*", "BHT*0022*11*", "X12.ELEMENT_INVALID_CODE", "BHT02"),
    ],
)
def test_the_guide_rejects_element_errors(old: str, new: str, code: str, element: str) -> None:
    text = generate_270([subscriber_inquiry()], ENVELOPE).replace(old, new, 1)
    report = validate(text.encode())
    assert not report.valid
    assert any(f.code == code and f.element == element for f in report.errors), [
        (f.code, f.element) for f in report.errors
    ]


def test_the_guide_reports_a_missing_subscriber_name_loop() -> None:
    text = generate_270([subscriber_inquiry()], ENVELOPE).replace("NM1*IL*1*DOE*JANE****MI*SMT00000001~", "")
    text = text.replace("SE*15*0001", "SE*14*0001")
    report = validate(text.encode())
    assert not report.valid
    assert any(f.code in ("X12.LOOP_MISSING", "X12.SEGMENT_MISSING") and f.ik3 == "3" for f in report.errors)


def test_parse_270_never_raises_on_garbage() -> None:
    parsed = parse_270(b"this is not x12")
    assert not parsed.readable and parsed.findings[0].is_error
