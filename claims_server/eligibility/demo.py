"""The demo's eligibility step: tomorrow's patients checked in one batch over the folder link.

Schedules an encounter tomorrow for the first four seeded patients (once), queues their
checks (``queue_tomorrow``), uploads the 270 to the demo clearinghouse folder, lets the
simulated payer answer it, and reads the 271s back. Only the 270 it wrote is answered,
so the billing day's 837 files are left exactly as the earlier steps left them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from claims_server.claims.encounters import EncounterSchema, create_encounter
from claims_server.clearinghouse.services import route_transport
from claims_server.db import unit_of_work
from claims_server.eligibility import services
from claims_server.models import ClearinghouseRoute, EligibilityCheck, Encounter, Patient, Provider
from claims_server.security.principal import acting_as, system_principal
from claims_server.simulator.eligibility import answer_270_file

PATIENTS = 4


@dataclass
class EligibilityDay:
    checks: int = 0
    files: list[str] = field(default_factory=list)
    statuses: dict[str, int] = field(default_factory=dict)

    def lines(self) -> list[str]:
        found = ", ".join(f"{n} {status}" for status, n in sorted(self.statuses.items())) or "none"
        return [
            f"eligibility checks for tomorrow's patients: {self.checks} in {len(self.files)} batch file(s)",
            f"answers (271): {found}",
        ]

    def to_json_dict(self) -> dict[str, Any]:
        return {"checks": self.checks, "files": self.files, "statuses": self.statuses}


def _schedule(session: Session, day: date) -> None:
    if session.scalar(select(Encounter.id).where(Encounter.date_of_service == day)) is not None:
        return
    rendering = session.scalar(select(Provider).where(Provider.is_rendering).order_by(Provider.id))
    for patient in session.scalars(select(Patient).order_by(Patient.id).limit(PATIENTS)):
        # Booked as the front desk or the EHR books it (POST /api/v1/patients/{id}/encounters).
        create_encounter(
            session,
            patient,
            EncounterSchema().load(
                {"date_of_service": day.isoformat(), "rendering_provider": rendering.public_id}
            ),
        )


def run_eligibility_day(
    factory: sessionmaker[Session], out_dir: Path, *, today: date | None = None
) -> EligibilityDay:
    """Check tomorrow's patients through the demo route's folders under ``out_dir``."""
    today = today or date.today()
    result = EligibilityDay()
    with acting_as(system_principal("cli:demo")):
        with unit_of_work(factory) as session:
            _schedule(session, today + timedelta(days=1))
        with unit_of_work(factory) as session:
            check_ids = services.queue_tomorrow(session, today)
        result.checks = len(check_ids)

        def transport(route: ClearinghouseRoute) -> Any:
            return route_transport(route, out_dir)

        result.files = services.upload_batch(factory, check_ids, transport_factory=transport)
        route_ids: set[int] = set()
        with unit_of_work(factory) as session:
            for check_id in check_ids:
                route = services.route_of(session.get(EligibilityCheck, check_id).coverage)
                route_ids.add(route.id)
                outbox = out_dir / str(route.settings.get("outbox", "edi/outbox"))
                inbox = out_dir / str(route.settings.get("inbox", "edi/inbox"))
                for name in result.files:
                    if (outbox / name).is_file():
                        answer_270_file((outbox / name).read_bytes(), name, inbox)
                        (outbox / name).unlink()
        for route_id in sorted(route_ids):
            services.poll_answers(factory, route_id, transport_factory=transport)
        with unit_of_work(factory) as session:
            for check_id in check_ids:
                check = session.get(EligibilityCheck, check_id)
                result.statuses[check.status.value] = result.statuses.get(check.status.value, 0) + 1
    return result
