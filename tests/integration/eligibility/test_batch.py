"""Batch eligibility: tomorrow's scheduled patients in one 270 over SFTP, 271s polled back."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

from sqlalchemy import select

from claims_server.clearinghouse.services import route_transport
from claims_server.db import unit_of_work
from claims_server.eligibility import services
from claims_server.eligibility.tasks import check_tomorrow, poll_answers
from claims_server.models import Coverage, EdiFile, EligibilityCheck, Encounter, Provider
from claims_server.models.eligibility import EligibilityStatus
from claims_server.simulator.service import run_once
from edi.validate import validate
from edi.x270 import parse_270

TODAY = date.today()
TOMORROW = TODAY + timedelta(days=1)


def _schedule(session, ids, coverages: list[Coverage], day: date) -> None:
    rendering = session.scalar(select(Provider).where(Provider.public_id == ids["rendering_id"]))
    for coverage in coverages:
        session.add(
            Encounter(
                patient_id=coverage.patient_id,
                rendering_provider_id=rendering.id,
                date_of_service=day,
                place_of_service="11",
            )
        )
    session.commit()


def test_tomorrows_patients_over_sftp(
    session, factory, ids, sftp_route, sftp_server, self_coverage, dependent_coverage, tmp_path
):
    _schedule(session, ids, [self_coverage, dependent_coverage], TOMORROW)
    _schedule(session, ids, [self_coverage], TOMORROW + timedelta(days=3))  # not tomorrow: not checked
    with unit_of_work(factory) as s:
        check_ids = services.queue_tomorrow(s, TODAY)
    assert len(check_ids) == 2

    def transport(route):
        return route_transport(route, tmp_path)

    uploaded = services.upload_batch(factory, check_ids, transport_factory=transport)
    assert len(uploaded) == 1
    sent = sftp_server.outbound / uploaded[0]
    report = validate(sent.read_bytes())
    assert report.valid and [ts.st01 for ts in report.transaction_sets] == ["270", "270"]
    inquiries = parse_270(sent.read_bytes()).inquiries
    assert {i.service_date for i in inquiries} == {TOMORROW}
    assert sum(1 for i in inquiries if i.dependent is not None) == 1
    session.expire_all()
    assert {c.status for c in session.scalars(select(EligibilityCheck))} == {EligibilityStatus.SENT}

    answered = run_once(sftp_server.outbound, sftp_server.inbound)
    assert [a["answer"] for a in answered.answered] == ["271"]
    assert (sftp_server.outbound / "eligibility-answered" / uploaded[0]).is_file()

    outcome = services.poll_answers(factory, sftp_route.id, transport_factory=transport)
    assert outcome == {"files": 1, "matched_checks": 2}
    assert list(sftp_server.inbound.iterdir()) == []
    session.expire_all()
    checks = session.scalars(select(EligibilityCheck).order_by(EligibilityCheck.id)).all()
    assert [c.status for c in checks] == [EligibilityStatus.ACTIVE, EligibilityStatus.ACTIVE]
    assert all(c.benefits_summary["service_date"] == TOMORROW.isoformat() for c in checks)
    assert checks[0].response_file_id == checks[1].response_file_id  # one 271 file answered both

    # Checked recently: the nightly job does not ask again.
    with unit_of_work(factory) as s:
        assert services.queue_tomorrow(s, TODAY) == []


def test_the_celery_jobs_run_the_same_batch(session, ids, folder_route, self_coverage, app):
    _schedule(session, ids, [self_coverage], TOMORROW)
    outbox = Path(folder_route.settings["outbox"])
    inbox = Path(folder_route.settings["inbox"])
    result = check_tomorrow.delay(TODAY.isoformat()).get()
    assert result["checks"] == 1 and len(result["files"]) == 1 and (outbox / result["files"][0]).is_file()
    run_once(outbox, inbox)
    assert poll_answers.delay().get() == {"files": 1, "matched_checks": 1, "unreachable_routes": 0}
    session.expire_all()
    check = session.scalar(select(EligibilityCheck))
    assert check.status is EligibilityStatus.ACTIVE
    assert session.get(EdiFile, check.response_file_id).route_id == folder_route.id


def test_a_failed_upload_leaves_a_retry_plan(
    session, factory, ids, sftp_route, sftp_server, self_coverage, tmp_path
):
    _schedule(session, ids, [self_coverage], TOMORROW)
    with unit_of_work(factory) as s:
        check_ids = services.queue_tomorrow(s, TODAY)
    sftp_server.refuse_logins.set()
    uploaded = services.upload_batch(
        factory, check_ids, transport_factory=lambda r: route_transport(r, tmp_path)
    )
    assert uploaded == []
    session.expire_all()
    check = session.get(EligibilityCheck, check_ids[0])
    assert check.status is EligibilityStatus.ERROR and check.error["kind"] == "connection"
    assert check.error["retry"]["retry"] is True


def test_batch_mode_through_the_api(api_client, session, factory, folder_route, self_coverage):
    client = api_client("biller")
    answer = client.post(
        "/api/v1/eligibility/checks",
        json={"coverage": self_coverage.public_id, "service_date": TOMORROW.isoformat(), "mode": "batch"},
    )
    assert answer.status_code == 201, answer.get_json()
    data = answer.get_json()
    assert data["status"] == "sent" and data["summary"] is None and data["error"] is None
    outbox, inbox = Path(folder_route.settings["outbox"]), Path(folder_route.settings["inbox"])
    (sent,) = [p for p in outbox.iterdir() if p.is_file()]
    session.expire_all()
    request = session.get(EdiFile, session.scalar(select(EligibilityCheck)).request_file_id)
    assert request.stored_name == sent.name and request.status.value == "processed"
    run_once(outbox, inbox)
    assert (
        services.poll_answers(factory, folder_route.id, transport_factory=lambda r: route_transport(r, "/"))[
            "matched_checks"
        ]
        == 1
    )
    assert client.get(f"/api/v1/eligibility/checks/{data['id']}").get_json()["status"] == "active"
