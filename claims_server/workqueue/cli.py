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


#: ``workqueue list`` choices (the queue page's; patient is left out: names are not printed here).
_QUEUES = (
    "rejected",
    "denied",
    "unmatched",
    "unpaid",
    "needs_secondary",
    "patient_balance",
    "possible_duplicate",
    "reconciliation",
    "appeal",
    "credit_balance",
    "approval",
    "other",
)
_SORTS = (
    "claim",
    "payer",
    "date_of_service",
    "filing_deadline",
    "status",
    "amount",
    "days_in_queue",
    "due_date",
)


@workqueue_group.command("list")
@click.option("--queue", type=click.Choice(_QUEUES), default=None)
@click.option(
    "--sort", type=click.Choice(_SORTS), default=None, help="default: priority, then the longest waiting"
)
@click.option("--order", type=click.Choice(["asc", "desc"]), default="asc", show_default=True)
@click.option("--limit", type=click.IntRange(1, 1000), default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True)
def list_command(queue: str | None, sort: str | None, order: str, limit: int, as_json: bool) -> None:
    """Open items, sorted like the queue page: id, queue, claim number, payer, date of service,
    filing deadline, amount, days in queue, due date (no patient names: they are PHI; the
    workspace and GET /api/v1/workqueue/items show them, audited)."""
    from claims_server.api_common.fields import cents_to_money
    from claims_server.models.workqueue import WorkQueue
    from claims_server.workqueue import services

    filters = services.WorkItemFilters(queue=WorkQueue(queue) if queue else None, sort=sort, order=order)
    with _session_factory()() as session:
        items = services.sorted_work_items(session, filters, offset=0, limit=limit)
        rows = services.item_rows(session, items)
        out = []
        for item in items:
            row = rows.get(item.id)
            out.append(
                {
                    "id": item.public_id,
                    "queue": item.queue.value,
                    "claim_number": item.claim.patient_control_number if item.claim is not None else None,
                    **services.row_to_json(row),
                    "amount": cents_to_money(row.amount_cents) if row is not None else None,
                    "days_in_queue": services.days_in_queue(item),
                    "due_date": item.due_date.isoformat() if item.due_date else None,
                }
            )
    if as_json:
        click.echo(json.dumps({"items": out}))
        return
    for r in out:
        click.echo(
            f"{r['id']}  {r['queue']:<16} {r['claim_number'] or '-':<20} {(r['payer_name'] or '-')[:24]:<24} "
            f"DOS {r['date_of_service'] or '-':<10} deadline {r['filing_deadline'] or '-':<10} "
            f"{r['amount'] or '-':>10}  {r['days_in_queue']:>4} d  due {r['due_date'] or '-'}"
        )


@workqueue_group.command("follow-ups")
@click.option("--user", "username", required=True, help="the user name whose follow-ups to list")
@click.option(
    "--as-of", "as_of", type=click.DateTime(formats=["%Y-%m-%d"]), default=None, help="default: today (UTC)"
)
@click.option("--upcoming", is_flag=True, help="the follow-ups after the day instead of those due")
@click.option("--json", "as_json", is_flag=True)
def follow_ups_command(username: str, as_of: object, upcoming: bool, as_json: bool) -> None:
    """A user's follow-ups due (or upcoming): ids, queue, date and note kind, never the note's text
    (it can name the patient; the workspace's My follow-ups and GET /api/v1/follow-ups show it)."""
    from sqlalchemy import select

    from claims_server.models import User
    from claims_server.models.common import utcnow
    from claims_server.workqueue.notes import follow_ups

    day = as_of.date() if as_of is not None else utcnow().date()  # type: ignore[attr-defined]
    with _session_factory()() as session:
        user = session.scalar(select(User).where(User.username == username))
        if user is None:
            raise click.BadParameter(f"no user is called {username!r}", param_hint="--user")
        rows = [
            {
                "item": f.item.public_id,
                "queue": f.item.queue.value,
                "claim": f.item.claim.public_id if f.item.claim is not None else None,
                "follow_up_on": f.follow_up_on.isoformat(),
                "kind": f.note.kind.value,
                "note": f.note.public_id,
            }
            for f in follow_ups(session, user, today=day, due=not upcoming)
        ]
    if as_json:
        click.echo(json.dumps({"user": username, "as_of": day.isoformat(), "items": rows}))
        return
    for row in rows:
        click.echo(
            f"{row['follow_up_on']}  {row['queue']:<18} item {row['item']}  claim {row['claim'] or '-'}"
        )
    click.echo(
        f"{len(rows)} follow-up{'s' if len(rows) != 1 else ''} {'after' if upcoming else 'due on'} {day}"
    )
