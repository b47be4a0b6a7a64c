"""NCCI procedure-to-procedure (PTP) edits, medically unlikely edits (MUE) and add-on codes.

CMS publishes the NCCI tables each quarter (behind an AMA click-through), so none ship
with the project: the loaders here read the exact published layouts.

PTP (practitioner or hospital): tab-delimited text, a few header lines, then rows of
column 1 code, column 2 code, "in existence prior to 1996" flag (``*`` or blank),
effective date YYYYMMDD, deletion date YYYYMMDD (``*`` = not deleted), modifier
indicator (0 never bypassable, 1 bypassable with an NCCI-associated modifier, 9 not an
edit any more), rationale. The same pair repeats under different date windows, so a
lookup takes the date of service. An edit applies when effective <= DOS < deletion.

Store: about 3 million rows packed into parallel ``array`` columns sorted by
(column 1, column 2, effective date), with codes interned to small integers and a
per-column-1 slice index, so a lookup is one dict probe and a bounded binary search
(about a microsecond) and the whole table costs ~25 bytes a row.

MUE: CSV of code, unit limit, MUE adjudication indicator text ("1 Line Edit",
"2 Date of Service Edit: Policy", "3 Date of Service Edit: Clinical"), rationale.
"""

from __future__ import annotations

import csv
import io
import json
import re
from array import array
from bisect import bisect_left
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from coding.errors import CodeSetError

_CODE = re.compile(r"^[0-9A-Z]{5}$")
_NOT_DELETED = 99991231
_CODE_BITS = 20
_STORE_MAGIC = b"NCCIPTP1"


def _date_key(value: date) -> int:
    return value.year * 10000 + value.month * 100 + value.day


def _read_text(source: Path | str | bytes, what: str) -> tuple[str, str]:
    name = "<bytes>" if isinstance(source, bytes) else str(source)
    try:
        raw = source if isinstance(source, bytes) else Path(source).read_bytes()
    except OSError as exc:
        raise CodeSetError(
            f"cannot read the {what} file: {exc.strerror}", file=name, rule="readable"
        ) from exc
    return raw.decode("latin-1"), name


def _valid_yyyymmdd(text: str) -> bool:
    if len(text) != 8 or not text.isdigit():
        return False
    try:
        date(int(text[:4]), int(text[4:6]), int(text[6:]))
    except ValueError:
        return False
    return True


@dataclass(frozen=True, slots=True)
class PtpEdit:
    """One PTP edit window: column 2 is not paid with column 1 on the same day."""

    column1: str
    column2: str
    effective: date
    deleted: date | None
    modifier_indicator: int  # 0, 1 or 9
    prior_to_1996: bool
    rationale: str

    @property
    def bypassable(self) -> bool:
        return self.modifier_indicator == 1


def _int_to_date(key: int) -> date:
    return date(key // 10000, key // 100 % 100, key % 100)


class PtpStore:
    """PTP edits indexed by (column 1, column 2) with date windows."""

    def __init__(
        self,
        codes: list[str],
        rationales: list[str],
        pairs: array,
        effective: array,
        deleted: array,
        flags: array,
    ) -> None:
        self._codes = codes
        self._code_id = {code: i for i, code in enumerate(codes)}
        self._rationales = rationales
        self._pairs = pairs  # column1_id << 20 | column2_id, sorted
        self._effective = effective  # YYYYMMDD
        self._deleted = deleted  # YYYYMMDD, 99991231 when not deleted
        self._flags = flags  # modifier indicator | prior-to-1996 << 4 | rationale id << 5
        self._column1_slices: dict[int, tuple[int, int]] = {}
        start = 0
        total = len(pairs)
        while start < total:
            column1 = pairs[start] >> _CODE_BITS
            end = bisect_left(pairs, (column1 + 1) << _CODE_BITS, start, total)
            self._column1_slices[column1] = (start, end)
            start = end

    def __len__(self) -> int:
        return len(self._pairs)

    def _window(self, column1: str, column2: str) -> tuple[int, int] | None:
        c1 = self._code_id.get(column1)
        c2 = self._code_id.get(column2)
        if c1 is None or c2 is None:
            return None
        bounds = self._column1_slices.get(c1)
        if bounds is None:
            return None
        pair = c1 << _CODE_BITS | c2
        i = bisect_left(self._pairs, pair, bounds[0], bounds[1])
        if i >= bounds[1] or self._pairs[i] != pair:
            return None
        j = i + 1
        while j < bounds[1] and self._pairs[j] == pair:
            j += 1
        return i, j

    def _edit(self, row: int) -> PtpEdit:
        pair, flags = self._pairs[row], self._flags[row]
        deleted = self._deleted[row]
        return PtpEdit(
            self._codes[pair >> _CODE_BITS],
            self._codes[pair & ((1 << _CODE_BITS) - 1)],
            _int_to_date(self._effective[row]),
            None if deleted == _NOT_DELETED else _int_to_date(deleted),
            flags & 15,
            bool(flags >> 4 & 1),
            self._rationales[flags >> 5],
        )

    def edit_for(self, column1: str, column2: str, dos: date) -> PtpEdit | None:
        """The edit in force on the DOS with ``column1`` as column 1, if any."""
        window = self._window(column1, column2)
        if window is None:
            return None
        key = _date_key(dos)
        for row in range(window[0], window[1]):
            if self._effective[row] <= key < self._deleted[row]:
                return self._edit(row)
        return None

    def history(self, column1: str, column2: str) -> list[PtpEdit]:
        """Every window on file for the pair, oldest first."""
        window = self._window(column1, column2)
        return [] if window is None else [self._edit(r) for r in range(*window)]

    def save(self, path: Path | str) -> None:
        """Write a binary cache that :meth:`open` reads back in a fraction of the parse time."""
        header = json.dumps({"codes": self._codes, "rationales": self._rationales}).encode("utf-8")
        with Path(path).open("wb") as out:
            out.write(
                _STORE_MAGIC + len(header).to_bytes(8, "little") + len(self._pairs).to_bytes(8, "little")
            )
            out.write(header)
            for column in (self._pairs, self._effective, self._deleted, self._flags):
                column.tofile(out)

    @classmethod
    def open(cls, path: Path | str) -> PtpStore:
        name = str(path)
        try:
            with Path(path).open("rb") as handle:
                head = handle.read(24)
                if len(head) != 24 or head[:8] != _STORE_MAGIC:
                    raise CodeSetError("not a PTP store written by PtpStore.save", file=name, rule="format")
                header = json.loads(handle.read(int.from_bytes(head[8:16], "little")))
                count = int.from_bytes(head[16:24], "little")
                columns = [array("Q"), array("L"), array("L"), array("L")]
                for column in columns:
                    column.fromfile(handle, count)
        except (OSError, EOFError, ValueError) as exc:
            raise CodeSetError(f"cannot read the PTP store: {exc}", file=name, rule="readable") from exc
        return cls(header["codes"], header["rationales"], *columns)


class PtpBuilder:
    """Collects PTP rows (from one or several quarterly files) and builds a :class:`PtpStore`."""

    def __init__(self) -> None:
        self._code_id: dict[str, int] = {}
        self._codes: list[str] = []
        self._rationale_id: dict[str, int] = {}
        self._rationales: list[str] = []
        self._rows: list[int] = []

    def _intern(self, code: str) -> int:
        i = self._code_id.get(code)
        if i is None:
            i = self._code_id[code] = len(self._codes)
            self._codes.append(code)
        return i

    def add(
        self,
        column1: str,
        column2: str,
        effective: int,
        deleted: int | None,
        modifier_indicator: int,
        prior_to_1996: bool = False,
        rationale: str = "",
    ) -> None:
        """Add one row; dates as YYYYMMDD integers, ``deleted`` None when not deleted."""
        r = self._rationale_id.get(rationale)
        if r is None:
            r = self._rationale_id[rationale] = len(self._rationales)
            self._rationales.append(rationale)
        pair = self._intern(column1) << _CODE_BITS | self._intern(column2)
        flags = modifier_indicator | int(prior_to_1996) << 4 | r << 5
        # One integer per row sorts in C; the fields are unpacked again in build().
        self._rows.append(((pair << 27 | effective) << 27 | (deleted or _NOT_DELETED)) << 32 | flags)

    def add_file(self, source: Path | str | bytes) -> int:
        """Parse one CMS PTP file into the builder; returns the number of rows read."""
        text, name = _read_text(source, "PTP")
        count = 0
        for _number, fields in _ptp_rows(text, name):
            column1, column2, prior, effective, deleted, indicator = fields[:6]
            self.add(
                column1,
                column2,
                int(effective),
                None if deleted in ("*", "") else int(deleted),
                int(indicator),
                prior == "*",
                fields[6].strip() if len(fields) > 6 else "",
            )
            count += 1
        if not count:
            raise CodeSetError("no PTP edit row found", file=name, rule="ptp-layout")
        return count

    def build(self) -> PtpStore:
        self._rows.sort()
        pairs, effective, deleted, flags = array("Q"), array("L"), array("L"), array("L")
        mask27 = (1 << 27) - 1
        for row in self._rows:
            flags.append(row & 0xFFFFFFFF)
            row >>= 32
            deleted.append(row & mask27)
            row >>= 27
            effective.append(row & mask27)
            pairs.append(row >> 27)
        self._rows = []
        return PtpStore(list(self._codes), list(self._rationales), pairs, effective, deleted, flags)


def _ptp_rows(text: str, name: str) -> Iterator[tuple[int, list[str]]]:
    """Data rows of a PTP file; header lines before the first row are skipped."""
    started = False
    for number, line in enumerate(text.splitlines(), start=1):
        fields = line.split("\t")
        first = fields[0].strip().upper()
        looks_like_row = len(fields) >= 6 and _CODE.match(first) and _CODE.match(fields[1].strip().upper())
        if not looks_like_row:
            if started and line.strip():
                raise CodeSetError(
                    "PTP row needs column1, column2, prior-1996 flag, effective, deletion, modifier indicator",
                    file=name,
                    line=number,
                    rule="ptp-layout",
                )
            continue
        cleaned = [f.strip().upper() for f in fields[:6]] + fields[6:]
        _, _, prior, effective, deleted, indicator = cleaned[:6]
        problem = None
        if not _valid_yyyymmdd(effective):
            problem = "effective date must be YYYYMMDD"
        elif deleted not in ("*", "") and not _valid_yyyymmdd(deleted):
            problem = "deletion date must be YYYYMMDD or *"
        elif indicator not in ("0", "1", "9"):
            problem = "modifier indicator must be 0, 1 or 9"
        elif prior not in ("*", ""):
            problem = "prior-to-1996 flag must be * or blank"
        if problem:
            if not started:
                continue  # a header line that happens to start with two code-like words
            raise CodeSetError(problem, file=name, line=number, rule="ptp-layout")
        started = True
        yield number, cleaned


def read_ptp(sources: Iterable[Path | str | bytes]) -> PtpStore:
    """Build a store from one or more CMS PTP files (e.g. the four practitioner parts)."""
    builder = PtpBuilder()
    for source in sources:
        builder.add_file(source)
    return builder.build()


@dataclass(frozen=True, slots=True)
class Mue:
    code: str
    units: int
    adjudication_indicator: int  # 1 line edit, 2 date of service (policy), 3 date of service (clinical)
    rationale: str

    @property
    def per_day(self) -> bool:
        return self.adjudication_indicator in (2, 3)


class MueTable:
    """MUE limits by code."""

    def __init__(self, edits: dict[str, Mue]) -> None:
        self._edits = edits

    def __len__(self) -> int:
        return len(self._edits)

    def get(self, code: str) -> Mue | None:
        return self._edits.get(code)


_MAI = re.compile(r"^\s*([123])\b")


def read_mue(source: Path | str | bytes) -> MueTable:
    """Read a CMS MUE CSV; header and copyright lines before the first row are skipped."""
    text, name = _read_text(source, "MUE")
    edits: dict[str, Mue] = {}
    for number, row in enumerate(csv.reader(io.StringIO(text)), start=1):
        if not row or not _CODE.match(row[0].strip().upper()):
            if edits and row and "".join(row).strip():
                raise CodeSetError(
                    "MUE row must start with a 5-character code", file=name, line=number, rule="mue"
                )
            continue
        if len(row) < 3 or not row[1].strip().isdigit() or not _MAI.match(row[2]):
            if not edits:
                continue
            raise CodeSetError(
                "MUE row needs code, unit limit (integer), adjudication indicator 1/2/3",
                file=name,
                line=number,
                rule="mue-layout",
            )
        code = row[0].strip().upper()
        mai = int(_MAI.match(row[2]).group(1))  # type: ignore[union-attr]
        edits[code] = Mue(code, int(row[1].strip()), mai, row[3].strip() if len(row) > 3 else "")
    if not edits:
        raise CodeSetError("no MUE row found", file=name, rule="mue-layout")
    return MueTable(edits)


# Add-on codes and the primary codes they must be billed with. A documented starter set
# from the CMS "Medicare NCCI Add-on Code Edits" tables (cms.gov, Type I add-ons, whose
# primaries are listed there) and the matching CPT/HCPCS parenthetical instructions;
# load the full quarterly CMS table with :func:`read_addon_table` for complete coverage.
STARTER_ADD_ONS: dict[str, frozenset[str]] = {
    "99417": frozenset({"99205", "99215", "99245", "99345", "99350", "99483"}),
    "G2211": frozenset({"99202", "99203", "99204", "99205", "99211", "99212", "99213", "99214", "99215"}),
    "99292": frozenset({"99291"}),
    "11045": frozenset({"11042"}),
    "11046": frozenset({"11043"}),
    "11047": frozenset({"11044"}),
    "11103": frozenset({"11102"}),
    "11105": frozenset({"11104"}),
    "11107": frozenset({"11106"}),
    "15003": frozenset({"15002"}),
    "15005": frozenset({"15004"}),
    "17003": frozenset({"17000"}),
    "22614": frozenset({"22600", "22610", "22612", "22630", "22633"}),
    "64480": frozenset({"64479"}),
    "64484": frozenset({"64483"}),
    "77001": frozenset(
        [
            "36555",
            "36556",
            "36557",
            "36558",
            "36560",
            "36561",
            "36563",
            "36565",
            "36566",
            "36568",
            "36569",
            "36570",
            "36571",
            "36572",
            "36573",
            "36578",
            "36580",
            "36581",
            "36582",
            "36583",
            "36584",
            "36585",
            "36590",
            "36597",
        ]
    ),
    "96366": frozenset({"96365", "96367"}),
    "96367": frozenset({"96365", "96374", "96409", "96413"}),
    "96368": frozenset({"96365", "96366", "96413", "96415", "96416"}),
    "96375": frozenset({"96365", "96374", "96409", "96413"}),
    "96376": frozenset({"96374"}),
    "96415": frozenset({"96413"}),
    "96417": frozenset({"96413"}),
    "97546": frozenset({"97545"}),
}


class AddOnTable:
    """Add-on code -> the primary codes that must be on the same claim for the same day."""

    def __init__(self, table: dict[str, frozenset[str]] | None = None) -> None:
        self._table = dict(STARTER_ADD_ONS if table is None else table)

    def __contains__(self, code: object) -> bool:
        return code in self._table

    def __len__(self) -> int:
        return len(self._table)

    def __iter__(self) -> Iterator[str]:
        return iter(self._table)

    def primaries(self, code: str) -> frozenset[str] | None:
        return self._table.get(code)


def read_addon_table(source: Path | str | bytes) -> AddOnTable:
    """Read a CSV export of the CMS add-on code edit table: add-on code, primary code, ...

    Rows whose first two cells are not procedure codes (headers, notes) are skipped.
    """
    text, name = _read_text(source, "add-on code")
    table: dict[str, set[str]] = {}
    for row in csv.reader(io.StringIO(text)):
        if len(row) < 2:
            continue
        addon, primary = row[0].strip().upper(), row[1].strip().upper()
        if _CODE.match(addon) and _CODE.match(primary):
            table.setdefault(addon, set()).add(primary)
    if not table:
        raise CodeSetError("no add-on/primary code pair found", file=name, rule="addon-layout")
    return AddOnTable({k: frozenset(v) for k, v in table.items()})
