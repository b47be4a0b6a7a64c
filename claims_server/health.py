"""``/healthz``: is the database reachable, the broker when one is configured, and are the jobs on time.

HTTP 503 when the database or the configured broker is unreachable (take the server out of
rotation). A job overdue (``claims_server.scheduler.status``) makes the status ``degraded``
with HTTP 200: the server itself is well, and a liveness probe must not restart it for a late
job; monitoring reads ``overdue_jobs`` (docs/scheduler.md).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from flask_smorest import Blueprint
from marshmallow import Schema, fields
from sqlalchemy import text

from claims_server import __version__
from claims_server.models.common import utcnow
from claims_server.scheduler.jobs import registry
from claims_server.scheduler.status import overdue_job_names

if TYPE_CHECKING:
    from claims_server.app import AppState

blp = Blueprint("health", __name__, description="Liveness and readiness")


class HealthSchema(Schema):
    status = fields.String(required=True, metadata={"example": "ok", "enum": ["ok", "degraded"]})
    version = fields.String(required=True, metadata={"example": __version__})
    database = fields.String(required=True, metadata={"example": "ok"})
    broker = fields.String(required=True, metadata={"example": "not configured"})
    tasks = fields.String(required=True, metadata={"example": "in-process"})
    scheduler = fields.String(
        required=True, metadata={"example": "in-process", "enum": ["in-process", "beat", "off"]}
    )
    overdue_jobs = fields.List(
        fields.String(),
        required=True,
        metadata={"example": [], "description": "jobs whose next run is later than its grace"},
    )


def broker_status(url: str, timeout: float = 2.0) -> str:
    if not url:
        return "not configured"
    from kombu import Connection

    try:
        with Connection(url, connect_timeout=timeout) as conn:
            conn.ensure_connection(max_retries=1, timeout=timeout)
        return "ok"
    except Exception as exc:
        return f"unreachable ({type(exc).__name__})"


@blp.route("/healthz")
@blp.response(200, HealthSchema)
@blp.alt_response(503, schema=HealthSchema, description="A dependency is unreachable")
def healthz() -> tuple[dict[str, Any], int]:
    """Report whether the server can reach its database and broker, and which jobs are overdue
    (status degraded, still 200)."""
    from claims_server.app import state

    app_state = state()
    try:
        with app_state.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        database = "ok"
    except Exception as exc:
        database = f"unreachable ({type(exc).__name__})"
    broker = broker_status(app_state.settings.CELERY_BROKER_URL)
    healthy = database == "ok" and broker in ("ok", "not configured")
    overdue = _overdue_jobs(app_state) if database == "ok" else []
    body = {
        "status": "ok" if healthy and not overdue else "degraded",
        "version": __version__,
        "database": database,
        "broker": broker,
        "tasks": "in-process" if app_state.settings.tasks_eager else "celery workers",
        "scheduler": app_state.settings.scheduler_mode,
        "overdue_jobs": overdue,
    }
    return body, 200 if healthy else 503


def _overdue_jobs(app_state: AppState) -> list[str]:
    with app_state.session_factory() as session:
        return overdue_job_names(session, registry(app_state.settings), utcnow())
