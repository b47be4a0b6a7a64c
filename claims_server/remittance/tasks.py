"""Celery task: post a stored 835 by id (task arguments are ids only, never content)."""

from __future__ import annotations

from typing import Any

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


@celery_app.task(name="claims_server.remittance.post_remittance")
def post_remittance_task(edi_file_id: int, dry_run: bool = False) -> dict[str, Any]:
    """Post EDI file ``edi_file_id``; returns the report's summary (counts, no PHI).

    Safe to run twice (or after a worker died mid-file): the posting is one transaction
    and a second run finds the payment posted and reports a duplicate.
    """
    from claims_server.remittance.services import run_posting

    with acting_as(system_principal("task:remittance-post")):
        report = run_posting(_session_factory(), edi_file_id, dry_run=dry_run)
    return {"edi_file": report.edi_file_public_id, **report.summary(), "error": report.error}
