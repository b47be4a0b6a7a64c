"""Celery task: sweep the computed work queues (arguments are plain values, never objects)."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from claims_server.db import make_engine, make_session_factory, unit_of_work
from claims_server.security.principal import acting_as, system_principal
from claims_server.tasks.celery_app import celery_app

_factories: dict[str, sessionmaker[Session]] = {}


def _session_factory() -> sessionmaker[Session]:
    url = celery_app.conf.claims_settings.database_url
    factory = _factories.get(url)
    if factory is None:
        factory = _factories[url] = make_session_factory(make_engine(url))
    return factory


@celery_app.task(name="claims_server.workqueue.sweep")
def sweep_task(as_of: str | None = None, unpaid_days: int = 30) -> dict[str, Any]:
    """Run the sweeps in one transaction; safe to repeat (a second run changes nothing)."""
    from claims_server.workqueue.services import sweep

    day = date.fromisoformat(as_of) if as_of else date.today()
    with acting_as(system_principal("task:workqueue-sweep")), unit_of_work(_session_factory()) as session:
        result = sweep(session, as_of=day, unpaid_days=unpaid_days)
    return {"as_of": day.isoformat(), "opened": result.opened, "resolved": result.resolved}
