"""Every shipped data file says where it came from and when, and stays small."""

from __future__ import annotations

import gzip
import json

import pytest

from coding.datafiles import (
    DATA_DIR,
    HCPCS_FILE,
    ICD_DESCRIPTIONS_FILE,
    ICD_FILE,
    ICD_NOTES_FILE,
    SECTION_MARK,
)


def test_readme_cites_sources_and_dates() -> None:
    readme = (DATA_DIR / "README.md").read_text(encoding="utf-8")
    for name in (ICD_FILE, ICD_DESCRIPTIONS_FILE, ICD_NOTES_FILE, HCPCS_FILE):
        assert name in readme
    assert "simple-icd-10-cm" in readme and "April 1, 2026" in readme and "CDC/NCHS" in readme
    assert "HCPC2025_OCT_ANWEB" in readme and "2025-10-01" in readme


def _header(name: str) -> dict[str, object]:
    text = gzip.decompress((DATA_DIR / name).read_bytes()).decode("utf-8")
    if name == ICD_FILE:
        return json.loads(text.split(SECTION_MARK)[0].split("\n", 1)[1])
    first = text.split("\n", 1)[0]
    assert first.startswith("#")
    return json.loads(first[1:])


@pytest.mark.parametrize("name", [ICD_FILE, ICD_DESCRIPTIONS_FILE, ICD_NOTES_FILE, HCPCS_FILE])
def test_each_file_carries_source_and_date(name: str) -> None:
    meta = _header(name)
    assert meta["source"]
    assert meta["effective_from"] in ("2025-10-01",)
    path = DATA_DIR / name
    assert path.stat().st_size < 2_000_000


def test_total_shipped_size_is_small() -> None:
    total = sum(p.stat().st_size for p in DATA_DIR.glob("*.gz"))
    assert total < 3_000_000
