"""CPT: format and section ranges without data, and the licensed-file loaders."""

from __future__ import annotations

from pathlib import Path

import pytest

from coding import cpt
from coding.errors import CodeSetError

FIXTURES = Path(__file__).resolve().parent / "fixtures"


@pytest.mark.parametrize(
    ("code", "expected"),
    [("99213", "I"), ("00100", "I"), ("0001A", "I"), ("3074F", "II"), ("0042T", "III"), ("0001U", "PLA"),
     ("A0021", None), ("9921", None), ("99213F", None), ("1234X", None)],
)  # fmt: skip
def test_category_by_format(code: str, expected: str | None) -> None:
    assert cpt.category(code) == expected


def test_section_ranges() -> None:
    assert cpt.section("99213") == "Evaluation and Management"
    assert cpt.section("00100") == "Anesthesia"
    assert cpt.section("27447") == "Surgery"
    assert cpt.section("71046") == "Radiology"
    assert cpt.section("85025") == "Pathology and Laboratory"
    assert cpt.section("90471") == "Medicine"
    assert cpt.section("05000") is None  # the gap between anesthesia and surgery
    assert cpt.format_problem("05000") is not None
    assert cpt.format_problem("0000F") is not None
    assert cpt.format_problem("99214") is None
    assert not cpt.is_cpt_format("G2211")


def test_csv_loader() -> None:
    codes = cpt.read_csv(FIXTURES / "cpt_sample.csv")
    assert len(codes) == 8 and "99214" in codes and "0042T" in codes
    found = codes.get("93000")
    assert found is not None and found.short_description == "ECG complete"
    assert "99999" not in codes


def test_ama_text_loader() -> None:
    codes = cpt.read_ama_text(FIXTURES / "cpt_sample_ama.txt")
    assert len(codes) == 4
    assert codes.get("0001F").long_description.startswith("Synthetic")  # type: ignore[union-attr]


def test_loaders_reject_bad_layouts() -> None:
    with pytest.raises(CodeSetError) as raised:
        cpt.read_ama_text(b"99213 fine\n9921 broken line\n")
    assert raised.value.line == 2 and raised.value.rule == "cpt-ama-text-layout"
    with pytest.raises(CodeSetError) as bad_csv:
        cpt.read_csv(b"code,short,long\n99213,a,b\nnot-a-code,x,y\n")
    assert bad_csv.value.line == 3
    with pytest.raises(CodeSetError):
        cpt.read_csv(b"")


def test_use_and_licensed() -> None:
    assert cpt.licensed() is None
    codes = cpt.read_csv(FIXTURES / "cpt_sample.csv")
    try:
        cpt.use(codes)
        assert cpt.licensed() is codes
    finally:
        cpt.use(None)
    assert cpt.licensed() is None
