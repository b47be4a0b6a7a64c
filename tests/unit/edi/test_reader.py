"""The streaming tokenizer: delimiters from the ISA, BOM, CR/LF, one-line files."""

from __future__ import annotations

import io

import pytest

from edi import reader
from edi.reader import Delimiters, X12SyntaxError, read_segments, read_text

ISA = "ISA*00*          *00*          *ZZ*SUBMITTERID    *ZZ*RECEIVERID     *230101*1253*^*00501*000000001*0*T*:~"
BODY = "GS*HC*SENDER*RECEIVER*20230101*1253*1*X*005010X222A1~ST*837*0001*005010X222A1~SV1*HC:99213:25*100*UN*1~SE*3*0001~GE*1*1~IEA*1*000000001~"


def test_isa_is_106_characters_in_the_fixture():
    assert len(ISA) == 106


def test_delimiters_come_from_the_isa():
    segs = list(read_text(ISA + BODY))
    assert segs[0].delimiters == Delimiters("*", ":", "^", "~")
    assert [s.id for s in segs] == ["ISA", "GS", "ST", "SV1", "SE", "GE", "IEA"]
    sv1 = segs[3]
    assert sv1.components(1) == ["HC", "99213", "25"]
    assert sv1.component(1, 3) == "25"
    assert sv1.get(2) == "100"
    assert sv1.get(9) == ""


def test_other_delimiters_and_4010_repetition():
    isa = ISA.replace("*", "|").replace("|^|", "|U|").replace(":~", "<\n")
    text = isa + BODY.replace("*", "|").replace("~", "\n").replace(":", "<")
    segs = list(read_text(text))
    assert segs[0].delimiters == Delimiters("|", "<", "", "\n")
    assert segs[3].components(1) == ["HC", "99213", "25"]
    assert segs[-1].id == "IEA"


@pytest.mark.parametrize(
    "text",
    [
        "\ufeff" + ISA + BODY,
        ISA + "\r\n" + BODY.replace("~", "~\r\n"),
        ISA + BODY.replace("~", "~\n"),
    ],
    ids=["bom", "crlf", "lf"],
)
def test_bom_and_line_breaks_are_ignored(text):
    assert [s.id for s in read_text(text)] == ["ISA", "GS", "ST", "SV1", "SE", "GE", "IEA"]


def test_bytes_path_and_file_objects_give_the_same_segments(tmp_path):
    data = (ISA + BODY).encode()
    path = tmp_path / "x.837"
    path.write_bytes(data)
    expected = [s.elements for s in read_text(ISA + BODY)]
    assert [s.elements for s in read_segments(data)] == expected
    assert [s.elements for s in read_segments(path)] == expected
    assert [s.elements for s in read_segments(io.BytesIO(data))] == expected


def test_small_chunks_stream_across_boundaries(monkeypatch):
    monkeypatch.setattr(reader, "CHUNK_SIZE", 7)
    data = ("\ufeff" + ISA + "\r\n" + BODY * 3).encode()
    segs = list(read_segments(io.BytesIO(data)))
    assert [s.id for s in segs][:7] == ["ISA", "GS", "ST", "SV1", "SE", "GE", "IEA"]
    assert len(segs) == 1 + 6 * 3
    assert segs[3].ordinal == 4


def test_second_interchange_with_other_delimiters():
    second = ISA.replace("*", "|").replace(":~", "<!") + "IEA|0|000000001!"
    segs = list(read_text(ISA + "IEA*0*000000001~" + second))
    assert [s.id for s in segs] == ["ISA", "IEA", "ISA", "IEA"]
    assert segs[3].elements == ["IEA", "0", "000000001"]
    assert segs[3].delimiters.segment == "!"


def test_ordinals_and_element_lists():
    segs = list(read_text(ISA + BODY))
    assert [s.ordinal for s in segs] == list(range(1, 8))
    assert list(reader.read_element_lists((ISA + BODY).encode())) == [s.elements for s in segs]


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"", "EMPTY"),
        (b"   \r\n", "EMPTY"),
        (b"GS*HC*X~", "ISA_MISSING"),
        (b"hello world, this is not x12", "ISA_MISSING"),
        (ISA[:50].encode(), "ISA_WIDTH"),
        (ISA.replace("*", "A").encode(), "ISA_DELIMITERS"),
        ((ISA + "GS*HC*X").encode(), "SEGMENT_UNTERMINATED"),
    ],
    ids=["empty", "blank", "no-isa", "prose", "short-isa", "alnum-delims", "truncated"],
)
def test_unreadable_input_raises_a_structured_error(data, code):
    with pytest.raises(X12SyntaxError) as caught:
        list(read_segments(data))
    assert caught.value.code == code
    assert caught.value.to_dict()["message"]


def test_invalid_utf8_is_replaced_not_fatal():
    data = (ISA + "NM1*IL*1*DOE").encode() + b"\xff\xfe" + b"~IEA*0*000000001~"
    segs = list(read_segments(data))
    assert segs[1].get(3).startswith("DOE")
    assert "\ufffd" in segs[1].get(3)


# -- nothing is dropped: white space, text before the ISA, an ISA that is not padded ----------


def test_indented_segments_are_read_and_reported_by_ordinal():
    """Blanks and tabs before segment ids (an indented file) are never part of an id: every
    segment is read, and the ordinal of each indented one is reported (issue 17, D1)."""
    lines = (ISA + BODY).replace("~", "~\n").splitlines()
    text = lines[0] + "\n" + "".join(f"  \t{line}\n" for line in lines[1:4]) + "\n".join(lines[4:]) + "\n"
    notes = reader.ReaderNotes()
    segs = list(read_segments(text.encode(), notes=notes))
    assert [s.id for s in segs] == ["ISA", "GS", "ST", "SV1", "SE", "GE", "IEA"]
    assert notes.indented == [2, 3, 4]
    assert segs[3].components(1) == ["HC", "99213", "25"]


def test_indentation_without_line_breaks_and_across_blocks(monkeypatch):
    monkeypatch.setattr(reader, "CHUNK_SIZE", 64)
    body = BODY.replace("SV1*HC:99213:25*100*UN*1~", "SV1*HC:99213:25*100*UN*1~" * 40)
    text = ISA + " " + body.replace("~", "~ ")  # a blank after every terminator, chunks of 64 bytes
    notes = reader.ReaderNotes()
    segs = list(read_segments(io.BytesIO(text.encode()), notes=notes))
    assert [s.id for s in segs] == ["ISA", "GS", "ST", *["SV1"] * 40, "SE", "GE", "IEA"]
    assert notes.indented == list(range(2, 47))


def test_an_indented_second_interchange_rereads_its_own_separators():
    second = (ISA + BODY).replace("*", "|").replace(":", "<").replace("~", "!")
    text = ISA + BODY + "\n\t" + second.replace("!", "!\n\t")
    notes = reader.ReaderNotes()
    segs = list(read_segments(text.encode(), notes=notes))
    assert [s.id for s in segs] == ["ISA", "GS", "ST", "SV1", "SE", "GE", "IEA"] * 2
    assert segs[7].delimiters.element == "|" and segs[10].components(1) == ["HC", "99213", "25"]
    assert notes.indented == list(range(8, 15))


def test_text_before_the_isa_is_skipped_and_counted():
    prose = "Business scenario 1: a payer pays two claims.\r\n\r\nISA in prose is not an ISA.\r\n"
    notes = reader.ReaderNotes()
    segs = list(read_segments((prose + ISA + BODY).encode(), notes=notes))
    assert [s.id for s in segs][:2] == ["ISA", "GS"] and len(segs) == 7
    assert notes.text_before_isa == len(prose)


def test_prose_without_any_isa_is_still_not_x12():
    with pytest.raises(X12SyntaxError) as caught:
        list(read_segments(b"Business scenario 1\nno interchange follows\nISAAC*wrote this\n"))
    assert caught.value.code == "ISA_MISSING"


def test_an_isa_whose_fields_are_not_padded_is_read_by_its_separators():
    short = ISA.replace("*ZZ*SUBMITTERID    ", "*ZZ*SUB").replace("*          *", "* *")
    segs = list(read_segments((short + BODY).encode()))
    assert [s.id for s in segs] == ["ISA", "GS", "ST", "SV1", "SE", "GE", "IEA"]
    assert segs[0].delimiters == Delimiters("*", ":", "^", "~")
    assert segs[0].get(6) == "SUB" and segs[3].components(1) == ["HC", "99213", "25"]
