"""The audit checkpoint timer as a Celery beat task (``claims_server.audit.checkpoint``).

Workers append audit events the server's own checkpointer never counts; this task, on
the beat schedule, signs a checkpoint whenever the chain head has moved since the newest
one (in ``AUDIT_CHECKPOINT_DIR`` and the mirror), whoever appended the events.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine

from claims_server.db import make_engine
from claims_server.security.checkpoints import CheckpointMirrorError, checkpoint_if_head_moved, open_mirror
from claims_server.security.clock import system_clock
from claims_server.security.fields import cipher_for
from claims_server.tasks.celery_app import celery_app

log = logging.getLogger(__name__)
_engines: dict[str, Engine] = {}


def _engine(url: str) -> Engine:
    engine = _engines.get(url)
    if engine is None:
        engine = _engines[url] = make_engine(url)
    return engine


@celery_app.task(name="claims_server.audit.checkpoint")
def audit_checkpoint_task() -> dict[str, Any]:
    """Sign a checkpoint of the chain head if it moved since the last one; counts only in the result."""
    settings = celery_app.conf.claims_settings
    engine = _engine(settings.database_url)
    with engine.connect() as conn:
        ring = cipher_for(None, conn).ring
    try:
        cp = checkpoint_if_head_moved(
            engine,
            ring,
            Path(settings.audit_checkpoint_dir),
            system_clock(),
            mirror=(lambda: open_mirror(settings)) if settings.AUDIT_CHECKPOINT_MIRROR else None,
        )
    except CheckpointMirrorError as exc:
        log.error("audit checkpoint mirror failed: %s", exc)
        return {"written": True, "mirrored": False}
    if cp is None:
        return {"written": False}
    return {"written": True, "last_event_id": cp.last_event_id, "event_count": cp.event_count}
