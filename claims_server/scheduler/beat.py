"""Celery beat's schedule, derived from the registry: one entry per job that is on.

Every entry sends ``claims_server.scheduler.run_job`` with the job's name (an id-like string,
as every task argument must be), so the worker records the run in ``scheduled_jobs`` through
the same ``runner.run_job`` as the in-process runner. Daily jobs are crontab entries in
``SCHEDULER_TIMEZONE`` (``configure_celery`` makes it Celery's time zone).
"""

from __future__ import annotations

from typing import Any

from celery.schedules import crontab

from claims_server.scheduler.jobs import Job

RUN_JOB_TASK = "claims_server.scheduler.run_job"


def beat_schedule(jobs: dict[str, Job], *, queue: str | None = None) -> dict[str, dict[str, Any]]:
    """Celery's ``beat_schedule`` for ``jobs`` (entries on ``queue`` when given)."""
    schedule: dict[str, dict[str, Any]] = {}
    for name, job in jobs.items():
        if not job.enabled:
            continue
        at = job.schedule.daily_at
        entry: dict[str, Any] = {
            "task": RUN_JOB_TASK,
            "schedule": (
                crontab(hour=at.hour, minute=at.minute)
                if at is not None
                else float(job.schedule.period_seconds)
            ),
            "args": (name,),
        }
        if queue:
            entry["options"] = {"queue": queue}
        schedule[name] = entry
    return schedule
