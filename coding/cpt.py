"""CPT codes: format and section-range checks, and a loader for a user's licensed file.

CPT descriptions are the AMA's copyright, so none ship with the project. Without a
loaded file a CPT code is checked by format and section range only, and the scrubber
says so with an info finding. A user with a licence can load the AMA data as a CSV
(``code,short,long``) or in the AMA text layout (5-character code, a space, the
description), after which codes missing from the file are reported as invalid.
"""

from __future__ import annotations

import csv
import io
import re
import threading
from dataclasses import dataclass
from pathlib import Path

from coding.errors import CodeSetError

CATEGORY_I = "I"
CATEGORY_II = "II"
CATEGORY_III = "III"
PLA = "PLA"

# Category I sections as CPT numbers them (the numeric ranges are facts, not AMA text).
CATEGORY_I_SECTIONS: tuple[tuple[str, str, str], ...] = (
    ("00100", "01999", "Anesthesia"),
    ("10004", "69990", "Surgery"),
    ("70010", "79999", "Radiology"),
    ("80047", "89398", "Pathology and Laboratory"),
    ("90281", "99199", "Medicine"),
    ("99202", "99499", "Evaluation and Management"),
    ("99500", "99607", "Medicine (home health and medication therapy management)"),
)
_FORMATS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"^[0-9]{5}$"), CATEGORY_I),
    # Category I vaccine-administration (nnnnA) and multianalyte assay (nnnnM) codes
    # are Category I codes in an alphanumeric form.
    (re.compile(r"^[0-9]{4}[AM]$"), CATEGORY_I),
    (re.compile(r"^[0-9]{4}F$"), CATEGORY_II),
    (re.compile(r"^[0-9]{4}T$"), CATEGORY_III),
    (re.compile(r"^[0-9]{4}U$"), PLA),
)


def category(code: str) -> str | None:
    """The CPT category a code's format belongs to (I, II, III, PLA), or None."""
    code = code.strip().upper()
    for pattern, name in _FORMATS:
        if pattern.match(code):
            return name
    return None


def section(code: str) -> str | None:
    """The Category I section a five-digit code falls in, or None outside every range."""
    code = code.strip()
    if not re.match(r"^[0-9]{5}$", code):
        return None
    for low, high, name in CATEGORY_I_SECTIONS:
        if low <= code <= high:
            return name
    return None


def format_problem(code: str) -> str | None:
    """Why a code cannot be CPT, or None when its format and range are plausible."""
    kind = category(code)
    if kind is None:
        return "not a CPT format (5 digits, or 4 digits followed by F, T, U, A or M)"
    if kind == CATEGORY_I and code.strip().isdigit() and section(code) is None:
        return "five-digit code outside every CPT Category I section range"
    if code.strip()[:4] == "0000":
        return "CPT codes are never numbered 0000"
    return None


def is_cpt_format(code: str) -> bool:
    return format_problem(code) is None


@dataclass(frozen=True, slots=True)
class CptCode:
    code: str
    short_description: str
    long_description: str


class CptCodeSet:
    """A user's licensed CPT data: the codes that exist, with their descriptions."""

    def __init__(self, codes: dict[str, CptCode], source: str) -> None:
        self._codes = codes
        self.source = source

    def __len__(self) -> int:
        return len(self._codes)

    def __contains__(self, code: object) -> bool:
        return isinstance(code, str) and code.strip().upper() in self._codes

    def get(self, code: str) -> CptCode | None:
        return self._codes.get(code.strip().upper())

    def codes(self) -> list[str]:
        """Every code of the file, in code order."""
        return sorted(self._codes)


def _read_text(source: Path | str | bytes) -> tuple[str, str]:
    name = "<bytes>" if isinstance(source, bytes) else str(source)
    try:
        raw = source if isinstance(source, bytes) else Path(source).read_bytes()
    except OSError as exc:
        raise CodeSetError(f"cannot read the CPT file: {exc.strerror}", file=name, rule="readable") from exc
    try:
        return raw.decode("utf-8-sig"), name
    except UnicodeDecodeError:
        return raw.decode("latin-1"), name


def read_csv(source: Path | str | bytes) -> CptCodeSet:
    """Read ``code,short,long`` rows (a header row, if present, is recognised and skipped)."""
    text, name = _read_text(source)
    codes: dict[str, CptCode] = {}
    for number, row in enumerate(csv.reader(io.StringIO(text)), start=1):
        if not row or not "".join(row).strip():
            continue
        code = row[0].strip().upper()
        if number == 1 and category(code) is None:
            continue  # header
        if category(code) is None:
            raise CodeSetError(
                "first column is not a CPT code (5 digits, or 4 digits + F/T/U/A/M)",
                file=name,
                line=number,
                rule="cpt-csv-layout",
            )
        short = row[1].strip() if len(row) > 1 else ""
        long = row[2].strip() if len(row) > 2 else short
        codes[code] = CptCode(code, short, long)
    if not codes:
        raise CodeSetError("no CPT code found", file=name, rule="cpt-csv-layout")
    return CptCodeSet(codes, name)


def read_ama_text(source: Path | str | bytes) -> CptCodeSet:
    """Read the AMA text layout: a 5-character code, one space, the description."""
    text, name = _read_text(source)
    codes: dict[str, CptCode] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        code, description = line[:5].upper(), line[6:].strip()
        if len(line) < 7 or line[5] != " " or category(code) is None:
            raise CodeSetError(
                "expected a 5-character CPT code, a space, then the description",
                file=name,
                line=number,
                rule="cpt-ama-text-layout",
            )
        codes[code] = CptCode(code, description, description)
    if not codes:
        raise CodeSetError("no CPT code found", file=name, rule="cpt-ama-text-layout")
    return CptCodeSet(codes, name)


_licensed: CptCodeSet | None = None
_lock = threading.Lock()


def use(code_set: CptCodeSet | None) -> None:
    """Install (or with None, remove) the licensed CPT data the scrubber checks against."""
    global _licensed
    with _lock:
        _licensed = code_set


def licensed() -> CptCodeSet | None:
    """The loaded licensed CPT data, or None (then CPT is checked by format only)."""
    return _licensed
