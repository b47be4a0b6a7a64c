"""Follow-up notes over HTTP: /api/v1/{claims,patients,workqueue/items}/{id}/follow-up-notes and
/api/v1/follow-ups. Bad input is a 422 naming the field (nothing written); roles as the policy says."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from claims_server.models import AuditEvent, Note, WorkItem
from claims_server.models.workqueue import WorkItemStatus
from tests.integration.workqueue.support import open_co16_denial


@pytest.fixture
def item(session, ids):
    return open_co16_denial(session, ids, "notes-api:1")


def _today():
    return datetime.now(UTC).date()


def _written(session) -> tuple[int, int]:
    session.rollback()
    session.expire_all()  # the rows the fixture made: read them again
    return (
        session.scalar(select(func.count()).select_from(Note)),
        session.scalar(
            select(func.count()).select_from(AuditEvent).where(AuditEvent.event_type == "note.create")
        ),
    )


def test_a_call_note_with_a_follow_up_snoozes_the_item_and_shows_everywhere(session, item, api_client):
    biller = api_client("biller")
    tomorrow = _today() + timedelta(days=1)
    base = f"/api/v1/workqueue/items/{item.public_id}"
    answer = biller.post(
        f"{base}/follow-up-notes",
        json={
            "kind": "call",
            "body": "Payer wants the referral; call back.",
            "follow_up_on": tomorrow.isoformat(),
        },
    )
    assert answer.status_code == 201, answer.get_json()
    note = answer.get_json()
    assert note["kind"] == "call" and note["follow_up_on"] == tomorrow.isoformat()
    assert note["work_item"] == item.public_id and note["claim"] == item.claim.public_id
    assert note["author"] == biller.principal_info["public_id"]

    shown = biller.get(base).get_json()
    assert shown["status"] == "snoozed" and shown["snoozed_until"] == tomorrow.isoformat()
    assert shown["assignee"] == biller.principal_info["public_id"]
    assert item.public_id not in [i["id"] for i in biller.get("/api/v1/workqueue/items").get_json()["items"]]

    for path in (
        f"{base}/follow-up-notes",
        f"/api/v1/claims/{item.claim.public_id}/follow-up-notes",
        f"/api/v1/patients/{item.claim.patient.public_id}/follow-up-notes",
    ):
        listed = biller.get(path)
        assert listed.status_code == 200, (path, listed.get_json())
        assert [n["id"] for n in listed.get_json()["items"]] == [note["id"]], path

    # My follow-ups: not due today, due tomorrow; upcoming today.
    assert biller.get("/api/v1/follow-ups?user=me").get_json()["items"] == []
    due = biller.get(f"/api/v1/follow-ups?user=me&as_of={tomorrow.isoformat()}").get_json()
    assert [row["item"]["id"] for row in due["items"]] == [item.public_id]
    assert (
        due["items"][0]["note"]["id"] == note["id"]
        and due["items"][0]["follow_up_on"] == tomorrow.isoformat()
    )
    upcoming = biller.get("/api/v1/follow-ups?when=upcoming").get_json()
    assert [row["item"]["id"] for row in upcoming["items"]] == [item.public_id]
    # Another user's view of the same person's list, by id.
    auditor = api_client("auditor")
    other = auditor.get(f"/api/v1/follow-ups?user={biller.principal_info['public_id']}&as_of={tomorrow}")
    assert [row["item"]["id"] for row in other.get_json()["items"]] == [item.public_id]


def test_a_claim_and_a_patient_note(session, item, api_client):
    biller = api_client("billing_supervisor")
    claim, patient = item.claim, item.claim.patient
    on_claim = biller.post(
        f"/api/v1/claims/{claim.public_id}/follow-up-notes", json={"kind": "internal", "body": "x"}
    )
    assert on_claim.status_code == 201, on_claim.get_json()
    on_patient = biller.post(
        f"/api/v1/patients/{patient.public_id}/follow-up-notes",
        json={"kind": "letter", "body": "sent letter"},
    )
    assert on_patient.status_code == 201
    assert on_patient.get_json()["patient"] == patient.public_id and on_patient.get_json()["claim"] is None
    ids = [
        n["id"]
        for n in biller.get(f"/api/v1/patients/{patient.public_id}/follow-up-notes").get_json()["items"]
    ]
    assert ids == [on_patient.get_json()["id"], on_claim.get_json()["id"]]
    # The claim's reason notes keep their own route and shape.
    assert biller.get(f"/api/v1/claims/{claim.public_id}/notes").get_json()["items"] == []


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"kind": "call", "body": "called", "follow_up_on": "2020-01-01"}, "follow_up_on"),
        ({"kind": "call", "body": "x" * 100_000}, "body"),
        ({"kind": "call", "body": "Portal: <b>DENIED</b>"}, "body"),
        ({"kind": "fax", "body": "called"}, "kind"),
        ({"kind": "call", "body": 123}, "body"),
        ({"kind": 5, "body": "called"}, "kind"),
        ({"kind": "call", "body": "called", "follow_up_on": "tomorrow"}, "follow_up_on"),
        ({"kind": "call", "body": "called", "follow_up_on": 20260101}, "follow_up_on"),
        ({"kind": "call"}, "body"),
        ({"kind": "call", "body": ""}, "body"),
        ({"kind": "call", "body": "called", "extra": 1}, "extra"),
    ],
)
def test_bad_input_is_a_422_naming_the_field_and_nothing_is_written(session, item, api_client, body, field):
    biller = api_client("biller")
    before = _written(session)
    answer = biller.post(f"/api/v1/workqueue/items/{item.public_id}/follow-up-notes", json=body)
    assert answer.status_code == 422, answer.get_json()
    problem = answer.get_json()
    assert field in [e["field"] for e in problem["errors"]], problem
    assert "DENIED" not in answer.get_data(as_text=True)  # the text is not echoed back
    assert _written(session) == before
    stored = session.get(WorkItem, item.id)
    assert (stored.status, stored.snoozed_until, stored.assignee_user_id) == (WorkItemStatus.OPEN, None, None)


def test_the_service_rules_are_named_in_the_problem(session, item, api_client):
    biller = api_client("biller")
    path = f"/api/v1/workqueue/items/{item.public_id}/follow-up-notes"
    past = biller.post(
        path, json={"kind": "call", "body": "b", "follow_up_on": (_today() - timedelta(days=1)).isoformat()}
    )
    assert past.get_json()["errors"] == [
        {"field": "follow_up_on", "rule": "not_past", "message": f"today ({_today().isoformat()}) or later"}
    ]
    markup = biller.post(path, json={"kind": "call", "body": "<p>hi</p>"}).get_json()["errors"][0]
    assert (markup["field"], markup["rule"]) == ("body", "no_markup")
    large = biller.post(path, json={"kind": "call", "body": "x" * 100_000}).get_json()["errors"][0]
    assert (large["field"], large["rule"]) == ("body", "max_length")


def test_a_body_over_the_request_limit_is_a_413_problem(session, item, api_client):
    biller = api_client("biller")
    answer = biller.post(
        f"/api/v1/workqueue/items/{item.public_id}/follow-up-notes",
        json={"kind": "call", "body": "x" * (2 * 1024 * 1024)},
    )
    assert answer.status_code == 413
    assert answer.get_json()["status"] == 413
    assert _written(session) == (0, 0)


def test_roles_auditors_read_and_do_not_write(session, item, api_client):
    auditor = api_client("auditor")
    path = f"/api/v1/workqueue/items/{item.public_id}/follow-up-notes"
    assert auditor.get(path).status_code == 200
    assert auditor.post(path, json={"kind": "call", "body": "x"}).status_code == 403
    assert (
        auditor.post(
            f"/api/v1/claims/{item.claim.public_id}/follow-up-notes", json={"kind": "call", "body": "x"}
        )
    ).status_code == 403
    assert _written(session) == (0, 0)
    unknown = api_client("biller").get("/api/v1/follow-ups?user=" + "0" * 32)
    assert unknown.status_code == 422 and unknown.get_json()["errors"][0]["field"] == "user"
