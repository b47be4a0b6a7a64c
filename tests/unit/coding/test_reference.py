"""Modifiers, place of service, frequency codes, states, taxonomy, ZIP and NPI."""

from __future__ import annotations

from datetime import date

from coding import modifiers, reference
from edi.identifiers import npi_with_check_digit


def test_modifiers() -> None:
    assert modifiers.is_valid("25") and modifiers.label("25") is not None
    assert modifiers.is_valid("LT", date(2026, 1, 1)) and modifiers.label("LT") == "Left side"
    assert modifiers.is_valid("XU")
    assert not modifiers.is_valid("ZZ") and modifiers.label("ZZ") is None
    assert not modifiers.is_valid("A1", date(2001, 1, 1))  # added 2002-07-01
    assert {"LT", "RT", "E1", "F9", "T5", "LC", "RI"} <= modifiers.ANATOMIC_MODIFIERS
    assert modifiers.bypasses_ptp(("59",)) and modifiers.bypasses_ptp(["xs"])
    assert not modifiers.bypasses_ptp(("26", "TC"))
    for modifier in modifiers.PTP_BYPASS_MODIFIERS:
        assert modifiers.is_valid(modifier), modifier


def test_place_of_service() -> None:
    assert reference.place_of_service("11").name == "Office"  # type: ignore[union-attr]
    assert reference.is_valid_place_of_service("02")
    assert not reference.is_valid_place_of_service("30")  # unassigned
    assert not reference.is_valid_place_of_service("10", date(2021, 12, 31))
    assert reference.is_valid_place_of_service("10", date(2022, 1, 1))
    assert len(reference.PLACES_OF_SERVICE) >= 50


def test_frequency_codes() -> None:
    assert reference.is_valid_frequency_code("1") and reference.is_valid_frequency_code("7")
    assert not reference.is_valid_frequency_code("6")  # institutional only
    assert reference.is_valid_frequency_code("6", professional=False)
    assert {"7", "8"} == reference.FREQUENCY_NEEDS_ORIGINAL


def test_states_taxonomy_zip_npi() -> None:
    assert (
        reference.is_valid_state("TX") and reference.is_valid_state("DC") and reference.is_valid_state("PR")
    )
    assert not reference.is_valid_state("XX") and not reference.is_valid_state(None)
    assert len(reference.US_STATES) == 51
    assert reference.is_valid_taxonomy("207Q00000X") and reference.is_valid_taxonomy("363LF0000X")
    assert not reference.is_valid_taxonomy("207Q00000") and not reference.is_valid_taxonomy("207Q00000Y")
    assert reference.is_valid_zip("78701") and reference.is_valid_zip("787011234")
    assert not reference.is_valid_zip("78701-1234")
    assert reference.is_valid_npi(npi_with_check_digit("123456789"))
    assert not reference.is_valid_npi("1234567890")
