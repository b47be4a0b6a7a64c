"""HCPCS Level II codes and modifiers, by quarter, with validity by date of service.

The shipped set is the CMS October 2025 quarter (``coding/data/``, built by
``coding/build_data.py``). Each quarter CMS publishes the alpha-numeric file as a
320-character fixed-width text file; :func:`read_cms_fixed_width` reads it so a user can
update without waiting for a release of this project.

CMS record layout (HCPCS contractor record): code 1-5 (a modifier sits in 4-5), record
id 11 (3 code, 4 code continuation, 7 modifier, 8 modifier continuation), long
description 12-91, short description 92-119, add date 269-276, action effective date
277-284, termination date 285-292, action code 293.
"""

from __future__ import annotations

import gzip
import json
import re
import threading
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from coding.datafiles import DATA_DIR, HCPCS_FILE
from coding.errors import CodeSetError

LEVEL2_CODE = re.compile(r"^[A-V][0-9]{4}$")
_RECORD_LENGTH = 320


def _date_key(value: date) -> int:
    return value.year * 10000 + value.month * 100 + value.day


def _parse_yyyymmdd(text: str) -> int:
    text = text.strip()
    if len(text) != 8 or not text.isdigit():
        return 0
    try:
        date(int(text[:4]), int(text[4:6]), int(text[6:]))
    except ValueError:
        return 0
    return int(text)


def _key_to_date(key: int) -> date | None:
    return date(key // 10000, key // 100 % 100, key % 100) if key else None


@dataclass(frozen=True, slots=True)
class HcpcsCode:
    """A Level II code (``kind`` "code") or modifier (``kind`` "modifier")."""

    code: str
    kind: str
    short_description: str
    long_description: str
    added: date | None = None
    terminated: date | None = None

    def valid_on(self, dos: date) -> bool:
        if self.added is not None and dos < self.added:
            return False
        return self.terminated is None or dos <= self.terminated


# Row: (kind "C"/"M", added YYYYMMDD int or 0, terminated int or 0, short, long)
_Row = tuple[str, int, int, str, str]


class HcpcsCodeSet:
    """One quarter's Level II codes and modifiers."""

    def __init__(self, rows: dict[str, _Row], meta: dict[str, Any]) -> None:
        self._rows = rows
        self.meta = meta
        self._codes = {code: row for code, row in rows.items() if row[0] == "C"}
        self._modifiers = {code: row for code, row in rows.items() if row[0] == "M"}

    def __len__(self) -> int:
        return len(self._codes)

    def __contains__(self, code: object) -> bool:
        return isinstance(code, str) and code.strip().upper() in self._codes

    @property
    def modifier_count(self) -> int:
        return len(self._modifiers)

    @staticmethod
    def _build(code: str, row: _Row) -> HcpcsCode:
        kind, added, terminated, short, long = row
        return HcpcsCode(
            code,
            "code" if kind == "C" else "modifier",
            short,
            long,
            _key_to_date(added),
            _key_to_date(terminated),
        )

    def get(self, code: str) -> HcpcsCode | None:
        code = code.strip().upper()
        row = self._codes.get(code)
        return None if row is None else self._build(code, row)

    def modifier(self, code: str) -> HcpcsCode | None:
        code = code.strip().upper()
        row = self._modifiers.get(code)
        return None if row is None else self._build(code, row)

    def codes(self) -> list[str]:
        return list(self._codes)

    def modifiers(self) -> list[str]:
        return list(self._modifiers)

    @staticmethod
    def _row_valid(row: _Row | None, dos: date) -> bool:
        if row is None:
            return False
        key = _date_key(dos)
        return (not row[1] or key >= row[1]) and (not row[2] or key <= row[2])

    def is_valid(self, code: str, dos: date) -> bool:
        """The code exists, was added on or before the DOS and not terminated before it."""
        return self._row_valid(self._codes.get(code) or self._codes.get(code.strip().upper()), dos)

    def is_valid_modifier(self, modifier: str, dos: date) -> bool:
        return self._row_valid(self._modifiers.get(modifier.strip().upper()), dos)


def read_shipped(path: Path) -> HcpcsCodeSet:
    """Read the compact TSV written by ``coding/build_data.py``."""
    text = gzip.decompress(path.read_bytes()).decode("utf-8")
    header, _, body = text.partition("\n")
    rows: dict[str, _Row] = {}
    for line in body.split("\n"):
        code, kind, added, terminated, short, long = line.split("\t", 5)
        rows[code] = (kind, int(added or 0), int(terminated or 0), short, long)
    return HcpcsCodeSet(rows, json.loads(header[1:]))


def read_cms_fixed_width(source: Path | str | bytes, *, quarter: str | None = None) -> HcpcsCodeSet:
    """Read the CMS alpha-numeric HCPCS file (``HCPCyyyy_CONTR_ANWEB.txt`` / ``..._ANWEB.txt``).

    Header and disclaimer lines (anything that is not a 320-character record with a
    known record id) are skipped. A file with no record at all raises
    :class:`CodeSetError`, so a wrong file is never taken for an empty quarter.
    """
    name = "<bytes>" if isinstance(source, bytes) else str(source)
    try:
        raw = source if isinstance(source, bytes) else Path(source).read_bytes()
    except OSError as exc:
        raise CodeSetError(f"cannot read the HCPCS file: {exc.strerror}", file=name, rule="readable") from exc
    # CMS ships the file in Windows-1252/Latin-1 (non-breaking spaces in the disclaimer).
    text = raw.decode("latin-1")
    rows: dict[str, _Row] = {}
    long_parts: dict[str, list[str]] = {}
    for line in text.splitlines():
        if len(line) < 293 or len(line) > _RECORD_LENGTH + 2 or line[10] not in "3478":
            continue
        code = line[0:5].strip().upper()
        record_id = line[10]
        if record_id in "37":
            if not (LEVEL2_CODE.match(code) if record_id == "3" else re.match(r"^[A-Z0-9]{2}$", code)):
                continue
            rows[code] = (
                "C" if record_id == "3" else "M",
                _parse_yyyymmdd(line[268:276]),
                _parse_yyyymmdd(line[284:292]),
                " ".join(line[91:119].split()),
                "",
            )
            long_parts[code] = [line[11:91].strip()]
        elif code in long_parts:
            long_parts[code].append(line[11:91].strip())
    if not rows:
        raise CodeSetError(
            "no HCPCS record found: expected 320-character CMS records (record id 3/4/7/8 in column 11)",
            file=name,
            rule="cms-fixed-width-layout",
        )
    for code, parts in long_parts.items():
        kind, added, terminated, short, _ = rows[code]
        rows[code] = (kind, added, terminated, short, " ".join(p for p in parts if p))
    meta = {"code_set": "HCPCS Level II", "source": f"CMS alpha-numeric HCPCS file {Path(name).name}"}
    if quarter:
        meta["quarter"] = quarter
    return HcpcsCodeSet(rows, meta)


_default: HcpcsCodeSet | None = None
_lock = threading.Lock()


def load() -> HcpcsCodeSet:
    """Load the shipped quarter now (idempotent)."""
    global _default
    if _default is None:
        with _lock:
            if _default is None:
                _default = read_shipped(DATA_DIR / HCPCS_FILE)
    return _default


def default() -> HcpcsCodeSet:
    """The shipped quarter, loaded lazily on first use."""
    return _default if _default is not None else load()


def use(code_set: HcpcsCodeSet) -> None:
    """Make a user-loaded quarter (e.g. from :func:`read_cms_fixed_width`) the default."""
    global _default
    with _lock:
        _default = code_set
