"""Streaming X12 tokenizer: delimiters from the ISA, segments one at a time.

The ISA segment is fixed width (106 characters in 5010), so its 4th character is the
element separator, ISA11 (position 83) the repetition separator, ISA16 (position 105)
the component separator and the character after it the segment terminator. Everything
else is read in chunks, so memory stays flat however large the file is.
"""

from __future__ import annotations

import codecs
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

CHUNK_SIZE = 1 << 20
ISA_LENGTH = 106
_BOM = "\ufeff"
_WHITESPACE_BETWEEN_SEGMENTS = "\r\n"


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

    ``ordinal`` is the 1-based position of the segment in the file; ``offset`` the
    character offset where it starts (after any BOM).
    """

    elements: list[str]
    ordinal: int
    offset: int
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
    """Read the separators from the first 106 characters of an interchange."""

    def fail(message: str, code: str) -> X12SyntaxError:
        return X12SyntaxError(message, code=code, file=file, segment_ordinal=1, offset=0)

    if not isa.startswith("ISA"):
        raise fail("input does not start with an ISA segment: not an X12 interchange", "ISA_MISSING")
    element = isa[3] if len(isa) > 3 else ""
    if not element or element.isalnum() or element.isspace():
        raise fail("ISA element separator (4th character) is a letter, digit or blank", "ISA_DELIMITERS")
    # ISA has 16 fixed-width elements, so the 16th separator sits at offset 103.
    position = -1
    for _ in range(16):
        position = isa.find(element, position + 1, ISA_LENGTH)
        if position < 0:
            break
    if len(isa) < ISA_LENGTH or position != 103:
        raise fail("ISA must be 106 characters of 16 fixed-width elements (ISA06/ISA08 15 wide)", "ISA_WIDTH")
    repetition = isa[82]
    component = isa[104]
    segment = isa[105]
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
    """Decode any source to an iterator of text chunks (UTF-8, invalid bytes replaced)."""
    if isinstance(source, bytes):
        return iter([source.decode("utf-8", errors="replace")]), None
    if isinstance(source, str | os.PathLike):
        name = os.fspath(source)
        fh: BinaryIO = open(name, "rb")  # noqa: SIM115 - closed by the generator below
    else:
        fh = source
        name = getattr(source, "name", None)
        if not isinstance(name, str):
            name = None

    def chunks() -> Iterator[str]:
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        try:
            while True:
                block = fh.read(CHUNK_SIZE)
                if not block:
                    tail = decoder.decode(b"", final=True)
                    if tail:
                        yield tail
                    return
                text = decoder.decode(block)
                if text:
                    yield text
        finally:
            if fh is not source:
                fh.close()

    return chunks(), name


def read_text(text: str, *, file: str | None = None) -> Iterator[Segment]:
    """Tokenize X12 held in a string."""
    return _tokenize(iter([text]), file)


def read_segments(source: Source, *, file: str | None = None) -> Iterator[Segment]:
    """Yield every segment of ``source`` (a path, bytes, or a binary file object).

    Delimiters are taken from the first ISA and re-read at every later ISA, so a file
    holding several interchanges with different separators reads correctly. A UTF-8
    BOM and CR/LF between segments are ignored; a file on one line works too.
    Raises :class:`X12SyntaxError` when the input is not X12 at all.
    """
    if isinstance(source, str) and not os.path.exists(source) and source.lstrip(_BOM).startswith("ISA"):
        return read_text(source, file=file)
    chunks, name = _open_chunks(source)
    return _tokenize(chunks, file or name)


def _tokenize(chunks: Iterator[str], file: str | None) -> Iterator[Segment]:
    buffer = ""
    consumed = 0  # characters dropped from the front of buffer so far
    ordinal = 0
    delimiters: Delimiters | None = None
    first = True
    exhausted = False

    def fill() -> bool:
        nonlocal buffer, exhausted
        if exhausted:
            return False
        try:
            buffer += next(chunks)
            return True
        except StopIteration:
            exhausted = True
            return False

    while True:
        # Skip inter-segment whitespace (CR/LF, and the BOM before the first ISA).
        pos = 0
        while True:
            while pos < len(buffer) and (
                buffer[pos] in _WHITESPACE_BETWEEN_SEGMENTS
                or (ordinal == 0 and (buffer[pos] == _BOM or buffer[pos] in " \t"))
            ):
                pos += 1
            if pos < len(buffer) or not fill():
                break
        if pos:
            buffer = buffer[pos:]
            consumed += pos
        if not buffer:
            if first:
                raise X12SyntaxError("input is empty", code="EMPTY", file=file, offset=0)
            return
        if buffer.startswith("ISA") or first or (len(buffer) < 3 and not exhausted):
            while len(buffer) < ISA_LENGTH and fill():
                pass
            if buffer.startswith("ISA") or first:
                delimiters = delimiters_from_isa(buffer[:ISA_LENGTH], file=file)
                first = False
        assert delimiters is not None
        end = buffer.find(delimiters.segment)
        while end < 0 and fill():
            end = buffer.find(delimiters.segment)
        if end < 0:
            text = buffer.strip(_WHITESPACE_BETWEEN_SEGMENTS + " ")
            if text:
                ordinal += 1
                raise X12SyntaxError(
                    "the last segment has no segment terminator (file truncated?)",
                    code="SEGMENT_UNTERMINATED",
                    file=file,
                    segment_ordinal=ordinal,
                    offset=consumed,
                )
            return
        raw = buffer[:end]
        ordinal += 1
        # Files on one line per segment sometimes put the terminator then CR/LF; raw
        # never holds them, but a stray CR/LF *before* a terminator is data we strip.
        if raw and raw[-1] in _WHITESPACE_BETWEEN_SEGMENTS:
            raw = raw.rstrip(_WHITESPACE_BETWEEN_SEGMENTS)
        yield Segment(raw.split(delimiters.element), ordinal, consumed, delimiters)
        buffer = buffer[end + 1 :]
        consumed += end + 1
