"""``claims-server scheduler list|run|tick`` and ``claims-server beat``.

- ``scheduler list [--json]``: every job with its schedule, last run, outcome, next run and
  whether it is overdue (read-only).
- ``scheduler run JOB [--json]``: run one job now in this process, through ``runner.run_job``
  (refused while another runner holds it). Exit 0 ok, 1 failed or busy, 2 unknown job.
- ``scheduler tick [--json]``: run every due job once, then exit (cron with ``SCHEDULER=off``,
  and tests). Exit 1 when a job failed.
- ``beat [--queue Q]``: Celery beat with the registry's schedule; each entry is the
  ``claims_server.scheduler.run_job`` task, recorded like the in-process runner. Needs
  ``CELERY_BROKER_URL`` and ``SCHEDULER=beat`` (its default with a broker).

Job names, times and counts only: nothing here prints patient data.
"""

from __future__ import annotations

import json
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import click

from claims_server.cli_support import config_errors_are_one_line


def _context() -> tuple[Any, dict[str, Any], Any]:
    """(session factory, job registry, settings), Celery configured so tasks see the settings."""
    from claims_server.app import check_database
    from claims_server.config import load_settings
    from claims_server.db import make_engine, make_session_factory
    from claims_server.scheduler.jobs import registry
    from claims_server.tasks.celery_app import configure_celery

    settings = load_settings()
    configure_celery(settings)
    engine = make_engine(settings.database_url)
    check_database(engine)
    return make_session_factory(engine), registry(settings), settings


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S") if value else "-"


def _outcome_line(outcome: Any) -> str:
    if outcome.error:
        return f"{outcome.name}: failed: {outcome.error}"
    detail = json.dumps(outcome.detail, sort_keys=True) if outcome.detail else "nothing to report"
    return f"{outcome.name}: ok {detail}"


@click.group("scheduler")
def scheduler_group() -> None:
    """The periodic jobs: list them, run one now, or run every due job once (docs/scheduler.md)."""


@scheduler_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="print the jobs as JSON")
@config_errors_are_one_line
def list_command(as_json: bool) -> None:
    """Every job: schedule, last run and outcome, next run, overdue (times in UTC)."""
    from claims_server.models.common import utcnow
    from claims_server.scheduler.status import job_statuses

    factory, jobs, settings = _context()
    with factory() as session:
        statuses = job_statuses(session, jobs, utcnow())
    if as_json:
        body = {"mode": settings.scheduler_mode, "jobs": [s.to_json_dict() for s in statuses]}
        click.echo(json.dumps(body, indent=2, sort_keys=True))
        return
    click.echo(f"scheduler: {settings.scheduler_mode} (daily times in {settings.SCHEDULER_TIMEZONE})")
    header = f"{'job':<30} {'schedule':<24} {'last run (UTC)':<20} {'outcome':<8} {'next run (UTC)':<20}"
    click.echo(header)
    for s in statuses:
        row = s.row
        schedule = s.job.schedule.describe() if s.job.enabled else "off"
        outcome = "running" if s.running else ((row.last_outcome if row else None) or "-")
        line = (
            f"{s.job.name:<30} {schedule:<24} {_when(row.last_started_at if row else None):<20} "
            f"{outcome:<8} {_when(s.next_run_at):<20}"
        )
        click.echo(line + ("  OVERDUE" if s.overdue else ""))


@scheduler_group.command("run")
@click.argument("job")
@click.option("--json", "as_json", is_flag=True, help="print the outcome as JSON")
@config_errors_are_one_line
def run_command(job: str, as_json: bool) -> None:
    """Run JOB now in this process (exit 0 ok, 1 failed or running elsewhere, 2 no such job)."""
    from claims_server.scheduler.runner import run_job, runner_owner

    factory, jobs, _ = _context()
    if job not in jobs:
        click.echo(f"error: no job named {job!r}; jobs: {', '.join(jobs)}", err=True)
        sys.exit(2)
    outcome = run_job(factory, job, owner=runner_owner("cli"), jobs=jobs, only_if_due=False)
    if outcome is None:
        click.echo(f"{job}: running elsewhere now; try again when it has finished", err=True)
        sys.exit(1)
    click.echo(json.dumps(outcome.to_json_dict(), sort_keys=True) if as_json else _outcome_line(outcome))
    sys.exit(1 if outcome.error else 0)


@scheduler_group.command("tick")
@click.option("--json", "as_json", is_flag=True, help="print the outcomes as JSON")
@config_errors_are_one_line
def tick_command(as_json: bool) -> None:
    """Run every due job once, then exit (exit 1 when one failed)."""
    from claims_server.scheduler.runner import runner_owner, tick

    factory, jobs, _ = _context()
    outcomes = tick(factory, jobs, owner=runner_owner("cli"))
    if as_json:
        click.echo(json.dumps([o.to_json_dict() for o in outcomes], sort_keys=True))
    else:
        for outcome in outcomes:
            click.echo(_outcome_line(outcome))
        if not outcomes:
            click.echo("nothing due")
    sys.exit(1 if any(o.error for o in outcomes) else 0)


@click.command("beat")
@click.option("--queue", default="celery", show_default=True, help="the queue the workers take jobs from")
@click.option("--loglevel", default="INFO", show_default=True)
@config_errors_are_one_line
def beat_command(queue: str, loglevel: str) -> None:
    """Run Celery beat with the job registry's schedule (needs CELERY_BROKER_URL)."""
    from claims_server.config import load_settings
    from claims_server.logs import configure_logging
    from claims_server.scheduler.beat import beat_schedule
    from claims_server.scheduler.runner import sync_jobs
    from claims_server.tasks.celery_app import celery_app

    settings = load_settings()
    if settings.tasks_eager:
        click.echo(
            "configuration error: CELERY_BROKER_URL: not set, so there are no workers to send jobs to; "
            "set it (e.g. redis://127.0.0.1:6379/0), or let `claims-server serve` run the jobs in-process",
            err=True,
        )
        sys.exit(2)
    if settings.scheduler_mode != "beat":
        click.echo(
            f"configuration error: SCHEDULER: is {settings.scheduler_mode}; beat runs the jobs only when "
            "SCHEDULER=beat (its default with a broker), so no job runs twice",
            err=True,
        )
        sys.exit(2)
    factory, jobs, _ = _context()
    configure_logging(settings.LOG_LEVEL, settings.LOG_FORMAT)
    sync_jobs(factory, jobs)  # every job has its row (and next run) before the first entry fires
    celery_app.conf.beat_schedule = beat_schedule(jobs, queue=queue)
    instance = Path(settings.INSTANCE_PATH)
    instance.mkdir(parents=True, exist_ok=True)
    celery_app.Beat(loglevel=loglevel, schedule=str(instance / "celerybeat-schedule")).run()
