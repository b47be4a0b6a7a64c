"""Property test: whatever a claim holds, the scrubber answers with findings, never a traceback."""

from __future__ import annotations

import dataclasses
from datetime import date
from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from coding.scrubber import Scrubber, ScrubFinding
from edi.claims import Diagnosis, ServiceLine
from tests.unit.coding.factory import TODAY, clean_claim, code_sets

SCRUBBER = Scrubber(code_sets())
codes = st.one_of(
    st.none(), st.text(max_size=9), st.sampled_from(["99214", "93005", "J3490", "G2211", "E119"])
)
lines = st.builds(
    ServiceLine,
    procedure=codes,
    charge_cents=st.one_of(st.integers(-(10**6), 10**8), st.none()),
    units=st.one_of(st.decimals(allow_nan=True, allow_infinity=True), st.integers(-3, 10).map(Decimal)),
    modifiers=st.lists(st.one_of(st.none(), st.text(max_size=3)), max_size=6).map(tuple),
    diagnosis_pointers=st.lists(st.integers(-2, 14), max_size=6).map(tuple),
    service_date=st.one_of(st.none(), st.dates(date(1900, 1, 1), date(2100, 1, 1))),
    place_of_service=st.one_of(st.none(), st.text(max_size=3)),
)
diagnoses = st.lists(st.builds(Diagnosis, code=st.one_of(st.text(max_size=8), st.sampled_from(
    ["E119", "E109", "W010XXA", "P599", "O80", "N400", "M545"]))), max_size=14)  # fmt: skip


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(lines, max_size=5), diagnoses, st.text(max_size=25), st.text(max_size=2))
def test_scrubber_never_raises(service_lines: list, dx: list, pcn: str, frequency: str) -> None:
    claim = dataclasses.replace(clean_claim(), lines=service_lines, diagnoses=dx, patient_control_number=pcn,
                                frequency_code=frequency)  # fmt: skip
    found = SCRUBBER.scrub(claim, today=TODAY)
    assert all(isinstance(f, ScrubFinding) and f.rule_id and f.path for f in found)
    assert not [f for f in found if f.rule_id == "INTERNAL_ERROR"], [f.path for f in found]
