"""``/api/v1/scheduler``: the periodic jobs with their last run, outcome and next run; run one now.

Supervisors, auditors and admins read; supervisors and admins run (claims_server.security.policy).
Nothing here is PHI: job names, times, counts and error classes.
"""

from __future__ import annotations

from typing import Any

from flask_smorest import Blueprint
from marshmallow import Schema, fields

from claims_server.api_common.fields import StrictBoolean, StrictInteger
from claims_server.api_common.transactions import mutation
from claims_server.app import db_session, state
from claims_server.models.common import utcnow
from claims_server.scheduler.jobs import registry
from claims_server.scheduler.services import audit_run_now, get_job, run_now
from claims_server.scheduler.status import job_statuses

blp = Blueprint(
    "scheduler",
    __name__,
    url_prefix="/api/v1/scheduler",
    description="The periodic jobs (poll inboxes, resend, eligibility, payment plans, statement cycles, "
    "purges): schedule, last run and outcome, next run, overdue; run one now.",
)


class JobSchema(Schema):
    """A job as the settings make it, with its last run (counts only, never patient data)."""

    class Meta:
        ordered = True

    name = fields.String(metadata={"example": "poll-clearinghouse-inboxes"})
    task = fields.String(metadata={"example": "claims_server.clearinghouse.poll_all_inboxes"})
    description = fields.String()
    schedule = fields.String(metadata={"example": "every 5 min", "description": "in words; off when off"})
    every_seconds = StrictInteger(allow_none=True)
    daily_at = fields.String(
        allow_none=True, metadata={"example": "17:30", "description": "SCHEDULER_TIMEZONE"}
    )
    enabled = StrictBoolean()
    running = StrictBoolean(metadata={"description": "a runner holds the job now"})
    overdue = StrictBoolean(
        metadata={
            "description": "on, not running, and its next run is later than its grace (docs/scheduler.md)"
        }
    )
    next_run_at = fields.String(allow_none=True, metadata={"format": "date-time"})
    last_started_at = fields.String(allow_none=True, metadata={"format": "date-time"})
    last_finished_at = fields.String(allow_none=True, metadata={"format": "date-time"})
    last_outcome = fields.String(allow_none=True, metadata={"enum": ["ok", "failed", None]})
    last_detail = fields.Dict(allow_none=True, metadata={"description": "the task's counts and ids"})
    last_error = fields.String(allow_none=True, metadata={"description": "exception class and message"})
    last_success_at = fields.String(allow_none=True, metadata={"format": "date-time"})
    run_count = StrictInteger()
    failure_count = StrictInteger()


class JobListSchema(Schema):
    mode = fields.String(metadata={"enum": ["in-process", "beat", "off"], "description": "SCHEDULER"})
    timezone = fields.String(metadata={"example": "UTC", "description": "SCHEDULER_TIMEZONE"})
    items = fields.List(fields.Nested(JobSchema))


class RunNowSchema(Schema):
    status = fields.String(
        metadata={
            "enum": ["done", "running", "queued"],
            "description": "done: the outcome is in the job; running: still going in the server; "
            "queued: sent to the workers",
        }
    )
    job = fields.Nested(JobSchema)


@blp.route("/jobs", methods=["GET"], endpoint="list_jobs")
@blp.response(200, JobListSchema)
def list_jobs() -> dict[str, Any]:
    """Every periodic job: schedule, last run and outcome, next run, running, overdue."""
    settings = state().settings
    statuses = job_statuses(db_session(), registry(settings), utcnow())
    return {
        "mode": settings.scheduler_mode,
        "timezone": settings.SCHEDULER_TIMEZONE,
        "items": [s.to_json_dict() for s in statuses],
    }


@blp.route("/jobs/<name>", methods=["GET"], endpoint="get_job")
@blp.response(200, JobSchema)
@blp.alt_response(404, description="no job has this name")
def get_job_view(name: str) -> dict[str, Any]:
    """One job: schedule, last run and outcome, next run."""
    return get_job(db_session(), registry(state().settings), name, utcnow()).to_json_dict()


@blp.route("/jobs/<name>/run", methods=["POST"], endpoint="run_job")
@blp.alt_response(200, schema=RunNowSchema, description="ran here; the outcome is in `job`", success=True)
@blp.alt_response(
    202, schema=RunNowSchema, description="still running here, or queued for the workers", success=True
)
@blp.alt_response(404, description="no job has this name")
@blp.alt_response(409, description="another runner is running the job now")
@mutation()
def run_job_view(name: str) -> tuple[dict[str, Any], int]:
    """Run a job now, as its schedule would (in the server without a broker, else on a worker)."""
    app_state = state()
    jobs = registry(app_state.settings)
    session = db_session()
    get_job(session, jobs, name, utcnow())  # 404 before anything runs
    done = run_now(app_state.session_factory, jobs, name, eager=app_state.settings.tasks_eager)
    audit_run_now(session, name, done)
    session.expire_all()
    job = get_job(session, jobs, name, utcnow()).to_json_dict()
    return {"status": done.state, "job": job}, 200 if done.state == "done" else 202
