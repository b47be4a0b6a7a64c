"""Streaming X12 tokenizer: delimiters from the ISA, segments one at a time.

The ISA segment is fixed width (106 characters in 5010), so its 4th character is the
element separator, ISA11 (position 83) the repetition separator, ISA16 (position 105)
the component separator and the character after it the segment terminator. Everything
else is read in chunks and split a chunk at a time, so memory stays flat however
large the file is and tokenizing costs about a microsecond per segment.
"""

from __future__ import annotations

import codecs
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

CHUNK_SIZE = 1 << 18  # 256 KiB: large enough to amortize, small enough to stay flat
ISA_LENGTH = 106
ISA_SCAN = 256  # how far an ISA whose fields were not padded is looked for its separators
_BOM = "\ufeff"
_WHITESPACE_BETWEEN_SEGMENTS = "\r\n"
# Blanks and tabs before a segment id (an indented file): never part of the id, so they
# are read past, and the ordinal of each such segment is reported (``indented``).
_INDENT = " \t"
_ANY_WHITESPACE = _WHITESPACE_BETWEEN_SEGMENTS + _INDENT
INDENT_START = frozenset(_INDENT)  # ``piece[:1] in INDENT_START``: the segment is indented


def strip_indent(piece: str) -> str:
    """A segment without the blanks, tabs and line breaks before its id."""
    return piece.lstrip(_ANY_WHITESPACE)


# Where an interchange may start after text that is not X12 (a banner, a pasted page):
# "ISA" at the start of a line, followed by a separator.
_ISA_AT_LINE_START = re.compile(r"(?:^|[\r\n])(ISA)(?=[^A-Za-z0-9\s])")
TEXT_BEFORE_ISA_SCAN = 1 << 16  # how much text before the first ISA is looked through


class ReaderNotes:
    """What the reader read past, for the caller to report (nothing here is data).

    ``indented``: 1-based ordinals of segments preceded by blanks or tabs (appended a
    block at a time, before the block is yielded; a consumer drains it as it goes).
    ``text_before_isa``: characters of text before the first ISA that were skipped.
    """

    __slots__ = ("indented", "text_before_isa")

    def __init__(self) -> None:
        self.indented: list[int] = []
        self.text_before_isa = 0


def _find_isa(text: str) -> int:
    """Offset of the first line starting with a readable ISA, or -1."""
    for match in _ISA_AT_LINE_START.finditer(text, 0, TEXT_BEFORE_ISA_SCAN):
        start = match.start(1)
        try:
            delimiters_from_isa(text[start : start + ISA_SCAN])
        except X12SyntaxError:
            continue
        return start
    return -1


@dataclass(frozen=True, slots=True)
class Delimiters:
    """The four X12 separators. ``repetition`` is ISA11 in 5010 (``^`` usually)."""

    element: str = "*"
    component: str = ":"
    repetition: str = "^"
    segment: str = "~"

    def all(self) -> frozenset[str]:
        return frozenset(c for c in (self.element, self.component, self.repetition, self.segment) if c)


class X12SyntaxError(Exception):
    """The input cannot be read as X12 at all (no ISA, truncated ISA, bad delimiters).

    Carries the coordinates a person needs: the file, the segment ordinal and the
    character offset where reading stopped.
    """

    def __init__(
        self,
        message: str,
        *,
        code: str = "X12_UNREADABLE",
        file: str | None = None,
        segment_ordinal: int | None = None,
        offset: int | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.file = file
        self.segment_ordinal = segment_ordinal
        self.offset = offset

    def to_dict(self) -> dict[str, object]:
        return {
            "code": self.code,
            "message": self.message,
            "file": self.file,
            "segment_ordinal": self.segment_ordinal,
            "offset": self.offset,
        }


@dataclass(slots=True)
class Segment:
    """One segment. ``elements[0]`` is the segment id, so ``elements[n]`` is element n.

    ``ordinal`` is the 1-based position of the segment in the file.
    """

    elements: list[str]
    ordinal: int
    delimiters: Delimiters

    @property
    def id(self) -> str:
        return self.elements[0]

    def __len__(self) -> int:
        return len(self.elements)

    def get(self, index: int, default: str = "") -> str:
        """Element ``index`` (1-based) or ``default`` when it is absent."""
        elements = self.elements
        return elements[index] if index < len(elements) else default

    def components(self, index: int) -> list[str]:
        """Element ``index`` split on the component separator ([] when absent or empty)."""
        value = self.get(index)
        return value.split(self.delimiters.component) if value else []

    def component(self, index: int, sub: int, default: str = "") -> str:
        """Component ``sub`` (1-based) of element ``index``."""
        parts = self.components(index)
        return parts[sub - 1] if 0 < sub <= len(parts) else default

    def repetitions(self, index: int) -> list[str]:
        value = self.get(index)
        rep = self.delimiters.repetition
        if not value:
            return []
        return value.split(rep) if rep else [value]

    def text(self) -> str:
        """The segment as it would be written, without the terminator."""
        return self.delimiters.element.join(self.elements)


def delimiters_from_isa(isa: str, *, file: str | None = None) -> Delimiters:
    """Read the separators from the start of an interchange (its ISA and a little more).

    The ISA is fixed-width (106 characters; ISA06/ISA08 15 wide), so the separators sit
    at fixed places. An ISA whose fields were not padded (a sender that trims blanks) is
    still unambiguous: its 16 elements are found by the element separator (its 4th
    character), ISA16 is the one character after the 16th separator and the segment
    terminator the character after that. Such a file is read, not refused, so no
    remittance is lost; the envelope checks report the wrong widths (TA1), and the 835
    parser says so too.
    """

    def fail(message: str, code: str) -> X12SyntaxError:
        return X12SyntaxError(message, code=code, file=file, segment_ordinal=1, offset=0)

    if not isa.startswith("ISA"):
        raise fail("input does not start with an ISA segment: not an X12 interchange", "ISA_MISSING")
    element = isa[3] if len(isa) > 3 else ""
    if not element or element.isalnum() or element.isspace():
        raise fail("ISA element separator (4th character) is a letter, digit or blank", "ISA_DELIMITERS")
    # ISA has 16 elements, so the 16th separator sits at offset 103 in a fixed-width ISA.
    position = -1
    for _ in range(16):
        position = isa.find(element, position + 1, ISA_SCAN)
        if position < 0:
            break
    if position < 0 or len(isa) < position + 3:
        raise fail("ISA must be 106 characters of 16 fixed-width elements (ISA06/ISA08 15 wide)", "ISA_WIDTH")
    component = isa[position + 1]
    segment = isa[position + 2]
    if position == 103:
        repetition = isa[82]
    else:
        # Not fixed-width: ISA11 is the 11th element, wherever it ends up.
        eleventh = isa[3 : position + 1].split(element)[11]
        repetition = eleventh if len(eleventh) == 1 else ""
        if segment in ("\r", "\n") or segment.isalnum() or segment == " ":
            raise fail(
                "ISA must be 106 characters of 16 fixed-width elements (ISA06/ISA08 15 wide)", "ISA_WIDTH"
            )
    if component.isalnum() or segment.isalnum() or component == " ":
        raise fail("ISA component or segment separator is a letter or digit", "ISA_DELIMITERS")
    if len({element, component, segment}) != 3:
        raise fail("ISA element, component and segment separators must be distinct", "ISA_DELIMITERS")
    # 4010 carries "U" (the standards identifier) in ISA11: no repetition separator.
    if repetition.isalnum() or repetition == " " or repetition in (element, component, segment):
        repetition = ""
    return Delimiters(element=element, component=component, repetition=repetition, segment=segment)


Source = str | bytes | os.PathLike[str] | BinaryIO


def _open_chunks(source: Source) -> tuple[Iterator[str], str | None]:
    """Decode any source to an iterator of text chunks (UTF-8, invalid bytes replaced).

    A ``str`` that starts with ISA (after an optional BOM) and is not an existing path
    is X12 text itself.
    """
    if isinstance(source, bytes):
        return iter([source.decode("utf-8", errors="replace")]), None
    if isinstance(source, str) and source.lstrip(_BOM)[:3] == "ISA" and not os.path.exists(source):
        return iter([source]), None
    if isinstance(source, str | os.PathLike):
        name: str | None = os.fspath(source)
        fh: BinaryIO = open(name, "rb")  # noqa: SIM115 - closed by the generator below
    else:
        fh = source
        name = getattr(source, "name", None)
        if not isinstance(name, str):
            name = None

    def chunks() -> Iterator[str]:
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        try:
            while block := fh.read(CHUNK_SIZE):
                if text := decoder.decode(block):
                    yield text
            if tail := decoder.decode(b"", final=True):
                yield tail
        finally:
            if fh is not source:
                fh.close()

    return chunks(), name


def iter_blocks(
    source: Source, *, file: str | None = None, notes: ReaderNotes | None = None
) -> Iterator[tuple[list[str], Delimiters]]:
    """Yield ``(segments, delimiters)`` pairs, a whole chunk of segments at a time.

    Each segment is its raw text without the terminator. Splitting a chunk at once
    rather than slicing segment by segment is what lets the parsers run at tens of MB/s
    (about a microsecond per segment). A later ISA restarts the delimiter detection, so
    interchanges with different separators in one file read correctly.

    White space between segments is never data: CR/LF after a terminator is read past
    silently (universal practice). Blanks and tabs before a segment id (an indented
    file) are not X12 either (X12.6 puts the next segment id right after the
    terminator); finding them would cost a scan of every block, so a piece may still
    start with them and each consumer strips them where it looks a segment id up
    (:func:`strip_indent`; :func:`read_segments` does it for every segment, the 835
    parser only for ids it does not know), so no segment is lost. Where this function
    strips them itself (a block or an interchange that starts indented), the segment's
    1-based ordinal is appended to ``notes.indented``; consumers append theirs, so the
    list ascends. Text before the first ISA (a banner, a pasted page) is skipped when a
    line further on starts with a readable ISA: the interchange is read, and
    ``notes.text_before_isa`` says how many characters were skipped.
    """
    indented = notes.indented if notes is not None else None
    chunks, name = _open_chunks(source)
    file = file or name
    buffer = ""
    exhausted = False
    ordinal = 0
    delimiters = Delimiters()

    def fill() -> bool:
        nonlocal buffer, exhausted
        if not exhausted:
            for text in chunks:
                buffer += text
                return True
            exhausted = True
        return False

    while True:
        # The buffer starts at a segment boundary here: skip CR/LF (and a BOM and blanks
        # before the first ISA), then take the separators from an ISA if one starts here.
        while len(buffer) < ISA_SCAN and fill():
            pass
        if ordinal == 0:
            buffer = buffer.lstrip(_WHITESPACE_BETWEEN_SEGMENTS + _BOM + _INDENT)
            if not buffer:
                raise X12SyntaxError("input is empty", code="EMPTY", file=file, offset=0)
            if buffer[:3] != "ISA":
                while len(buffer) < TEXT_BEFORE_ISA_SCAN and fill():
                    pass
                start = _find_isa(buffer)
                if start > 0:
                    if notes is not None:
                        notes.text_before_isa = start
                    buffer = buffer[start:]
        elif buffer[:1] in _ANY_WHITESPACE:
            stripped = buffer.lstrip(_ANY_WHITESPACE)
            skipped = buffer[: len(buffer) - len(stripped)]
            if indented is not None and stripped and (" " in skipped or "\t" in skipped):
                indented.append(ordinal + 1)
            buffer = stripped
        if ordinal == 0 or buffer[:3] == "ISA":
            delimiters = delimiters_from_isa(buffer[:ISA_SCAN], file=file)
        terminator = delimiters.segment
        end = buffer.rfind(terminator)
        while end < 0 and fill():
            end = buffer.rfind(terminator)
        if end < 0:
            if buffer.strip(_ANY_WHITESPACE):
                raise X12SyntaxError(
                    "the last segment has no segment terminator (file truncated?)",
                    code="SEGMENT_UNTERMINATED",
                    file=file,
                    segment_ordinal=ordinal + 1,
                )
            return
        block = buffer[:end]
        buffer = buffer[end + 1 :]
        pieces = block.split(terminator)
        if "\n" in block or "\r" in block:
            pieces = [piece.strip(_WHITESPACE_BETWEEN_SEGMENTS) for piece in pieces]
        if "ISA" in block:
            for index in range(1, len(pieces)):
                piece = pieces[index]
                if piece[:3] == "ISA" or (piece[:1] in INDENT_START and strip_indent(piece)[:3] == "ISA"):
                    # Go back to the top and re-read the separators from this ISA
                    # before splitting what follows it.
                    buffer = terminator.join(pieces[index:]) + terminator + buffer
                    del pieces[index:]
                    break
        ordinal += len(pieces)
        yield pieces, delimiters


def read_element_lists(
    source: Source, *, file: str | None = None, notes: ReaderNotes | None = None
) -> Iterator[list[str]]:
    """Yield each segment as its list of elements (``[0]`` is the segment id): the fast path."""
    indented = notes.indented if notes is not None else None
    ordinal = 0
    for pieces, delimiters in iter_blocks(source, file=file, notes=notes):
        separator = delimiters.element
        for piece in pieces:
            ordinal += 1
            if piece[:1] in INDENT_START:
                piece = strip_indent(piece)
                if indented is not None:
                    indented.append(ordinal)
            yield piece.split(separator)


def read_segments(
    source: Source, *, file: str | None = None, notes: ReaderNotes | None = None
) -> Iterator[Segment]:
    """Yield every segment of ``source`` (a path, bytes, X12 text or a binary file object).

    Delimiters are taken from the first ISA and re-read at every later ISA. A UTF-8 BOM
    and CR/LF between segments are ignored; a file on one line works too; blanks and
    tabs before a segment id, and text before the first ISA, are read past and reported
    in ``notes`` (see :func:`iter_blocks`). Raises :class:`X12SyntaxError` when the input
    is not X12 at all.
    """
    indented = notes.indented if notes is not None else None
    ordinal = 0
    for pieces, delimiters in iter_blocks(source, file=file, notes=notes):
        separator = delimiters.element
        for piece in pieces:
            ordinal += 1
            if piece[:1] in INDENT_START:
                piece = strip_indent(piece)
                if indented is not None:
                    indented.append(ordinal)
            yield Segment(piece.split(separator), ordinal, delimiters)


def read_text(text: str, *, file: str | None = None) -> Iterator[Segment]:
    """Tokenize X12 held in a string."""
    return read_segments(text if text.lstrip(_BOM)[:3] == "ISA" else text.encode(), file=file)
