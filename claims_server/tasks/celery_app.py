"""The one Celery app, configured for reliability.

- ``task_acks_late`` + ``task_reject_on_worker_lost``: a task whose worker dies is
  redelivered, not lost; tasks are therefore written to be idempotent.
- ``worker_prefetch_multiplier = 1``: a worker holds one unacknowledged task at a time.
- ``visibility_timeout``: how long Redis waits before redelivering an unacked task.
- With no broker configured, tasks run eagerly in-process (the embedded default).

Task arguments are checked when a task is published: only ids (integers, UUID hex, or
short identifier strings) may cross the broker, so PHI can never land in Redis.
"""

from __future__ import annotations

import re
from typing import Any

from celery import Celery, Task

from claims_server.config import Settings, load_settings
from claims_server.scheduler.beat import beat_schedule
from claims_server.scheduler.jobs import registry

_ID_RE = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")


class PhiInTaskArgumentsError(TypeError):
    """A task was sent something other than ids."""


def check_task_arguments(args: Any, kwargs: Any) -> None:
    """Allow ints, bools, None and short id-like strings; refuse everything else."""
    values = list(args or ()) + list((kwargs or {}).values())
    for value in values:
        if value is None or isinstance(value, bool | int):
            continue
        if isinstance(value, str) and _ID_RE.match(value):
            continue
        raise PhiInTaskArgumentsError(
            f"task arguments must be ids (int or short id string), got {type(value).__name__}"
        )


class IdOnlyTask(Task):
    """Checks arguments before a task is queued or run eagerly."""

    def apply_async(self, args: Any = None, kwargs: Any = None, *rest: Any, **options: Any) -> Any:
        check_task_arguments(args, kwargs)
        return super().apply_async(args, kwargs, *rest, **options)


celery_app = Celery(
    "claims_server",
    task_cls=IdOnlyTask,
    include=[
        "claims_server.tasks.health",
        "claims_server.tasks.maintenance",  # retention purge (PHI at rest)
        "claims_server.clearinghouse.tasks",
        "claims_server.submission.tasks",  # send ready claims (the scheduled daily send)
        "claims_server.eligibility.tasks",
        "claims_server.remittance.tasks",
        "claims_server.workqueue.tasks",
        "claims_server.payments.tasks",  # statements-delivery
        "claims_server.statements.tasks",  # statements-core
        "claims_server.security.tasks",  # audit checkpoints
        "claims_server.scheduler.tasks",  # every beat entry: run a registry job, record its outcome
    ],
)


def configure_celery(settings: Settings | None = None) -> Celery:
    """Apply settings to the shared Celery app (idempotent)."""
    s = settings or load_settings()
    celery_app.conf.update(
        broker_url=s.CELERY_BROKER_URL or "memory://localhost/",
        result_backend=s.result_backend or None,
        task_always_eager=s.tasks_eager,
        task_eager_propagates=True,
        task_store_eager_result=False,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        broker_transport_options={"visibility_timeout": s.BROKER_VISIBILITY_TIMEOUT},
        result_expires=24 * 3600,
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        timezone=s.SCHEDULER_TIMEZONE,  # the daily jobs' crontab entries; messages stay UTC
        enable_utc=True,
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=False,
        # Periodic work comes from the one job registry (claims_server.scheduler.jobs).
        beat_schedule=beat_schedule(registry(s)),
    )
    celery_app.conf.claims_settings = s
    return celery_app
