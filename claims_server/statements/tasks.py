"""Celery tasks of a statement run: ids in, counts out (never patient data on the broker).

``reap_stalled_runs`` (beat, every minute) queues again the chunks of a run that has not
moved for ``STATEMENT_CHUNK_LEASE_SECONDS``: a worker killed mid-chunk leaves its message
unacknowledged until the broker's visibility timeout (an hour), so without it the run
would stay "running" that long (``statements.services.reap_stalled_run``).
"""

from __future__ import annotations

import logging
from datetime import date
from typing import Any

from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from claims_server.db import make_engine, make_session_factory
from claims_server.security.principal import acting_as, system_principal
from claims_server.tasks.celery_app import celery_app

log = logging.getLogger(__name__)
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


@celery_app.task(name="claims_server.statements.run_cycle")
def run_cycle_task(as_of: str | None = None) -> dict[str, Any]:
    """The scheduled statement cycle (``STATEMENT_CYCLE``): a statement run as of ``as_of`` (ISO
    date; default today), as ``POST /api/v1/statements/runs`` starts one. The cycle rules decide
    who gets a statement, so running it every day sends each patient one per cycle at most."""
    from claims_server.statements.services import start_statement_run

    settings = celery_app.conf.claims_settings
    day = date.fromisoformat(as_of) if as_of else date.today()
    factory = _session_factory()
    with acting_as(system_principal("task:statement-cycle")):
        with factory() as session:
            run, chunks = start_statement_run(session, day, chunk_size=settings.STATEMENT_RUN_CHUNK_SIZE)
            # Chunk tasks read the run row: it is committed before the first one is queued.
            session.commit()
            run_id, public_id, total = run.id, run.public_id, run.total
        enqueue_run(run_id, chunks)
    return {"run": public_id, "as_of": day.isoformat(), "patients": total, "chunks": len(chunks)}


def enqueue_run(run_id: int, chunks: list[tuple[int, int]], *, queue: str | None = None) -> int:
    """Send one task per chunk (eagerly run in-process when no broker is configured); returns how many."""
    options = {"queue": queue} if queue else {}
    for first, last in chunks:
        run_chunk_task.apply_async((run_id, first, last), **options)
    return len(chunks)


def requeue_stalled_runs(
    factory: sessionmaker[Session],
    settings: Any,
    *,
    queue: str | None = None,
    run_id: int | None = None,
    lease_seconds: int | None = None,
) -> int:
    """Queue again the chunks of every stalled run (or of ``run_id``); returns how many chunks.

    ``lease_seconds`` defaults to ``STATEMENT_CHUNK_LEASE_SECONDS``; 0 (an operator's
    ``statements status RUN --resume``) queues every chunk not done and not in progress now.
    """
    from claims_server.models.common import utcnow
    from claims_server.models.statements import StatementRun
    from claims_server.statements.services import reap_stalled_run, stalled_runs

    lease = settings.STATEMENT_CHUNK_LEASE_SECONDS if lease_seconds is None else lease_seconds
    now = utcnow()
    plans: list[tuple[int, list[tuple[int, int]]]] = []
    with acting_as(system_principal("task:statement-reaper")), factory() as session:
        if run_id is not None:
            found = session.get(StatementRun, run_id)
            runs = [found] if found is not None else []
        else:
            runs = stalled_runs(session, lease_seconds=lease, now=now)
        for run in runs:
            chunks = reap_stalled_run(
                session, run, lease_seconds=lease, now=now, chunk_size=settings.STATEMENT_RUN_CHUNK_SIZE
            )
            if chunks:
                plans.append((run.id, chunks))
        session.commit()
    for stalled_id, chunks in plans:
        log.warning(
            "statement run stalled: queuing its chunks again",
            extra={"run_id": stalled_id, "chunks": len(chunks)},
        )
        enqueue_run(stalled_id, chunks, queue=queue)
    return sum(len(chunks) for _, chunks in plans)


@celery_app.task(name="claims_server.statements.reap_stalled_runs", bind=True)
def reap_stalled_runs_task(self: Any) -> dict[str, int]:
    """Beat: requeue the chunks of stalled runs on the queue this task came from."""
    queue = (self.request.delivery_info or {}).get("routing_key") or None
    requeued = requeue_stalled_runs(_session_factory(), celery_app.conf.claims_settings, queue=queue)
    return {"requeued": requeued}
