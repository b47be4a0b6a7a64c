"""What supervisors see of the jobs: last run, outcome, next run, running now, overdue.

Read-only (the API, the workspace page, ``scheduler list`` and ``/healthz`` call it). A job is
*overdue* when it is on, nobody is running it, and its next run is further in the past than
its grace (``Schedule.grace``: twice its period, at least 5 minutes; an hour for daily jobs).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from claims_server.models.operations import ScheduledJob
from claims_server.scheduler.jobs import Job


@dataclass(frozen=True)
class JobStatus:
    job: Job
    row: ScheduledJob | None
    next_run_at: datetime | None
    running: bool
    overdue: bool

    def to_json_dict(self) -> dict[str, Any]:
        row, job = self.row, self.job

        def when(value: datetime | None) -> str | None:
            return value.isoformat() if value is not None else None

        return {
            "name": job.name,
            "task": job.task,
            "description": job.description,
            "schedule": job.schedule.describe() if job.enabled else "off",
            "every_seconds": job.schedule.every_seconds if job.enabled else None,
            "daily_at": (
                job.schedule.daily_at.strftime("%H:%M") if job.enabled and job.schedule.daily_at else None
            ),
            "enabled": job.enabled,
            "running": self.running,
            "overdue": self.overdue,
            "next_run_at": when(self.next_run_at),
            "last_started_at": when(row.last_started_at if row else None),
            "last_finished_at": when(row.last_finished_at if row else None),
            "last_outcome": row.last_outcome if row else None,
            "last_detail": row.last_detail if row else None,
            "last_error": row.last_error if row else None,
            "last_success_at": when(row.last_success_at if row else None),
            "run_count": row.run_count if row else 0,
            "failure_count": row.failure_count if row else 0,
        }


def job_status(job: Job, row: ScheduledJob | None, now: datetime) -> JobStatus:
    running = bool(
        row is not None and row.lease_owner and row.lease_expires_at and row.lease_expires_at > now
    )
    if not job.enabled:
        next_run = None
    elif row is None or row.next_run_at is None:
        next_run = job.schedule.first_run(now)  # planned: no runner has seen the job yet
    else:
        next_run = row.next_run_at
    overdue = bool(
        job.enabled
        and not running
        and row is not None
        and row.next_run_at is not None
        and now - row.next_run_at > job.schedule.grace()
    )
    return JobStatus(job, row, next_run, running, overdue)


def job_statuses(session: Session, jobs: dict[str, Job], now: datetime) -> list[JobStatus]:
    """Every job of the registry with its row (if any), in registry order."""
    rows = {row.name: row for row in session.scalars(select(ScheduledJob))}
    return [job_status(job, rows.get(name), now) for name, job in jobs.items()]


def overdue_job_names(session: Session, jobs: dict[str, Job], now: datetime) -> list[str]:
    return [s.job.name for s in job_statuses(session, jobs, now) if s.overdue]
