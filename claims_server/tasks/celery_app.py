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
        "claims_server.eligibility.tasks",
        "claims_server.remittance.tasks",
        "claims_server.workqueue.tasks",
        "claims_server.payments.tasks",  # statements-delivery
        "claims_server.statements.tasks",  # statements-core
        "claims_server.security.tasks",  # audit checkpoints
    ],
)

#: Periodic work (``celery beat``): poll every route's inbox, re-queue batches whose send was lost.
BEAT_SCHEDULE = {
    "poll-clearinghouse-inboxes": {"task": "claims_server.clearinghouse.poll_all_inboxes", "schedule": 300.0},
    "resume-unsent-batches": {"task": "claims_server.clearinghouse.resume_unsent_batches", "schedule": 600.0},
    # eligibility: tomorrow's patients once a day, their 271s every 10 minutes.
    "eligibility-check-tomorrow": {"task": "claims_server.eligibility.check_tomorrow", "schedule": 86400.0},
    "eligibility-poll-answers": {"task": "claims_server.eligibility.poll_answers", "schedule": 600.0},
    # statements-delivery: missed payment-plan installments, once a day.
    "payment-plans-check": {"task": "claims_server.payments.check_plans", "schedule": 86400.0},
    # PHI at rest: expired idempotency answers, old print batches and outbound files, hourly.
    "maintenance-purge": {"task": "claims_server.maintenance.purge", "schedule": 3600.0},
    # audit: a signed checkpoint when the chain moved (every AUDIT_CHECKPOINT_SECONDS, set below).
    "audit-checkpoint": {"task": "claims_server.audit.checkpoint", "schedule": 60.0},
    # statements: chunks of a run stalled by a killed worker go back on the queue.
    "statements-reap-stalled-runs": {"task": "claims_server.statements.reap_stalled_runs", "schedule": 60.0},
}


def configure_celery(settings: Settings | None = None) -> Celery:
    """Apply settings to the shared Celery app (idempotent)."""
    s = settings or load_settings()
    BEAT_SCHEDULE["audit-checkpoint"]["schedule"] = float(s.AUDIT_CHECKPOINT_SECONDS)
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
        timezone="UTC",
        enable_utc=True,
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=False,
        beat_schedule=BEAT_SCHEDULE,
    )
    celery_app.conf.claims_settings = s
    return celery_app
