"""Real-time checks over HTTP (CAQH CORE envelope) against a local endpoint, through the API."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest
from celery.exceptions import Retry
from sqlalchemy import select

from claims_server.db import unit_of_work
from claims_server.eligibility import services
from claims_server.eligibility.tasks import run_check
from claims_server.models import AuditEvent, EdiFile, EdiFileKind, EligibilityCheck, FileDirection
from edi.x270 import Envelope, generate_270
from eligibility.request import CoverageFacts, PersonFacts, ProviderFacts, build_inquiry
from eligibility.transport import (
    REQUEST_PAYLOAD_TYPE,
    RESPONSE_PAYLOAD_TYPE,
    RealTimeClient,
    TransportFailure,
)

DOS = date.today() + timedelta(days=1)


def _request(client, coverage, **extra):
    body = {"coverage": coverage.public_id, "service_date": DOS.isoformat(), **extra}
    return client.post("/api/v1/eligibility/checks", json=body)


def _set_member(session, coverage, member_id: str) -> None:
    coverage.member_id = member_id
    session.commit()


def test_active_check_summary_and_estimate(api_client, session, realtime_route, self_coverage, core_server):
    _set_member(session, self_coverage, "ACM000000001")
    client = api_client("biller")
    answer = _request(client, self_coverage, service_types=["98"])
    assert answer.status_code == 201, answer.get_json()
    data = answer.get_json()
    assert data["status"] == "active" and data["error"] is None and core_server.requests == 1
    summary = data["summary"]
    assert summary["status"] == "active" and summary["service_date"] == DOS.isoformat()
    general = summary["services"][0]
    assert general["service_type"] == "30"
    # The seeded self-insured patient is on Demo Medicare Part B: $257.00 deductible, $150.00 met.
    assert self_coverage.payer.payer_id == "DEMOMCRB"
    expected = ("257.00", "150.00", "107.00")
    ind = next(d for d in general["deductibles"] if d["level"] == "individual")
    assert (ind["total"], ind["met"], ind["remaining"]) == expected
    assert "ACM000000001" not in answer.get_data(as_text=True)  # no member id in the API answer

    check_id = data["id"]
    assert client.get(f"/api/v1/eligibility/checks/{check_id}/summary").get_json() == summary
    estimate = client.post(
        f"/api/v1/eligibility/checks/{check_id}/estimate",
        json={"services": [{"procedure": "99214"}], "fee_schedule": {"99214": "600.00"}},
    )
    assert estimate.status_code == 200, estimate.get_json()
    # Allowed $600.00: $107.00 to the deductible, 20 % of $493.00 = $98.60 -> patient $205.60.
    assert (estimate.get_json()["patient"], estimate.get_json()["payer"]) == ("205.60", "394.40")
    session.expire_all()
    row = session.scalar(select(EligibilityCheck).where(EligibilityCheck.public_id == check_id))
    kinds = {session.get(EdiFile, i).kind for i in (row.request_file_id, row.response_file_id)}
    assert kinds == {EdiFileKind.ELIGIBILITY_270, EdiFileKind.ELIGIBILITY_271}
    events = {
        e.event_type for e in session.scalars(select(AuditEvent).where(AuditEvent.entity_id == check_id))
    }
    assert {
        "eligibility.request",
        "eligibility.result",
        "eligibility.summary",
        "eligibility.estimate",
    } <= events


def test_dependent_check(api_client, session, realtime_route, dependent_coverage):
    answer = _request(api_client("biller"), dependent_coverage)
    assert answer.status_code == 201 and answer.get_json()["status"] == "active"


def test_not_found_is_stored_with_a_correction_plan(api_client, session, realtime_route, self_coverage):
    _set_member(session, self_coverage, "ELGNF000001")
    data = _request(api_client("biller"), self_coverage).get_json()
    assert data["status"] == "error"
    assert data["error"]["kind"] == "not_found" and data["error"]["rejections"][0]["reason"] == "75"
    assert data["error"]["retry"] == {
        "retry": False,
        "after_seconds": None,
        "reason": "correct the request: subscriber/insured not found",
        "needs_correction": True,
    }


def test_timeout_is_a_stored_result_with_a_retry_plan(api_client, session, realtime_route, self_coverage):
    _set_member(session, self_coverage, "ELGSLOW00001")
    answer = _request(api_client("biller"), self_coverage)
    assert answer.status_code == 201
    data = answer.get_json()
    assert data["status"] == "timeout" and data["summary"] is None
    assert data["error"]["kind"] == "timeout" and data["error"]["attempt"] == 1
    assert data["error"]["retry"]["retry"] is True and data["error"]["retry"]["after_seconds"] == 60


def test_malformed_271_is_an_error_with_our_999(api_client, session, realtime_route, self_coverage):
    _set_member(session, self_coverage, "ELGBAD00001")
    data = _request(api_client("biller"), self_coverage).get_json()
    assert data["status"] == "error" and data["error"]["kind"] == "malformed_271"
    assert data["error"]["acknowledgment"] == "999" and data["error"]["retry"]["retry"] is True
    assert any(f["code"] == "X12.SEGMENT_UNEXPECTED" for f in data["error"]["findings"])
    acks = session.scalars(
        select(EdiFile).where(
            EdiFile.kind == EdiFileKind.ACK_999, EdiFile.direction == FileDirection.OUTBOUND
        )
    ).all()
    assert len(acks) == 1 and b"IK5*R" in bytes(acks[0].content)


def test_unreachable_endpoint_is_an_error_not_a_500(api_client, session, route, self_coverage):
    route.settings = {**(route.settings or {}), "eligibility_url": "http://127.0.0.1:9/core"}
    session.commit()
    answer = _request(api_client("biller"), self_coverage)
    assert answer.status_code == 201
    data = answer.get_json()
    assert (
        data["status"] == "error"
        and data["error"]["kind"] == "connection"
        and data["error"]["retry"]["retry"]
    )


def test_no_endpoint_configured_is_a_clear_422(api_client, session, route, self_coverage):
    route.settings = {k: v for k, v in (route.settings or {}).items() if k != "eligibility_url"}
    session.commit()
    answer = _request(api_client("biller"), self_coverage)
    assert answer.status_code == 422 and "eligibility_url" in answer.get_json()["detail"]
    assert session.scalar(select(EligibilityCheck.id)) is None  # nothing half-recorded


def test_access_policy(api_client, realtime_route, self_coverage):
    assert _request(api_client("auditor"), self_coverage).status_code == 403
    token = api_client("integration", scopes=["claims:write"])  # no token scope admits eligibility
    assert _request(token, self_coverage).status_code == 403


def test_core_client_speaks_the_envelope(core_server):
    inquiry = build_inquiry(
        CoverageFacts("ACME", "DEMOACME", "ACM000000002", PersonFacts("DOE", "JANE", date(1980, 1, 2), "F")),
        ProviderFacts("SYNTHETIC CLINIC", "1234567893"),
        trace_number="TRACECORE1",
        trace_originator="1987654321",
        service_date=DOS,
    )
    text = generate_270(
        [inquiry], Envelope("CLINIC01", "PAYER01", "CLINIC01", "PAYER01", 3, when=datetime(2026, 3, 2))
    )
    client = RealTimeClient(core_server.url, sender_id="CLINIC01", receiver_id="PAYER01", timeout=5)
    result = client.exchange(text)
    assert (
        result.request.payload_type == REQUEST_PAYLOAD_TYPE and result.request.processing_mode == "RealTime"
    )
    assert result.response.payload_type == RESPONSE_PAYLOAD_TYPE and result.is_271
    assert result.response.payload_id == result.request.payload_id
    assert (result.response.sender_id, result.response.receiver_id) == ("PAYER01", "CLINIC01")
    assert "TRN*2*TRACECORE1*1987654321" in result.response.payload
    try:
        client.exchange("not x12 at all")
    except TransportFailure as failure:
        assert failure.kind == "http" and failure.status == 400
    else:
        raise AssertionError("a payload that is not X12 must be refused")


def test_timeouts_are_retried_on_the_plan_then_given_up(session, realtime_route, self_coverage, factory):
    _set_member(session, self_coverage, "ELGSLOW00002")
    with unit_of_work(factory) as s:
        check_id = services.start_check(s, s.get(type(self_coverage), self_coverage.id), service_date=DOS).id
    # The task asks Celery to retry after the first planned delay (1 minute).
    with pytest.raises(Retry) as retry:
        run_check.delay(check_id).get()
    assert retry.value.when == 60
    # Each later attempt moves along the plan (5, 15, 60 minutes), then it gives up.
    waits = [services.run_realtime(factory, check_id) for _ in range(4)]
    assert [w.value for w in waits] == ["timeout"] * 4
    session.expire_all()
    check = session.get(EligibilityCheck, check_id)
    assert check.error["attempt"] == 5 and check.error["retry"]["retry"] is False
    assert check.status.value == "timeout"
