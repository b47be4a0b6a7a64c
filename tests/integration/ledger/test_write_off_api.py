"""``/api/v1/claims/<id>/write-offs``: roles, validation as problem+json, Idempotency-Key replay."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import func, select

from claims_server.models import JournalEntry, JournalEventType
from tests.integration.payments.support import owed_claim
from tests.integration.remittance.support import seed_world


@pytest.fixture
def claim(session):
    """The payer owes 120.00 and the patient 55.00."""
    return owed_claim(
        session,
        seed_world(session),
        "WOAPI1",
        [("99213", 15000, 4000), ("36415", 2500, 1500)],
        since=date(2026, 1, 10),
    )


def _write_offs(session) -> int:
    session.rollback()
    return session.scalar(
        select(func.count())
        .select_from(JournalEntry)
        .where(JournalEntry.event_type == JournalEventType.WRITE_OFF)
    )


def _post(client, claim, body, key="key-1"):
    headers = {"Idempotency-Key": key} if key else {}
    return client.post(f"/api/v1/claims/{claim.public_id}/write-offs", json=body, headers=headers)


BODY = {"amount": "120.00", "bucket": "insurance", "reason": "timely_filing"}


def test_a_biller_writes_off_and_a_retry_with_the_key_replays(session, api_client, claim):
    biller = api_client("biller")
    first = _post(biller, claim, BODY)
    assert first.status_code == 201, first.get_json()
    doc = first.get_json()
    assert doc["amount"] == "120.00" and doc["bucket"] == "insurance" and doc["controllable"] is True
    again = _post(biller, claim, BODY)
    assert again.status_code == 201 and again.headers.get("Idempotent-Replayed") == "true"
    assert again.get_json()["id"] == doc["id"]
    assert _write_offs(session) == 1
    other = _post(biller, claim, {**BODY, "amount": "10.00"})
    assert other.status_code == 422 and other.mimetype == "application/problem+json"
    assert other.get_json()["errors"][0]["rule"] == "idempotency_key_reuse"
    listed = biller.get(f"/api/v1/claims/{claim.public_id}/write-offs").get_json()
    assert [w["id"] for w in listed["items"]] == [doc["id"]]
    assert listed["open_balance"] == {"insurance": "0.00", "patient": "55.00"}


@pytest.mark.parametrize(
    ("body", "field", "status"),
    [
        ({**BODY, "amount": "120.01"}, "amount", 422),
        ({**BODY, "amount": "0.00"}, "amount", 422),
        ({**BODY, "amount": "-5.00"}, "amount", 422),
        ({**BODY, "amount": 12.5}, "amount", 422),
        ({"amount": "1.00", "bucket": "insurance"}, "reason", 422),
        ({**BODY, "reason": "goodwill"}, "reason", 422),
        ({**BODY, "reason": "other"}, "note", 422),
        ({**BODY, "bucket": "payer"}, "bucket", 422),
        ({**BODY, "line": 7}, "line", 422),
    ],
)
def test_bad_requests_name_the_field_and_change_nothing(session, api_client, claim, body, field, status):
    answer = _post(api_client("billing_supervisor"), claim, body)
    assert answer.status_code == status and answer.mimetype == "application/problem+json"
    assert field in [e.get("field") for e in answer.get_json()["errors"]], answer.get_json()
    assert _write_offs(session) == 0


def test_the_key_is_required_and_roles_are_enforced(session, api_client, claim, app):
    answer = _post(api_client("biller"), claim, BODY, key=None)
    assert answer.status_code == 422 and answer.get_json()["errors"][0]["field"] == "Idempotency-Key"
    for role in ("auditor", "integration"):
        assert _post(api_client(role), claim, BODY).status_code == 403
    assert api_client("auditor").get(f"/api/v1/claims/{claim.public_id}/write-offs").status_code == 200
    assert _write_offs(session) == 0


def test_a_biller_above_the_limit_asks_a_supervisor_and_a_supervisor_may(session, api_client, claim, app):
    settings = app.extensions["claims_server"].settings
    body = {**BODY, "amount": "120.00"}
    object.__setattr__(settings, "WRITE_OFF_BILLER_LIMIT_CENTS", 10_000)
    try:
        answer = _post(api_client("biller"), claim, body)
        # Nothing posted: an approval request for a supervisor (tests/integration/ledger/test_approvals.py).
        assert answer.status_code == 202 and answer.get_json()["state"] == "pending"
        assert answer.get_json()["amount"] == "120.00" and answer.get_json()["kind"] == "write_off"
        assert _write_offs(session) == 0
        assert _post(api_client("billing_supervisor"), claim, body).status_code == 201
    finally:
        object.__setattr__(settings, "WRITE_OFF_BILLER_LIMIT_CENTS", 50_000)


def test_only_a_supervisor_reverses(session, api_client, claim):
    done = _post(api_client("biller"), claim, BODY).get_json()
    path = f"/api/v1/claims/{claim.public_id}/write-offs/{done['id']}/reversal"
    assert api_client("biller").post(path, json={"reason": "posted_in_error"}).status_code == 403
    supervisor = api_client("billing_supervisor")
    assert supervisor.post(path, json={"reason": "because"}).status_code == 422
    answer = supervisor.post(path, json={"reason": "posted_in_error"})
    assert answer.status_code == 201 and answer.get_json()["amount"] == "-120.00"
    assert supervisor.post(path, json={"reason": "posted_in_error"}).status_code == 409
    listed = supervisor.get(f"/api/v1/claims/{claim.public_id}/write-offs").get_json()
    assert listed["open_balance"]["insurance"] == "120.00"
