"""The scheduled purge of expired PHI copies (``claims_server.retention``): no arguments, counts back."""

from __future__ import annotations

from typing import Any

from claims_server.models.common import utcnow
from claims_server.security.principal import acting_as, system_principal
from claims_server.tasks.celery_app import celery_app


@celery_app.task(name="claims_server.maintenance.purge")
def purge_task() -> dict[str, Any]:
    """Run the retention purge with the worker's settings (folders under its INSTANCE_PATH)."""
    from claims_server.clearinghouse.tasks import session_factory
    from claims_server.retention import purge

    settings = celery_app.conf.claims_settings
    with acting_as(system_principal("task:maintenance-purge")), session_factory()() as session:
        report = purge(session, settings, utcnow())
        session.commit()
    return report.to_json_dict()
