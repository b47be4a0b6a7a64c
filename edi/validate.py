"""Table-driven TR3 validation of X12 files, plus the 837 guide rules pyx12 misses.

``validate(source)`` makes one streaming pass:

1. :class:`edi.envelope.EnvelopeChecker` checks ISA/GS/ST trailers, counts and control
   numbers;
2. each transaction set is walked through its compiled implementation guide
   (:mod:`edi.maps`) by :class:`TransactionWalker`, a state machine over the loop tree
   that reports the 999 IK3 segment errors (unrecognized / unexpected segment,
   mandatory segment or loop missing, loop or segment over its maximum) and, per
   matched segment, the IK4 element errors (missing, conditional, too many elements,
   length, character set, code value, date, time, exclusion, repetitions, components);
3. HL parent/child and LX numbering are checked as pyx12's reader does;
4. for 837P/837I, :class:`ClaimRules` applies the clearinghouse edits the map cannot
   express (NPI check digit, CLM01 length, CLM02 balancing, dx pointers, ZIP+4,
   REF*F8 on replacements, one primary payer, COB balancing, ...).

Memory stays flat: only the open transaction set's loop stack and the current claim's
totals are kept. Speed (about 15x pyx12's full validation) comes from two tables built
once per map: the walk from a node to the next segment is planned once per (node,
segment id, qualifier) and replayed, and each segment spec gets a precompiled clean /
not-clean test, so only segments that fail it pay for the detailed element checks.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from edi.charset import bad_element_refs
from edi.envelope import FUNCTIONAL_GROUP_OF, EnvelopeChecker, InterchangeSummary, ack_codes
from edi.findings import Finding, Severity
from edi.identifiers import is_valid_npi
from edi.maps import CompiledMap, CompositeSpec, ElementSpec, LoopSpec, MapError, SegmentSpec, map_for
from edi.numbers import amount_cents, parse_count
from edi.reader import Delimiters, ReaderNotes, Segment, Source, X12SyntaxError, read_segments

_SEGMENT_ID = re.compile(r"^[A-Z][A-Z0-9]{1,2}$")
_NUMERIC = re.compile(r"^-?[0-9]+$")
_DECIMAL = re.compile(r"^-?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)$")
# 5010 extended character set (X12.6): what AN/ID values may hold.
_BAD_CHARACTER = re.compile(r"""[^A-Za-z0-9!"&'()*+,\-./:;?= %~@\[\]_{}\\|<>^`#$]""")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_CACHE_LIMIT = 200_000
_VALID_IDS: set[str] = set()


def _valid_segment_id(sid: str) -> bool:
    if _SEGMENT_ID.match(sid):
        if len(_VALID_IDS) < 10_000:
            _VALID_IDS.add(sid)
        return True
    return False


_ENVELOPE_IDS = frozenset({"ISA", "IEA", "GS", "GE", "ST"})


def _finding(severity: Severity, code: str, message: str, **where: Any) -> Finding:
    return Finding(severity, code, message, **where)


# --------------------------------------------------------------------------------------
# Element validation
# --------------------------------------------------------------------------------------
def _valid_date(value: str) -> bool:
    if not value.isdigit() or len(value) not in (6, 8, 12):
        return False
    if len(value) == 6:
        value = ("20" if int(value[:2]) < 50 else "19") + value
    try:
        stamp = dt.date(int(value[:4]), int(value[4:6]), int(value[6:8]))
    except ValueError:
        return False
    if stamp.year < 1800:
        return False
    return len(value) != 12 or _valid_time(value[8:12])


def _valid_time(value: str) -> bool:
    if not value.isdigit() or len(value) not in (4, 6, 7, 8):
        return False
    return value[:2] <= "23" and value[2:4] <= "59" and (len(value) == 4 or value[4:6] <= "59")


def _valid_for_format(value: str, fmt: str) -> bool:
    """DTP03-style values whose type is named by a format qualifier (D8, RD8, TM ...)."""
    if fmt == "RD8":
        start, sep, end = value.partition("-")
        return bool(sep) and len(start) == 8 and len(end) == 8 and _valid_date(start) and _valid_date(end)
    if fmt == "D8":
        return len(value) == 8 and _valid_date(value)
    if fmt == "D6":
        return len(value) == 6 and _valid_date(value)
    if fmt == "DT":
        return len(value) == 12 and _valid_date(value)
    if fmt == "TM":
        return _valid_time(value)
    return True


_PUBLIC_TYPES = frozenset({"ID", "R", "N", "N0", "N1", "N2", "N3", "N4", "N5", "N6", "N7", "N8", "N9"})

# An element problem before it gets its coordinates: (ik4, code, message, element ref, value).
Problem = tuple[str, str, str, str, str | None]


def _shown(spec: ElementSpec, value: str) -> str | None:
    """The value may go into a finding only for code, amount and count elements (never PHI)."""
    return value if spec.data_type in _PUBLIC_TYPES else None


def _check_simple(
    spec: ElementSpec, value: str, map_: CompiledMap, fmt_hint: tuple[str, ...] | None, out: list[Problem]
) -> None:
    """One non-empty simple element (or component) against its spec."""
    if not value:
        return
    ref = spec.ref
    name = spec.name or ref
    if spec.usage == "N":
        out.append(
            ("10", "X12.ELEMENT_NOT_USED", f"{ref} ({name}) is marked Not Used in this guide", ref, None)
        )
        return
    data_type = spec.data_type
    measured = (
        len(value.replace("-", "").replace(".", ""))
        if data_type == "R" or data_type[0] == "N"
        else len(value)
    )
    if measured < spec.min_len:
        out.append(
            (
                "4",
                "X12.ELEMENT_TOO_SHORT",
                f"{ref} ({name}) is too short: {measured} < {spec.min_len} characters",
                ref,
                _shown(spec, value),
            )
        )
    if measured > spec.max_len:
        out.append(
            (
                "5",
                "X12.ELEMENT_TOO_LONG",
                f"{ref} ({name}) is too long: {measured} > {spec.max_len} characters",
                ref,
                _shown(spec, value),
            )
        )
    if _CONTROL.search(value):
        out.append(
            ("6", "X12.ELEMENT_INVALID_CHARACTER", f"{ref} ({name}) contains a control character", ref, None)
        )
        return
    if data_type in ("AN", "ID") and value[-1] == " " and len(value.rstrip()) >= spec.min_len:
        out.append(
            (
                "6",
                "X12.ELEMENT_TRAILING_SPACES",
                f"{ref} ({name}) has unnecessary trailing spaces",
                ref,
                _shown(spec, value),
            )
        )
    if spec.codes is not None or spec.external is not None:
        ok = spec.codes is not None and value in spec.codes
        if not ok and spec.external is not None:
            codes = map_.external_codes.get(spec.external)
            ok = codes is None or value in codes
        if not ok:
            out.append(
                (
                    "7",
                    "X12.ELEMENT_INVALID_CODE",
                    f"{ref} ({name}): value is not a valid code",
                    ref,
                    _shown(spec, value),
                )
            )
    if data_type[0] == "N":
        if not _NUMERIC.match(value):
            out.append(
                (
                    "6",
                    "X12.ELEMENT_INVALID_CHARACTER",
                    f"{ref} ({name}) must be numeric (type {data_type})",
                    ref,
                    _shown(spec, value),
                )
            )
    elif data_type == "R":
        if not _DECIMAL.match(value):
            out.append(
                (
                    "6",
                    "X12.ELEMENT_INVALID_CHARACTER",
                    f"{ref} ({name}) must be a decimal number",
                    ref,
                    _shown(spec, value),
                )
            )
    elif data_type in ("AN", "ID"):
        if _BAD_CHARACTER.search(value):
            out.append(
                (
                    "6",
                    "X12.ELEMENT_INVALID_CHARACTER",
                    f"{ref} ({name}) holds a character outside the X12 character set",
                    ref,
                    None,
                )
            )
    elif data_type in ("DT", "D8", "D6"):
        if not _valid_date(value) or (data_type == "D8" and len(value) != 8):
            out.append(("8", "X12.ELEMENT_INVALID_DATE", f"{ref} ({name}) is not a valid date", ref, None))
    elif data_type == "TM" and not _valid_time(value):
        out.append(
            ("9", "X12.ELEMENT_INVALID_TIME", f"{ref} ({name}) is not a valid time", ref, _shown(spec, value))
        )
    if fmt_hint and not any(_valid_for_format(value, f) for f in fmt_hint):
        if "TM" in fmt_hint:
            out.append(("9", "X12.ELEMENT_INVALID_TIME", f"{ref} ({name}) is not a valid time", ref, None))
        elif any(f in fmt_hint for f in ("RD8", "D8", "D6", "DT")):
            out.append(
                (
                    "8",
                    "X12.ELEMENT_INVALID_DATE",
                    f"{ref} ({name}) is not a valid date for its format qualifier",
                    ref,
                    None,
                )
            )
    if spec.regex is not None and not re.search(spec.regex, value):
        out.append(
            (
                "7",
                "X12.ELEMENT_PATTERN",
                f"{ref} ({name}) does not match the guide's pattern {spec.regex}",
                ref,
                _shown(spec, value),
            )
        )


def _missing(spec: ElementSpec | CompositeSpec) -> Problem:
    return (
        "1",
        "X12.ELEMENT_MISSING",
        f"mandatory element {spec.ref} ({spec.name}) is missing",
        spec.ref,
        None,
    )


def check_segment_elements(
    spec: SegmentSpec, elements: list[str], delimiters: Delimiters, map_: CompiledMap
) -> list[Problem]:
    """Every IK4 problem of one data segment matched to ``spec`` (pure; memoized by the caller)."""
    out: list[Problem] = []
    specs = spec.elements
    defined = specs[-1].seq if specs else 0
    present = len(elements) - 1
    if present > defined:
        ref = f"{spec.id}{defined + 1:02d}"
        out.append(
            (
                "3",
                "X12.TOO_MANY_ELEMENTS",
                f"{spec.id} has {present} elements; the guide defines {defined}",
                ref,
                None,
            )
        )
    component = delimiters.component
    repetition = delimiters.repetition
    format_codes: tuple[str, ...] | None = None
    fmt_hint: tuple[str, ...] | None = None
    if spec.id == "DTP" and len(elements) > 2 and elements[2] in ("RD8", "D8", "D6", "DT", "TM"):
        fmt_hint = (elements[2],)
    for el in specs:
        value = elements[el.seq] if el.seq < len(elements) else ""
        if not value:
            if isinstance(el, CompositeSpec):
                if el.usage == "R":
                    out.append(_missing(el))
            elif el.usage == "R":
                out.append(_missing(el))
            if isinstance(el, ElementSpec) and el.data_element == "1250" and el.codes:
                format_codes = tuple(el.codes)
            continue
        if repetition and repetition in value and el.max_use <= 1:
            out.append(
                ("12", "X12.TOO_MANY_REPETITIONS", f"{el.ref} ({el.name}) does not repeat", el.ref, None)
            )
            value = value.split(repetition, 1)[0]
        for occurrence in value.split(repetition) if repetition and el.max_use > 1 else (value,):
            if isinstance(el, CompositeSpec):
                _check_composite(el, occurrence, component, map_, out)
                continue
            if component and component in occurrence:
                out.append(
                    (
                        "6",
                        "X12.ELEMENT_NOT_COMPOSITE",
                        f"{el.ref} ({el.name}) is a simple element, not a composite",
                        el.ref,
                        None,
                    )
                )
                continue
            hint = fmt_hint if (spec.id == "DTP" and el.seq == 3) else None
            if el.data_element == "1251" and format_codes and hint is None:
                hint = format_codes
            _check_simple(el, occurrence, map_, hint, out)
        if isinstance(el, ElementSpec) and el.data_element == "1250" and el.codes:
            format_codes = tuple(el.codes)
    for kind, numbers in spec.syntax:
        have = [n < len(elements) and elements[n] != "" for n in numbers]
        refs = [f"{spec.id}{n:02d}" for n in numbers]
        problem: tuple[str, str, str] | None = None
        if kind == "P" and any(have) and not all(have):
            problem = (
                "2",
                refs[have.index(False)],
                f"if any of {', '.join(refs)} is present, all are required",
            )
        elif kind == "R" and not any(have):
            problem = ("2", refs[0], f"at least one of {', '.join(refs)} is required")
        elif kind == "E" and sum(have) > 1:
            second = [r for r, h in zip(refs, have, strict=True) if h][1]
            problem = ("10", second, f"only one of {', '.join(refs)} may be present")
        elif kind == "C" and have[0] and not all(have[1:]):
            problem = (
                "2",
                refs[1 + have[1:].index(False)],
                f"if {refs[0]} is present, {', '.join(refs[1:])} required",
            )
        elif kind == "L" and have[0] and not any(have[1:]):
            problem = ("2", refs[1], f"if {refs[0]} is present, one of {', '.join(refs[1:])} is required")
        if problem is not None:
            ik4, ref, text = problem
            code = "X12.SYNTAX_EXCLUSION" if ik4 == "10" else "X12.SYNTAX_CONDITIONAL"
            rule = kind + "".join(f"{n:02d}" for n in numbers)
            out.append((ik4, code, f"syntax rule {rule}: {text}", ref, None))
    return out


def _check_composite(
    el: CompositeSpec, value: str, component: str, map_: CompiledMap, out: list[Problem]
) -> None:
    parts = value.split(component) if component else [value]
    if not any(parts):
        if el.usage == "R":
            out.append(_missing(el))
        return
    if el.usage == "N":
        out.append(
            (
                "10",
                "X12.ELEMENT_NOT_USED",
                f"{el.ref} ({el.name}) is marked Not Used in this guide",
                el.ref,
                None,
            )
        )
        return
    if len(parts) > len(el.components):
        out.append(
            (
                "13",
                "X12.TOO_MANY_COMPONENTS",
                f"{el.ref} ({el.name}) has {len(parts)} components; the guide defines {len(el.components)}",
                el.ref,
                None,
            )
        )
    for index, sub in enumerate(el.components):
        part = parts[index] if index < len(parts) else ""
        if part:
            _check_simple(sub, part, map_, None, out)
        elif sub.usage == "R" and (sub.seq != 1 or el.usage == "R"):
            out.append(_missing(sub))


def _fast_test(spec: ElementSpec, map_: CompiledMap) -> Callable[[str], bool]:
    """A quick yes/no for one non-empty value; a "no" sends the segment to the full check.

    Most segments are clean, so the common case must cost a set lookup or one regex:
    a code element accepts exactly the listed codes that also satisfy length and
    pattern; free text checks length, character set and trailing space.
    """
    lo, hi = spec.min_len, spec.max_len
    pattern = re.compile(spec.regex) if spec.regex else None
    data_type = spec.data_type
    if spec.usage == "N" or spec.data_element == "1251":
        return lambda value: False
    if spec.codes is not None or spec.external is not None:
        pool = set(spec.codes or ())
        if spec.external is not None:
            external = map_.external_codes.get(spec.external)
            if external is None:
                return lambda value: False
            pool |= external
        good = frozenset(
            c
            for c in pool
            if lo <= len(c) <= hi
            and (pattern is None or pattern.search(c))
            and not _check_type_fails(data_type, c)
        )
        return good.__contains__
    if data_type in ("AN", "ID"):
        bad = _BAD_CHARACTER.search
        if pattern is not None:
            return lambda v: lo <= len(v) <= hi and v[-1] != " " and not bad(v) and bool(pattern.search(v))
        return lambda v: lo <= len(v) <= hi and v[-1] != " " and not bad(v)
    if pattern is not None:
        return lambda value: False
    if data_type[0] == "N":
        numeric = _NUMERIC.match
        return lambda v: bool(numeric(v)) and lo <= len(v) - (v[0] == "-") <= hi
    if data_type == "R":
        decimal = _DECIMAL.match
        return lambda v: bool(decimal(v)) and lo <= len(v.replace("-", "").replace(".", "")) <= hi
    if data_type == "DT":
        return lambda v: lo <= len(v) <= hi and _valid_date(v)
    if data_type == "TM":
        return lambda v: lo <= len(v) <= hi and _valid_time(v)
    return lambda value: False


def _check_type_fails(data_type: str, value: str) -> bool:
    if data_type in ("AN", "ID"):
        return bool(_BAD_CHARACTER.search(value)) or value[-1:] == " "
    if data_type[0] == "N":
        return not _NUMERIC.match(value)
    if data_type == "R":
        return not _DECIMAL.match(value)
    return True


def _syntax_ok(spec: SegmentSpec, elements: list[str]) -> bool:
    n = len(elements)
    for kind, numbers in spec.syntax:
        have = [i < n and elements[i] != "" for i in numbers]
        if kind == "P":
            if any(have) and not all(have):
                return False
        elif kind == "R":
            if not any(have):
                return False
        elif kind == "E":
            if sum(have) > 1:
                return False
        elif kind == "C":
            if have[0] and not all(have[1:]):
                return False
        elif kind == "L" and have[0] and not any(have[1:]):
            return False
    return True


class SegmentChecker:
    """Element validation for one segment spec: a fast clean/not-clean pass, then details."""

    __slots__ = ("defined", "format_seq", "items", "map", "required_last", "spec", "upto")

    def __init__(self, spec: SegmentSpec, map_: CompiledMap) -> None:
        self.spec = spec
        self.map = map_
        self.defined = spec.elements[-1].seq if spec.elements else 0
        self.format_seq = 0  # element holding the date/time format qualifier (1250), if any
        items: list[tuple[int, bool, Any]] = []
        for el in spec.elements:
            if isinstance(el, CompositeSpec):
                subs = tuple(
                    (sub.usage == "R" and (sub.seq != 1 or el.usage == "R"), _fast_test(sub, map_))
                    for sub in el.components
                )
                items.append((el.seq, el.usage == "R", (el.usage == "N", subs)))
            elif el.data_element == "1251" and el.usage != "N":
                items.append((el.seq, el.usage == "R", el))
            else:
                items.append((el.seq, el.usage == "R", _fast_test(el, map_)))
                if el.data_element == "1250":
                    self.format_seq = el.seq
        self.items = tuple(items)
        self.required_last = max((seq for seq, required, _ in items if required), default=0)
        # upto[n]: how many items lie within a segment of n elements (id included).
        self.upto = tuple(sum(1 for seq, _, _ in items if seq < n) for n in range(self.defined + 2))

    def clean(self, elements: list[str], component: str, repetition: str) -> bool:
        n = len(elements)
        if n - 1 > self.defined or n - 1 < self.required_last:
            return False
        items = self.items
        for index in range(self.upto[n]):
            seq, required, test = items[index]
            value = elements[seq]
            if not value:
                if required:
                    return False
                continue
            if repetition and repetition in value:
                return False
            kind = type(test)
            if kind is tuple:
                not_used, subs = test
                if not_used:
                    return False
                parts = value.split(component) if component else [value]
                if len(parts) > len(subs):
                    return False
                for position, (sub_required, sub_test) in enumerate(subs):
                    part = parts[position] if position < len(parts) else ""
                    if part:
                        if not sub_test(part):
                            return False
                    elif sub_required:
                        return False
            elif component and component in value:
                return False
            elif kind is ElementSpec:
                # A date/time whose format is named by the qualifier element (DTP02, DMG01 ...).
                fmt = elements[self.format_seq] if self.format_seq and self.format_seq < n else ""
                if not (test.min_len <= len(value) <= test.max_len and fmt and _valid_for_format(value, fmt)):
                    return False
            elif not test(value):
                return False
        return not self.spec.syntax or _syntax_ok(self.spec, elements)

    def problems(self, elements: list[str], delimiters: Delimiters) -> list[Problem]:
        if self.clean(elements, delimiters.component, delimiters.repetition):
            return []
        return check_segment_elements(self.spec, elements, delimiters, self.map)


# --------------------------------------------------------------------------------------
# The loop walker
# --------------------------------------------------------------------------------------
class _Frame:
    """One open loop instance and how often each child has occurred in it."""

    __slots__ = ("counts", "loop")

    def __init__(self, loop: LoopSpec) -> None:
        self.loop = loop
        self.counts: dict[int, int] = {}


@dataclass(slots=True)
class _Plan:
    """How a segment is reached from a node: found once per (node, segment key), then reused."""

    target: SegmentSpec | None
    level: int  # index in the frame stack of the loop where the match was found
    pushes: tuple[LoopSpec, ...]  # loops entered (outermost first); () for a plain segment match
    reentry: bool  # the scanned loop itself starts again (its first segment matched)
    candidates: tuple[tuple[int, LoopSpec, SegmentSpec | LoopSpec], ...]  # required nodes skipped on the way


class TransactionWalker:
    """Walk one transaction set's segments through a compiled map, yielding IK3 findings."""

    def __init__(self, map_: CompiledMap, plans: dict[tuple, _Plan]) -> None:
        self.map = map_
        self.plans = plans
        root = map_.transaction
        self.stack: list[_Frame] = [_Frame(root)]
        first = root.first
        assert isinstance(first, SegmentSpec)
        self.current: SegmentSpec = first
        self.stack[0].counts[first.uid] = 1
        self.places = map_.qualifier_places
        self.codes = map_.qualifier_codes
        self.known_ids = _segment_ids(root)

    def _key(self, elements: list[str], component: str) -> tuple:
        sid = elements[0]
        places = self.places.get(sid)
        if not places:
            return (self.current.uid, sid)
        codes = self.codes[sid]
        values: list[str | None] = [self.current.uid, sid]  # type: ignore[list-item]
        for index, sub in places:
            value = elements[index] if index < len(elements) else ""
            if sub and component:
                value = value.split(component, 1)[0]
            values.append(value if value in codes else None)
        return tuple(values)

    def _plan(self, elements: list[str], component: str) -> _Plan:
        candidates: list[tuple[int, LoopSpec, SegmentSpec | LoopSpec]] = []
        level = len(self.stack) - 1
        start = self.current.pos
        while True:
            loop = self.stack[level].loop
            for child in loop.children:
                if child.pos < start:
                    continue
                if isinstance(child, SegmentSpec):
                    if child.id == elements[0] and child.matches(elements, component):
                        if child is loop.first and level > 0:
                            return _Plan(child, level, (loop,), True, tuple(candidates))
                        return _Plan(child, level, (), False, tuple(candidates))
                    if child.usage == "R":
                        candidates.append((level, loop, child))
                else:
                    chain = self._loop_chain(child, elements, component, level + 1, candidates)
                    if chain is not None:
                        target = chain[-1].first
                        assert isinstance(target, SegmentSpec)
                        return _Plan(target, level, tuple(chain), False, tuple(candidates))
                    if child.usage == "R" and isinstance(child.first, SegmentSpec):
                        candidates.append((level, loop, child))
            if level == 0:
                return _Plan(None, 0, (), False, ())
            start = loop.pos
            level -= 1

    def _loop_chain(
        self,
        loop: LoopSpec,
        elements: list[str],
        component: str,
        level: int,
        candidates: list[tuple[int, LoopSpec, SegmentSpec | LoopSpec]],
    ) -> list[LoopSpec] | None:
        first = loop.first
        if first is None:
            return None
        if isinstance(first, SegmentSpec):
            if first.id == elements[0] and first.matches(elements, component):
                return [loop]
            return None
        for child in loop.children:
            if isinstance(child, LoopSpec):
                sub = self._loop_chain(child, elements, component, level + 1, candidates)
                if sub is not None:
                    return [loop, *sub]
                if child.usage == "R" and isinstance(child.first, SegmentSpec):
                    candidates.append((level, loop, child))
        return None

    def walk(
        self, elements: list[str], component: str, position: int, ordinal: int, out: list[Finding]
    ) -> SegmentSpec | None:
        """Move to the node matching this segment; append IK3 findings to ``out``."""
        key = self._key(elements, component)
        plan = self.plans.get(key)
        if plan is None:
            plan = self._plan(elements, component)
            if len(self.plans) > _CACHE_LIMIT:
                self.plans.clear()
            self.plans[key] = plan
        sid = elements[0]
        target = plan.target
        stack = self.stack
        if target is None:
            known = sid in self.known_ids
            out.append(
                _finding(
                    Severity.ERROR,
                    "X12.SEGMENT_UNEXPECTED" if known else "X12.SEGMENT_UNRECOGNIZED",
                    (
                        f"segment {sid} is not expected here (after {self.current.id} in loop "
                        f"{self.current.parent.id if self.current.parent else '?'})"
                    )
                    if known
                    else f"segment id {sid!r} is not part of this implementation guide",
                    segment=sid,
                    segment_position=position,
                    file_ordinal=ordinal,
                    loop=self.current.parent.id if self.current.parent else None,
                    ik3="2" if known else "1",
                )
            )
            return None
        # Required nodes skipped on the way are missing unless already seen in this loop instance.
        entering = bool(plan.pushes)
        for level, owner, node in plan.candidates:
            if not entering and (node is target or node.pos == target.pos):
                continue
            frame = stack[level] if level < len(stack) and stack[level].loop is owner else None
            if frame is not None and frame.counts.get(node.uid, 0) >= 1:
                continue
            what = "loop" if isinstance(node, LoopSpec) else "segment"
            first_id = node.first.id if isinstance(node, LoopSpec) and node.first is not None else node.id
            out.append(
                _finding(
                    Severity.ERROR,
                    "X12.SEGMENT_MISSING" if what == "segment" else "X12.LOOP_MISSING",
                    f"mandatory {what} {node.id} ({node.name}) is missing",
                    segment=first_id,
                    segment_position=position,
                    file_ordinal=ordinal,
                    loop=node.id if isinstance(node, LoopSpec) else owner.id,
                    ik3="3",
                )
            )
        if plan.reentry:
            loop = plan.pushes[0]
            del stack[plan.level :]
            self._enter(loop, stack[-1], position, ordinal, target, out, check=True)
        elif plan.pushes:
            del stack[plan.level + 1 :]
            last = len(plan.pushes) - 1
            for index, loop in enumerate(plan.pushes):
                self._enter(loop, stack[-1], position, ordinal, target, out, check=index == last)
        else:
            del stack[plan.level + 1 :]
            counts = stack[-1].counts
            seen = counts.get(target.uid, 0) + 1
            counts[target.uid] = seen
            if target.usage == "N":
                out.append(
                    _finding(
                        Severity.ERROR,
                        "X12.SEGMENT_NOT_USED",
                        f"segment {sid} ({target.name}) is marked Not Used in this guide",
                        segment=sid,
                        segment_position=position,
                        file_ordinal=ordinal,
                        loop=stack[-1].loop.id,
                        ik3="2",
                    )
                )
            elif seen > target.max_use:
                out.append(
                    _finding(
                        Severity.ERROR,
                        "X12.SEGMENT_REPEAT",
                        f"segment {sid} ({target.name}) occurs {seen} times; at most "
                        f"{target.max_use} allowed",
                        segment=sid,
                        segment_position=position,
                        file_ordinal=ordinal,
                        loop=stack[-1].loop.id,
                        ik3="5",
                    )
                )
        self.current = target
        return target

    def _enter(
        self,
        loop: LoopSpec,
        parent: _Frame,
        position: int,
        ordinal: int,
        target: SegmentSpec,
        out: list[Finding],
        *,
        check: bool,
    ) -> None:
        seen = parent.counts.get(loop.uid, 0) + 1
        parent.counts[loop.uid] = seen
        frame = _Frame(loop)
        self.stack.append(frame)
        if loop.first is target:
            frame.counts[target.uid] = 1
        if not check:
            return
        if loop.usage == "N":
            out.append(
                _finding(
                    Severity.ERROR,
                    "X12.LOOP_NOT_USED",
                    f"loop {loop.id} ({loop.name}) is marked Not Used in this guide",
                    segment=target.id,
                    segment_position=position,
                    file_ordinal=ordinal,
                    loop=loop.id,
                    ik3="2",
                )
            )
        elif loop.kind != "wrapper" and seen > loop.repeat:
            out.append(
                _finding(
                    Severity.ERROR,
                    "X12.LOOP_REPEAT",
                    f"loop {loop.id} ({loop.name}) occurs {seen} times; at most {loop.repeat} allowed",
                    segment=target.id,
                    segment_position=position,
                    file_ordinal=ordinal,
                    loop=loop.id,
                    ik3="4",
                )
            )


def _st01_codes(map_: CompiledMap) -> frozenset[str]:
    st = map_.transaction.first
    if isinstance(st, SegmentSpec) and st.elements and isinstance(st.elements[0], ElementSpec):
        codes = st.elements[0].codes
        if codes:
            return codes
    return frozenset({map_.transaction_id[:3]})


def _segment_ids(loop: LoopSpec) -> set[str]:
    ids: set[str] = set()
    for child in loop.children:
        if isinstance(child, SegmentSpec):
            ids.add(child.id)
        else:
            ids |= _segment_ids(child)
    return ids


# --------------------------------------------------------------------------------------
# Guide rules for 837P / 837I
# --------------------------------------------------------------------------------------
def _cents(value: str) -> int | None:
    """X12 decimal (R) to integer cents; None when it is not a usable amount (an IK4 says why).

    More than two decimals round half up to the cent (the balancing rules still apply).
    """
    if not value:
        return None
    return amount_cents(value)[0]


def _money(cents: int) -> str:
    sign = "-" if cents < 0 else ""
    cents = abs(cents)
    return f"{sign}{cents // 100}.{cents % 100:02d}"


MAX_CLAIMS_PER_TRANSACTION = 5000
_DX_QUALIFIERS = frozenset({"ABK", "ABF", "BK", "BF"})
_CAS_AMOUNTS = (3, 6, 9, 12, 15, 18)


@dataclass(slots=True)
class _Line:
    position: int
    ordinal: int
    charge: int | None = None
    pointers: list[str] = field(default_factory=list)
    pointer_position: int = 0
    pointer_ordinal: int = 0
    adjudications: list[list[Any]] = field(
        default_factory=list
    )  # [payer id, paid, cas sum, position, ordinal]


@dataclass(slots=True)
class _OtherPayer:
    position: int
    ordinal: int
    responsibility: str
    paid: int | None = None
    cas: int = 0
    payer_id: str = ""


@dataclass(slots=True)
class _Claim:
    position: int
    ordinal: int
    charge: int | None
    frequency: str
    subscriber_responsibility: str
    dx: list[str] = field(default_factory=list)
    dx_position: int = 0
    has_f8: bool = False
    line_refs: dict[str, int] = field(default_factory=dict)
    lines: list[_Line] = field(default_factory=list)
    payers: list[_OtherPayer] = field(default_factory=list)


class ClaimRules:
    """837P/837I edits beyond the map; fed matched segments, keeps only the open claim."""

    def __init__(
        self, professional: bool, st02: str, out: list[Finding], today: dt.date | None = None
    ) -> None:
        self.professional = professional
        self.st02 = st02
        self.out = out
        self.today = today or dt.date.today()
        self.claim: _Claim | None = None
        self.subscriber_responsibility = ""
        self.claim_refs: dict[int, str] = {}
        self._dispatch: dict[str, Callable[[list[str], str, int, int, Delimiters], None]] = {
            "BHT": self._bht,
            "HL": self._hl,
            "SBR": self._sbr,
            "NM1": self._nm1,
            "N4": self._n4,
            "CLM": self._clm,
            "HI": self._hi,
            "REF": self._ref,
            "LX": self._lx,
            "SV1": self._sv1,
            "SV2": self._sv2,
            "AMT": self._amt,
            "CAS": self._cas,
            "SVD": self._svd,
            "SE": self._se,
        }

    def _error(
        self,
        code: str,
        message: str,
        segment: str,
        position: int,
        ordinal: int,
        loop: str | None,
        element: str | None = None,
        value: str | None = None,
        ik3: str = "8",
    ) -> None:
        # A guide rule breaks the implementation, not the X12 syntax: the 999 answers it
        # as a data element error with IK403 I12 (implementation pattern match failure).
        self.out.append(
            _finding(
                Severity.ERROR,
                code,
                message,
                segment=segment,
                segment_position=position,
                file_ordinal=ordinal,
                loop=loop,
                element=element,
                value=value,
                transaction_set=self.st02,
                ik3=ik3,
                ik4="I12" if element else None,
            )
        )

    def feed(
        self, elements: list[str], loop: str, position: int, ordinal: int, delimiters: Delimiters
    ) -> None:
        handler = self._dispatch.get(elements[0])
        if handler is not None:
            handler(elements, loop, position, ordinal, delimiters)

    # -- segments ------------------------------------------------------------------
    def _bht(self, e: list[str], loop: str, position: int, ordinal: int, d: Delimiters) -> None:
        value = e[4] if len(e) > 4 else ""
        if len(value) == 8 and value.isdigit():
            try:
                created = dt.date(int(value[:4]), int(value[4:6]), int(value[6:8]))
            except ValueError:
                return
            # One day of slack: the sender's clock may be a time zone ahead of ours.
            if created > self.today + dt.timedelta(days=1):
                self._error(
                    "X12.BHT04_FUTURE",
                    "BHT04 transaction creation date is in the future",
                    "BHT",
                    position,
                    ordinal,
                    loop,
                    "BHT04",
                    value,
                )

    def _hl(self, e: list[str], loop: str, position: int, ordinal: int, d: Delimiters) -> None:
        self._close_claim()

    def _sbr(self, e: list[str], loop: str, position: int, ordinal: int, d: Delimiters) -> None:
        responsibility = e[1] if len(e) > 1 else ""
        if loop == "2000B":
            self.subscriber_responsibility = responsibility
        elif loop == "2320" and self.claim is not None:
            self.claim.payers.append(_OtherPayer(position, ordinal, responsibility))

    def _nm1(self, e: list[str], loop: str, position: int, ordinal: int, d: Delimiters) -> None:
        if len(e) > 9 and e[8] == "XX" and not is_valid_npi(e[9]):
            self._error(
                "X12.NPI_CHECK_DIGIT",
                f"NM109 in loop {loop} is not a valid NPI (10 digits starting 1 or 2 with a Luhn "
                "check digit over 80840 + the first 9 digits)",
                "NM1",
                position,
                ordinal,
                loop,
                "NM109",
                e[9],
            )
        if loop == "2330B" and self.claim is not None and self.claim.payers and len(e) > 9:
            self.claim.payers[-1].payer_id = e[9]

    def _n4(self, e: list[str], loop: str, position: int, ordinal: int, d: Delimiters) -> None:
        if loop == "2010AA":
            zip_code = e[3] if len(e) > 3 else ""
            if not (len(zip_code) == 9 and zip_code.isdigit()):
                self._error(
                    "X12.BILLING_PROVIDER_ZIP4",
                    "N403 billing provider ZIP code must be 9 digits (ZIP+4) per the 837 TR3 2010AA note",
                    "N4",
                    position,
                    ordinal,
                    loop,
                    "N403",
                    zip_code,
                )

    def _clm(self, e: list[str], loop: str, position: int, ordinal: int, d: Delimiters) -> None:
        self._close_claim()
        pcn = e[1] if len(e) > 1 else ""
        parts = (e[5] if len(e) > 5 else "").split(d.component) if d.component else [""]
        frequency = parts[2] if len(parts) > 2 else ""
        self.claim = _Claim(
            position, ordinal, _cents(e[2] if len(e) > 2 else ""), frequency, self.subscriber_responsibility
        )
        self.claim_refs[position] = pcn
        if len(self.claim_refs) == MAX_CLAIMS_PER_TRANSACTION + 1:
            # 837 TR3 1.4.1: at most 5,000 CLM loops per transaction set.
            self._error(
                "X12.CLAIM_COUNT",
                f"the transaction set holds more than {MAX_CLAIMS_PER_TRANSACTION} claims",
                "CLM",
                position,
                ordinal,
                loop,
                ik3="4",
            )
        if len(pcn) > 20:
            # CLM01 is the patient account number: PHI, so its value stays out of the finding.
            self._error(
                "X12.CLM01_LENGTH",
                f"CLM01 patient control number is {len(pcn)} characters; the 837 TR3 allows at most 20",
                "CLM",
                position,
                ordinal,
                loop,
                "CLM01",
            )

    def _hi(self, e: list[str], loop: str, position: int, ordinal: int, d: Delimiters) -> None:
        claim = self.claim
        if claim is None or loop != "2300":
            return
        for value in e[1:]:
            parts = value.split(d.component) if d.component else [value]
            if len(parts) >= 2 and parts[0] in _DX_QUALIFIERS:
                if not claim.dx:
                    claim.dx_position = position
                claim.dx.append(parts[1])
                if parts[1] in claim.dx[:-1]:
                    self._error(
                        "X12.DX_DUPLICATE",
                        f"diagnosis code {parts[1]} is listed twice on the claim",
                        "HI",
                        position,
                        ordinal,
                        loop,
                        None,
                        parts[1],
                    )

    def _ref(self, e: list[str], loop: str, position: int, ordinal: int, d: Delimiters) -> None:
        claim = self.claim
        if claim is None or len(e) < 3:
            return
        if loop == "2300" and e[1] == "F8":
            claim.has_f8 = True
        elif loop == "2400" and e[1] == "6R":
            ref = e[2]
            if len(ref) > 30:
                self._error(
                    "X12.REF_6R",
                    "REF02 line item control number must be at most 30 characters",
                    "REF",
                    position,
                    ordinal,
                    loop,
                    "REF02",
                    ref,
                )
            if ref in claim.line_refs:
                self._error(
                    "X12.REF_6R",
                    "REF*6R line item control number is repeated within the claim",
                    "REF",
                    position,
                    ordinal,
                    loop,
                    "REF02",
                    ref,
                )
            claim.line_refs[ref] = position

    def _lx(self, e: list[str], loop: str, position: int, ordinal: int, d: Delimiters) -> None:
        if self.claim is not None:
            self.claim.lines.append(_Line(position, ordinal))

    def _sv1(self, e: list[str], loop: str, position: int, ordinal: int, d: Delimiters) -> None:
        claim = self.claim
        if claim is None or not claim.lines:
            return
        line = claim.lines[-1]
        line.charge = _cents(e[2] if len(e) > 2 else "")
        if len(e) > 7 and e[7]:
            line.pointers = e[7].split(d.component) if d.component else [e[7]]
            line.pointer_position, line.pointer_ordinal = position, ordinal

    def _sv2(self, e: list[str], loop: str, position: int, ordinal: int, d: Delimiters) -> None:
        claim = self.claim
        if claim is not None and claim.lines:
            claim.lines[-1].charge = _cents(e[3] if len(e) > 3 else "")

    def _amt(self, e: list[str], loop: str, position: int, ordinal: int, d: Delimiters) -> None:
        claim = self.claim
        if loop == "2320" and claim is not None and claim.payers and len(e) > 2 and e[1] == "D":
            claim.payers[-1].paid = _cents(e[2])

    def _cas(self, e: list[str], loop: str, position: int, ordinal: int, d: Delimiters) -> None:
        claim = self.claim
        if claim is None:
            return
        total = sum((_cents(e[i]) or 0) for i in _CAS_AMOUNTS if i < len(e))
        if loop == "2320" and claim.payers:
            claim.payers[-1].cas += total
        elif loop == "2430" and claim.lines and claim.lines[-1].adjudications:
            claim.lines[-1].adjudications[-1][2] += total

    def _svd(self, e: list[str], loop: str, position: int, ordinal: int, d: Delimiters) -> None:
        claim = self.claim
        if claim is not None and claim.lines:
            claim.lines[-1].adjudications.append(
                [e[1] if len(e) > 1 else "", _cents(e[2] if len(e) > 2 else ""), 0, position, ordinal]
            )

    def _se(self, e: list[str], loop: str, position: int, ordinal: int, d: Delimiters) -> None:
        self._close_claim()

    # -- claim-level edits ------------------------------------------------------------
    def _close_claim(self) -> None:
        claim = self.claim
        if claim is None:
            return
        self.claim = None
        pos, ordi = claim.position, claim.ordinal
        charges = [line.charge for line in claim.lines]
        if claim.charge is not None and charges and None not in charges:
            total = sum(c for c in charges if c is not None)
            if total != claim.charge:
                line_element = "SV102" if self.professional else "SV203"
                self._error(
                    "X12.CLM02_BALANCE",
                    f"CLM02 total claim charge {_money(claim.charge)} does not equal the sum of "
                    f"{line_element} line charges {_money(total)}",
                    "CLM",
                    pos,
                    ordi,
                    "2300",
                    "CLM02",
                    _money(claim.charge),
                )
        if claim.frequency in ("7", "8") and not claim.has_f8:
            self._error(
                "X12.REF_F8_REQUIRED",
                f"claim frequency {claim.frequency} (replacement/void) requires REF*F8 with the payer "
                "claim control number of the original claim",
                "CLM",
                pos,
                ordi,
                "2300",
                "CLM05-3",
                claim.frequency,
            )
        primaries = [claim.subscriber_responsibility, *(p.responsibility for p in claim.payers)].count("P")
        if primaries != 1:
            self._error(
                "X12.PRIMARY_PAYER",
                f"exactly one payer must have responsibility P across 2000B SBR01 and 2320 SBR01; "
                f"found {primaries}",
                "CLM",
                pos,
                ordi,
                "2300",
                "SBR01",
            )
        if self.professional:
            if len(claim.dx) > 12:
                self._error(
                    "X12.DX_COUNT",
                    f"the claim lists {len(claim.dx)} diagnosis codes; at most 12",
                    "HI",
                    claim.dx_position,
                    ordi,
                    "2300",
                )
            if len(claim.lines) > 50:
                line = claim.lines[50]
                self._error(
                    "X12.LINE_COUNT",
                    f"the claim has {len(claim.lines)} service lines; the 837P allows 50",
                    "LX",
                    line.position,
                    line.ordinal,
                    "2400",
                    ik3="4",
                )
            self._pointers(claim)
        self._cob(claim)

    def _pointers(self, claim: _Claim) -> None:
        count = len(claim.dx)
        for line in claim.lines:
            seen: set[str] = set()
            for pointer in line.pointers:
                if not pointer:
                    continue
                number = parse_count(pointer, max_length=2)
                if number is None or not 1 <= number <= count:
                    self._error(
                        "X12.DX_POINTER",
                        f"SV107 diagnosis pointer {pointer} does not point at one of the claim's {count} "
                        "HI diagnosis codes",
                        "SV1",
                        line.pointer_position,
                        line.pointer_ordinal,
                        "2400",
                        "SV107",
                        pointer,
                    )
                elif pointer in seen:
                    self._error(
                        "X12.DX_POINTER",
                        f"SV107 diagnosis pointer {pointer} is repeated",
                        "SV1",
                        line.pointer_position,
                        line.pointer_ordinal,
                        "2400",
                        "SV107",
                        pointer,
                    )
                seen.add(pointer)

    def _cob(self, claim: _Claim) -> None:
        line_element = "SV102" if self.professional else "SV203"
        for line in claim.lines:
            for _payer, paid, cas, position, ordinal in line.adjudications:
                if paid is not None and line.charge is not None and paid + cas != line.charge:
                    self._error(
                        "X12.COB_LINE_BALANCE",
                        f"SVD02 paid {_money(paid)} + 2430 CAS adjustments {_money(cas)} must equal "
                        f"{line_element} line charge {_money(line.charge)}",
                        "SVD",
                        position,
                        ordinal,
                        "2430",
                        "SVD02",
                        _money(paid),
                    )
        if claim.charge is None:
            return
        for payer in claim.payers:
            if payer.paid is None:
                continue
            line_cas = sum(a[2] for line in claim.lines for a in line.adjudications if a[0] == payer.payer_id)
            if claim.charge - payer.paid != payer.cas + line_cas:
                self._error(
                    "X12.COB_CLAIM_BALANCE",
                    f"CLM02 {_money(claim.charge)} - 2320 AMT*D {_money(payer.paid)} must equal 2320 CAS "
                    f"{_money(payer.cas)} + 2430 CAS {_money(line_cas)} for that payer",
                    "SBR",
                    payer.position,
                    payer.ordinal,
                    "2320",
                    "AMT02",
                    _money(payer.paid),
                )


# --------------------------------------------------------------------------------------
# Guide rules for 835: the money (X221A1 1.10.2 balancing, BPR02 never negative)
# --------------------------------------------------------------------------------------
class RemittanceRules:
    """835 money edits, from the very parser remittance posting reads files with
    (:mod:`edi.x835`), so ``validate``, ``edi parse`` and posting cannot disagree on
    whether a remittance balances: service line (SVC02 - line CAS = SVC03), claim (CLP03 -
    CAS = CLP04), payment (sum of CLP04 - sum of PLB = BPR02), BPR02 not negative, and
    amounts the ledger cannot hold. Other parser findings are left to the map walk.
    """

    CODES = frozenset(
        {
            "835_LINE_UNBALANCED",
            "835_CLAIM_UNBALANCED",
            "835_PAYMENT_UNBALANCED",
            "835_PAYMENT_NEGATIVE",
            "835_AMOUNT_PRECISION",
            "835_AMOUNT_OUT_OF_RANGE",
        }
    )

    def __init__(self, st02: str, st: Segment) -> None:
        from edi import x835  # the 835 parser imports nothing from here

        self.st02 = st02
        self.parser = x835._Parser()
        self.parser.component = st.delimiters.component or ":"
        self.bpr_position: int | None = None
        self.out: list[Finding] = []
        self.feed(st.elements, st.ordinal, 1)

    def feed(self, elements: list[str], ordinal: int, position: int) -> None:
        parser = self.parser
        parser.ordinal = ordinal
        sid = elements[0]
        if sid == "BPR" and self.bpr_position is None:
            self.bpr_position = position
        handler = parser.handlers.get(sid)
        if handler is not None and sid not in ("ISA", "GS", "GE", "IEA"):
            handler(elements)
        if parser.out:
            self._collect()

    def close(self) -> list[Finding]:
        """End of the set (SE read, or missing): every money finding, 999-ready."""
        if self.parser.in_835:
            self.parser.close_transaction(missing_se=True)
            self._collect()
        out, self.out = self.out, []
        return out

    def _collect(self) -> None:
        for event in self.parser.out:
            for f in event.findings if not isinstance(event, Finding) else (event,):
                if f.code not in self.CODES:
                    continue
                position = f.segment_position
                if f.code == "835_PAYMENT_UNBALANCED":
                    position = self.bpr_position
                # A guide rule: answered in the 999 as an element error, IK403 I12.
                self.out.append(
                    Finding(
                        Severity.ERROR,
                        f"X12.{f.code}",
                        f.message,
                        f.segment,
                        position,
                        f.loop,
                        f.element,
                        f.value,
                        f.file_ordinal,
                        self.st02,
                        "8",
                        "I12" if f.element else None,
                    )
                )
        self.parser.out.clear()


# --------------------------------------------------------------------------------------
# Reports
# --------------------------------------------------------------------------------------
@dataclass(slots=True)
class TransactionSetReport:
    st01: str
    st02: str
    st03: str
    gs01: str
    gs06: str
    gs08: str
    findings: list[Finding] = field(default_factory=list)
    accepted: bool = True
    claim_refs: dict[int, str] = field(default_factory=dict)  # CLM position -> CLM01, for 999 CTX
    isa13: str = ""
    guide: str | None = None  # map file used, None when pyx12 has no map for it
    first_ordinal: int = 0
    last_ordinal: int | None = None
    segment_count: int = 0

    @property
    def checked(self) -> bool:
        """Was the set walked through its implementation guide? False: only the envelope
        and the X12 syntax were checked (no guide for its ST01 + ST03)."""
        return self.guide is not None

    @property
    def verdict(self) -> str:
        """valid | invalid | unchecked (no errors, but no guide to check it against)."""
        if any(f.is_error for f in self.findings):
            return "invalid"
        return "valid" if self.checked else "unchecked"

    @property
    def ik5_code(self) -> str:
        """999 IK501: A accepted, E accepted with errors noted (warnings, or a set whose
        guide we do not have: see :attr:`ik5_noted`), R rejected."""
        if any(f.is_error for f in self.findings):
            return "R"
        return "E" if any(f.severity is Severity.WARNING for f in self.findings) else "A"

    @property
    def ik5_reasons(self) -> list[str]:
        """IK502..IK506 syntax error codes: envelope codes first, then 5 for segment errors."""
        codes: list[str] = []
        for f in self.findings:
            if not f.is_error:
                continue
            code = ack_codes(f).ik5 or ("5" if f.ik3 else None)
            if code and code not in codes:
                codes.append(code)
        return codes[:5]

    @property
    def ik5_noted(self) -> list[str]:
        """IK502 codes of an accepted set: I6 (implementation convention not supported)
        when its guide was not checked, so an IK5 never claims a conformance we did not
        check (docs/edi-reading.md)."""
        return [] if self.checked else ["I6"]

    def to_json_dict(self) -> dict[str, object]:
        return {
            "verdict": self.verdict,
            "st01": self.st01,
            "st02": self.st02,
            "st03": self.st03,
            "gs01": self.gs01,
            "gs06": self.gs06,
            "gs08": self.gs08,
            "isa13": self.isa13,
            "guide": self.guide,
            "accepted": self.accepted,
            "ik5": self.ik5_code,
            "segment_count": self.segment_count,
            "errors": sum(1 for f in self.findings if f.is_error),
        }


@dataclass(slots=True)
class InterchangeReport:
    isa13: str
    sender: str  # ISA05:ISA06
    receiver: str  # ISA07:ISA08
    findings: list[Finding]
    summary: InterchangeSummary

    @property
    def ta1_note(self) -> str:
        """TA105 note code: 000 when the envelope is sound, else the first problem's code."""
        for f in self.findings:
            code = ack_codes(f).ta1
            if code and f.is_error:
                return code
        return "000"


@dataclass(slots=True)
class ValidationReport:
    file: str | None
    readable: bool = True
    findings: list[Finding] = field(default_factory=list)
    transaction_sets: list[TransactionSetReport] = field(default_factory=list)
    interchanges: list[InterchangeReport] = field(default_factory=list)

    @property
    def valid(self) -> bool:
        """No error found. Whether every set was checked against its guide is
        :attr:`verdict`; a file whose sets have no guide is not called valid there."""
        return self.readable and not any(f.is_error for f in self.findings)

    @property
    def verdict(self) -> str:
        """valid | invalid | unchecked | unreadable: ``unchecked`` when nothing is wrong
        but at least one transaction set has no implementation guide we could walk."""
        if not self.readable:
            return "unreadable"
        if not self.valid:
            return "invalid"
        return "unchecked" if any(not ts.checked for ts in self.transaction_sets) else "valid"

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.is_error]

    def to_json_dict(self) -> dict[str, object]:
        return {
            "file": self.file,
            "verdict": self.verdict,
            "valid": self.verdict == "valid",
            "readable": self.readable,
            "interchanges": [
                {"isa13": i.isa13, "sender": i.sender, "receiver": i.receiver, "ta1_note": i.ta1_note}
                for i in self.interchanges
            ],
            "transaction_sets": [t.to_json_dict() for t in self.transaction_sets],
            "findings": [f.to_dict() for f in self.findings],
        }


# --------------------------------------------------------------------------------------
# The driver
# --------------------------------------------------------------------------------------
class _MapCache:
    """Per-map walk plans and segment checkers, shared by every validation in the process.

    Plans are bounded by _CACHE_LIMIT; checkers by the map's segment count.
    """

    plans: dict[str, dict[tuple, _Plan]] = {}
    checkers: dict[str, dict[int, SegmentChecker]] = {}


class _Validator:
    def __init__(self, file: str | None, rules: bool, today: dt.date | None) -> None:
        self.report = ValidationReport(file=file)
        self.rules_enabled = rules
        self.today = today
        self.envelope = EnvelopeChecker(file)
        self.ts: TransactionSetReport | None = None
        self.walker: TransactionWalker | None = None
        self.rules: ClaimRules | None = None
        self.map: CompiledMap | None = None
        self.map_error: str | None = None
        self.guides: dict[tuple[str, str, str], CompiledMap | None] = {}
        self.remittance: RemittanceRules | None = None
        self.checkers: dict[int, SegmentChecker] = {}
        self.position = 0
        self.hl_count = 0
        self.hl_stack: list[int] = []
        self.hl_last_child_code = ""
        self.hl_last_id = 0
        self.lx_count = 0
        self.is_837 = False
        self.isa_report: InterchangeReport | None = None

    # Findings go to the report, and to the open transaction set when they belong to it.
    def emit(self, finding: Finding) -> None:
        self.report.findings.append(finding)
        if self.ts is not None and finding.transaction_set == self.ts.st02:
            self.ts.findings.append(finding)
        elif self.isa_report is not None and finding.transaction_set is None:
            self.isa_report.findings.append(finding)

    def run(self, segments: Iterator[Segment], notes: ReaderNotes | None = None) -> None:
        envelope = self.envelope
        indented = notes.indented if notes is not None else []
        next_indented = 0  # index into ``indented`` (the reader appends a block at a time)
        for seg in segments:
            elements = seg.elements
            sid = elements[0]
            if seg.ordinal == 1 and notes is not None and notes.text_before_isa:
                self.emit(
                    _finding(
                        Severity.ERROR,
                        "X12.TEXT_BEFORE_ISA",
                        f"{notes.text_before_isa} characters of text come before the first ISA: "
                        "not X12; skipped, and the interchange after them was read",
                        segment="ISA",
                        file_ordinal=1,
                    )
                )
            if indented:
                # Blanks or tabs before this segment id: the reader read past them (the
                # segment is checked as usual), and the file is not X12 as sent.
                while next_indented < len(indented) and indented[next_indented] < seg.ordinal:
                    next_indented += 1
                if next_indented < len(indented) and indented[next_indented] == seg.ordinal:
                    next_indented += 1
                    self._segment_problem(
                        seg, "X12.SEGMENT_LEADING_SPACE", "segment id is preceded by blanks or tabs", "1"
                    )
                if next_indented >= len(indented):
                    indented.clear()
                    next_indented = 0
            if sid != sid.strip() or "\n" in sid:
                cleaned = sid.strip()
                self._segment_problem(
                    seg, "X12.SEGMENT_LEADING_SPACE", "segment id has leading or trailing white space", "1"
                )
                elements[0] = sid = cleaned
            env_findings = envelope.feed(seg)
            if sid in _ENVELOPE_IDS and self.ts is not None:
                # A control segment while a set is open: its SE is missing; that finding is the set's.
                for f in env_findings:
                    if f.code == "X12.SE_MISSING":
                        self.emit(f)
                env_findings = [f for f in env_findings if f.code != "X12.SE_MISSING"]
                self._close_transaction(None)
            if sid == "ISA":
                self.isa_report = InterchangeReport(
                    isa13=seg.get(13),
                    sender=f"{seg.get(5)}:{seg.get(6).strip()}",
                    receiver=f"{seg.get(7)}:{seg.get(8).strip()}",
                    findings=[],
                    summary=envelope.isa,  # type: ignore[arg-type]
                )
                self.report.interchanges.append(self.isa_report)
            elif sid == "ST":
                self._open_transaction(seg)
            for f in env_findings:
                self.emit(f)
            if self.ts is None and sid != "ISA":
                self._envelope_characters(seg)
            if sid == "GS":
                self._gs(seg)
            elif self.ts is not None:
                self._body(seg)
                if sid == "SE":
                    self._close_transaction(seg)
        self._close_transaction(None)
        for f in envelope.finish():
            self.emit(f)

    def _envelope_characters(self, seg: Segment) -> None:
        """GS/GE/IEA (or a stray segment) holding characters outside the X12 sets: TA1 024."""
        for ref in bad_element_refs(seg.elements):
            self.emit(
                _finding(
                    Severity.ERROR,
                    "X12.ENVELOPE_INVALID_CHARACTER",
                    f"{ref} holds a character outside the X12 basic and extended character sets",
                    segment=seg.id[:3] or None,
                    element=ref,
                    file_ordinal=seg.ordinal,
                )
            )

    def _segment_problem(self, seg: Segment, code: str, message: str, ik3: str) -> None:
        self.emit(
            _finding(
                Severity.ERROR,
                code,
                message,
                segment=seg.id.strip()[:3] or None,
                segment_position=self.position + 1 if self.ts is not None else None,
                file_ordinal=seg.ordinal,
                transaction_set=self.ts.st02 if self.ts else None,
                ik3=ik3,
            )
        )

    def _gs(self, seg: Segment) -> None:
        # The guide is chosen per transaction set (ST01 + ST03), not per group: see
        # _guide_for. GS01 is checked against ST01 by the envelope checker.
        return None

    def _guide_for(self, st01: str, implementation: str, gs01: str) -> CompiledMap | None:
        """The implementation guide a set names: ST01 + ST03 (GS08 when ST03 is absent,
        as in 4010), looked up under the functional group ST01 belongs to, whatever GS01
        says (a 271 under GS*HS is still checked as a 271). None when there is none."""
        isa = self.envelope.isa
        icvn = isa.version if isa is not None else "00501"
        key = (icvn, implementation, FUNCTIONAL_GROUP_OF.get(st01, gs01))
        if key not in self.guides:
            try:
                self.guides[key] = map_for(*key)
            except MapError as exc:
                self.guides[key] = None
                self.map_error = str(exc)
        return self.guides[key]

    def _open_transaction(self, seg: Segment) -> None:
        gs = self.envelope.gs
        isa = self.envelope.isa
        ts = TransactionSetReport(
            st01=seg.get(1),
            st02=seg.get(2),
            st03=seg.get(3),
            gs01=gs.gs01 if gs else "",
            gs06=gs.gs06 if gs else "",
            gs08=gs.gs08 if gs else "",
            isa13=isa.isa13 if isa else "",
            first_ordinal=seg.ordinal,
        )
        self.ts = ts
        self.report.transaction_sets.append(ts)
        self.position = 0
        self.hl_count, self.hl_stack, self.hl_last_child_code, self.hl_last_id = 0, [], "", 0
        self.lx_count = 0
        implementation = ts.st03 or ts.gs08
        map_ = self._guide_for(ts.st01, implementation, ts.gs01)
        if map_ is not None and ts.st01 not in _st01_codes(map_):
            map_ = None
        self.map = map_
        # 835 money edits (SNIP 3) run whether or not a guide map exists: they need
        # only the segments, and they are the same code posting reads the file with.
        self.remittance = RemittanceRules(ts.st02, seg) if ts.st01 == "835" and self.rules_enabled else None
        if map_ is None:
            self.walker = None
            self.rules = None
            self.is_837 = False
            what = f"ST01 {ts.st01!r} / {'ST03' if ts.st03 else 'GS08'} {implementation!r}"
            self.emit(
                _finding(
                    Severity.WARNING,
                    "X12.NO_MAP",
                    f"no implementation guide for {what}: only the envelope and the X12 syntax "
                    "were checked, so the verdict is 'unchecked', not 'valid'",
                    segment="ST",
                    segment_position=1,
                    file_ordinal=seg.ordinal,
                    transaction_set=ts.st02,
                )
            )
            return
        self.checkers = _MapCache.checkers.setdefault(map_.name, {})
        ts.guide = map_.name
        plans = _MapCache.plans.setdefault(map_.name, {})
        self.walker = TransactionWalker(map_, plans)
        # LX01 numbering is a TR3 rule for both 837P and 837I (pyx12 checks it for 837P only).
        is_837 = ts.st01 == "837"
        self.is_837 = is_837
        self.rules = (
            ClaimRules("X222" in ts.gs08 or "X098" in ts.gs08, ts.st02, [], self.today)
            if is_837 and self.rules_enabled
            else None
        )

    def _close_transaction(self, se: Segment | None) -> None:
        ts = self.ts
        if ts is None:
            return
        if self.rules is not None:
            self.rules._close_claim()
            ts.claim_refs = self.rules.claim_refs
            for f in self.rules.out:
                self.emit(f)
            self.rules.out.clear()
        if self.remittance is not None:
            for f in self.remittance.close():
                self.emit(f)
            self.remittance = None
        if self.hl_last_child_code == "1" and self.is_837:
            self.emit(
                _finding(
                    Severity.ERROR,
                    "X12.HL04_CHILD_CODE",
                    "HL04 is 1 (children follow) but no child HL follows",
                    segment="HL",
                    element="HL04",
                    value="1",
                    transaction_set=ts.st02,
                    ik3="8",
                    ik4="7",
                )
            )
        ts.last_ordinal = se.ordinal if se is not None else None
        ts.segment_count = self.position
        ts.accepted = not any(f.is_error for f in ts.findings)
        self.ts = None
        self.walker = None
        self.rules = None

    def _body(self, seg: Segment) -> None:
        ts = self.ts
        assert ts is not None
        self.position += 1
        position = self.position
        elements = seg.elements
        sid = elements[0]
        st02 = ts.st02
        out: list[Finding] = []
        if self.remittance is not None and position > 1:
            self.remittance.feed(elements, seg.ordinal, position)
            out.extend(self.remittance.out)
            self.remittance.out.clear()
        if len(elements) == 1 or (len(elements) == 2 and not elements[1]):
            out.append(
                _finding(
                    Severity.ERROR,
                    "X12.SEGMENT_EMPTY",
                    f"segment {sid} has no data",
                    segment=sid,
                    segment_position=position,
                    file_ordinal=seg.ordinal,
                    ik3="8",
                )
            )
        elif elements[-1] == "":
            out.append(
                _finding(
                    Severity.ERROR,
                    "X12.TRAILING_SEPARATOR",
                    "segment ends with an element separator (trailing empty element)",
                    segment=sid,
                    segment_position=position,
                    file_ordinal=seg.ordinal,
                    ik3="8",
                )
            )
        if sid not in _VALID_IDS and not _valid_segment_id(sid):
            out.append(
                _finding(
                    Severity.ERROR,
                    "X12.SEGMENT_ID_INVALID",
                    "segment id is not 2-3 uppercase letters/digits",
                    segment=sid[:3] or None,
                    segment_position=position,
                    file_ordinal=seg.ordinal,
                    ik3="1",
                )
            )
        if sid == "HL":
            self._hl(elements, position, seg.ordinal, out)
        elif self.is_837:
            if sid == "CLM":
                self.lx_count = 0
            elif sid == "LX":
                self.lx_count += 1
                if elements[1:2] != [str(self.lx_count)]:
                    out.append(
                        _finding(
                            Severity.ERROR,
                            "X12.LX_SEQUENCE",
                            f"LX01 service line number should be {self.lx_count} (numbered 1..n "
                            "within the claim)",
                            segment="LX",
                            segment_position=position,
                            file_ordinal=seg.ordinal,
                            loop="2400",
                            element="LX01",
                            value=elements[1] if len(elements) > 1 else None,
                            ik3="8",
                            ik4="7",
                        )
                    )
        walker = self.walker
        current_loop: str | None = None
        if walker is not None:
            delimiters = seg.delimiters
            if sid == "ST" and position == 1:
                spec: SegmentSpec | None = walker.current
            else:
                spec = walker.walk(elements, delimiters.component, position, seg.ordinal, out)
            if spec is not None:
                loop_id = spec.parent.id if spec.parent is not None else None
                current_loop = loop_id
                checker = self.checkers.get(spec.uid)
                if checker is None:
                    checker = self.checkers[spec.uid] = SegmentChecker(spec, walker.map)
                problems = checker.problems(elements, delimiters)
                for ik4, code, message, ref, value in problems:
                    out.append(
                        Finding(
                            Severity.ERROR,
                            code,
                            message,
                            sid,
                            position,
                            loop_id,
                            ref,
                            value,
                            seg.ordinal,
                            st02,
                            "8",
                            ik4,
                        )
                    )
                if self.rules is not None and loop_id is not None:
                    self.rules.feed(elements, loop_id, position, seg.ordinal, delimiters)
                    if self.rules.out:
                        out.extend(self.rules.out)
                        self.rules.out.clear()
        bad_refs = bad_element_refs(elements)
        if bad_refs:
            # Every element, mapped or not (an unknown segment, an element the guide does
            # not define): IK4 6. The map's own check may have said so already.
            said = {f.element for f in out if f.ik4 == "6"}
            for ref in bad_refs:
                if ref in said or any(e and e.startswith(ref + "-") for e in said):
                    continue
                out.append(
                    Finding(
                        Severity.ERROR,
                        "X12.ELEMENT_INVALID_CHARACTER",
                        f"{ref} holds a character outside the X12 basic and extended character sets",
                        sid[:3],
                        position,
                        current_loop,
                        ref,
                        None,
                        seg.ordinal,
                        st02,
                        "8",
                        "6",
                    )
                )
        for f in out:
            if f.transaction_set is None:
                f = Finding(
                    f.severity,
                    f.code,
                    f.message,
                    f.segment,
                    f.segment_position,
                    f.loop,
                    f.element,
                    f.value,
                    f.file_ordinal,
                    st02,
                    f.ik3,
                    f.ik4,
                )
            self.emit(f)

    def _hl(self, elements: list[str], position: int, ordinal: int, out: list[Finding]) -> None:
        self.hl_count += 1
        hl01 = elements[1] if len(elements) > 1 else ""
        hl02 = elements[2] if len(elements) > 2 else ""
        if hl01 != str(self.hl_count):
            out.append(
                _finding(
                    Severity.ERROR,
                    "X12.HL01_SEQUENCE",
                    f"HL01 should be {self.hl_count}: hierarchical IDs are numbered 1..n",
                    segment="HL",
                    segment_position=position,
                    file_ordinal=ordinal,
                    element="HL01",
                    value=hl01,
                    ik3="8",
                    ik4="7",
                )
            )
        parent = parse_count(hl02, max_length=12)
        if hl02:
            if parent not in self.hl_stack:
                out.append(
                    _finding(
                        Severity.ERROR,
                        "X12.HL02_PARENT",
                        "HL02 does not name an open parent hierarchical level",
                        segment="HL",
                        segment_position=position,
                        file_ordinal=ordinal,
                        element="HL02",
                        value=hl02,
                        ik3="8",
                        ik4="7",
                    )
                )
            while self.hl_stack and self.hl_stack[-1] != parent:
                self.hl_stack.pop()
        if not self.is_837:
            pass  # HL04 "children follow" is checked for the 837 only: the 270/271 TR3 fixes 2000A HL04 at 1
        elif self.hl_last_child_code == "1" and (parent is None or parent != self.hl_last_id):
            out.append(
                _finding(
                    Severity.ERROR,
                    "X12.HL04_CHILD_CODE",
                    "previous HL04 is 1 (children follow) but this HL is not its child",
                    segment="HL",
                    segment_position=position,
                    file_ordinal=ordinal,
                    element="HL04",
                    value="1",
                    ik3="8",
                    ik4="7",
                )
            )
        elif self.hl_last_child_code == "0" and parent is not None and parent == self.hl_last_id:
            out.append(
                _finding(
                    Severity.ERROR,
                    "X12.HL04_CHILD_CODE",
                    "previous HL04 is 0 (no children) but this HL is its child",
                    segment="HL",
                    segment_position=position,
                    file_ordinal=ordinal,
                    element="HL04",
                    value="0",
                    ik3="8",
                    ik4="7",
                )
            )
        self.hl_stack.append(self.hl_count)
        self.hl_last_id = self.hl_count
        self.hl_last_child_code = elements[4] if len(elements) > 4 else ""


def validate(
    source: Source, *, file: str | None = None, rules: bool = True, today: dt.date | None = None
) -> ValidationReport:
    """Validate an X12 file (path, bytes or binary file) and return a :class:`ValidationReport`.

    Never raises on bad input: input that is not X12 at all gives ``readable=False`` and
    one error finding carrying the reader's code (ISA_MISSING, EMPTY, ...).
    """
    name = file
    if name is None and isinstance(source, str) and not source.lstrip("\ufeff").startswith("ISA"):
        name = source
    validator = _Validator(name, rules, today)
    seen_segments = False

    def counted(segments: Iterator[Segment]) -> Iterator[Segment]:
        nonlocal seen_segments
        for seg in segments:
            seen_segments = True
            yield seg

    notes = ReaderNotes()
    try:
        validator.run(counted(read_segments(source, file=name, notes=notes)), notes)
    except X12SyntaxError as exc:
        validator._close_transaction(None)
        for f in validator.envelope.finish():
            validator.emit(f)
        validator.report.readable = seen_segments
        validator.emit(
            _finding(Severity.ERROR, f"X12.{exc.code}", exc.message, file_ordinal=exc.segment_ordinal)
        )
    except OSError as exc:
        validator.report.readable = False
        validator.emit(
            _finding(
                Severity.ERROR,
                "X12.UNREADABLE_FILE",
                f"the file cannot be read: {exc.strerror or type(exc).__name__}",
            )
        )
    except Exception as exc:
        # A validator bug must not surface as a traceback to the caller: report it as a
        # finding (the fuzz tests assert this never happens) and reject the file.
        validator.emit(
            _finding(
                Severity.ERROR,
                "X12.VALIDATOR_ERROR",
                f"internal validator error ({type(exc).__name__}); the file could not be fully checked",
            )
        )
    return validator.report
