"""``claims-server payments check-plans`` and ``claims-server statements print-batch|email``."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

import click
from sqlalchemy.orm import Session, sessionmaker

from claims_server.errors import ApiError


def _session_factory() -> sessionmaker[Session]:
    from claims_server.config import load_settings
    from claims_server.db import make_engine, make_session_factory

    return make_session_factory(make_engine(load_settings().database_url))


@click.group("payments")
def payments_group() -> None:
    """Patient payments and payment plans."""


@payments_group.command("check-plans")
@click.option(
    "--as-of", "as_of", type=click.DateTime(formats=["%Y-%m-%d"]), default=None, help="default: today"
)
def check_plans_command(as_of: Any) -> None:
    """Detect missed payment-plan installments (opens work items; defaults plans far behind)."""
    from claims_server.api_common.fields import cents_to_money
    from claims_server.payments.plans import check_payment_plans
    from claims_server.security.principal import acting_as, system_principal

    day = as_of.date() if as_of is not None else date.today()
    with acting_as(system_principal("cli:payment-plans")), _session_factory()() as session:
        checks = check_payment_plans(session, day)
        session.commit()
        for check in checks:
            click.echo(
                f"plan {check.plan.public_id}: {check.plan.state.value}, {check.status.missed_count} missed, "
                f"behind {cents_to_money(max(check.status.behind_cents, 0))}"
            )
        click.echo(f"{len(checks)} active plans checked as of {day.isoformat()}")


@click.command("print-batch")
@click.option("--simplex", is_flag=True, help="one-sided printing (no blank backs)")
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False),
    default=None,
    help="folder for the PDF and manifest (0600; default STATEMENT_OUTBOX/print, purged after "
    "OUTBOUND_FILE_RETENTION_HOURS)",
)
@click.option("--json", "as_json", is_flag=True)
def print_batch_command(simplex: bool, out_dir: str | None, as_json: bool) -> None:
    """Merge the issued statements waiting for the mail into one PDF with a manifest.

    The batch is stored encrypted (the API serves it again until PRINT_BATCH_RETENTION_DAYS);
    this command also writes it where the operator says, for the mail house.
    """
    from pathlib import Path

    from claims_server.config import load_settings
    from claims_server.models import utcnow
    from claims_server.security.principal import acting_as, system_principal
    from claims_server.statements.delivery import outbox_dir, print_statements, write_print_batch

    settings = load_settings()
    with acting_as(system_principal("cli:statements-print")), _session_factory()() as session:
        try:
            batch = print_statements(session, settings=settings, now=utcnow(), duplex=not simplex)
        except ApiError as exc:
            raise click.ClickException(exc.detail) from None
        session.commit()
    if batch is None:
        click.echo("no issued statements are waiting for the mail")
        return
    target = Path(out_dir) if out_dir else outbox_dir(settings) / "print"
    pdf_path, manifest_path = write_print_batch(batch, target)
    if as_json:
        click.echo(json.dumps(batch.to_json_dict() | {"pdf": str(pdf_path)}, sort_keys=True))
    else:
        click.echo(
            f"{batch.statements} statements, {batch.pages} pages on {batch.sheets} sheets: "
            f"{pdf_path} (manifest {manifest_path.name})"
        )


@click.command("email")
@click.argument("statement_public_id")
def email_command(statement_public_id: str) -> None:
    """Email one issued statement with a fresh one-time link (SMTP, or the outbox without SMTP_HOST)."""
    from sqlalchemy import select

    from claims_server.config import load_settings
    from claims_server.models import Statement, utcnow
    from claims_server.security.principal import acting_as, system_principal
    from claims_server.statements.delivery import email_issued_statement

    settings = load_settings()
    with acting_as(system_principal("cli:statements-email")), _session_factory()() as session:
        statement = session.scalar(select(Statement).where(Statement.public_id == statement_public_id))
        if statement is None:
            raise click.ClickException(f"no statement {statement_public_id}")
        try:
            sent = email_issued_statement(session, statement, settings=settings, now=utcnow())
        except ApiError as exc:
            raise click.ClickException(exc.detail) from None
        session.commit()
    click.echo(
        f"statement {statement_public_id} emailed; the link expires {sent.link_expires_at.isoformat()}"
    )
