"""With a broker, sending queues one ``send_batch`` task per batch and a real worker uploads it."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import pytest

from claims_server.app import state
from claims_server.models import SubmissionBatch
from claims_server.models.submissions import BatchState
from claims_server.security.principal import acting_as, system_principal
from claims_server.submission.sending import send_ready_claims
from claims_server.tasks.celery_app import celery_app, configure_celery

pytestmark = [pytest.mark.redis, pytest.mark.worker]


@pytest.fixture
def broker_mode(app, celery_worker_process):
    """This process publishes to the test worker's private queue through Redis, then goes back to eager."""
    settings = state(app).settings
    configure_celery(dataclasses.replace(settings, CELERY_BROKER_URL=celery_worker_process["broker_url"]))
    celery_app.conf.task_default_queue = celery_worker_process["queue"]
    try:
        yield
    finally:
        celery_app.conf.task_default_queue = "celery"
        configure_celery(settings)
        # Drop the Redis connections the publish cached, so later tests start from eager again.
        celery_app.amqp._producer_pool = None
        celery_app._pool = None


def test_each_batch_is_queued_and_the_worker_sends_it(
    app, session, factory, folder_route, make_claims, broker_mode
):
    make_claims(2)
    with acting_as(system_principal("test:send")):
        report = send_ready_claims(factory)
    [batch] = report.batches
    assert batch.state == "built" and batch.claims == 2  # queued, not yet uploaded
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        session.expire_all()
        row = session.get(SubmissionBatch, batch.row_id)
        if row.state is BatchState.SENT:
            break
        time.sleep(0.2)
    assert row.state is BatchState.SENT and row.attempt_count == 1
    assert len(list(Path(folder_route.settings["outbox"]).glob("*.x12"))) == 1
