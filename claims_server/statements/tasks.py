"""Celery tasks of a statement run: ids in, counts out (never patient data on the broker)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from claims_server.db import make_engine, make_session_factory
from claims_server.security.principal import acting_as, system_principal
from claims_server.tasks.celery_app import celery_app

_factories: dict[str, sessionmaker[Session]] = {}


def _session_factory() -> sessionmaker[Session]:
    url = celery_app.conf.claims_settings.database_url
    factory = _factories.get(url)
    if factory is None:
        factory = _factories[url] = make_session_factory(make_engine(url))
    return factory


@celery_app.task(
    name="claims_server.statements.run_chunk",
    # A deadlock or a lost connection rolls the chunk back whole; the chunk is idempotent, so
    # it is simply run again (without this the run would never reach done).
    autoretry_for=(OperationalError,),
    retry_backoff=1,
    retry_jitter=True,
    max_retries=5,
)
def run_chunk_task(run_id: int, first_patient_id: int, last_patient_id: int) -> dict[str, Any]:
    """Statements of the run's candidates with ids in [first, last]; one transaction, safe to redeliver."""
    from claims_server.portal.urls import pay_page_url
    from claims_server.statements.services import mark_run_started, process_run_chunk, rules_from_settings

    settings = celery_app.conf.claims_settings
    rules = rules_from_settings(settings)
    with acting_as(system_principal("task:statement-run")), _session_factory()() as session:
        mark_run_started(session, run_id)
        session.commit()
        outcome = process_run_chunk(
            session, run_id, first_patient_id, last_patient_id, rules, pay_url=pay_page_url(settings)
        )
        session.commit()
    return {
        "considered": outcome.considered,
        "issued": outcome.issued,
        "skipped": outcome.skipped,
        "held": outcome.held,
        "failed": outcome.failed,
    }


def enqueue_run(run_id: int, chunks: list[tuple[int, int]], *, queue: str | None = None) -> int:
    """Send one task per chunk (eagerly run in-process when no broker is configured); returns how many."""
    options = {"queue": queue} if queue else {}
    for first, last in chunks:
        run_chunk_task.apply_async((run_id, first, last), **options)
    return len(chunks)
