"""X12Writer: fixed-width ISA, counts, control numbers, delimiter refusal, amounts."""

from __future__ import annotations

import io
from datetime import datetime
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as hst

from edi.charset import to_x12_text
from edi.reader import Delimiters, read_text
from edi.writer import X12WriteError, X12Writer, format_amount, format_decimal

WHEN = datetime(2024, 3, 5, 14, 7)


def _open(writer: X12Writer, *, control: int = 1) -> None:
    writer.begin_interchange(
        sender_qualifier="ZZ",
        sender_id="SUBMITTERID",
        receiver_qualifier="ZZ",
        receiver_id="RECEIVERID",
        control_number=control,
        when=WHEN,
    )


def _group(writer: X12Writer, control: int) -> None:
    writer.begin_group(
        functional_id="HC",
        sender_code="SENDER",
        receiver_code="RECEIVER",
        control_number=control,
        version="005010X222A1",
        when=WHEN,
    )


def test_isa_is_106_characters_with_fixed_widths_and_padded_control_number() -> None:
    w = X12Writer()
    _open(w, control=42)
    isa = w.getvalue()
    assert len(isa) == 106  # the terminator is character 106
    fields = isa[:-1].split("*")
    assert len(fields) == 17
    assert [len(f) for f in fields[1:]] == [2, 10, 2, 10, 2, 15, 2, 15, 6, 4, 1, 5, 9, 1, 1, 1]
    assert fields[6] == "SUBMITTERID    "
    assert fields[9:11] == ["240305", "1407"]
    assert fields[11] == "^" and fields[12] == "00501"
    assert fields[13] == "000000042"
    assert fields[14] == "0" and fields[15] == "P" and fields[16] == ":"


def test_isa_reflects_custom_delimiters_and_reader_reads_them_back() -> None:
    delims = Delimiters(element="|", component=">", repetition="`", segment="\n")
    w = X12Writer(delims)
    _open(w, control=7)
    _group(w, 7)
    w.begin_transaction("837", "0001", "005010X222A1")
    w.segment("NM1", "41", "2", "A*B~C:D^E")  # the default delimiters are plain data here
    w.end_transaction()
    w.end_group()
    w.end_interchange()
    segments = list(read_text(w.getvalue()))
    assert segments[0].delimiters == delims
    assert segments[3].get(3) == "A*B~C:D^E"
    assert [s.id for s in segments] == ["ISA", "GS", "ST", "NM1", "SE", "GE", "IEA"]


def test_counts_for_several_groups_and_transaction_sets() -> None:
    w = X12Writer(line_breaks=True)
    _open(w, control=123456789)
    for group in (1, 2):
        _group(w, group)
        for st in range(3):
            w.begin_transaction("837", f"{group}{st:04d}", "005010X222A1")
            for n in range(st + 1):
                w.segment("REF", "EA", str(n))
            w.end_transaction()
        w.end_group()
    w.end_interchange()
    segments = list(read_text(w.getvalue()))
    ses = [s for s in segments if s.id == "SE"]
    assert [s.get(1) for s in ses] == ["3", "4", "5"] * 2
    sts = [s for s in segments if s.id == "ST"]
    assert [s.get(2) for s in sts] == [s.get(2) for s in ses]
    ges = [s for s in segments if s.id == "GE"]
    assert [(g.get(1), g.get(2)) for g in ges] == [("3", "1"), ("3", "2")]
    iea = segments[-1]
    assert (iea.get(1), iea.get(2)) == ("2", "123456789")
    assert w.getvalue().count("\n") == len(segments)


def test_delimiter_in_data_raises_naming_segment_and_element_and_writes_nothing() -> None:
    w = X12Writer()
    _open(w)
    _group(w, 1)
    w.begin_transaction("837", "0001", "005010X222A1")
    before = w.getvalue()
    for bad in ("O*BRIEN", "SMITH~JONES", "A:B", "X^Y", "LINE\nBREAK"):
        with pytest.raises(X12WriteError) as info:
            w.segment("NM1", "IL", "1", bad, "JOHN")
        assert info.value.segment == "NM1"
        assert info.value.element == "NM103"
        assert info.value.code == "DELIMITER_IN_DATA"
        assert bad not in info.value.message  # PHI never in messages
        assert info.value.to_dict()["element"] == "NM103"
    with pytest.raises(X12WriteError) as info:
        w.segment("SV1", ("HC", "99213", "2*5"), "100")
    assert info.value.element == "SV101-3"
    assert w.getvalue() == before
    assert w.segment_count == 1
    w.end_transaction()
    assert w.getvalue().endswith("SE*2*0001~")  # ST and SE only


def test_trailing_empty_elements_and_components_are_dropped() -> None:
    w = X12Writer()
    _open(w)
    start = len(w.getvalue())
    w.segment("NM1", "85", "2", "CLINIC", None, "", None, None, "XX", "1234567893", "", None)
    w.segment("SV1", ("HC", "99213", "25", "", None), Decimal("100.00"), "UN", 1, None, None, ("1", None))
    w.segment("CLM", "PCN", 100, None, None, ("11", "B", "1"), "", None)
    assert (
        w.getvalue()[start:]
        == "NM1*85*2*CLINIC*****XX*1234567893~SV1*HC:99213:25*100*UN*1***1~CLM*PCN*100***11:B:1~"
    )


def test_all_empty_segment_is_refused() -> None:
    w = X12Writer()
    _open(w)
    with pytest.raises(X12WriteError) as info:
        w.segment("REF", None, "")
    assert info.value.code == "EMPTY_SEGMENT"


def test_floats_are_refused_everywhere() -> None:
    w = X12Writer()
    _open(w)
    with pytest.raises(X12WriteError) as info:
        w.segment("AMT", "D", 12.5)  # type: ignore[arg-type]
    assert info.value.element == "AMT02"
    with pytest.raises(X12WriteError):
        w.segment("SV1", ("HC", 1.5))  # type: ignore[arg-type]
    with pytest.raises(X12WriteError):
        format_amount(12.5)  # type: ignore[arg-type]
    with pytest.raises(X12WriteError):
        format_amount(True)


@pytest.mark.parametrize(
    ("cents", "text"),
    [(12550, "125.5"), (0, "0"), (12500, "125"), (-325, "-3.25"), (5, "0.05"), (-50, "-0.5"), (1, "0.01")],
)
def test_format_amount(cents: int, text: str) -> None:
    assert format_amount(cents) == text
    assert Decimal(text) * 100 == cents


def test_format_decimal_has_no_exponent_or_trailing_zeros() -> None:
    assert format_decimal(Decimal("125.50")) == "125.5"
    assert format_decimal(Decimal("1E+3")) == "1000"
    assert format_decimal(Decimal("0.000")) == "0"
    assert format_decimal(Decimal("-0")) == "0"
    assert format_decimal(Decimal("2.25")) == "2.25"
    with pytest.raises(X12WriteError):
        format_decimal(Decimal("NaN"))


def test_hl_numbering_restarts_per_transaction_set() -> None:
    w = X12Writer()
    _open(w)
    _group(w, 1)
    w.begin_transaction("837", "0001", "005010X222A1")
    assert w.hl(None, "20", True) == 1
    assert w.hl(1, "22", False) == 2
    w.end_transaction()
    w.begin_transaction("837", "0002", "005010X222A1")
    assert w.hl(None, "20", False) == 1
    w.end_transaction()
    text = w.getvalue()
    assert "HL*1**20*1~HL*2*1*22*0~" in text
    assert "HL*1**20*0~" in text


def test_envelope_calls_out_of_order_are_refused() -> None:
    w = X12Writer()
    with pytest.raises(X12WriteError):
        w.segment("REF", "EA", "1")
    with pytest.raises(X12WriteError):
        _group(w, 1)
    _open(w)
    with pytest.raises(X12WriteError):
        w.begin_transaction("837", "0001", None)
    _group(w, 1)
    with pytest.raises(X12WriteError):
        w.end_interchange()
    w.begin_transaction("837", "0001", None)
    with pytest.raises(X12WriteError):
        w.end_group()
    with pytest.raises(X12WriteError) as info:
        w.begin_transaction("837", "0002", None)
    assert info.value.code == "STATE"


@pytest.mark.parametrize(
    ("field", "value"),
    [("sender_id", "X" * 16), ("sender_id", ""), ("sender_qualifier", "ZZZ"), ("receiver_id", "A*B")],
)
def test_isa_fields_are_checked(field: str, value: str) -> None:
    kwargs = {
        "sender_qualifier": "ZZ",
        "sender_id": "S",
        "receiver_qualifier": "ZZ",
        "receiver_id": "R",
        "control_number": 1,
    }
    kwargs[field] = value
    w = X12Writer()
    with pytest.raises(X12WriteError) as info:
        w.begin_interchange(**kwargs)  # type: ignore[arg-type]
    assert info.value.segment == "ISA"
    assert w.getvalue() == ""


@pytest.mark.parametrize("control", [0, 1_000_000_000, -1, True])
def test_control_numbers_out_of_range_are_refused(control: int) -> None:
    w = X12Writer()
    with pytest.raises(X12WriteError) as info:
        w.begin_interchange(
            sender_qualifier="ZZ",
            sender_id="S",
            receiver_qualifier="ZZ",
            receiver_id="R",
            control_number=control,
        )
    assert info.value.element == "ISA13"


def test_st02_length_is_checked() -> None:
    w = X12Writer()
    _open(w)
    _group(w, 1)
    with pytest.raises(X12WriteError) as info:
        w.begin_transaction("837", "1", "005010X222A1")
    assert info.value.element == "ST02"


def test_bad_delimiter_sets_are_refused() -> None:
    with pytest.raises(X12WriteError):
        X12Writer(Delimiters(element="*", component="*", repetition="^", segment="~"))
    with pytest.raises(X12WriteError):
        X12Writer(Delimiters(element="A", component=":", repetition="^", segment="~"))


def test_streaming_writer_matches_in_memory_output() -> None:
    def build(writer: X12Writer) -> None:
        _open(writer)
        _group(writer, 1)
        for st in range(3):
            writer.begin_transaction("837", f"{st + 1:04d}", "005010X222A1")
            for n in range(2000):
                writer.segment("REF", "EA", str(n))
            writer.end_transaction()
        writer.end_group()
        writer.end_interchange()

    memory = X12Writer()
    build(memory)
    sink = io.StringIO()
    streaming = X12Writer(stream=sink)
    build(streaming)
    assert sink.getvalue() == memory.getvalue()
    out = io.StringIO()
    memory.write_to(out)
    assert out.getvalue() == memory.getvalue()
    with pytest.raises(X12WriteError):
        streaming.getvalue()


@given(hst.lists(hst.text(max_size=12), min_size=1, max_size=6))
@settings(max_examples=200, deadline=None)
def test_any_text_either_refused_or_read_back_unchanged(values: list[str]) -> None:
    """Whatever the data, the segment count never changes: refused, or read back as the
    X12 text of the value (``edi.charset.to_x12_text``: unchanged when already X12 text)."""
    w = X12Writer()
    _open(w)
    _group(w, 1)
    w.begin_transaction("837", "0001", "005010X222A1")
    try:
        w.segment("NM1", "IL", *values)
    except X12WriteError as exc:
        assert exc.code in ("DELIMITER_IN_DATA", "EMPTY_SEGMENT")
        assert exc.segment == "NM1"
        written = 0
    else:
        written = 1
    w.end_transaction()
    w.end_group()
    w.end_interchange()
    segs = list(read_text(w.getvalue()))
    assert [s.id for s in segs].count("NM1") == written
    assert segs[-3].get(1) == str(2 + written)  # SE01: ST (+ NM1) + SE
    if written:
        nm1 = segs[3].elements[2:]
        expected = [to_x12_text(v) for v in values]
        while expected and not expected[-1]:
            expected.pop()
        assert nm1 == expected
