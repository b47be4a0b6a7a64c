"""Celery task: send every ready claim on every route (the scheduled daily send); counts back.

No arguments: it takes the claims that are ready when it runs. With a broker each batch
built is queued as its own ``claims_server.clearinghouse.send_batch`` task (retried with
backoff); in-process, the batches are uploaded before it returns.
"""

from __future__ import annotations

from typing import Any

from claims_server.clearinghouse.tasks import session_factory
from claims_server.security.principal import acting_as, system_principal
from claims_server.submission.sending import send_ready_claims
from claims_server.tasks.celery_app import celery_app

SEND_READY_TASK = "claims_server.submission.send_ready"


@celery_app.task(name=SEND_READY_TASK)
def send_ready() -> dict[str, Any]:
    """Batch and send all ready claims; safe to repeat (a second run finds nothing ready)."""
    with acting_as(system_principal("task:send-ready")):
        report = send_ready_claims(session_factory())
    states: dict[str, int] = {}
    for batch in report.batches:
        states[batch.state] = states.get(batch.state, 0) + 1
    return {
        "batches": len(report.batches),
        "claims_batched": report.claims_batched,
        "held": len(report.held),
        "unrouted_claims": report.unrouted_claims,
        "batch_states": states,
    }
