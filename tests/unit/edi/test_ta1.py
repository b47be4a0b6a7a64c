"""TA1: generate for an inbound interchange, read it back, and let pyx12 check the envelope."""

from __future__ import annotations

from datetime import date, datetime, time

import pytest

from edi.reader import Delimiters, read_text
from edi.ta1 import NOTE_CODES, generate_ta1, parse_ta1, write_ta1
from edi.writer import X12WriteError, X12Writer
from tests.unit.edi.test_x999 import pyx12_errors

INBOUND = (
    "ISA*00*          *00*          *ZZ*SUBMIT01       *ZZ*CLEAR01        *240603*0930*^*00501*000000123*1*T*:~"
    "GS*HC*SUBMIT01*CLEAR01*20240603*0930*1*X*005010X222A1~ST*837*0001*005010X222A1~SE*2*0001~GE*1*1~"
    "IEA*1*000000124~"
)


def inbound_isa() -> list[str]:
    return next(iter(read_text(INBOUND))).elements


def test_rejecting_ta1_for_a_control_number_mismatch() -> None:
    text = generate_ta1(
        acknowledged_isa=inbound_isa(), note_code="001", control_number=77, when=datetime(2024, 6, 3)
    )
    assert "TA1*000000123*240603*0930*R*001~" in text and text.endswith("IEA*0*000000077~")
    document = parse_ta1(text)
    (ack,) = document.acks
    assert (ack.control_number, ack.status, ack.note_code) == ("000000123", "R", "001")
    assert (ack.interchange_date, ack.interchange_time) == (date(2024, 6, 3), time(9, 30))
    assert not ack.accepted and "IEA02" in ack.note
    # The reply goes back: sender and receiver swap, test usage is kept.
    assert (ack.sender, ack.receiver, ack.carrier_control_number) == ("CLEAR01", "SUBMIT01", "000000077")
    assert text[102] == "T"
    assert document.to_json_dict()["acknowledgments"][0]["note_code"] == "001"
    assert pyx12_errors(text) == []


def test_accepting_ta1_defaults_to_a() -> None:
    (ack,) = parse_ta1(generate_ta1(acknowledged_isa=inbound_isa(), note_code="000", control_number=78)).acks
    assert ack.status == "A" and ack.accepted and ack.findings == []


def test_ta1_inside_a_reply_interchange_with_other_delimiters() -> None:
    writer = X12Writer(Delimiters(element="|", component=">", repetition="^", segment="~"))
    writer.begin_interchange(
        sender_qualifier="ZZ",
        sender_id="CLEAR01",
        receiver_qualifier="ZZ",
        receiver_id="SUBMIT01",
        control_number=9,
    )
    write_ta1(
        writer,
        control_number=123,
        interchange_date=date(2024, 6, 3),
        interchange_time=time(9, 30),
        status="E",
        note_code="025",
    )
    writer.end_interchange()
    (ack,) = parse_ta1(writer.getvalue()).acks
    assert (ack.control_number, ack.status, ack.note_code) == ("000000123", "E", "025")
    assert ack.note == NOTE_CODES["025"]


@pytest.mark.parametrize(
    ("kwargs", "element"),
    [
        ({"status": "Q", "note_code": "000"}, "TA104"),
        ({"status": "R", "note_code": "099"}, "TA105"),
        ({"status": "R", "note_code": "001", "control_number": "12AB"}, "TA101"),
        ({"status": "R", "note_code": "001", "interchange_date": "241399"}, "TA102"),
    ],
)
def test_write_ta1_refuses_bad_codes(kwargs: dict[str, str], element: str) -> None:
    writer = X12Writer()
    writer.begin_interchange(
        sender_qualifier="ZZ", sender_id="A", receiver_qualifier="ZZ", receiver_id="B", control_number=1
    )
    arguments = {"control_number": "1", "interchange_date": "240603", "interchange_time": "0930", **kwargs}
    with pytest.raises(X12WriteError) as raised:
        write_ta1(writer, **arguments)  # type: ignore[arg-type]
    assert raised.value.element == element


def test_note_table_covers_000_to_031() -> None:
    assert sorted(NOTE_CODES) == [f"{n:03d}" for n in range(32)]


def test_parse_flags_bad_ta1_elements_and_unreadable_input() -> None:
    text = generate_ta1(acknowledged_isa=inbound_isa(), note_code="000", control_number=79).replace(
        "*A*000", "*Z*000"
    )
    (ack,) = parse_ta1(text).acks
    assert [f.element for f in ack.findings] == ["TA104"]
    document = parse_ta1(b"garbage")
    assert not document.readable and document.findings[0].code == "ISA_MISSING"


def test_generate_needs_a_whole_isa() -> None:
    with pytest.raises(X12WriteError):
        generate_ta1(acknowledged_isa=["ISA", "00"], note_code="000", control_number=1)
