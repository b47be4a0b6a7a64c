"""The work-queue API over HTTP: counts, filters, assign, snooze, comment, resolve, days in queue."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select

from claims_server.models import AuditEvent, Payer, User, WorkItem
from claims_server.models.workqueue import WorkQueue
from claims_server.workqueue.services import open_work_item, recommend_action
from tests.integration.workqueue.support import make_claim, post_charge


def _setup(session, ids):
    a = make_claim(session, ids)
    b = make_claim(session, ids, patient=ids["dependent_patient"], coverage=ids["dependent_coverage"])
    post_charge(session, a)  # 175.00 + 45.50 = 220.50 open A/R on claim A; none on B
    action, text = recommend_action("CO", "16", ["N290"])
    first = open_work_item(
        session,
        queue=WorkQueue.DENIED,
        claim=a,
        reason_codes=["CO-16", "N290"],
        recommended_action=action,
        explanation=text,
        dedupe_key="t:1",
    )
    action, text = recommend_action("CO", "50", [])
    second = open_work_item(
        session,
        queue=WorkQueue.DENIED,
        claim=b,
        reason_codes=["CO-50"],
        recommended_action=action,
        explanation=text,
        dedupe_key="t:2",
    )
    third = open_work_item(
        session,
        queue=WorkQueue.UNMATCHED,
        reason_codes=[],
        recommended_action="review",
        explanation="CLP01 matched no claim",
        dedupe_key="t:3",
    )
    first.opened_at = datetime.now(UTC) - timedelta(days=10)
    session.commit()
    return a, b, first, second, third  # fmt: skip


def _ids(response) -> list[str]:
    assert response.status_code == 200, response.get_json()
    return [i["id"] for i in response.get_json()["items"]]


def test_filters_counts_and_days_in_queue(session, ids, api_client):
    a, _b, first, second, third = _setup(session, ids)
    client = api_client("biller")
    base = "/api/v1/workqueue/items"

    assert sorted(_ids(client.get(base))) == sorted([first.public_id, second.public_id, third.public_id])
    assert _ids(client.get(f"{base}?queue=denied")) == [first.public_id, second.public_id]
    assert _ids(client.get(f"{base}?reason=CO-16")) == [first.public_id]
    assert _ids(client.get(f"{base}?reason=n290")) == [first.public_id]
    assert _ids(client.get(f"{base}?min_amount=220.50")) == [first.public_id]
    assert _ids(client.get(f"{base}?min_amount=220.51")) == []
    assert _ids(client.get(f"{base}?queue=denied&max_amount=0.00")) == [second.public_id]
    assert _ids(client.get(f"{base}?min_age_days=10")) == [first.public_id]
    assert _ids(client.get(f"{base}?min_age_days=11")) == []
    assert sorted(_ids(client.get(f"{base}?max_age_days=0"))) == sorted([second.public_id, third.public_id])
    payer_a = session.get(Payer, a.coverage.payer_id)
    expected_payer_a = [i.public_id for i in (first, second) if i.claim.coverage.payer_id == payer_a.id]
    assert _ids(client.get(f"{base}?payer={payer_a.public_id}")) == expected_payer_a

    item = client.get(f"{base}/{first.public_id}").get_json()
    assert item["days_in_queue"] == 10
    assert item["amount"] == "220.50"
    assert item["recommended_action"] == "correct_and_resubmit"
    assert item["explanation"].startswith("CO-16: Claim lacks information")
    assert item["comments"][0]["system"] is True

    counts = {q["queue"]: q for q in client.get("/api/v1/workqueue/queues").get_json()["queues"]}
    assert set(counts) == {q.value for q in WorkQueue}
    assert counts["denied"]["active"] == 2
    assert counts["denied"]["amount"] == "220.50"
    assert counts["denied"]["oldest_days"] == 10
    assert counts["unmatched"]["active"] == 1
    assert counts["rejected"] == {
        "queue": "rejected",
        "active": 0,
        "snoozed": 0,
        "amount": "0.00",
        "oldest_days": 0,
    }

    bad = client.get(f"{base}?reason=CO-16%25")
    assert bad.status_code == 422


def test_assign_snooze_comment_resolve(session, ids, api_client):
    _, _, first, _, _ = _setup(session, ids)
    client = api_client("biller")
    me = client.principal_info["public_id"]
    url = f"/api/v1/workqueue/items/{first.public_id}"

    r = client.post(f"{url}/assign", json={"assignee": me})
    assert r.status_code == 200 and r.get_json()["assignee"] == me
    assert _ids(client.get(f"/api/v1/workqueue/items?assignee={me}")) == [first.public_id]
    assert first.public_id not in _ids(client.get("/api/v1/workqueue/items?unassigned=true"))

    tomorrow = (datetime.now(UTC) + timedelta(days=1)).date()
    r = client.post(f"{url}/snooze", json={"until": tomorrow.isoformat()})
    assert r.status_code == 200 and r.get_json()["status"] == "snoozed"
    assert first.public_id not in _ids(client.get("/api/v1/workqueue/items"))
    assert _ids(client.get("/api/v1/workqueue/items?status=snoozed")) == [first.public_id]
    past = client.post(f"{url}/snooze", json={"until": datetime.now(UTC).date().isoformat()})
    assert past.status_code == 422

    r = client.post(f"{url}/comments", json={"body": "Called the payer; rendering NPI was wrong."})
    assert r.status_code == 201
    comments = r.get_json()["comments"]
    assert comments[-1]["author"] == me and comments[-1]["system"] is False

    r = client.post(f"{url}/resolve", json={"resolution": "corrected_and_resubmitted", "note": "freq 7 sent"})
    assert r.status_code == 200
    body = r.get_json()
    assert body["status"] == "resolved"
    assert body["resolution"] == "corrected_and_resubmitted: freq 7 sent"
    again = client.post(f"{url}/resolve", json={"resolution": "written_off"})
    assert again.status_code == 409
    assert client.post(f"{url}/snooze", json={"until": tomorrow.isoformat()}).status_code == 409
    assert client.post(f"{url}/resolve", json={"resolution": "nope"}).status_code == 422

    events = session.scalars(
        select(AuditEvent.event_type).where(AuditEvent.entity_id == first.public_id).order_by(AuditEvent.id)
    ).all()
    # Reads of the item (security.read_audit) and the automatic PHI-change events of the
    # encrypted resolution (``work_items.*``) are interleaved; the queue's own events keep order.
    assert "work_item.read" in events and "work_items.update" in events
    events = [e for e in events if e != "work_item.read" and not e.startswith("work_items.")]
    assert events == [
        "work_item.open",
        "work_item.assign",
        "work_item.snooze",
        "work_item.comment",
        "work_item.resolve",
    ]
    comment_event = session.scalar(select(AuditEvent).where(AuditEvent.event_type == "work_item.comment"))
    assert "payer" not in str(comment_event.details)  # the note's text is not in the audit trail


def test_snooze_ends_by_itself(session, ids):
    from claims_server.workqueue.services import WorkItemFilters, find_work_items, snooze

    _, _, first, _, _ = _setup(session, ids)
    today = datetime.now(UTC).date()
    snooze(session, first, today + timedelta(days=3), today=today)
    session.commit()
    later = datetime.combine(today + timedelta(days=3), datetime.min.time(), tzinfo=UTC)
    active_now = find_work_items(session, WorkItemFilters(queue=WorkQueue.DENIED))
    active_then = find_work_items(session, WorkItemFilters(queue=WorkQueue.DENIED), now=later)
    assert first not in active_now
    assert first in active_then


def test_read_only_roles_cannot_change_items(session, ids, api_client):
    _, _, first, _, _ = _setup(session, ids)
    auditor = api_client("auditor")
    assert auditor.get("/api/v1/workqueue/items").status_code == 200
    r = auditor.post(f"/api/v1/workqueue/items/{first.public_id}/resolve", json={"resolution": "written_off"})
    assert r.status_code == 403
    assert (
        session.scalar(select(func.count()).select_from(WorkItem).where(WorkItem.resolved_at.is_not(None)))
        == 0
    )
    assert session.scalar(select(func.count()).select_from(User)) >= 1
