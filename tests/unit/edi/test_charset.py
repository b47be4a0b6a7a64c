"""edi.charset: text converted to the X12 basic/extended character set, and inbound checks."""

from __future__ import annotations

from datetime import date, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as hst

from edi.ack import acknowledge
from edi.charset import (
    EXTENDED_CHARACTERS,
    bad_element_refs,
    character_findings,
    is_x12_text,
    to_x12_text,
)
from edi.reader import Delimiters, read_text
from edi.validate import validate
from edi.writer import X12WriteError, X12Writer
from edi.x270 import Member, generate_270
from edi.x999 import parse_999

WHEN = datetime(2024, 6, 3, 9, 30)
ISA = "ISA*00*          *00*          *ZZ*SENDER         *ZZ*RECEIVER       *240603*0930*^*00501*000000001*0*P*:~"
DELIMITER_SETS = [Delimiters(), Delimiters(element="|", component=">", repetition="{", segment="\n")]


def test_character_sets_are_those_of_the_tr3_appendix() -> None:
    assert len(EXTENDED_CHARACTERS) == 95  # printable ASCII U+0020..U+007E
    assert all(is_x12_text(chr(c)) for c in range(0x20, 0x7F))
    assert not any(is_x12_text(c) for c in ("\x00", "\t", "\x7f", "\xa0", "ë", "\ufffd"))


@pytest.mark.parametrize(
    ("name", "x12"),
    [
        ("Zoë", "Zoe"),
        ("ZOË", "ZOE"),
        ("Nuñez", "Nunez"),
        ("Straße", "Strasse"),
        ("Łódź", "Lodz"),
        ("Søren Ærø", "Soren AEro"),
        ("O\u2019Brien\u2013Smith", "O'Brien-Smith"),  # typographic apostrophe, en dash
        ("ﬁnn", "finn"),  # a ligature (NFKD compatibility form)
        ("\uff3a\uff4f\uff45", "Zoe"),  # full-width letters
        ("李", ""),  # no Latin form: dropped
        ("A\x00B\x7fC\tD", "ABC D"),
        ("PLAIN ASCII, UNCHANGED.", "PLAIN ASCII, UNCHANGED."),
    ],
)
def test_names_are_transliterated(name: str, x12: str) -> None:
    assert to_x12_text(name) == x12


def test_a_conversion_never_produces_a_delimiter_but_keeps_typed_ones_for_the_writer_to_refuse() -> None:
    # U+FF0A full-width asterisk, U+FF1A full-width colon, U+FF5E full-width tilde: NFKD would
    # give "*", ":" and "~".
    assert to_x12_text("A\uff0aB\uff1aC\uff5eD") == "ABCD"
    assert to_x12_text("A\uff5cB", delimiters="|") == "AB"
    assert to_x12_text("O*BRIEN ë") == "O*BRIEN e"  # the "*" was typed: the writer refuses it
    writer = X12Writer()
    writer.begin_interchange(
        sender_qualifier="ZZ",
        sender_id="S",
        receiver_qualifier="ZZ",
        receiver_id="R",
        control_number=1,
        when=WHEN,
    )
    with pytest.raises(X12WriteError) as info:
        writer.segment("NM1", "IL", "1", "O*BRIËN")
    assert info.value.code == "DELIMITER_IN_DATA" and info.value.element == "NM103"


@settings(max_examples=300, deadline=None)
@given(name=hst.text(max_size=40), delimiters=hst.sampled_from(DELIMITER_SETS))
def test_any_unicode_name_gives_a_valid_element_with_no_delimiter(name: str, delimiters: Delimiters) -> None:
    """Property: whatever the name, the writer either writes it as X12 text with no
    delimiter and the segment reads back intact, or refuses it, and then only because a
    delimiter (or CR/LF) was typed in the name itself, never one the conversion made."""
    writer = X12Writer(delimiters)
    writer.begin_interchange(
        sender_qualifier="ZZ",
        sender_id="S",
        receiver_qualifier="ZZ",
        receiver_id="R",
        control_number=1,
        when=WHEN,
    )
    typed = set(name) & {*delimiters.all(), "\r", "\n"}
    try:
        writer.segment("NM1", "IL", "1", name, "X")
    except X12WriteError as exc:
        assert exc.code == "DELIMITER_IN_DATA" and typed, (name, exc.code)
        return
    assert not typed
    converted = to_x12_text(name, delimiters=delimiters.all())
    assert is_x12_text(converted) and not set(converted) & delimiters.all()
    writer.end_interchange()
    text = writer.getvalue()
    assert text.isascii()
    (nm1,) = [s for s in read_text(text) if s.id == "NM1"]
    assert nm1.elements == ["NM1", "IL", "1", converted, "X"]


@settings(max_examples=100, deadline=None)
@given(hst.text(max_size=30))
def test_270_for_any_name_is_ascii(name: str) -> None:
    from tests.unit.edi.test_x270 import ENVELOPE, subscriber_inquiry

    member = Member(name or "X", "Zoë", member_id="SMT00000001", birth_date=date(1980, 1, 2), sex="F")
    try:
        text = generate_270([subscriber_inquiry(subscriber=member)], ENVELOPE)
    except X12WriteError as exc:
        assert exc.code in ("DELIMITER_IN_DATA", "EMPTY_SEGMENT")
        return
    assert text.isascii()


def test_bad_element_refs_and_character_findings() -> None:
    assert bad_element_refs(["NM1", "IL", "1", "DOE"]) == []
    assert bad_element_refs(["NM1", "IL", "1", "DOË", "JA\x00NE"]) == ["NM103", "NM104"]
    content = (ISA + "GS*HC*SEN\xffDER*RECEIVER*20240603*0930*1*X*005010X222A1~").encode("latin-1")
    findings = character_findings(content, file="in.x12")
    assert [(f.segment, f.element, f.file_ordinal) for f in findings] == [("GS", "GS02", 2)]
    assert all(f.value is None for f in findings)
    assert character_findings(ISA.encode()) == []
    # A control character used as a delimiter is not data.
    assert character_findings(ISA.replace("~", "\x1c").encode()) == []


def _with(segment: str) -> bytes:
    body = (
        "GS*HC*SENDER*RECEIVER*20240603*0930*1*X*005010X222A1~ST*837*0001*005010X222A1~"
        f"{segment}~SE*3*0001~GE*1*1~IEA*1*000000001~"
    )
    return (ISA + body).encode("utf-8")


def test_validator_names_the_element_and_the_999_rejects_it() -> None:
    report = validate(_with("ZZZ*A*B\u00ebC"), file="in.x12")
    bad = [f for f in report.findings if f.code == "X12.ELEMENT_INVALID_CHARACTER"]
    assert [(f.segment, f.element, f.ik4) for f in bad] == [("ZZZ", "ZZZ02", "6")]
    ack = acknowledge(report, control_number=7, when=WHEN)
    assert ack.kind == "999" and not ack.accepted and ack.text.isascii()
    (ts,) = parse_999(ack.text.encode()).acks[0].transaction_sets
    assert ts.status == "R"


@pytest.mark.parametrize("isa06", ["SEN\ufffd\ufffd\ufffdER       ", "SEN\x00DER        ", "\ufffd" * 15])
def test_isa_with_bad_characters_gets_a_ta1(isa06: str) -> None:
    text = ISA.replace("SENDER         ", isa06) + "IEA*0*000000001~"
    report = validate(text.encode("utf-8"), file="in.x12")
    assert any(f.element == "ISA06" and f.code == "X12.ISA_INVALID" for f in report.findings)
    ack = acknowledge(report, control_number=9, when=WHEN)
    assert ack.kind == "TA1" and ack.text.isascii() and "*R*006~" in ack.text


def test_an_isa13_that_cannot_be_echoed_is_a_lookup_error_not_a_crash() -> None:
    text = ISA.replace("000000001", "00000000\ufffd") + "IEA*0*000000001~"
    with pytest.raises(LookupError) as info:
        acknowledge(validate(text.encode("utf-8")), control_number=9, when=WHEN)
    assert "TA101" in str(info.value)
