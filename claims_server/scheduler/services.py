"""What the API and the workspace do with jobs beyond listing them (``status.job_statuses``): one job, run now.

"Run now" goes through ``runner.run_job`` like every other run. Without a broker it runs in
this process, in a thread of its own, and the caller waits up to ``RUN_NOW_WAIT_SECONDS`` for
the outcome (a longer job goes on after the answer, so no request is held for a statement
cycle). With a broker it is the ``claims_server.scheduler.run_job`` task for the workers.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session, sessionmaker

from claims_server.errors import Conflict, NotFound
from claims_server.models.operations import ScheduledJob
from claims_server.models.security import AuditAction
from claims_server.scheduler.jobs import Job
from claims_server.scheduler.runner import RunOutcome, run_job, runner_owner
from claims_server.scheduler.status import JobStatus, job_status
from claims_server.scheduler.tasks import run_job_task
from claims_server.security.audit import audit_event

RUN_NOW_WAIT_SECONDS = 10.0


def get_job(session: Session, jobs: dict[str, Job], name: str, now: datetime) -> JobStatus:
    job = jobs.get(name)
    if job is None:
        raise NotFound(
            "no scheduled job has this name",
            errors=[{"field": "name", "rule": "exists", "message": f"jobs: {', '.join(jobs)}"}],
        )
    return job_status(job, session.get(ScheduledJob, name), now)


@dataclass(frozen=True)
class RunNow:
    """``done`` (the outcome is in), ``running`` (still going here) or ``queued`` (for the workers)."""

    state: str
    outcome: RunOutcome | None = None


def run_now(
    factory: sessionmaker[Session],
    jobs: dict[str, Job],
    name: str,
    *,
    eager: bool,
    wait_seconds: float = RUN_NOW_WAIT_SECONDS,
) -> RunNow:
    """Run job ``name`` now (404 for an unknown name, 409 while another runner holds it)."""
    if name not in jobs:
        raise NotFound("no scheduled job has this name")
    if not eager:
        run_job_task.delay(name)
        return RunNow("queued")
    answer: list[RunOutcome | None] = []
    failure: list[BaseException] = []

    def work() -> None:
        try:
            answer.append(run_job(factory, name, owner=runner_owner("run-now"), jobs=jobs, only_if_due=False))
        except BaseException as exc:  # recorded failures never get here; this is the database
            failure.append(exc)

    worker = threading.Thread(target=work, name=f"run-now-{name}", daemon=True)
    worker.start()
    worker.join(wait_seconds)
    if failure:
        raise failure[0]
    if not answer:
        return RunNow("running")
    if answer[0] is None:
        raise Conflict("the job is running now; its outcome will show when it finishes")
    return RunNow("done", answer[0])


def audit_run_now(session: Session, name: str, done: RunNow) -> None:
    """A person ran a job now: who, which job, what came of it (scheduled runs are not audited;
    they would move the chain every minute)."""
    details: dict[str, str] = {"status": done.state}
    if done.outcome is not None:
        details["outcome"] = done.outcome.outcome
    audit_event(
        session,
        action=AuditAction.EXECUTE,
        event_type="scheduler.run",
        entity_type="scheduled_job",
        entity_id=name,
        details=details,
    )
