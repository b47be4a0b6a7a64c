"""``claims-server appeals list``: the appeals by filing deadline from the command line (and cron:
``--overdue`` exits 1 when a draft has passed its deadline). Ids, claim numbers, payer, level,
status and dates only: never the patient's name or the letter (PHI; the workspace shows them)."""

from __future__ import annotations

import json

import click


def _session_factory():  # type: ignore[no-untyped-def]
    from claims_server.cli import _checked_database_url
    from claims_server.db import make_engine, make_session_factory

    return make_session_factory(make_engine(_checked_database_url()))


@click.group("appeals")
def appeals_group() -> None:
    """Appeals of denials: level, deadline, status and outcome (docs/appeals.md)."""


@appeals_group.command("list")
@click.option(
    "--status",
    "statuses",
    multiple=True,
    type=click.Choice(["draft", "submitted", "won", "lost", "withdrawn"]),
    help="repeat for several; default draft and submitted",
)
@click.option("--overdue", is_flag=True, help="drafts past their deadline only; exit 1 when there are any")
@click.option("--json", "as_json", is_flag=True)
def list_command(statuses: tuple[str, ...], overdue: bool, as_json: bool) -> None:
    """Appeals by deadline, soonest first."""
    from sqlalchemy.orm import selectinload

    from claims_server.corrections import appeals
    from claims_server.models import Claim, Coverage
    from claims_server.models.common import utcnow
    from claims_server.models.workqueue import Appeal, AppealStatus

    today = utcnow().date()
    filters = appeals.AppealFilters(
        status=[AppealStatus(s) for s in statuses] if statuses else list(appeals.LIVE),
        overdue=True if overdue else None,
    )
    with _session_factory()() as session:
        stmt = appeals.appeal_select(filters, today).options(
            selectinload(Appeal.claim).selectinload(Claim.coverage).selectinload(Coverage.payer)
        )
        rows = [
            {
                "appeal": a.public_id,
                "claim": a.claim.patient_control_number,
                "payer": a.claim.coverage.payer.name,
                "level": a.level.value,
                "status": a.status.value,
                "outcome": a.outcome.value if a.outcome else None,
                "deadline": a.deadline.isoformat(),
                "days_left": appeals.days_left(a, today),
                "overdue": appeals.is_overdue(a, today),
            }
            for a in session.scalars(stmt)
        ]
    if as_json:
        click.echo(json.dumps({"as_of": today.isoformat(), "items": rows}))
    else:
        for r in rows:
            flag = " OVERDUE" if r["overdue"] else ""
            click.echo(
                f"{r['deadline']} ({r['days_left']:+d} d){flag}  {r['claim']}  {r['payer']}  "
                f"{r['level']}  {r['status']}  appeal {r['appeal']}"
            )
        click.echo(f"{len(rows)} appeal(s)")
    if overdue and rows:
        raise SystemExit(1)
