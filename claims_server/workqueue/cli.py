"""``claims-server workqueue sweep|counts``: the computed queues from the command line (and cron)."""

from __future__ import annotations

import json
from datetime import date

import click


def _session_factory():  # type: ignore[no-untyped-def]
    from claims_server.cli import _checked_database_url
    from claims_server.db import make_engine, make_session_factory

    return make_session_factory(make_engine(_checked_database_url()))


@click.group("workqueue")
def workqueue_group() -> None:
    """Work queues: denials, rejections, unmatched, unpaid, secondary, patient balances."""


@workqueue_group.command("sweep")
@click.option(
    "--as-of", "as_of", type=click.DateTime(formats=["%Y-%m-%d"]), default=None, help="default: today"
)
@click.option("--unpaid-days", type=click.IntRange(0, 3650), default=30, show_default=True)
@click.option("--json", "as_json", is_flag=True)
def sweep_command(as_of: object, unpaid_days: int, as_json: bool) -> None:
    """Open (and resolve) the unpaid, needs-secondary and patient-balance items; idempotent."""
    from claims_server.db import unit_of_work
    from claims_server.security.principal import acting_as, system_principal
    from claims_server.workqueue.services import sweep

    day = as_of.date() if as_of is not None else date.today()  # type: ignore[attr-defined]
    with acting_as(system_principal("cli:workqueue-sweep")), unit_of_work(_session_factory()) as session:
        result = sweep(session, as_of=day, unpaid_days=unpaid_days)
    if as_json:
        click.echo(
            json.dumps({"as_of": day.isoformat(), "opened": result.opened, "resolved": result.resolved})
        )
    else:
        for queue in result.opened:
            click.echo(f"{queue}: opened {result.opened[queue]}, resolved {result.resolved[queue]}")


@workqueue_group.command("counts")
def counts_command() -> None:
    """Active and snoozed items per queue."""
    from claims_server.workqueue.services import queue_counts

    with _session_factory()() as session:
        for c in queue_counts(session):
            click.echo(
                f"{c.queue.value}: {c.active} active, {c.snoozed} snoozed, oldest {c.oldest_days} days"
            )
