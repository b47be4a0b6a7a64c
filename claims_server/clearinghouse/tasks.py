"""Celery tasks of the clearinghouse connection: send a batch, poll an inbox (ids only).

``send_batch(batch_id)`` retries a failed upload with exponential backoff
(:func:`backoff_seconds`); the batch is recorded ``failed`` between attempts and only
``sent`` after a confirmed upload. With ``task_acks_late`` a worker killed mid-upload
leaves the message unacknowledged, so the broker hands it to the next worker, which
resumes the same batch (the service is idempotent). ``poll_all_inboxes`` runs on the
beat schedule and fans out one ``poll_inbox(route_id)`` per active route;
``resume_unsent_batches`` re-queues batches whose task was lost altogether.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from claims_server.clearinghouse import services
from claims_server.clearinghouse.transport import TransportError
from claims_server.db import make_engine, make_session_factory
from claims_server.models import ClearinghouseRoute
from claims_server.models.common import utcnow
from claims_server.security.principal import acting_as, system_principal
from claims_server.tasks.celery_app import celery_app

#: Upload retries before the batch stays ``failed`` for an operator (about 4 hours in all).
MAX_SEND_RETRIES = 8
BACKOFF_BASE_SECONDS = 30
BACKOFF_CAP_SECONDS = 3600
RESUME_AFTER = timedelta(minutes=15)

_factories: dict[str, sessionmaker[Session]] = {}


def session_factory() -> sessionmaker[Session]:
    """One engine per worker process and database URL."""
    url = celery_app.conf.claims_settings.database_url
    factory = _factories.get(url)
    if factory is None:
        factory = _factories[url] = make_session_factory(make_engine(url))
    return factory


def instance_path() -> str:
    return celery_app.conf.claims_settings.INSTANCE_PATH


def backoff_seconds(retries: int, base: int = BACKOFF_BASE_SECONDS) -> int:
    """Delay before retry number ``retries + 1``: base * 2^retries, at most an hour."""
    return min(base * 2**retries, BACKOFF_CAP_SECONDS)


def _transport_factory(route: ClearinghouseRoute) -> Any:
    return services.route_transport(route, instance_path())


@celery_app.task(name="claims_server.clearinghouse.send_batch", bind=True, max_retries=MAX_SEND_RETRIES)
def send_batch(self: Any, batch_id: int) -> dict[str, Any]:
    """Upload batch ``batch_id``; retried with backoff while the transport fails."""
    factory = session_factory()
    with acting_as(system_principal("task:send-batch")):
        try:
            result = services.send_batch(factory, batch_id, transport_factory=_transport_factory)
        except TransportError as exc:
            with factory() as session:
                batch = session.get(services.SubmissionBatch, batch_id)
                base = int((batch.route.settings or {}).get("retry_base_seconds", BACKOFF_BASE_SECONDS))
            raise self.retry(exc=exc, countdown=backoff_seconds(self.request.retries, base)) from None
    return {"batch_id": result.batch_id, "state": result.state, "uploaded": result.uploaded}


@celery_app.task(name="claims_server.clearinghouse.poll_inbox")
def poll_inbox(route_id: int) -> dict[str, Any]:
    """Fetch, store and process every file waiting in the route's inbox."""
    with acting_as(system_principal("task:poll-inbox")):
        result = services.poll_inbox(session_factory(), route_id, transport_factory=_transport_factory)
    return result.to_json_dict()


@celery_app.task(name="claims_server.clearinghouse.poll_all_inboxes")
def poll_all_inboxes() -> list[int]:
    """Queue one ``poll_inbox`` per active route (the beat schedule runs this)."""
    with session_factory()() as session:
        route_ids = list(session.scalars(select(ClearinghouseRoute.id).where(ClearinghouseRoute.active)))
    for route_id in route_ids:
        poll_inbox.delay(route_id)
    return route_ids


@celery_app.task(name="claims_server.clearinghouse.resume_unsent_batches")
def resume_unsent_batches() -> list[int]:
    """Re-queue ``send_batch`` for batches left built, sending or failed for a while."""
    with session_factory()() as session:
        batch_ids = services.batches_to_resume(session, older_than=utcnow() - RESUME_AFTER)
    for batch_id in batch_ids:
        send_batch.delay(batch_id)
    return batch_ids
