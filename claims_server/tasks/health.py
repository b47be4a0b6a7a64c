"""The health task: proves a worker is alive and can reach the database."""

from __future__ import annotations

import socket
from typing import Any

from sqlalchemy import text

from claims_server.db import make_engine
from claims_server.tasks.celery_app import celery_app


@celery_app.task(name="claims_server.health.ping", bind=True)
def ping(self: Any, nonce: str) -> dict[str, Any]:
    """Echo ``nonce`` with the worker's host name and whether it reached the database."""
    settings = celery_app.conf.claims_settings
    engine = make_engine(settings.database_url)
    try:
        with engine.connect() as conn:
            database = conn.execute(text("SELECT 1")).scalar() == 1
    finally:
        engine.dispose()
    return {
        "nonce": nonce,
        "worker": socket.gethostname(),
        "eager": bool(self.request.is_eager),
        "database": database,
    }
