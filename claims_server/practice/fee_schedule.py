"""The practice's fee schedule: its standard charge per procedure code (and modifier).

Charge entry and charge import fill in a line's charge from here when the biller leaves
it empty: the schedule's fee is per unit, so the line's charge is fee times units
(:func:`fee_lookup`, then :func:`default_charge_cents`, the one rule every door uses). The
API, the CLI and the workspace list, upsert and delete entries through the services below
(integer cents inside, decimal strings at the edges). One row per (practice, code, modifier);
modifier '' is the code's charge with no modifier or with a modifier that has no row of its
own (e.g. 99213 and 99213-25 are usually billed at the same charge, while 26/TC split a
global charge).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from marshmallow import ValidationError
from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from claims_server.api_common.audit import audit
from claims_server.api_common.fields import DecimalString
from claims_server.errors import NotFound, Unprocessable
from claims_server.models import AuditAction, FeeScheduleEntry, Practice, UnitBasis
from claims_server.models.common import utcnow
from claims_server.practice.schemas import MAX_FEE_ENTRIES, FeeEntrySchema

#: (procedure, modifiers) -> charge in cents, or None when the schedule has no charge for it.
FeeLookup = Callable[[str, Sequence[str]], "int | None"]


def fee_lookup(session: Session, practice_id: int) -> FeeLookup:
    """Load the practice's schedule once; the function returned answers from memory.

    The charge is the row of the first modifier that has one, else the code's '' row,
    else None (the biller must key the charge).
    """
    rows = session.execute(
        select(
            FeeScheduleEntry.procedure_code, FeeScheduleEntry.modifier, FeeScheduleEntry.charge_cents
        ).where(FeeScheduleEntry.practice_id == practice_id)
    ).all()
    table = {(code, modifier): cents for code, modifier, cents in rows}

    def lookup(procedure: str, modifiers: Sequence[str] = ()) -> int | None:
        for modifier in modifiers:
            cents = table.get((procedure, modifier))
            if cents is not None:
                return cents
        return table.get((procedure, ""))

    return lookup


def units_of(text: str | None) -> Decimal | None:
    """A line's units as typed or filed (blank: 1) as a Decimal; None when they are not the
    positive decimal the claim schema takes (which then refuses them beside the field)."""
    if text is None or not str(text).strip():
        return Decimal(1)
    try:
        return Decimal(DecimalString().deserialize(str(text).strip()))
    except ValidationError:
        return None


def default_charge_cents(fee_cents: int | None, units: Decimal | None, unit_basis: str | None) -> int | None:
    """The charge of a line left without one: the schedule's per-unit fee times the line's units,
    in cents rounded half up (Decimal, never float).

    None (the charge must be keyed) when the schedule has no fee, the units are not a positive
    number, or the units are anesthesia minutes (MJ): anesthesia is priced by base and time
    units, not by a per-minute fee.
    """
    if fee_cents is None or units is None or not units.is_finite() or units <= 0:
        return None
    if (unit_basis or UnitBasis.UNITS.value).strip().upper() != UnitBasis.UNITS.value:
        return None
    return int((Decimal(fee_cents) * units).quantize(Decimal(1), rounding=ROUND_HALF_UP))


# -- managing the schedule (API, CLI, workspace) ------------------------------------------------

#: The largest fee schedule CSV the CLI reads (20,000 rows of ~100 bytes fit well below).
MAX_CSV_BYTES = 5 * 1024 * 1024
CSV_COLUMNS = ("procedure", "modifier", "charge", "description")


@dataclass(frozen=True)
class FeeChange:
    """What a save did, in entries."""

    created: int
    updated: int
    deleted: int


def practice_for(session: Session, public_id: str | None) -> Practice:
    """The practice named by ``public_id``; without one, the server's only practice.

    422 naming ``practice`` when none is named and there are several (or none).
    """
    if public_id is not None:
        practice = session.scalar(select(Practice).where(Practice.public_id == public_id))
        if practice is None:
            raise NotFound("no practice has this id")
        return practice
    practices = session.scalars(select(Practice).order_by(Practice.id).limit(2)).all()
    if len(practices) != 1:
        raise Unprocessable(
            "name the practice: the server has "
            + ("no practice yet" if not practices else "several practices"),
            errors=[{"field": "practice", "location": "query", "rule": "required", "message": "required"}],
        )
    return practices[0]


def list_fees(session: Session, practice_id: int) -> list[FeeScheduleEntry]:
    """The practice's entries by procedure code, then modifier ('' first)."""
    return list(
        session.scalars(
            select(FeeScheduleEntry)
            .where(FeeScheduleEntry.practice_id == practice_id)
            .order_by(FeeScheduleEntry.procedure_code, FeeScheduleEntry.modifier)
        )
    )


def fee_to_json(entry: FeeScheduleEntry) -> dict[str, Any]:
    """An entry in the API's shape (``charge`` in cents; the schema writes the decimal string)."""
    return {
        "procedure": entry.procedure_code,
        "modifier": entry.modifier,
        "charge": entry.charge_cents,
        "description": entry.description,
    }


def save_fees(
    session: Session, practice: Practice, entries: Sequence[Mapping[str, Any]], *, replace: bool = False
) -> FeeChange:
    """Upsert ``entries`` (loaded by ``FeeEntrySchema``) by (procedure, modifier); with ``replace``
    delete every other entry too. The caller's unit of work commits all of it or nothing.

    Two saves at once (two supervisors, an import beside the screen) cannot collide on the
    (practice, code, modifier) key: new entries go in with INSERT ... ON CONFLICT DO NOTHING,
    and an entry another transaction inserted since this one read the schedule is updated
    instead (the later save wins, as it would one after the other).
    """
    existing = {(e.procedure_code, e.modifier): e for e in list_fees(session, practice.id)}
    updated = 0
    kept: set[tuple[str, str]] = set()
    new_rows: list[dict[str, Any]] = []
    for item in entries:
        key = (item["procedure"], item.get("modifier") or "")
        kept.add(key)
        row = existing.get(key)
        if row is None:
            new_rows.append(
                {
                    "practice_id": practice.id,
                    "procedure_code": key[0],
                    "modifier": key[1],
                    "charge_cents": item["charge"],
                    "description": item.get("description"),
                }
            )
        elif (row.charge_cents, row.description) != (item["charge"], item.get("description")):
            row.charge_cents, row.description = item["charge"], item.get("description")
            updated += 1
    raced = _insert_new_fees(session, new_rows)
    for values in raced:
        session.execute(
            update(FeeScheduleEntry)
            .where(
                FeeScheduleEntry.practice_id == practice.id,
                FeeScheduleEntry.procedure_code == values["procedure_code"],
                FeeScheduleEntry.modifier == values["modifier"],
            )
            .values(
                charge_cents=values["charge_cents"], description=values["description"], updated_at=utcnow()
            )
        )
    created, updated = len(new_rows) - len(raced), updated + len(raced)
    deleted = 0
    if replace:
        for key, row in existing.items():
            if key not in kept:
                session.delete(row)
                deleted += 1
    session.flush()
    total = session.scalar(
        select(func.count(FeeScheduleEntry.id)).where(FeeScheduleEntry.practice_id == practice.id)
    )
    if (total or 0) > MAX_FEE_ENTRIES:
        raise Unprocessable(
            f"a fee schedule holds at most {MAX_FEE_ENTRIES} entries; this would make {total}",
            errors=[{"field": "entries", "rule": "max_entries", "message": f"at most {MAX_FEE_ENTRIES}"}],
        )
    change = FeeChange(created, updated, deleted)
    audit(
        session,
        action=AuditAction.UPDATE,
        event_type="fee_schedule.update",
        entity_type="practice",
        entity_id=practice.public_id,
        details={"created": created, "updated": updated, "deleted": deleted, "replace": replace},
    )
    return change


#: New entries per INSERT statement (6 values each: well under SQLite's 32,766 parameters).
_INSERT_CHUNK = 1000


def _insert_new_fees(session: Session, rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """INSERT ``rows`` in order, skipping any whose key another transaction inserted meanwhile;
    the skipped rows are returned (the caller updates them)."""
    if not rows:
        return []
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    key = (FeeScheduleEntry.procedure_code, FeeScheduleEntry.modifier)
    now = utcnow()
    inserted: set[tuple[str, str]] = set()
    for start in range(0, len(rows), _INSERT_CHUNK):
        chunk = [{**row, "created_at": now, "updated_at": now} for row in rows[start : start + _INSERT_CHUNK]]
        statement = (
            insert(FeeScheduleEntry)
            .values(chunk)
            .on_conflict_do_nothing(index_elements=["practice_id", "procedure_code", "modifier"])
            .returning(*key)
        )
        inserted.update(tuple(found) for found in session.execute(statement))
    return [row for row in rows if (row["procedure_code"], row["modifier"]) not in inserted]


def delete_fee(session: Session, practice: Practice, procedure: str, modifier: str = "") -> None:
    """Delete one entry; 404 when the schedule has none for the code and modifier."""
    row = session.scalar(
        select(FeeScheduleEntry).where(
            FeeScheduleEntry.practice_id == practice.id,
            FeeScheduleEntry.procedure_code == procedure.strip().upper(),
            FeeScheduleEntry.modifier == modifier.strip().upper(),
        )
    )
    if row is None:
        raise NotFound("the fee schedule has no entry for this procedure and modifier")
    session.delete(row)
    session.flush()
    audit(
        session,
        action=AuditAction.DELETE,
        event_type="fee_schedule.delete",
        entity_type="practice",
        entity_id=practice.public_id,
        details={"procedure": row.procedure_code, "modifier": row.modifier},
    )


def _row_error(row: int, field: str | None, message: str) -> dict[str, Any]:
    return {"row": row, "field": field, "message": message}


def _unreadable(row: int, exc: csv.Error) -> Unprocessable:
    """A row the csv module cannot read, refused by its row (its message names quotes, NULs and
    the field limit, never the data)."""
    problem = "a field is longer than the csv limit (128 KiB)" if "field larger" in str(exc) else str(exc)
    return Unprocessable(
        f"the file was refused (nothing imported); row {row}: cannot be read as CSV: {problem}",
        errors=[_row_error(row, None, f"cannot be read as CSV: {problem}")],
    )


def read_fee_csv(data: bytes) -> list[dict[str, Any]]:
    """A fee schedule CSV (header ``procedure,modifier,charge,description``; ``modifier`` and
    ``description`` may be left out) as loaded entries.

    Any bad row refuses the whole file: ``Unprocessable`` whose errors name each row (the
    file's line number, the header being row 1) and field.
    """
    if len(data) > MAX_CSV_BYTES:
        raise Unprocessable(
            f"the file is larger than {MAX_CSV_BYTES // (1024 * 1024)} MB",
            errors=[_row_error(0, None, "file too large")],
        )
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        row = data[: exc.start].count(b"\n") + 1
        raise Unprocessable(
            f"row {row}: the file is not UTF-8 text", errors=[_row_error(row, None, "not UTF-8 text")]
        ) from None
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = [name.strip().lower() for name in next(reader, [])]
    except csv.Error as exc:
        raise _unreadable(reader.line_num or 1, exc) from None
    unknown = [name for name in header if name not in CSV_COLUMNS]
    missing = [name for name in ("procedure", "charge") if name not in header]
    if unknown or missing or len(set(header)) != len(header):
        problem = (
            f"unknown column(s) {', '.join(unknown)}"
            if unknown
            else f"missing column(s) {', '.join(missing)}"
            if missing
            else "a column repeats"
        )
        raise Unprocessable(
            f"row 1 (header): {problem}; the columns are {','.join(CSV_COLUMNS)}",
            errors=[_row_error(1, None, problem)],
        )
    schema = FeeEntrySchema()
    entries: list[dict[str, Any]] = []
    errors: list[dict[str, Any]] = []
    seen: dict[tuple[str, str], int] = {}
    while True:
        try:
            values = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            # Broken quoting, a NUL or an over-long field: the rest cannot be split into rows.
            raise _unreadable(reader.line_num, exc) from None
        row = reader.line_num
        if not any(v.strip() for v in values):
            continue
        if len(values) != len(header):
            errors.append(_row_error(row, None, f"has {len(values)} fields, the header {len(header)}"))
            continue
        raw = {name: value.strip() for name, value in zip(header, values, strict=True)}
        raw["modifier"] = raw.get("modifier") or ""
        raw["description"] = raw.get("description") or None
        try:
            entry = schema.load(raw)
        except ValidationError as exc:
            messages = exc.messages if isinstance(exc.messages, dict) else {"_schema": exc.messages}
            for field, problems in messages.items():
                first = problems[0] if isinstance(problems, list) and problems else problems
                errors.append(_row_error(row, None if field == "_schema" else str(field), str(first)))
            continue
        key = (entry["procedure"], entry["modifier"] or "")
        if key in seen:
            errors.append(_row_error(row, "procedure", f"repeats row {seen[key]} (same code and modifier)"))
            continue
        seen[key] = row
        entries.append(entry)
        if len(entries) > MAX_FEE_ENTRIES:
            errors.append(_row_error(row, None, f"a fee schedule holds at most {MAX_FEE_ENTRIES} entries"))
            break
    if errors:
        first = errors[0]
        where = f"row {first['row']}" + (f", {first['field']}" if first["field"] else "")
        raise Unprocessable(
            f"the file was refused ({len(errors)} bad row(s); nothing imported); {where}: {first['message']}",
            errors=errors,
        )
    return entries
