"""Celery tasks of eligibility (ids and ISO dates only cross the broker).

``check_tomorrow`` (beat, nightly) creates a batch check for every patient with an
encounter tomorrow and uploads the 270 interchange over each route's clearinghouse
link; ``poll_answers`` (beat) records the 271s that came back; ``run_check`` sends
one real-time check and, while the payer times out, retries on the plan's schedule
(1, 5, 15, 60 minutes).
"""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import select

from claims_server.clearinghouse.tasks import instance_path, session_factory
from claims_server.clearinghouse.transport import TransportError
from claims_server.db import unit_of_work
from claims_server.eligibility import services
from claims_server.models import ClearinghouseRoute, EligibilityCheck
from claims_server.models.eligibility import EligibilityStatus
from claims_server.security.principal import acting_as, system_principal
from claims_server.tasks.celery_app import celery_app


def _transport(route: ClearinghouseRoute) -> Any:
    return services.route_transport(route, instance_path())


@celery_app.task(name="claims_server.eligibility.check_tomorrow")
def check_tomorrow(today: str | None = None) -> dict[str, Any]:
    """Batch-check tomorrow's scheduled patients (``today`` ISO date; default: the worker's today)."""
    day = date.fromisoformat(today) if today else date.today()
    factory = session_factory()
    with acting_as(system_principal("task:eligibility-tomorrow")):
        with unit_of_work(factory) as session:
            check_ids = services.queue_tomorrow(session, day)
        uploaded = services.upload_batch(factory, check_ids, transport_factory=_transport)
    return {"checks": len(check_ids), "files": uploaded}


@celery_app.task(name="claims_server.eligibility.poll_answers")
def poll_answers() -> dict[str, Any]:
    """Record the 271s waiting in every active route's inbox."""
    factory = session_factory()
    totals = {"files": 0, "matched_checks": 0, "unreachable_routes": 0}
    with factory() as session:
        route_ids = list(session.scalars(select(ClearinghouseRoute.id).where(ClearinghouseRoute.active)))
    with acting_as(system_principal("task:eligibility-poll")):
        for route_id in route_ids:
            try:
                outcome = services.poll_answers(factory, route_id, transport_factory=_transport)
            except TransportError:
                # One unreachable clearinghouse must not keep the other routes' answers waiting;
                # the next beat polls it again.
                totals["unreachable_routes"] += 1
                continue
            totals["files"] += outcome["files"]
            totals["matched_checks"] += outcome["matched_checks"]
    return totals


@celery_app.task(name="claims_server.eligibility.run_check", bind=True, max_retries=4)
def run_check(self: Any, check_id: int) -> str:
    """Send one real-time check; a timeout is retried when its stored plan says so."""
    factory = session_factory()
    with acting_as(system_principal("task:eligibility-check")):
        status = services.run_realtime(factory, check_id)
        if status is EligibilityStatus.TIMEOUT:
            with factory() as session:
                check = session.get(EligibilityCheck, check_id)
                retry = (check.error or {}).get("retry") or {}
            if retry.get("retry"):
                raise self.retry(countdown=int(retry.get("after_seconds") or 60))
    return status.value
