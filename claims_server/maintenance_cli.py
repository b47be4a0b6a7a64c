"""``claims-server maintenance purge``: the retention purge for the embedded default, cron or an operator."""

from __future__ import annotations

import json

import click


@click.group("maintenance")
def maintenance_group() -> None:
    """Housekeeping: the retention purge of expired PHI copies."""


@maintenance_group.command("purge")
@click.option("--json", "as_json", is_flag=True, help="print counts as JSON")
def purge_command(as_json: bool) -> None:
    """Delete expired idempotency answers, clear old print batches, remove old outbound files.

    Retention settings: IDEMPOTENCY_RETENTION_HOURS, PRINT_BATCH_RETENTION_DAYS,
    OUTBOUND_FILE_RETENTION_HOURS. Celery beat runs the same purge hourly when a broker is set.
    """
    from claims_server.config import load_settings
    from claims_server.db import make_engine, make_session_factory
    from claims_server.models.common import utcnow
    from claims_server.retention import purge
    from claims_server.security.principal import acting_as, system_principal

    settings = load_settings()
    engine = make_engine(settings.database_url)
    try:
        with acting_as(system_principal("cli:maintenance-purge")), make_session_factory(engine)() as session:
            report = purge(session, settings, utcnow())
            session.commit()
    finally:
        engine.dispose()
    if as_json:
        click.echo(json.dumps(report.to_json_dict(), sort_keys=True))
    else:
        click.echo(
            f"purged {report.idempotency_records} idempotency records, "
            f"{report.print_batches} print batches, {len(report.files)} outbound files"
        )
