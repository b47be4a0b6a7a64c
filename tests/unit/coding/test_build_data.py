"""The export script: its Excludes1 parser, and byte-identical rebuilds of the shipped files."""

from __future__ import annotations

from pathlib import Path

import pytest

from coding import build_data
from coding.datafiles import DATA_DIR, HCPCS_FILE, ICD_DESCRIPTIONS_FILE, ICD_FILE, ICD_NOTES_FILE
from tests.services import unavailable

SHARED = Path(__file__).resolve().parents[3].parent / "shared"


@pytest.mark.parametrize(
    ("note", "expected"),
    [
        ("type 2 diabetes mellitus, without complications in remission (E11.A)", [("E11A", "E11A")]),
        ("bacterial foodborne intoxications, NEC (A05.-)", [("A05", "A05")]),
        ("pneumonia in coccidioidomycosis (B38.0-B38.2)", [("B380", "B382")]),
        ("inflammation of penis (N48.1, N48.2-)", [("N481", "N481"), ("N482", "N482")]),
        ("transitory disorders specific to newborn (P70-P74)", [("P70", "P74")]),
        ("fluency disorder following cerebrovascular disease (I69. with final characters -23)", []),
        ("allergic reaction to food, such as:", []),
    ],
)
def test_excludes1_reference_parser(note: str, expected: list[tuple[str, str]]) -> None:
    assert build_data.excludes1_ranges(note) == expected


def test_hcpcs_export_is_reproducible(tmp_path: Path) -> None:
    if not (SHARED / "codesets" / "hcpcs" / "HCPC2025_OCT_ANWEB.csv").exists():
        unavailable(f"shared HCPCS CSV not found under {SHARED}")
    counts = build_data.build_hcpcs(SHARED, tmp_path)
    assert counts == {"codes": 8_463, "modifiers": 383}
    assert (tmp_path / HCPCS_FILE).read_bytes() == (DATA_DIR / HCPCS_FILE).read_bytes()


@pytest.mark.slow
def test_icd10cm_export_is_reproducible(tmp_path: Path) -> None:
    counts = build_data.build_icd10cm(tmp_path)
    assert counts["codes"] == 98_186 and counts["billable"] == 74_719
    for name in (ICD_FILE, ICD_DESCRIPTIONS_FILE, ICD_NOTES_FILE):
        assert (tmp_path / name).read_bytes() == (DATA_DIR / name).read_bytes(), name
