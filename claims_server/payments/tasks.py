"""Celery tasks of payments: the daily missed-installment check (no arguments, no patient data)."""

from __future__ import annotations

from datetime import date
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


@celery_app.task(name="claims_server.payments.check_plans")
def check_plans_task(as_of: str | None = None) -> dict[str, Any]:
    """Detect missed installments on every active plan as of ``as_of`` (ISO date; default today).

    Safe to redeliver: a second check for the same day opens no new work item or audit event.
    """
    from claims_server.payments.plans import check_payment_plans

    day = date.fromisoformat(as_of) if as_of else date.today()
    with acting_as(system_principal("task:payment-plans")), _session_factory()() as session:
        checks = check_payment_plans(session, day)
        session.commit()
        return {
            "as_of": day.isoformat(),
            "plans": len(checks),
            "newly_missed": sum(c.newly_missed for c in checks),
            "state_changes": sum(1 for c in checks if c.changed_state),
        }
