"""``claims-server fee-schedule import FILE.csv | list``: the practice's fee schedule from the shell.

``import`` reads ``procedure,modifier,charge,description`` (modifier and description may
be empty or left out) and upserts every row, or with ``--replace`` makes the schedule
exactly the file. Any bad row refuses the whole file: each is named on stderr with its
row (the header is row 1) and field, nothing is imported, and the exit status is 2.
``list`` prints the schedule as the same CSV, so it can be edited and imported again.
``--practice`` is needed only when the server holds several practices.
"""

from __future__ import annotations

import csv
import io
import sys
from pathlib import Path
from typing import Any

import click

from claims_server.cli_support import config_errors_are_one_line
from claims_server.errors import ApiError

_PRACTICE = click.option("--practice", "practice_id", default=None, help="practice public id (if several)")


def _session_factory() -> Any:
    from claims_server.cli import _checked_database_url
    from claims_server.db import make_engine, make_session_factory

    return make_session_factory(make_engine(_checked_database_url()))


def _fail(exc: ApiError) -> None:
    click.echo(f"refused: {exc.detail}", err=True)
    for error in exc.errors:
        where = f"row {error['row']}" if error.get("row") else error.get("field") or "file"
        if error.get("row") and error.get("field"):
            where += f", {error['field']}"
        click.echo(f"  {where}: {error.get('message')}", err=True)
    sys.exit(2)


@click.group("fee-schedule")
def fee_schedule_group() -> None:
    """The practice's standard charges per procedure code (charge entry's default charge)."""


@fee_schedule_group.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@_PRACTICE
@click.option("--replace", is_flag=True, help="delete the entries the file does not list")
@config_errors_are_one_line
def import_command(file: Path, practice_id: str | None, replace: bool) -> None:
    """Upsert the fees in FILE.csv (all rows or none)."""
    from claims_server.db import unit_of_work
    from claims_server.practice import fee_schedule
    from claims_server.security.principal import acting_as, system_principal

    try:
        with file.open("rb") as handle:
            data = handle.read(fee_schedule.MAX_CSV_BYTES + 1)
    except OSError as exc:
        click.echo(f"refused: cannot read {file.name} ({exc.strerror})", err=True)
        sys.exit(2)
    try:
        entries = fee_schedule.read_fee_csv(data)
        with (
            acting_as(system_principal("cli:fee-schedule-import")),
            unit_of_work(_session_factory()) as session,
        ):
            practice = fee_schedule.practice_for(session, practice_id)
            change = fee_schedule.save_fees(session, practice, entries, replace=replace)
            practice_public_id = practice.public_id
    except ApiError as exc:
        _fail(exc)
    click.echo(
        f"{file.name}: {len(entries)} rows; {change.created} created, {change.updated} updated, "
        f"{change.deleted} deleted (practice {practice_public_id})"
    )


@fee_schedule_group.command("list")
@_PRACTICE
@config_errors_are_one_line
def list_command(practice_id: str | None) -> None:
    """Print the schedule as CSV (procedure,modifier,charge,description)."""
    from claims_server.api_common.fields import cents_to_money
    from claims_server.practice import fee_schedule

    try:
        with _session_factory()() as session:
            practice = fee_schedule.practice_for(session, practice_id)
            rows = [
                (e.procedure_code, e.modifier, cents_to_money(e.charge_cents), e.description or "")
                for e in fee_schedule.list_fees(session, practice.id)
            ]
    except ApiError as exc:
        _fail(exc)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(fee_schedule.CSV_COLUMNS)
    writer.writerows(rows)
    click.echo(out.getvalue(), nl=False)
