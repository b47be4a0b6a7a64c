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
