"""``claims-server claims validate|create FILE.json``: the API's claim JSON shape, from the shell.

Both print JSON on stdout. ``validate`` exits 0 when the scrub finds no error and 1
otherwise; ``create`` stores the claim (ready when the document says ``"ready": true``
and the scrub is clean) and prints it. Bad input exits 2 with the problem (fields and
rules) as JSON, never a traceback.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from claims_server.cli_support import config_errors_are_one_line
from claims_server.errors import ApiError


def _read(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        click.echo(
            json.dumps({"detail": f"{path.name} is not a readable JSON file ({type(exc).__name__})"}),
            err=True,
        )
        sys.exit(2)


def _fail(exc: ApiError) -> None:
    click.echo(
        json.dumps({"status": exc.status, "detail": exc.detail, "errors": exc.errors}, default=str), err=True
    )
    sys.exit(2)


def _session_factory() -> Any:
    from claims_server.cli import _checked_database_url
    from claims_server.db import make_engine, make_session_factory

    return make_session_factory(make_engine(_checked_database_url()))


@click.group("claims")
def claims_group() -> None:
    """Validate or create claims from claim JSON files."""


@claims_group.command("validate")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def validate_command(file: Path) -> None:
    """Scrub FILE.json without saving anything; exit 1 when it has errors."""
    from claims_server.claims.services import validate_claim_json
    from claims_server.security.principal import acting_as, system_principal

    document = _read(file)
    session = _session_factory()()
    try:
        with acting_as(system_principal("cli:claims-validate")):
            result = validate_claim_json(session, document)
    except ApiError as exc:
        _fail(exc)
    finally:
        session.rollback()
        session.close()
    click.echo(json.dumps(result, indent=2))
    sys.exit(0 if result["valid"] else 1)


@claims_group.command("create")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def create_command(file: Path) -> None:
    """Store the claim in FILE.json and print it."""
    from claims_server.claims.schemas import ClaimOutSchema
    from claims_server.claims.services import claim_to_json, create_claim_from_json
    from claims_server.db import unit_of_work
    from claims_server.security.principal import acting_as, system_principal

    document = _read(file)
    try:
        with acting_as(system_principal("cli:claims-create")), unit_of_work(_session_factory()) as session:
            result = create_claim_from_json(session, document)
            out = ClaimOutSchema().dump(claim_to_json(result.claim))
    except ApiError as exc:
        _fail(exc)
    click.echo(json.dumps(out, indent=2))


def _dollars(text: str) -> str:
    whole, _, cents = text.partition(".")
    return f"${int(whole):,}.{cents}"


def _import_lines(report: dict[str, Any]) -> list[str]:
    counts = (
        f"{report['claims']} claims, {report['lines']} lines ({report['ready']} ready, {report['draft']} draft), "
        f"total {_dollars(report['total_charge'])}"
    )
    if report["status"] == "duplicate":
        return [f"already imported as {report['import_id']}: {counts}; nothing was imported again"]
    if report["status"] == "dry_run":
        lines = [f"dry run: would import {counts}; nothing was imported"]
        lines += [
            f"line {row['line']}: {f['severity']} {f['rule_id']}"
            + (f" ({f['column']})" if f["column"] else "")
            + f": {f['message']}"
            for row in report["preview"]
            for f in row["findings"]
            if f["severity"] != "info"
        ]
        return lines
    return [f"imported {report['import_id']}: {counts}"]


@claims_group.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--dry-run", is_flag=True, help="check every row and show what would be imported; import nothing"
)
@click.option("--practice", default=None, help="the practice's id (default: the only practice)")
@click.option("--json", "as_json", is_flag=True, help="print the report (or the refusal) as JSON")
@config_errors_are_one_line
def import_command(file: Path, dry_run: bool, practice: str | None, as_json: bool) -> None:
    """Import the charge file FILE.csv as claims (docs/charge-import.md): all rows or none.

    Prints the counts and the total and exits 0 (also when the same file was imported
    before: nothing is imported twice). A refused file exits 2 with one line per refused
    row: its line, column and rule. Counts, codes and ids only: no patient data is printed.
    """
    from claims_server.claims.charge_csv import too_large
    from claims_server.claims.charge_import import import_charges
    from claims_server.config import load_settings
    from claims_server.db import unit_of_work
    from claims_server.security.principal import acting_as, system_principal

    limit = load_settings().CHARGE_IMPORT_MAX_BYTES
    try:
        if file.stat().st_size > limit:
            raise too_large(limit)  # refused on its size alone: nothing of it is read
        with (
            file.open("rb") as stream,
            acting_as(system_principal("cli:claims-import")),
            unit_of_work(_session_factory()) as session,
        ):
            report = import_charges(
                session, stream, max_bytes=limit, practice=practice, dry_run=dry_run
            ).to_json_dict()
    except ApiError as exc:
        _refused(exc, as_json)
    except OSError as exc:
        click.echo(f"{file.name} cannot be read ({type(exc).__name__})", err=True)
        sys.exit(2)
    if as_json:
        click.echo(json.dumps(report, indent=2))
    else:
        for line in _import_lines(report):
            click.echo(line)


def _refused(exc: ApiError, as_json: bool) -> None:
    if as_json:
        _fail(exc)
    click.echo(f"refused: {exc.detail}", err=True)
    for error in exc.errors:
        click.echo(f"  {error.get('message')}", err=True)
    omitted = int(exc.extra.get("errors_total") or 0) - len(exc.errors)
    if omitted > 0:
        click.echo(f"  ... and {omitted} more", err=True)
    sys.exit(2)
