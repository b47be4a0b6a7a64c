"""``claims-server statements run [--progress]`` and ``statements status RUN``: statement runs from the shell."""

from __future__ import annotations

import json
import time
from datetime import date
from typing import Any

import click


def _session_factory():  # type: ignore[no-untyped-def]
    from claims_server.cli import _checked_database_url
    from claims_server.db import make_engine, make_session_factory

    return make_session_factory(make_engine(_checked_database_url()))


def _progress_line(progress: dict[str, Any]) -> str:
    reasons = ", ".join(f"{k} {v}" for k, v in sorted(progress["skip_reasons"].items())) or "none"
    return (
        f"run {progress['id']} {progress['state']}: {progress['done']}/{progress['total']} patients, "
        f"{progress['issued']} issued, {progress['held']} held, {progress['skipped']} skipped "
        f"({reasons}), {progress['failed']} failed"
    )


def _echo_notices(progress: dict[str, Any]) -> None:
    for notice in progress.get("notices", []):
        click.echo(notice)


@click.group("statements")
def statements_group() -> None:
    """Patient statements: runs (cycle rules, dunning, PDF + HTML) and their progress."""


@statements_group.command("run")
@click.option(
    "--as-of", "as_of", type=click.DateTime(formats=["%Y-%m-%d"]), default=None, help="default: today"
)
@click.option("--progress", is_flag=True, help="print done/total as the workers go")
@click.option("--json", "as_json", is_flag=True, help="print the final progress as JSON")
@click.option("--queue", default=None, help="Celery queue for the chunk tasks")
def run_command(as_of: Any, progress: bool, as_json: bool, queue: str | None) -> None:
    """Start a statement run as of a date; chunks go to Celery workers (in-process without a broker)."""
    from claims_server.config import load_settings
    from claims_server.models.statements import StatementRun, StatementRunState
    from claims_server.security.principal import acting_as, system_principal
    from claims_server.statements.services import run_progress, start_statement_run
    from claims_server.statements.tasks import enqueue_run, requeue_stalled_runs
    from claims_server.tasks.celery_app import configure_celery

    settings = load_settings()
    configure_celery(settings)
    day = as_of.date() if as_of is not None else date.today()
    factory = _session_factory()
    with acting_as(system_principal("cli:statements-run")):
        with factory() as session:
            run, chunks = start_statement_run(session, day, chunk_size=settings.STATEMENT_RUN_CHUNK_SIZE)
            session.commit()
            run_id, public_id = run.id, run.public_id
        if progress:
            click.echo(f"run {public_id}: {len(chunks)} chunks")
        if settings.tasks_eager:
            for chunk in chunks:
                enqueue_run(run_id, [chunk], queue=queue)
                if progress:
                    with factory() as session:
                        click.echo(_progress_line(run_progress(session.get(StatementRun, run_id))))
        else:
            enqueue_run(run_id, chunks, queue=queue)
        last = ""
        polls = 0
        while True:
            polls += 1
            if not settings.tasks_eager and polls % 10 == 0:
                # A worker killed mid-chunk would hold the run for the broker's visibility
                # timeout: once the run has not moved for a lease, its chunks go back on the queue.
                requeue_stalled_runs(factory, settings, queue=queue, run_id=run_id)
            with factory() as session:
                current = run_progress(session.get(StatementRun, run_id))
            line = _progress_line(current)
            if progress and line != last:
                click.echo(line)
                last = line
            if current["state"] in (StatementRunState.DONE.value, StatementRunState.FAILED.value):
                break
            time.sleep(0.5)
    if as_json:
        click.echo(json.dumps(current, sort_keys=True))
    else:
        if not progress:
            click.echo(line)
        _echo_notices(current)


@statements_group.command("status")
@click.argument("run_public_id")
@click.option("--json", "as_json", is_flag=True)
@click.option(
    "--resume",
    is_flag=True,
    help="queue again now every chunk not done and not in progress (default: only after "
    "STATEMENT_CHUNK_LEASE_SECONDS without progress)",
)
@click.option("--queue", default=None, help="Celery queue for chunks queued again")
def status_command(run_public_id: str, as_json: bool, resume: bool, queue: str | None) -> None:
    """Progress of a statement run by its id; a run stalled by a killed worker is resumed."""
    from sqlalchemy import select

    from claims_server.config import load_settings
    from claims_server.models.statements import StatementRun
    from claims_server.statements.services import run_progress
    from claims_server.statements.tasks import requeue_stalled_runs
    from claims_server.tasks.celery_app import configure_celery

    settings = load_settings()
    configure_celery(settings)
    factory = _session_factory()
    with factory() as session:
        run = session.scalar(select(StatementRun).where(StatementRun.public_id == run_public_id))
        if run is None:
            raise click.ClickException(f"no statement run {run_public_id}")
        run_id = run.id
    requeued = requeue_stalled_runs(
        factory, settings, queue=queue, run_id=run_id, lease_seconds=0 if resume else None
    )
    if requeued and not as_json:
        click.echo(f"run {run_public_id}: {requeued} chunk(s) queued again", err=True)
    with factory() as session:
        current = run_progress(session.get(StatementRun, run_id))
    click.echo(json.dumps(current, sort_keys=True) if as_json else _progress_line(current))


@statements_group.command("holds")
@click.option("--all", "show_all", is_flag=True, help="released holds too")
@click.option("--json", "as_json", is_flag=True)
def holds_command(show_all: bool, as_json: bool) -> None:
    """Collection holds: accounts whose statements stopped until a person decides (open ones by default)."""
    from claims_server.security.principal import acting_as, system_principal
    from claims_server.statements.services import hold_summary, list_holds

    with acting_as(system_principal("cli:statements-holds")), _session_factory()() as session:
        items = [
            hold_summary(hold, patient)
            for hold, patient in list_holds(session, "all" if show_all else "open")
        ]
    if as_json:
        click.echo(json.dumps({"items": items}, sort_keys=True))
        return
    for item in items:
        state = f"released {item['released_at']}" if item["released_at"] else "open"
        click.echo(
            f"hold {item['id']} patient {item['patient_id']}: {item['reason']}, {item['balance']} due at "
            f"step {item['dunning_step']}, placed {item['placed_at']}, {state}"
        )
    if not items:
        click.echo("no holds")


@statements_group.command("release-hold")
@click.argument("hold_public_id")
def release_hold_command(hold_public_id: str) -> None:
    """Release a collection hold (audited): the patient's statements resume with the next run."""
    from claims_server.errors import NotFound
    from claims_server.security.principal import acting_as, system_principal
    from claims_server.statements.services import release_hold

    with acting_as(system_principal("cli:statements-release-hold")), _session_factory()() as session:
        try:
            hold = release_hold(session, hold_public_id)
        except NotFound as exc:
            raise click.ClickException(exc.detail) from None
        session.commit()
        released = hold.released_at
    click.echo(f"hold {hold_public_id} released at {released.isoformat() if released else '?'}")
