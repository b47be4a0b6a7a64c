"""The X12 character sets: what may appear in an element, and text converted to fit.

The 5010 TR3s (Appendix B, B.1.1.2.1 Basic Character Set and B.1.1.2.2 Extended
Character Set, from X12.6 section 3.3) allow:

- basic: ``A-Z 0-9``, space and ``! " & ' ( ) * + , - . / : ; ? =``;
- extended: the basic set plus ``a-z % @ [ ] _ { } \\ | < > ~ ^ ` # $``, which together
  are exactly the printable ASCII characters U+0020..U+007E. "Select language
  characters" (Ñ, Ü ...) are allowed only by agreement between the trading partners,
  and we have no such agreement with any clearinghouse, so none are sent.

Two directions, one module:

- :func:`to_x12_text` is the ONE conversion every X12 writer applies to outgoing text
  (:class:`edi.writer.X12Writer` calls it for every element it writes, so the 837P,
  837I, 270, 271, 999 and TA1 writers all share it): letters are transliterated
  (``Zoë`` → ``Zoe``, ``Straße`` → ``Strasse``, ``Łódź`` → ``Lodz``), typographic
  punctuation becomes its ASCII form, and anything that still cannot be mapped is
  dropped. Case is left alone (the writer never changed case, and the data we send is
  uppercased where the API stores it so). A conversion never *produces* a delimiter
  (a full-width asterisk U+FF0A is dropped, not turned into ``*``); a delimiter typed in the
  data itself is left for the writer, which refuses it (it would change the segment
  count).
- :func:`bad_characters` finds the characters of an inbound value that are outside the
  sets, so the validator can report file, segment and element and reject it (999 IK4
  code 6, or a TA1 for the ISA).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

from edi.findings import Finding, error
from edi.reader import X12SyntaxError, read_segments

__all__ = [
    "BASIC_CHARACTERS",
    "EXTENDED_CHARACTERS",
    "bad_characters",
    "bad_element_refs",
    "character_findings",
    "is_x12_text",
    "to_x12_text",
]

BASIC_CHARACTERS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 !\"&'()*+,-./:;?=")
EXTENDED_CHARACTERS = BASIC_CHARACTERS | frozenset("abcdefghijklmnopqrstuvwxyz%@[]_{}\\|<>~^`#$")

# Everything outside the extended set: control characters, DEL and every non-ASCII code point.
_OUTSIDE = re.compile(r"[^\x20-\x7e]")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# Control bytes other than CR/LF (which may separate segments) in a raw file.
_CONTROL_BYTES = re.compile(rb"[\x00-\x09\x0b\x0c\x0e-\x1f\x7f]")
#: Character findings kept per file: enough to find the problem, bounded for a hostile file.
MAX_CHARACTER_FINDINGS = 50
#: Delimiters the conversion must never produce when the caller names none.
_DEFAULT_DELIMITERS = "*:^~"

# Letters and signs NFKD does not decompose into ASCII (or decomposes badly).
_SPECIAL = {
    "\u00df": "ss",  # sharp s
    "\u1e9e": "SS",  # capital sharp s
    "\u00c6": "AE",
    "\u00e6": "ae",
    "\u0152": "OE",
    "\u0153": "oe",
    "\u00d8": "O",  # O with stroke
    "\u00f8": "o",
    "\u0141": "L",  # L with stroke
    "\u0142": "l",
    "\u0110": "D",  # D with stroke
    "\u0111": "d",
    "\u00d0": "D",  # eth
    "\u00f0": "d",
    "\u00de": "TH",  # thorn
    "\u00fe": "th",
    "\u0126": "H",  # H with stroke
    "\u0127": "h",
    "\u0131": "i",  # dotless i
    "\u0138": "q",  # kra
    "\u014a": "N",  # eng
    "\u014b": "n",
    "\u017f": "s",  # long s
    "\u0166": "T",  # T with stroke
    "\u0167": "t",
    "\u2018": "'",  # single quotation marks and apostrophes
    "\u2019": "'",
    "\u201a": "'",
    "\u201b": "'",
    "\u02bc": "'",
    "\u00b4": "'",
    "\u201c": '"',  # double quotation marks
    "\u201d": '"',
    "\u201e": '"',
    "\u00ab": '"',
    "\u00bb": '"',
    "\u2010": "-",  # hyphens, dashes and the minus sign
    "\u2011": "-",
    "\u2012": "-",
    "\u2013": "-",
    "\u2014": "-",
    "\u2015": "-",
    "\u2212": "-",
    "\u2026": "...",  # ellipsis
    "\u00a0": " ",  # no-break spaces
    "\u2007": " ",
    "\u202f": " ",
    "\t": " ",
}


def is_x12_text(value: str) -> bool:
    """True when every character of ``value`` is in the basic or extended character set."""
    return _OUTSIDE.search(value) is None


def bad_characters(value: str) -> list[int]:
    """Positions (0-based) of the characters of ``value`` outside the character sets."""
    return [m.start() for m in _OUTSIDE.finditer(value)]


def _convert_char(char: str, forbidden: str) -> str:
    """One character outside the sets as X12 text ("" when it has no mapping)."""
    # NFKD splits "ë" into "e" + a combining diaeresis and folds compatibility forms
    # (full-width letters, ligatures such as "ﬁ"); what is left outside ASCII goes.
    mapped = _SPECIAL.get(char) or unicodedata.normalize("NFKD", char)
    return "".join(c for c in mapped if "\x20" <= c <= "\x7e" and c not in forbidden)


def to_x12_text(value: str, *, delimiters: Iterable[str] | None = None) -> str:
    """``value`` converted to the X12 basic/extended character set (see the module doc).

    Characters already in the sets pass unchanged, CR and LF included (the writer
    refuses those, like a delimiter typed in the data). Every other character is
    transliterated to ASCII, or dropped when it has no mapping; a conversion never
    yields one of ``delimiters`` (default ``* : ^ ~``).
    """
    if _OUTSIDE.search(value) is None:
        return value
    forbidden = "".join(d for d in (delimiters if delimiters is not None else _DEFAULT_DELIMITERS) if d)
    out = []
    for char in value:
        if "\x20" <= char <= "\x7e" or char in "\r\n":
            out.append(char)
        else:
            out.append(_convert_char(char, forbidden))
    return "".join(out)


def bad_element_refs(elements: list[str]) -> list[str]:
    """Element refs (``NM103``) of a segment's values outside the character sets; [] when clean.

    ``elements[0]`` is the segment id. One ``isascii`` over the joined segment is the
    common path; the per-element pass runs only when something is outside.
    """
    text = "".join(elements)
    if text.isascii() and _CONTROL.search(text) is None:
        return []
    sid = elements[0].strip()[:3] or "SEG"
    return [
        f"{sid}{index:02d}" for index, value in enumerate(elements[1:], start=1) if not is_x12_text(value)
    ]


def character_findings(content: bytes, *, file: str | None = None) -> list[Finding]:
    """Every element of ``content`` holding a character outside the sets (file, segment, element).

    A file of printable ASCII (plus CR/LF) is cleared by two C-level scans of its bytes;
    otherwise its segments are read (delimiters that are control characters are not
    data). At most :data:`MAX_CHARACTER_FINDINGS` findings; none quotes the value. A file
    that is not X12 at all gives none here: its reader says so.
    """
    if content.isascii() and _CONTROL_BYTES.search(content) is None:
        return []
    findings: list[Finding] = []
    try:
        for seg in read_segments(content, file=file):
            for ref in bad_element_refs(seg.elements):
                findings.append(
                    error(
                        "X12.INVALID_CHARACTER",
                        f"{ref} holds a character outside the X12 basic and extended character sets "
                        "(TR3 Appendix B.1.1.2)",
                        segment=ref[:-2],
                        element=ref,
                        file_ordinal=seg.ordinal,
                    )
                )
                if len(findings) >= MAX_CHARACTER_FINDINGS:
                    return findings
    except X12SyntaxError:
        pass
    return findings
