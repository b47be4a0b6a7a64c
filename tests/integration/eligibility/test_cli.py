"""``claims-server eligibility check-tomorrow`` and ``poll`` against the test database."""

from __future__ import annotations

import json
from datetime import date, timedelta

from sqlalchemy import select

from claims_server.models import EligibilityCheck, Encounter, Provider
from claims_server.models.eligibility import EligibilityStatus
from claims_server.simulator.service import run_once
from tests.integration.test_cli import run_cli


def test_check_tomorrow_then_poll(session, database_url, ids, folder_route, self_coverage, tmp_path):
    rendering = session.scalar(select(Provider).where(Provider.public_id == ids["rendering_id"]))
    session.add(
        Encounter(
            patient_id=self_coverage.patient_id,
            rendering_provider_id=rendering.id,
            date_of_service=date.today() + timedelta(days=1),
            place_of_service="11",
        )
    )
    session.commit()
    env = {"DATABASE_URL": database_url, "INSTANCE_PATH": str(tmp_path / "instance")}
    sent = run_cli("eligibility", "check-tomorrow", env=env)
    assert sent.returncode == 0, sent.stderr
    assert json.loads(sent.stdout)["checks"] == 1
    run_once(folder_route.settings["outbox"], folder_route.settings["inbox"])
    polled = run_cli("eligibility", "poll", str(folder_route.id), env=env)
    assert polled.returncode == 0, polled.stderr
    assert json.loads(polled.stdout) == {"route_id": folder_route.id, "files": 1, "matched_checks": 1}
    session.expire_all()
    assert session.scalar(select(EligibilityCheck)).status is EligibilityStatus.ACTIVE
