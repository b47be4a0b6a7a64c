"""One value checked against the 837P element it will be written to, before it is stored.

The administration API (practice, providers, payers, clearinghouse routes) keeps values
that only reach an X12 file days later, in a batch. :func:`element_problems` applies to
such a value exactly what the batch would: the writer's character conversion
(:func:`edi.charset.to_x12_text`), the ISA padding of fixed-width identifiers, and then
the validator's own element rules (:func:`edi.validate._check_simple`: length, character
set, code lists of the compiled implementation guide). So a city of "0" (N401 needs 2
characters) or an ISA05 qualifier "FP" (not in the ISA05 code list) is refused where it
is typed, with the rule the 837 validator would have reported.

A place is ``"<loop>/<segment>/<element>"`` in the 837P guide (``"2010AA/N4/N401"``) or
``"<envelope segment>/<element>"`` (``"ISA/ISA05"``, ``"GS/GS02"``).
"""

from __future__ import annotations

from functools import lru_cache

from edi.charset import to_x12_text
from edi.maps import CompiledMap, ElementSpec, LoopSpec, map_for
from edi.validate import Problem, _check_simple

__all__ = ["element_problems", "element_spec"]

#: The 837P guide the administration values are checked against (837I shares these elements).
GUIDE = ("00501", "005010X222A1", "HC")


@lru_cache(maxsize=1)
def _guide() -> CompiledMap:
    compiled = map_for(*GUIDE)
    if compiled is None:  # pragma: no cover - pyx12 ships the map
        raise LookupError("the 837P implementation guide is not available")
    return compiled


def _find_loop(loop: LoopSpec, loop_id: str) -> LoopSpec | None:
    if loop.id == loop_id:
        return loop
    for child in loop.children:
        if not child.is_segment:
            found = _find_loop(child, loop_id)  # type: ignore[arg-type]
            if found is not None:
                return found
    return None


@lru_cache(maxsize=256)
def element_spec(place: str) -> ElementSpec:
    """The guide's spec of the element at ``place``; LookupError if the guide has none there."""
    parts = place.split("/")
    guide = _guide()
    if len(parts) == 2 and parts[0] in guide.envelope:
        segments = [guide.envelope[parts[0]]]
        ref = parts[1]
    elif len(parts) == 3:
        loop = _find_loop(guide.transaction, parts[0])
        if loop is None:
            raise LookupError(f"{place}: no loop {parts[0]} in the 837P guide")
        segments = [c for c in loop.children if c.is_segment and c.id == parts[1]]  # type: ignore[misc]
        ref = parts[2]
    else:
        raise LookupError(f"{place}: not loop/segment/element or envelope/element")
    for segment in segments:
        for element in segment.elements:
            if isinstance(element, ElementSpec) and element.ref == ref:
                return element
    raise LookupError(f"{place}: no element {ref} there in the 837P guide")


def element_problems(place: str, value: str) -> list[tuple[str, str]]:
    """(rule code, message) for each rule of the 837P element at ``place`` that ``value`` breaks
    once written there (converted and padded as the writer does); empty when it is fine."""
    spec = element_spec(place)
    text = to_x12_text(value)
    if place.startswith("ISA/") and spec.data_type == "AN" and spec.min_len == spec.max_len:
        text = text.ljust(spec.max_len)  # the writer pads ISA06/ISA08 to their fixed width
    if not text:
        name = spec.name or spec.ref
        return [("X12.ELEMENT_MISSING", f"{spec.ref} ({name}) would be empty once written")]
    found: list[Problem] = []
    _check_simple(spec, text, _guide(), None, found)
    return [(code, message) for _ik4, code, message, _ref, _value in found]
