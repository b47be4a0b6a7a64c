"""``claims_server.scheduler.run_job``: what every ``claims-server beat`` entry sends to the workers.

The worker runs the job through ``runner.run_job`` exactly as the in-process runner does
(lease, outcome, next run in ``scheduled_jobs``). Beat is the clock here, so the job runs
when the entry fires (no due check), but never while another runner holds its lease.
"""

from __future__ import annotations

from typing import Any

from claims_server.clearinghouse.tasks import session_factory
from claims_server.scheduler.jobs import registry
from claims_server.scheduler.runner import run_job, runner_owner
from claims_server.tasks.celery_app import celery_app


@celery_app.task(name="claims_server.scheduler.run_job")
def run_job_task(name: str) -> dict[str, Any]:
    """Run job ``name`` now; its outcome lands in ``scheduled_jobs`` (counts only back here too)."""
    jobs = registry(celery_app.conf.claims_settings)
    outcome = run_job(session_factory(), name, owner=runner_owner("worker"), jobs=jobs, only_if_due=False)
    if outcome is None:
        return {"job": name, "ran": False}
    return {"job": name, "ran": True, "outcome": outcome.outcome}
