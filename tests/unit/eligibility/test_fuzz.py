"""Broken 271s never raise and never read as "active" unless they pass the X279A1 guide."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edi.x271 import parse_271
from eligibility.answer import read_271
from tests.unit.edi.test_x271 import FULL_271

SEGMENTS = [s for s in FULL_271.split("~\n") if s]
BODY = range(3, len(SEGMENTS) - 3)  # between ST and SE
JUNK = st.text(alphabet="AB019*:^.-X ", min_size=0, max_size=12)


@st.composite
def mutated(draw: st.DrawFn) -> str:
    segments = list(SEGMENTS)
    for _ in range(draw(st.integers(1, 4))):
        index = draw(st.sampled_from(list(BODY)))
        action = draw(st.sampled_from(["drop", "dup", "element", "swap"]))
        if action == "drop":
            segments[index] = "XX"
        elif action == "dup":
            segments.insert(index, segments[index])
        elif action == "swap":
            other = draw(st.sampled_from(list(BODY)))
            segments[index], segments[other] = segments[other], segments[index]
        else:
            parts = segments[index].split("*")
            position = draw(st.integers(1, max(1, len(parts) - 1)))
            if position < len(parts):
                parts[position] = draw(JUNK)
            segments[index] = "*".join(parts)
    return "~\n".join(s for s in segments if s != "XX") + "~\n"


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated())
def test_mutated_271s_are_handled(text: str) -> None:
    data = text.encode("ascii")
    parse_271(data)
    answer = read_271(data, trace_number="TRACE0002", service_types=["98"])
    assert answer.summary.status in {"active", "inactive", "not_found", "rejected", "error"}
    if answer.malformed:
        assert answer.summary.status == "error" and answer.summary.retry is not None
    answer.summary.to_json_dict()
