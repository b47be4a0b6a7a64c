"""Writing X12: segments from values, envelopes with counts and control numbers.

The writer owns everything a person gets wrong by hand: the fixed-width ISA, zero-padded
ISA13/IEA02, SE01/GE01/IEA01 counts, ST02 = SE02, GS06 = GE02, HL numbering. It refuses
any value that contains a delimiter (element, component, repetition, segment separator,
or a CR/LF that would break line-broken output), so a name with ``*`` or ``~`` can never
change the segment count; the refused segment is not written at all. Text outside the
X12 basic/extended character sets ("Zoë", a NUL) is converted first with the one
conversion, :func:`edi.charset.to_x12_text` (docs/x12-character-set.md), so every
writer's output is ASCII and a conversion never creates a delimiter.

Control numbers come from the caller: the server keeps ISA13/GS06/ST02 unique and
persistent so 999/277CA answers can be matched back (TR3 batching guidance).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import TextIO

from edi.charset import to_x12_text
from edi.reader import Delimiters

__all__ = [
    "ElementValue",
    "X12WriteError",
    "X12Writer",
    "format_amount",
    "format_decimal",
]

ElementValue = str | Decimal | int | Sequence[str | Decimal | int | None] | None

_ISA_ID_WIDTH = 15
_ISA_AUTH_WIDTH = 10
_MAX_CONTROL = 999_999_999
_FLUSH_EVERY = 4096  # segments buffered before a streaming writer hands them to its file


class X12WriteError(ValueError):
    """A value cannot be written as X12, or the envelope calls came in the wrong order.

    The message names the segment, the element and the rule, never the value itself:
    the value may be PHI (a patient's name).
    """

    def __init__(
        self,
        message: str,
        *,
        code: str,
        segment: str | None = None,
        element: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.segment = segment
        self.element = element

    def to_dict(self) -> dict[str, str | None]:
        return {"code": self.code, "message": self.message, "segment": self.segment, "element": self.element}


def format_amount(cents: int) -> str:
    """Integer cents as an X12 decimal (type R): ``12550 -> "125.5"``, ``0 -> "0"``.

    X12 R values carry no trailing zeros after the point and no point when whole;
    payers accept ``125.50`` too, but the shortest form keeps files small.
    """
    if cents.__class__ is not int and (isinstance(cents, bool) or not isinstance(cents, int)):
        raise X12WriteError("amounts are integer cents", code="AMOUNT_TYPE")
    sign = "-" if cents < 0 else ""
    whole, frac = divmod(-cents if cents < 0 else cents, 100)
    if frac == 0:
        return f"{sign}{whole}"
    if frac % 10 == 0:
        return f"{sign}{whole}.{frac // 10}"
    return f"{sign}{whole}.{frac:02d}"


def format_decimal(value: Decimal) -> str:
    """A Decimal as an X12 R/N value: fixed point, no exponent, no trailing zeros."""
    if not value.is_finite():
        raise X12WriteError("a decimal value must be finite", code="DECIMAL_NOT_FINITE")
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    if text in ("-0", ""):
        text = "0"
    return text


def _scalar(value: object, segment_id: str, ref: str) -> str:
    """Convert one non-str scalar to text; floats are refused (money is never a float)."""
    if value is None:
        return ""
    if isinstance(value, Decimal):
        return format_decimal(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    raise X12WriteError(
        f"{segment_id} {ref}: values must be str, Decimal, int or None ({type(value).__name__} refused)",
        code="VALUE_TYPE",
        segment=segment_id,
        element=ref,
    )


class X12Writer:
    """Builds an interchange segment by segment, computing every count itself.

    Text accumulates in memory (``getvalue()``), or, when ``stream`` is given, goes to
    that text file handle in blocks, so memory stays flat for large batches. A segment
    that fails a check raises :class:`X12WriteError` before anything of it is written.
    """

    __slots__ = (
        "_bad_in_data",
        "_component",
        "_delimiter_chars",
        "_element",
        "_group_control",
        "_groups_in_interchange",
        "_hl_count",
        "_in_group",
        "_in_interchange",
        "_interchange_control",
        "_outside",
        "_parts",
        "_repetition",
        "_repetition_check",
        "_segments_in_transaction",
        "_st_control",
        "_stream",
        "_terminator",
        "_terminator_char",
        "_transactions_in_group",
        "_valid_ids",
        "delimiters",
    )

    def __init__(
        self,
        delimiters: Delimiters = Delimiters(),  # noqa: B008 - frozen dataclass, safe as default
        *,
        line_breaks: bool = False,
        stream: TextIO | None = None,
    ) -> None:
        chars = [delimiters.element, delimiters.component, delimiters.segment]
        if any(len(c) != 1 for c in chars) or len(set(chars)) != 3:
            raise X12WriteError(
                "element, component and segment separators must be three distinct single characters",
                code="DELIMITERS",
            )
        # A newline is a common segment terminator; otherwise no letters, digits or spaces.
        if any(c.isalnum() or (c.isspace() and c != delimiters.segment) or c == " " for c in chars):
            raise X12WriteError("separators must not be letters, digits or spaces", code="DELIMITERS")
        rep = delimiters.repetition
        if rep and (len(rep) != 1 or rep in chars or rep.isalnum() or rep.isspace()):
            raise X12WriteError(
                "the repetition separator must be one character distinct from the others",
                code="DELIMITERS",
            )
        self.delimiters = delimiters
        self._delimiter_chars = tuple(
            c for c in (delimiters.element, delimiters.component, rep, delimiters.segment) if c
        )
        # Characters that send a segment through the conversion: anything outside the X12
        # character sets except the two separators the writer itself joins with.
        self._outside = re.compile(
            "[^\\x20-\\x7e" + re.escape(delimiters.element) + re.escape(delimiters.component) + "]"
        )
        self._element = delimiters.element
        self._component = delimiters.component
        self._repetition = rep
        self._terminator = delimiters.segment + ("\n" if line_breaks else "")
        # Characters that may never appear inside data. CR/LF would break line-broken
        # output and are outside the X12 basic and extended character sets anyway.
        self._bad_in_data = tuple(c for c in (delimiters.segment, rep, "\r", "\n") if c)
        self._terminator_char = delimiters.segment
        # 4010-style interchanges have no repetition separator: check the terminator twice.
        self._repetition_check = rep or delimiters.segment
        self._stream = stream
        self._parts: list[str] = []
        self._valid_ids: set[str] = set()
        self._in_interchange = False
        self._in_group = False
        self._st_control: str | None = None
        self._interchange_control = 0
        self._group_control = 0
        self._groups_in_interchange = 0
        self._transactions_in_group = 0
        self._segments_in_transaction = 0
        self._hl_count = 0

    # -- segments -------------------------------------------------------------------------

    def segment(self, segment_id: str, *elements: ElementValue) -> None:
        """Write one segment. A list/tuple element is a composite; None/"" are empty.

        Trailing empty elements and trailing empty components are dropped (SNIP 1: no
        trailing delimiters). Any value holding a delimiter raises X12WriteError.
        """
        if not self._in_interchange:
            raise X12WriteError(
                f"{segment_id}: segments are written inside an interchange (call begin_interchange first)",
                code="STATE",
                segment=segment_id if isinstance(segment_id, str) else None,
            )
        if segment_id not in self._valid_ids:
            self._check_segment_id(segment_id)
        text, count, components_joined = self._join(segment_id, elements)
        if self._outside.search(text) is not None:
            # Some value holds characters outside the X12 character sets (an "ë", a NUL):
            # convert every text value with the one conversion (edi.charset) and join again.
            elements = tuple(self._to_x12(value) for value in elements)
            text, count, components_joined = self._join(segment_id, elements)
        component = self._component
        # One C-level pass per separator over the whole segment instead of one check per
        # value: separators we inserted are counted, so any extra one came from the data.
        if (
            text.count(self._element) != count - 1
            or (text.count(component) != components_joined if components_joined else component in text)
            or self._terminator_char in text
            or self._repetition_check in text
            or "\n" in text
            or "\r" in text
        ):
            self._raise_delimiter(segment_id, elements)
        self._parts.append(text + self._terminator)
        if self._st_control is not None:
            self._segments_in_transaction += 1

    def _to_x12(self, value: ElementValue) -> ElementValue:
        """A value with its text converted to the X12 character set (:func:`edi.charset.to_x12_text`)."""
        if isinstance(value, str):
            return to_x12_text(value, delimiters=self._delimiter_chars)
        if isinstance(value, tuple | list):
            return [
                to_x12_text(c, delimiters=self._delimiter_chars) if isinstance(c, str) else c for c in value
            ]
        return value

    def _join(self, segment_id: str, elements: tuple[ElementValue, ...]) -> tuple[str, int, int]:
        """The segment's text (without terminator), its element count and components joined."""
        parts = [segment_id]
        append = parts.append
        components_joined = 0
        component = self._component
        for value in elements:
            cls = value.__class__
            if cls is str:
                append(value)  # type: ignore[arg-type]
            elif value is None:
                append("")
            elif cls is tuple or cls is list:
                comps = [
                    c if c.__class__ is str else _scalar(c, segment_id, self._ref(segment_id, len(parts)))
                    for c in value  # type: ignore[union-attr]
                ]
                while comps and not comps[-1]:
                    comps.pop()
                if comps:
                    components_joined += len(comps) - 1
                    append(component.join(comps))
                else:
                    append("")
            else:
                append(_scalar(value, segment_id, self._ref(segment_id, len(parts))))
        while not parts[-1]:  # parts[0], the validated segment id, is never empty
            parts.pop()
        count = len(parts)
        if count == 1:
            raise X12WriteError(
                f"{segment_id}: a segment needs at least one non-empty element (SNIP 1: no empty segments)",
                code="EMPTY_SEGMENT",
                segment=segment_id,
            )
        return self._element.join(parts), count, components_joined

    def hl(self, parent: int | None, level_code: str, has_children: bool) -> int:
        """Write an HL segment numbered by the writer (1.. per transaction set); return its id.

        HL01 is sequential from 1, HL02 the parent's HL01 (empty for the top level),
        HL03 the level code (20 info source, 22 subscriber, 23 patient), HL04 1/0.
        """
        number = self._hl_count + 1
        children = "1" if has_children else "0"
        self.segment("HL", str(number), str(parent) if parent else None, level_code, children)
        self._hl_count = number
        return number

    def _check_segment_id(self, segment_id: str) -> None:
        if not (
            isinstance(segment_id, str)
            and 2 <= len(segment_id) <= 3
            and segment_id.isascii()
            and segment_id.isalnum()
            and segment_id.isupper()
        ):
            raise X12WriteError("a segment id is 2-3 uppercase letters or digits", code="SEGMENT_ID")
        self._valid_ids.add(segment_id)

    @staticmethod
    def _ref(segment_id: str, position: int) -> str:
        return f"{segment_id}{position:02d}"

    def _raise_delimiter(self, segment_id: str, elements: tuple[ElementValue, ...]) -> None:
        """Find which element holds a delimiter and raise, naming it (never its value)."""
        forbidden = (self._element, self._component, *self._bad_in_data)
        for position, value in enumerate(elements, start=1):
            ref = self._ref(segment_id, position)
            if value.__class__ is tuple or value.__class__ is list:
                candidates = [(f"{ref}-{sub}", c) for sub, c in enumerate(value, start=1)]  # type: ignore[arg-type]
            else:
                candidates = [(ref, value)]
            for where, item in candidates:
                if isinstance(item, str) and any(bad in item for bad in forbidden):
                    raise X12WriteError(
                        f"{segment_id} {where}: value contains a delimiter character (data must not hold "
                        "element, component, repetition or segment separators, CR or LF)",
                        code="DELIMITER_IN_DATA",
                        segment=segment_id,
                        element=where,
                    )
        raise X12WriteError(  # pragma: no cover - the counts only differ when an element holds one
            f"{segment_id}: value contains a delimiter character",
            code="DELIMITER_IN_DATA",
            segment=segment_id,
        )

    def _flush(self) -> None:
        if self._stream is not None and self._parts:
            self._stream.write("".join(self._parts))
            self._parts.clear()

    # -- envelopes ------------------------------------------------------------------------

    def begin_interchange(
        self,
        *,
        sender_qualifier: str,
        sender_id: str,
        receiver_qualifier: str,
        receiver_id: str,
        control_number: int,
        usage: str = "P",
        ack_requested: bool = False,
        when: datetime | None = None,
    ) -> None:
        """ISA: fixed widths (106 characters), ISA13 zero-padded to 9 digits."""
        if self._in_interchange:
            raise X12WriteError("an interchange is already open", code="STATE", segment="ISA")
        _check_control(control_number, "ISA", "ISA13")
        if usage not in ("P", "T"):
            raise X12WriteError(
                "ISA15 usage indicator is P or T", code="ISA15", segment="ISA", element="ISA15"
            )
        when = when or datetime.now()
        fields = [
            "ISA",
            "00",
            " " * _ISA_AUTH_WIDTH,
            "00",
            " " * _ISA_AUTH_WIDTH,
            self._isa_field(sender_qualifier, 2, "ISA05"),
            self._isa_field(sender_id, _ISA_ID_WIDTH, "ISA06"),
            self._isa_field(receiver_qualifier, 2, "ISA07"),
            self._isa_field(receiver_id, _ISA_ID_WIDTH, "ISA08"),
            when.strftime("%y%m%d"),
            when.strftime("%H%M"),
            self._repetition or "U",
            "00501",
            f"{control_number:09d}",
            "1" if ack_requested else "0",
            usage,
            self._component,
        ]
        self._in_interchange = True
        self._interchange_control = control_number
        self._groups_in_interchange = 0
        self._parts.append(self._element.join(fields) + self._terminator)

    def _isa_field(self, value: str, width: int, ref: str) -> str:
        if isinstance(value, str):
            value = to_x12_text(value, delimiters=self._delimiter_chars)
        if not isinstance(value, str) or not value.strip() or len(value) > width:
            raise X12WriteError(
                f"ISA {ref}: required, at most {width} characters",
                code="ISA_FIELD",
                segment="ISA",
                element=ref,
            )
        if any(c in value for c in (self._element, self._component, *self._bad_in_data)):
            raise X12WriteError(
                f"ISA {ref}: value contains a delimiter character",
                code="DELIMITER_IN_DATA",
                segment="ISA",
                element=ref,
            )
        return value.ljust(width)

    def begin_group(
        self,
        *,
        functional_id: str,
        sender_code: str,
        receiver_code: str,
        control_number: int,
        version: str,
        when: datetime | None = None,
    ) -> None:
        """GS: GS04 CCYYMMDD, GS05 HHMM, GS07 ``X`` (Accredited Standards Committee X12)."""
        if not self._in_interchange or self._in_group:
            raise X12WriteError("GS needs an open interchange and no open group", code="STATE", segment="GS")
        _check_control(control_number, "GS", "GS06")
        when = when or datetime.now()
        self.segment(
            "GS",
            functional_id,
            sender_code,
            receiver_code,
            when.strftime("%Y%m%d"),
            when.strftime("%H%M"),
            str(control_number),
            "X",
            version,
        )
        self._in_group = True
        self._group_control = control_number
        self._transactions_in_group = 0
        self._groups_in_interchange += 1

    def begin_transaction(self, st01: str, control_number: str, implementation: str | None = None) -> None:
        """ST: ST02 is the caller's control number (4-9 characters, TR3), ST03 = GS08."""
        if not self._in_group or self._st_control is not None:
            raise X12WriteError(
                "ST needs an open group and no open transaction set", code="STATE", segment="ST"
            )
        if not isinstance(control_number, str) or not 4 <= len(control_number) <= 9:
            raise X12WriteError(
                "ST ST02: transaction set control number is 4-9 characters",
                code="ST02",
                segment="ST",
                element="ST02",
            )
        self.segment("ST", st01, control_number, implementation)
        self._st_control = control_number
        self._segments_in_transaction = 1
        self._hl_count = 0

    def end_transaction(self) -> None:
        """SE: SE01 counts every segment from ST to SE inclusive; SE02 = ST02."""
        if self._st_control is None:
            raise X12WriteError("SE without an open transaction set", code="STATE", segment="SE")
        count = self._segments_in_transaction + 1
        control = self._st_control
        self._st_control = None
        self._parts.append(f"SE{self._element}{count}{self._element}{control}{self._terminator}")
        self._transactions_in_group += 1
        if len(self._parts) >= _FLUSH_EVERY:
            self._flush()

    def end_group(self) -> None:
        """GE: GE01 number of transaction sets, GE02 = GS06."""
        if not self._in_group or self._st_control is not None:
            raise X12WriteError(
                "GE needs an open group with its transaction sets closed", code="STATE", segment="GE"
            )
        e = self._element
        self._parts.append(f"GE{e}{self._transactions_in_group}{e}{self._group_control}{self._terminator}")
        self._in_group = False

    def end_interchange(self) -> None:
        """IEA: IEA01 number of functional groups, IEA02 = ISA13 (zero-padded)."""
        if not self._in_interchange or self._in_group:
            raise X12WriteError(
                "IEA needs an open interchange with its groups closed", code="STATE", segment="IEA"
            )
        e = self._element
        self._parts.append(
            f"IEA{e}{self._groups_in_interchange}{e}{self._interchange_control:09d}{self._terminator}"
        )
        self._in_interchange = False
        self._flush()

    # -- output ---------------------------------------------------------------------------

    @property
    def segment_count(self) -> int:
        """Segments written so far in the open transaction set, ST included (0 outside one)."""
        return self._segments_in_transaction if self._st_control is not None else 0

    def getvalue(self) -> str:
        """Everything written so far (in-memory writers only)."""
        if self._stream is not None:
            raise X12WriteError("a streaming writer hands its text to its stream", code="STATE")
        return "".join(self._parts)

    def write_to(self, fh: TextIO) -> None:
        """Copy everything written so far to a text file handle."""
        fh.write(self.getvalue())

    def flush(self) -> None:
        """Hand buffered segments to the stream (streaming writers)."""
        self._flush()


def _check_control(control_number: int, segment: str, ref: str) -> None:
    if (
        isinstance(control_number, bool)
        or not isinstance(control_number, int)
        or not 1 <= control_number <= _MAX_CONTROL
    ):
        raise X12WriteError(
            f"{segment} {ref}: control number is an integer from 1 to 999999999",
            code="CONTROL_NUMBER",
            segment=segment,
            element=ref,
        )
