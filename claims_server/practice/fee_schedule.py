"""The practice's fee schedule: its standard charge per procedure code (and modifier).

Charge entry and charge import fill in a line's charge from here when the biller leaves
it empty (:func:`fee_lookup`); the API, the CLI and the workspace list, upsert and delete
entries through the services below (integer cents inside, decimal strings at the edges). One row per (practice, code, modifier); modifier '' is the code's charge with
no modifier or with a modifier that has no row of its own (e.g. 99213 and 99213-25 are
usually billed at the same charge, while 26/TC split a global charge).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from marshmallow import ValidationError
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from claims_server.api_common.audit import audit
from claims_server.errors import NotFound, Unprocessable
from claims_server.models import AuditAction, FeeScheduleEntry, Practice
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
    delete every other entry too. The caller's unit of work commits all of it or nothing."""
    existing = {(e.procedure_code, e.modifier): e for e in list_fees(session, practice.id)}
    created = updated = 0
    kept: set[tuple[str, str]] = set()
    for item in entries:
        key = (item["procedure"], item.get("modifier") or "")
        kept.add(key)
        row = existing.get(key)
        if row is None:
            session.add(
                FeeScheduleEntry(
                    practice_id=practice.id,
                    procedure_code=key[0],
                    modifier=key[1],
                    charge_cents=item["charge"],
                    description=item.get("description"),
                )
            )
            created += 1
        elif (row.charge_cents, row.description) != (item["charge"], item.get("description")):
            row.charge_cents, row.description = item["charge"], item.get("description")
            updated += 1
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
    header = [name.strip().lower() for name in next(reader, [])]
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
    for values in reader:
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
