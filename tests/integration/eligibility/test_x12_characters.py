"""An eligibility check for a patient named "Zoë" (issue 15, finding 3: a 500 in the 270's ASCII encode).

The 270 writer converts names to the X12 character set (edi.charset: Zoë -> Zoe), so
the check is sent like any other, through the API and ``eligibility check-tomorrow``.
"""

from __future__ import annotations

import json
from datetime import date, timedelta

from sqlalchemy import select

from claims_server.models import EdiFile, EligibilityCheck, Encounter, Provider
from claims_server.models.eligibility import EligibilityStatus
from claims_server.simulator.service import run_once
from edi.reader import read_text
from tests.integration.test_cli import run_cli

DOS = date.today() + timedelta(days=1)


def _rename(api_client, session, coverage) -> None:
    client = api_client("biller")
    patient = coverage.patient.public_id
    answer = client.patch(f"/api/v1/patients/{patient}", json={"first_name": "Zoë", "last_name": "Nuñez"})
    assert answer.status_code == 200, answer.get_json()
    session.expire_all()


def _request_names(session, check: EligibilityCheck) -> set[tuple[str, str]]:
    request = session.get(EdiFile, check.request_file_id)
    content = bytes(request.content)
    assert content.isascii()
    return {(s.get(3), s.get(4)) for s in read_text(content.decode()) if s.id == "NM1" and s.get(1) == "IL"}


def test_realtime_check_for_zoe_is_sent(api_client, session, realtime_route, self_coverage, core_server):
    self_coverage.member_id = "ACM000000001"
    session.commit()
    _rename(api_client, session, self_coverage)
    answer = api_client("biller").post(
        "/api/v1/eligibility/checks",
        json={"coverage": self_coverage.public_id, "service_date": DOS.isoformat()},
    )
    assert answer.status_code == 201, answer.get_json()
    assert answer.get_json()["status"] == "active" and core_server.requests == 1
    session.expire_all()
    check = session.scalar(select(EligibilityCheck))
    assert _request_names(session, check) == {("Nunez", "Zoe")}


def test_check_tomorrow_for_zoe(
    api_client, session, database_url, ids, folder_route, self_coverage, tmp_path
):
    _rename(api_client, session, self_coverage)
    rendering = session.scalar(select(Provider).where(Provider.public_id == ids["rendering_id"]))
    session.add(
        Encounter(
            patient_id=self_coverage.patient_id,
            rendering_provider_id=rendering.id,
            date_of_service=DOS,
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
    session.expire_all()
    check = session.scalar(select(EligibilityCheck))
    assert check.status is EligibilityStatus.ACTIVE
    assert _request_names(session, check) == {("Nunez", "Zoe")}
