"""Scheduler (``/ui/scheduler``): each periodic job's schedule, last run and outcome, next run;
overdue jobs first and marked; supervisors and admins run a job now (``scheduler.run_job``).

Times are shown in UTC, daily schedules in ``SCHEDULER_TIMEZONE``. Nothing here is PHI.
"""

from __future__ import annotations

from flask import Response, flash, redirect, url_for

from claims_server.app import db_session, state
from claims_server.errors import ApiError
from claims_server.models.common import utcnow
from claims_server.scheduler.jobs import registry
from claims_server.scheduler.services import audit_run_now, get_job, run_now
from claims_server.scheduler.status import job_statuses
from claims_server.security.policy import rule_for
from claims_server.security.principal import current_principal
from claims_server.ui.blueprint import bp, page


@bp.route("/scheduler", methods=["GET"], endpoint="scheduler")
def scheduler() -> Response:
    settings = state().settings
    statuses = job_statuses(db_session(), registry(settings), utcnow())
    run_rule = rule_for("ui.scheduler_run")
    return page(
        "scheduler.html",
        statuses=sorted(statuses, key=lambda s: not s.overdue),
        overdue=[s for s in statuses if s.overdue],
        mode=settings.scheduler_mode,
        timezone=settings.SCHEDULER_TIMEZONE,
        can_run=run_rule is not None and current_principal().role in run_rule.roles,
    )


@bp.route("/scheduler/<name>/run", methods=["POST"], endpoint="scheduler_run")
def scheduler_run(name: str) -> Response:
    app_state = state()
    jobs = registry(app_state.settings)
    session = db_session()
    get_job(session, jobs, name, utcnow())  # an unknown job is the 404 page
    try:
        done = run_now(app_state.session_factory, jobs, name, eager=app_state.settings.tasks_eager)
    except ApiError as exc:  # 409: another runner has it
        flash(f"{name}: {exc.detail}", "error")
        return redirect(url_for("ui.scheduler"), 303)
    audit_run_now(session, name, done)
    session.commit()
    if done.outcome is not None and done.outcome.error:
        flash(f"{name} failed: {done.outcome.error}", "error")
    elif done.outcome is not None:
        flash(f"{name} ran: ok.", "success")
    elif done.state == "queued":
        flash(f"{name} was sent to the workers; reload to see its outcome.", "success")
    else:
        flash(f"{name} is still running; reload to see its outcome.", "success")
    return redirect(url_for("ui.scheduler"), 303)
