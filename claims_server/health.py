"""``/healthz``: is the database reachable, and the broker when one is configured."""

from __future__ import annotations

from typing import Any

from flask_smorest import Blueprint
from marshmallow import Schema, fields
from sqlalchemy import text

from claims_server import __version__

blp = Blueprint("health", __name__, description="Liveness and readiness")


class HealthSchema(Schema):
    status = fields.String(required=True, metadata={"example": "ok", "enum": ["ok", "degraded"]})
    version = fields.String(required=True, metadata={"example": __version__})
    database = fields.String(required=True, metadata={"example": "ok"})
    broker = fields.String(required=True, metadata={"example": "not configured"})
    tasks = fields.String(required=True, metadata={"example": "in-process"})


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
    """Report whether the server can reach its database and broker."""
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
    body = {
        "status": "ok" if healthy else "degraded",
        "version": __version__,
        "database": database,
        "broker": broker,
        "tasks": "in-process" if app_state.settings.tasks_eager else "celery workers",
    }
    return body, 200 if healthy else 503
