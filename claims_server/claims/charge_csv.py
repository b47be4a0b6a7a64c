"""The charge file: a CSV with one row per service line, read as a stream (docs/charge-import.md).

This module knows the layout and nothing of the database: it reads the bytes (size cap,
SHA-256, UTF-8 with an optional BOM, RFC 4180 quoting), checks the header, and groups
the rows into claims by ``claim_ref``, each as a claim JSON document of
``claims.schemas.ClaimInSchema`` plus where each of its values came from, so that an
error about ``lines[1].charge`` can be reported as "line 7, column charge".

Messages name lines, columns and rules, never a value (the file carries PHI); codes the
file sent (procedure, modifier, diagnosis) are no PHI on their own and may be quoted.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from claims_server.errors import ApiError, Unprocessable

#: How many bytes are read at a time.
CHUNK = 64 * 1024
#: Errors kept per file (all are counted): enough to fix a file, bounded for a hostile one.
MAX_ERRORS = 1000
#: The separator of a list inside one field (modifiers ``25:59``, diagnoses ``E11.9:I10``): no
#: code contains it, and unlike ``,`` or ``;`` it needs no quoting in any CSV dialect.
LIST_SEPARATOR = ":"


@dataclass(frozen=True)
class Column:
    """One column of the layout: its name, whether it is the claim's or the line's, and what it holds."""

    name: str
    level: str  # "claim": the same on every row of a claim (or empty after the first); "line"
    required: bool
    description: str


COLUMNS: tuple[Column, ...] = (
    Column(
        "claim_ref",
        "claim",
        True,
        "groups the rows of one claim; becomes the claim's CLM01 (≤ 20 characters)",
    ),
    Column("patient_account", "claim", False, "the practice's account number of the patient"),
    Column("patient_id", "claim", False, "or the patient's id in this server (32 hex characters)"),
    Column("patient_name", "claim", False, '"LAST, FIRST": checked against the patient found'),
    Column(
        "coverage_id",
        "claim",
        False,
        "the coverage's id; empty: primary coverage on the first date of service",
    ),
    Column("referring_npi", "claim", False, "referring provider (2310A): NPI or provider id"),
    Column("facility_npi", "claim", False, "service facility (2310C): NPI or provider id"),
    Column("prior_authorization", "claim", False, "prior authorization number (REF*G1)"),
    Column(
        "ready", "claim", False, "yes (default): ready when the scrub finds no error; no: stored as draft"
    ),
    Column("rendering_npi", "line", False, "rendering provider: NPI or provider id (first row: the claim's)"),
    Column("place_of_service", "line", False, "CMS code, 2 digits (first row: the claim's; default 11)"),
    Column("service_date", "line", True, "date of service, YYYY-MM-DD"),
    Column("service_date_end", "line", False, "end of a span, YYYY-MM-DD"),
    Column("procedure", "line", True, "CPT or HCPCS code"),
    Column("modifiers", "line", False, "up to 4, separated by ':' (25:59)"),
    Column("description", "line", False, "SV101-7, for not-otherwise-classified codes"),
    Column("units", "line", False, "decimal, default 1"),
    Column("unit_basis", "line", False, "UN (units, default) or MJ (anesthesia minutes)"),
    Column("charge", "line", False, "dollars and cents (125.00); empty: the fee schedule's fee times units"),
    Column("diagnoses", "line", True, "the line's ICD-10-CM codes, 1-4, separated by ':' (E11.9:I10)"),
    Column("ndc", "line", False, "11-digit NDC (5-4-2, no hyphens)"),
    Column("ndc_quantity", "line", False, "drug quantity (needed with ndc)"),
    Column("ndc_unit", "line", False, "F2, GR, ME, ML or UN (needed with ndc)"),
)
COLUMN_NAMES: tuple[str, ...] = tuple(c.name for c in COLUMNS)
REQUIRED_COLUMNS: tuple[str, ...] = tuple(c.name for c in COLUMNS if c.required)
#: Claim-level columns: every row of a claim carries the first row's value or nothing.
CLAIM_COLUMNS: tuple[str, ...] = tuple(
    c.name for c in COLUMNS if c.level == "claim" and c.name != "claim_ref"
)
PATIENT_COLUMNS = ("patient_account", "patient_id")

#: Where a claim JSON field comes from: field -> column (claim level, read on the claim's first row).
CLAIM_FIELD_COLUMNS: dict[str, str] = {
    "patient_control_number": "claim_ref",
    "coverage": "coverage_id",
    "referring_provider": "referring_npi",
    "facility_provider": "facility_npi",
    "prior_authorization": "prior_authorization",
    "ready": "ready",
    "rendering_provider": "rendering_npi",
    "place_of_service": "place_of_service",
    "diagnoses": "diagnoses",
    "total_charge": "charge",
}
#: Where a service line's field comes from: field -> column (on the line's row).
LINE_FIELD_COLUMNS: dict[str, str] = {
    "procedure": "procedure",
    "modifiers": "modifiers",
    "description": "description",
    "charge": "charge",
    "units": "units",
    "unit_basis": "unit_basis",
    "service_date": "service_date",
    "service_date_end": "service_date_end",
    "diagnosis_pointers": "diagnoses",
    "place_of_service": "place_of_service",
    "rendering_provider": "rendering_npi",
    "ndc": "ndc",
    "drug_quantity": "ndc_quantity",
    "drug_unit": "ndc_unit",
}
_LINE_PATH = re.compile(r"^lines\[(\d+)\]\.(\w+)")
_DIAGNOSIS_PATH = re.compile(r"^diagnoses\[(\d+)\]")
_HEADER_SPACES = re.compile(r"[\s-]+")


@dataclass
class RowError:
    """Why a row (or the file) is refused: CSV line (1 is the header), column, rule, message."""

    line: int | None
    column: str | None
    rule: str
    message: str

    def to_json(self) -> dict[str, Any]:
        where = f"line {self.line}" if self.line else "the file"
        if self.column:
            where += f", column {self.column}"
        return {
            "line": self.line,
            "column": self.column,
            "field": self.column,
            "rule": self.rule,
            "message": f"{where}: {self.message}",
        }


class ErrorList:
    """The file's errors: the first :data:`MAX_ERRORS` kept, all counted (one per cell)."""

    def __init__(self) -> None:
        self.items: list[RowError] = []
        self.total = 0
        self._cells: set[tuple[int | None, str]] = set()

    def add(self, line: int | None, column: str | None, rule: str, message: str) -> None:
        """Record a problem; a second one about the same line and column is left out (one is
        enough to send the biller to the cell, and later checks often trip on the first)."""
        if column is not None:
            if (line, column) in self._cells:
                return
            self._cells.add((line, column))
        self.total += 1
        if len(self.items) < MAX_ERRORS:
            self.items.append(RowError(line, column, rule, message))

    def __bool__(self) -> bool:
        return self.total > 0


class ChargeFileTooLarge(ApiError):
    """The file is over ``CHARGE_IMPORT_MAX_BYTES`` (found before the rest of it is read)."""

    status, slug, title = 413, "payload-too-large", "Payload too large"


class ChargeFileRefused(Unprocessable):
    """The file cannot be imported: ``errors`` name each line, column and rule; nothing was imported."""

    def __init__(self, detail: str, errors: list[RowError], *, total: int, **extra: Any) -> None:
        super().__init__(detail, errors=[e.to_json() for e in errors], errors_total=total, **extra)
        self.row_errors = errors
        self.total = total


@dataclass
class CsvRow:
    """One data row: its first physical line and its values by column (stripped, empty left out)."""

    line: int
    values: dict[str, str]

    def get(self, column: str) -> str | None:
        return self.values.get(column)


@dataclass
class ChargeFile:
    """What reading the bytes found: digest, size, columns, rows (bad rows left out) and errors."""

    sha256: str
    size: int
    columns: list[str]
    rows: list[CsvRow]
    errors: ErrorList


def too_large(limit: int) -> ChargeFileTooLarge:
    return ChargeFileTooLarge(f"the charge file exceeds the limit of {limit} bytes", limit_bytes=limit)


def read_capped(stream: BinaryIO, max_bytes: int) -> tuple[bytes, str]:
    """The stream's bytes and their SHA-256, refused (413) as soon as they pass ``max_bytes``.

    The bytes are kept in memory only (never spooled to disk: they are PHI) and parsed
    after the whole file is in, so a file over the limit costs a read, not a parse.
    """
    parts: list[bytes] = []
    size = 0
    digest = hashlib.sha256()
    while chunk := stream.read(CHUNK):
        size += len(chunk)
        if size > max_bytes:
            raise too_large(max_bytes)
        digest.update(chunk)
        parts.append(chunk)
    return b"".join(parts), digest.hexdigest()


def _text_lines(content: bytes, bad_utf8: set[int]) -> Iterator[str]:
    """Each line decoded as UTF-8 (a BOM before the header is dropped). A line that is not
    UTF-8 is decoded with its bad bytes escaped and its number put in ``bad_utf8``, so the
    row can be refused naming the column that holds them."""
    for number, raw in enumerate(io.BytesIO(content), start=1):
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            bad_utf8.add(number)
            text = raw.decode("utf-8", "surrogateescape")
        yield text.removeprefix("\ufeff") if number == 1 else text


def _has_escaped_bytes(value: str) -> bool:
    return any("\udc80" <= ch <= "\udcff" for ch in value)


def normalize_header(name: str) -> str:
    """A header cell as a column name: case, outer space, inner spaces and hyphens folded."""
    return _HEADER_SPACES.sub("_", name.strip().lower())


def _check_header(cells: list[str], errors: ErrorList) -> list[str]:
    names = [normalize_header(cell) for cell in cells]
    if not set(names) & set(COLUMN_NAMES):
        # Most likely a file without its header: the first line is data (PHI), so its cells are
        # not quoted back as "unknown columns".
        errors.add(
            1, None, "no_header", "the first line names none of the layout's columns; is the header missing?"
        )
        return names
    seen: set[str] = set()
    for position, name in enumerate(names, start=1):
        if not name:
            errors.add(1, None, "header", f"header cell {position} is empty; every column needs a name")
        elif name not in COLUMN_NAMES:
            errors.add(
                1, name[:40], "unknown_column", "is not a column of the charge layout (docs/charge-import.md)"
            )
        elif name in seen:
            errors.add(1, name, "duplicate_column", "appears twice in the header")
        seen.add(name)
    for name in REQUIRED_COLUMNS:
        if name not in seen:
            errors.add(1, name, "missing_column", "is a required column and is not in the header")
    if not seen & set(PATIENT_COLUMNS):
        errors.add(1, "patient_account", "missing_column", "the header needs patient_account or patient_id")
    return names


def parse_charge_file(content: bytes, sha256: str) -> ChargeFile:
    """Split the charge file's bytes into checked rows (RFC 4180, UTF-8).

    Raises :class:`ChargeFileRefused` for a file that has no usable header (empty, header
    errors, broken quoting); row errors are returned with the rows that were readable.
    """
    bad_utf8: set[int] = set()
    errors = ErrorList()
    reader = csv.reader(_text_lines(content, bad_utf8), strict=True)
    columns: list[str] | None = None
    rows: list[CsvRow] = []
    previous_end = 0
    while True:
        start = previous_end + 1
        try:
            record = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            # Broken quoting or a NUL: the rest of the file cannot be split into rows reliably.
            errors.add(reader.line_num or start, None, "csv", _csv_problem(exc))
            break
        previous_end = reader.line_num
        if not record or (columns is not None and all(not cell.strip() for cell in record)):
            continue  # a blank line (or a row of empty cells, as spreadsheets export)
        bad_bytes = bad_utf8.intersection(range(start, previous_end + 1))
        if columns is None:
            if bad_bytes:
                errors.add(1, None, "utf8", "the header is not valid UTF-8")
            columns = _check_header(record, errors)
            if errors:
                break
            continue
        if len(record) != len(columns):
            errors.add(
                start, None, "field_count", f"the row has {len(record)} fields; the header has {len(columns)}"
            )
            continue
        if bad_bytes:
            for name, cell in zip(columns, record, strict=True):
                if _has_escaped_bytes(cell):
                    errors.add(start, name, "utf8", "is not valid UTF-8 (save the file as UTF-8)")
            continue
        values = {name: cell.strip() for name, cell in zip(columns, record, strict=True) if cell.strip()}
        rows.append(CsvRow(start, values))
    if columns is None and not errors:
        errors.add(None, None, "empty", "the file is empty: it needs a header and at least one row")
    elif columns is not None and not rows and not errors:
        errors.add(None, None, "no_rows", "the file has a header but no rows")
    if columns is None or (errors and not rows):
        raise ChargeFileRefused(
            "the charge file cannot be read: " + errors.items[0].to_json()["message"],
            errors.items,
            total=errors.total,
        )
    return ChargeFile(sha256, len(content), columns, rows, errors)


def _csv_problem(exc: csv.Error) -> str:
    text = str(exc)
    if "NUL" in text:
        return "the row contains a NUL byte"
    if "field larger" in text:
        return "a field is longer than the csv limit (128 KiB)"
    # The csv module's messages name quotes and delimiters, never the data.
    return f"the row is not valid CSV (RFC 4180 quoting): {text}"


def split_list(value: str | None) -> list[str]:
    """A list field (``25:59``) as its items, blanks dropped."""
    if not value:
        return []
    return [item.strip() for item in value.split(LIST_SEPARATOR) if item.strip()]


# -- grouping rows into claim documents ----------------------------------------------------------


@dataclass
class ClaimRows:
    """The rows of one claim (in file order) and the claim JSON document built from them.

    ``diagnosis_rows[k]``: the line of the row where diagnosis ``k`` first appears.
    """

    claim_ref: str
    rows: list[CsvRow]
    document: dict[str, Any] = field(default_factory=dict)
    diagnosis_rows: list[int] = field(default_factory=list)
    patient_column: str = "patient_account"

    @property
    def first(self) -> CsvRow:
        return self.rows[0]

    def where(self, path: str | None) -> tuple[int, str | None]:
        """The (line, column) that a claim JSON path (an error's or a finding's) is about."""
        path = path or ""
        line = _LINE_PATH.match(path)
        if line:
            index = int(line.group(1))
            row = self.rows[index] if index < len(self.rows) else self.first
            return row.line, LINE_FIELD_COLUMNS.get(line.group(2))
        diagnosis = _DIAGNOSIS_PATH.match(path)
        if diagnosis:
            index = int(diagnosis.group(1))
            line_number = self.diagnosis_rows[index] if index < len(self.diagnosis_rows) else self.first.line
            return line_number, "diagnoses"
        head = path.split(".", 1)[0].split("[", 1)[0]
        if head == "patient":
            return self.first.line, self.patient_column if path == "patient" else None
        return self.first.line, CLAIM_FIELD_COLUMNS.get(head)


def group_rows(rows: list[CsvRow], errors: ErrorList) -> list[ClaimRows]:
    """Rows by ``claim_ref`` in order of first appearance; claim-level columns must agree."""
    claims: dict[str, ClaimRows] = {}
    for row in rows:
        ref = row.get("claim_ref")
        if ref is None:
            errors.add(row.line, "claim_ref", "required", "is empty; every row names its claim")
            continue
        group = claims.get(ref)
        if group is None:
            claims[ref] = ClaimRows(ref, [row])
            continue
        for column in CLAIM_COLUMNS:
            value = row.get(column)
            if value is not None and value != group.first.get(column):
                errors.add(
                    row.line,
                    column,
                    "claim_level",
                    f"differs from the claim's first row (line {group.first.line}); "
                    "a claim-level column is the same on every row of a claim, or empty after the first",
                )
        group.rows.append(row)
    return list(claims.values())
