"""``claims-server remittance post FILE [--dry-run] [--json]``: store an 835 and post it.

The file is stored first (raw, encrypted, with its SHA-256; the same bytes twice are one
row), then posted in one transaction. Exit status: 0 posted (or a dry run), 3 duplicate
(nothing new was posted), 1 posting failed (the file is marked failed with the reason),
2 unreadable input. Output names counts, totals and checks, never patient data.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from claims_server.errors import ApiError


def _session_factory():  # type: ignore[no-untyped-def]
    from claims_server.cli import _checked_database_url
    from claims_server.db import make_engine, make_session_factory

    return make_session_factory(make_engine(_checked_database_url()))


@click.group("remittance")
def remittance_group() -> None:
    """Post 835 remittances to the ledger."""


@remittance_group.command("post")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--dry-run", is_flag=True, help="show what would be posted; change nothing")
@click.option("--json", "as_json", is_flag=True, help="print the whole report as JSON")
def post_command(file: Path, dry_run: bool, as_json: bool) -> None:
    """Store FILE (an 835) and post it exactly once."""
    from claims_server.remittance.services import receive_and_post
    from claims_server.security.principal import acting_as, system_principal

    try:
        content = file.read_bytes()
    except OSError as exc:
        click.echo(json.dumps({"detail": f"{file.name} is not readable ({type(exc).__name__})"}), err=True)
        sys.exit(2)
    try:
        with acting_as(system_principal("cli:remittance-post")):
            report = receive_and_post(_session_factory(), content, dry_run=dry_run)
    except ApiError as exc:
        click.echo(json.dumps({"status": exc.status, "detail": exc.detail, "errors": exc.errors}), err=True)
        sys.exit(2)
    if as_json:
        click.echo(json.dumps(report.to_json_dict(), indent=2))
    else:
        summary = report.summary()
        click.echo(f"{report.edi_file_public_id}: {report.status}")
        for key, value in summary.items():
            if key not in ("status", "dry_run"):
                click.echo(f"  {key}: {value}")
        if report.error:
            click.echo(f"  error: {report.error['message']}")
    if report.status == "failed":
        sys.exit(1)
    if report.status == "duplicate":
        sys.exit(3)
