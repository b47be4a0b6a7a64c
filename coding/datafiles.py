"""Names and framing of the shipped code-set files in ``coding/data/``.

Kept apart from ``build_data`` so that loading a code set imports nothing heavy.
"""

from __future__ import annotations

from pathlib import Path

DATA_DIR = Path(__file__).resolve().parent / "data"
ICD_FILE = "icd10cm_fy2026.txt.gz"
ICD_NOTES_FILE = "icd10cm_fy2026_notes.tsv.gz"
ICD_DESCRIPTIONS_FILE = "icd10cm_fy2026_descriptions.tsv.gz"
HCPCS_FILE = "hcpcs_2025q4.tsv.gz"
SECTION_MARK = "\x1d"  # ASCII group separator: never occurs in tabular-list text
