"""``/api/v1/batches``: send ready claims, list and read batches, download their files (audited);
errors as problem+json; who may; a broker that is down still gets a 201 naming every batch."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from claims_server.clearinghouse import services as clearinghouse
from claims_server.models import AuditEvent, Claim, ClaimState, SubmissionBatch
from claims_server.models.submissions import BatchState
from claims_server.simulator.service import run_once
from tests.integration.submission.conftest import broker_refusing
from tests.integration.submission.test_sending import _on_two_routes, held_claim


def _batches(session) -> int:
    session.expire_all()
    return session.scalar(select(func.count()).select_from(SubmissionBatch))


def test_send_list_and_read_a_batch(session, api_client, folder_route, make_claims):
    claims = make_claims(3)
    biller = api_client("biller")
    r = biller.post("/api/v1/batches", json={})
    assert r.status_code == 201, r.get_json()
    report = r.get_json()
    assert report["nothing_ready"] is False and report["dry_run"] is False
    [batch] = report["batches"]
    total = sum(c.total_charge_cents for c in claims)
    assert batch["claims"] == 3 and batch["state"] == "sent" and batch["route"] == folder_route.public_id
    assert batch["total_charge"] == f"{total // 100}.{total % 100:02d}"
    assert sum(p["claims"] for p in batch["per_payer"]) == 3

    listed = biller.get("/api/v1/batches").get_json()
    assert [b["id"] for b in listed["items"]] == [batch["id"]] and listed["next_cursor"] is None
    assert listed["items"][0]["attempts"] == 1 and listed["items"][0]["sent_at"]
    assert biller.get("/api/v1/batches?state=accepted").get_json()["items"] == []
    assert len(biller.get(f"/api/v1/batches?route={folder_route.public_id}").get_json()["items"]) == 1

    detail = biller.get(f"/api/v1/batches/{batch['id']}").get_json()
    assert detail["state"] == "sent" and detail["claims"] == 3 and detail["per_payer"] == batch["per_payer"]
    [sent] = detail["files"]
    assert (sent["kind"], sent["direction"], sent["status"]) == ("837P", "out", "processed")
    assert sent["download"] == f"/api/v1/batches/{batch['id']}/files/{sent['id']}"
    assert biller.get(sent["download"]).status_code == 200


def test_a_batch_file_is_downloaded_through_the_api_and_audited(
    session, api_client, folder_route, make_claims
):
    make_claims(2)
    biller = api_client("biller")
    batch_id = biller.post("/api/v1/batches", json={}).get_json()["batches"][0]["id"]
    [sent] = biller.get(f"/api/v1/batches/{batch_id}").get_json()["files"]
    r = api_client("auditor").get(sent["download"], headers={"X-Request-ID": "download-837-1"})
    assert r.status_code == 200 and r.mimetype == "application/edi-x12"
    assert r.get_data().startswith(b"ISA*") and b"~CLM*" in r.get_data()
    assert r.headers["Content-Disposition"] == f'attachment; filename="out-837P-{sent["id"]}.x12"'
    assert r.headers["Cache-Control"] == "no-store"
    session.expire_all()
    events = session.scalars(
        select(AuditEvent).where(AuditEvent.request_id == "download-837-1", AuditEvent.action == "R")
    ).all()
    downloads = [e for e in events if e.event_type == "edi_file.download"]
    assert [e.entity_id for e in downloads if e.entity_type == "edi_file"] == [sent["id"]]
    assert len([e for e in downloads if e.entity_type == "patient" and e.patient_id]) == 2  # two patients
    # Only the batch's own files, and only staff who may read batches.
    for path in (
        f"/api/v1/batches/{batch_id}/files/" + "0" * 32,
        "/api/v1/batches/" + "0" * 32 + f"/files/{sent['id']}",
    ):
        missing = biller.get(path)
        assert missing.status_code == 404 and missing.mimetype == "application/problem+json"
    assert api_client("integration").get(sent["download"]).status_code == 403
    doc = biller.get("/openapi.json").get_json()
    answer = doc["paths"]["/api/v1/batches/{batch_id}/files/{file_id}"]["get"]["responses"]
    assert list(answer["200"]["content"]) == ["application/edi-x12"] and "404" in answer


def test_a_file_of_another_batch_is_not_served_under_this_one(
    session, api_client, ids, folder_route, make_claims
):
    _on_two_routes(session, ids, make_claims)
    biller = api_client("biller")
    first, second = (b["id"] for b in biller.post("/api/v1/batches", json={}).get_json()["batches"])
    [file_of_second] = biller.get(f"/api/v1/batches/{second}").get_json()["files"]
    assert biller.get(f"/api/v1/batches/{first}/files/{file_of_second['id']}").status_code == 404
    assert biller.get(f"/api/v1/batches/{second}/files/{file_of_second['id']}").status_code == 200


def test_a_dry_run_is_200_and_changes_nothing(session, api_client, folder_route, ids, make_claims):
    make_claims(2)
    held = held_claim(session, ids)
    r = api_client("biller").post("/api/v1/batches", json={"dry_run": True})
    assert r.status_code == 200
    report = r.get_json()
    assert report["dry_run"] and report["batches"][0]["id"] is None and report["batches"][0]["claims"] == 2
    assert [h["claim"] for h in report["held"]] == [held.public_id] and report["held_count"] == 1
    assert _batches(session) == 0
    assert session.get(Claim, held.id).state is ClaimState.READY


def test_nothing_ready_is_200(session, api_client, ids):
    r = api_client("biller").post("/api/v1/batches")
    assert r.status_code == 200
    assert r.get_json()["nothing_ready"] is True and r.get_json()["batches"] == []


def test_chosen_claims_on_one_route(session, api_client, folder_route, make_claims):
    chosen, other = make_claims(2)
    body = {"claim_ids": [chosen.public_id], "route": folder_route.public_id}
    r = api_client("biller").post("/api/v1/batches", json=body)
    assert r.status_code == 201 and r.get_json()["claims_batched"] == 1
    session.expire_all()
    assert session.get(Claim, other.id).state is ClaimState.READY


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"claim_ids": "abc"}, "claim_ids"),
        ({"claim_ids": []}, "claim_ids"),
        ({"claim_ids": ["not-an-id"]}, "claim_ids"),
        ({"route": "f" * 32}, "route"),
        ({"dry_run": 1}, "dry_run"),
        ({"claim_ids": ["0" * 32]}, "claim_ids[0]"),
    ],
)
def test_bad_input_is_a_422_problem(session, api_client, ids, make_claims, body, field):
    make_claims(1)
    r = api_client("biller").post("/api/v1/batches", json=body)
    assert r.status_code == 422, r.get_json()
    assert r.headers["Content-Type"] == "application/problem+json"
    assert r.get_json()["errors"][0]["field"].startswith(field)
    assert _batches(session) == 0


def test_read_errors(api_client, ids):
    client = api_client("auditor")
    r = client.get("/api/v1/batches/" + "0" * 32)
    assert r.status_code == 404 and r.headers["Content-Type"] == "application/problem+json"
    r = client.get("/api/v1/batches?state=lost")
    assert r.status_code == 422 and r.get_json()["errors"][0]["field"] == "state"


def test_billers_send_auditors_read(session, api_client, folder_route, make_claims):
    make_claims(1)
    assert api_client("auditor").post("/api/v1/batches", json={}).status_code == 403
    token = api_client("integration")
    assert token.post("/api/v1/batches", json={}).status_code == 403
    assert token.get("/api/v1/batches").status_code == 403
    assert _batches(session) == 0
    assert api_client("billing_supervisor").post("/api/v1/batches", json={}).status_code == 201
    assert api_client("auditor").get("/api/v1/batches").status_code == 200


def test_an_idempotency_key_replays_the_first_answer(session, api_client, folder_route, make_claims):
    make_claims(2)
    biller = api_client("biller")
    first = biller.post("/api/v1/batches", json={}, headers={"Idempotency-Key": "send-1"})
    assert first.status_code == 201
    make_claims(1)  # ready after the first send: a replay must not send it
    again = biller.post("/api/v1/batches", json={}, headers={"Idempotency-Key": "send-1"})
    assert again.status_code == 201 and again.headers["Idempotent-Replayed"] == "true"
    assert again.get_json() == first.get_json()
    assert _batches(session) == 1
    other = biller.post("/api/v1/batches", json={"dry_run": True}, headers={"Idempotency-Key": "send-1"})
    assert other.status_code == 422
    # A refused request releases its key: the retry (fixed) runs.
    bad = biller.post("/api/v1/batches", json={"claim_ids": ["0" * 32]}, headers={"Idempotency-Key": "k2"})
    assert bad.status_code == 422
    assert (
        biller.post(
            "/api/v1/batches", json={"claim_ids": ["0" * 32]}, headers={"Idempotency-Key": "k2"}
        ).status_code
        == 422
    )


def test_sent_then_answered_by_the_clearinghouse(
    session, factory, api_client, folder_route, make_claims, tmp_path
):
    """The simulator is the peer of a folder route: 999 and 277CA come back and are listed on the batch."""
    make_claims(3)
    biller = api_client("biller")
    batch_id = biller.post("/api/v1/batches", json={}).get_json()["batches"][0]["id"]
    outbox, inbox = Path(folder_route.settings["outbox"]), Path(folder_route.settings["inbox"])
    run_once(outbox, inbox)
    clearinghouse.poll_inbox(
        factory, folder_route.id, transport_factory=lambda r: clearinghouse.route_transport(r, tmp_path)
    )
    detail = biller.get(f"/api/v1/batches/{batch_id}").get_json()
    assert detail["state"] == "accepted"
    kinds = [(f["kind"], f["direction"], f["status"]) for f in detail["files"]]
    assert kinds == [("837P", "out", "processed"), ("999", "in", "processed"), ("277CA", "in", "processed")]
    assert detail["files"][1]["answer"] == "A: accepted"
    assert detail["files"][2]["answer"] == "claims: 3 accepted"
    session.expire_all()
    assert {c.state for c in session.scalars(select(Claim))} == {ClaimState.ACKNOWLEDGED}


@pytest.fixture
def broker_down(app):
    with broker_refusing(app):
        yield


def test_a_broker_that_is_down_still_answers_201_with_every_batch(
    session, api_client, ids, folder_route, make_claims, broker_down
):
    """The batches are committed before they are queued: a broker that refuses the task leaves each
    one built (with why), kept for resume-unsent-batches, and the answer (stored for the
    Idempotency-Key) names them all; a retry replays it instead of finding nothing ready."""
    _on_two_routes(session, ids, make_claims)
    biller = api_client("biller")
    first = biller.post("/api/v1/batches", json={}, headers={"Idempotency-Key": "send-broker-down"})
    assert first.status_code == 201, first.get_json()
    report = first.get_json()
    assert len(report["batches"]) == 2 and report["claims_batched"] == 2
    for batch in report["batches"]:
        assert batch["id"] and batch["state"] == "built"
        assert batch["last_error"].startswith("could not be queued for upload (")
        assert batch["last_error"].endswith("); resume-unsent-batches queues it again")
    again = biller.post("/api/v1/batches", json={}, headers={"Idempotency-Key": "send-broker-down"})
    assert again.status_code == 201 and again.headers["Idempotent-Replayed"] == "true"
    assert again.get_json() == report
    session.expire_all()
    rows = session.scalars(select(SubmissionBatch).order_by(SubmissionBatch.id)).all()
    assert [r.public_id for r in rows] == [b["id"] for b in report["batches"]]
    assert {r.state for r in rows} == {BatchState.BUILT}
    resumable = clearinghouse.batches_to_resume(session, older_than=datetime.now(UTC) + timedelta(hours=1))
    assert resumable == [r.id for r in rows]
