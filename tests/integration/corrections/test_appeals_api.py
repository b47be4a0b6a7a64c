"""``/api/v1/appeals``: list by deadline (filters, cursor pages), read, create, update letter and
attachments, submit, record the outcome, open the next level; roles; 422s naming the field."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from claims_server.models import WorkItem
from claims_server.models.workqueue import Appeal, AppealStatus, WorkItemStatus, WorkQueue
from tests.integration.corrections.test_appeals import _denied

TODAY = datetime.now(UTC).date()


def _fields(answer) -> set[str]:
    return {e.get("field") for e in (answer.get_json() or {}).get("errors", [])}


def test_the_appeal_life_over_the_api(session, ids, api_client):
    claim, item = _denied(session, ids)
    session.commit()
    biller = api_client("biller")

    r = biller.post(f"/api/v1/claims/{claim.public_id}/appeals", json={})
    assert r.status_code == 201, r.get_json()
    appeal = r.get_json()
    assert appeal["level"] == "first" and appeal["status"] == "draft"
    assert appeal["work_item"] == item.public_id and appeal["work_item_queue"] == "appeal"
    assert claim.patient_control_number in appeal["letter_text"] and "CO-50" in appeal["letter_text"]
    assert appeal["days_left"] > 0 and appeal["overdue"] is False
    path = f"/api/v1/appeals/{appeal['id']}"

    # a second live appeal: 409
    assert biller.post(f"/api/v1/claims/{claim.public_id}/appeals", json={}).status_code == 409

    r = biller.patch(
        path,
        json={
            "letter_text": "To the appeals department: please reconsider claim "
            + claim.patient_control_number,
            "attachments": [{"name": "Office note", "kind": "medical_records"}],
        },
    )
    assert r.status_code == 200, r.get_json()
    assert [a["name"] for a in r.get_json()["attachments"]] == ["Office note"]

    # the outcome of a draft: 422 naming outcome, nothing changed
    r = biller.post(f"{path}/decision", json={"outcome": "upheld"})
    assert r.status_code == 422 and "outcome" in _fields(r)
    assert biller.get(path).get_json()["status"] == "draft"

    r = biller.post(f"{path}/submit")
    assert r.status_code == 200 and r.get_json()["status"] == "submitted"
    assert biller.patch(path, json={"letter_text": "too late"}).status_code == 409

    r = biller.post(f"{path}/decision", json={"outcome": "upheld"})
    assert r.status_code == 200 and r.get_json()["status"] == "lost" and r.get_json()["outcome"] == "upheld"
    session.rollback()
    session.expire_all()
    assert session.get(WorkItem, item.id).queue is WorkQueue.DENIED

    r = biller.post(f"{path}/next-level")
    assert r.status_code == 201, r.get_json()
    second = r.get_json()
    assert second["level"] == "second" and second["parent"] == appeal["id"]
    assert second["work_item_queue"] == "appeal"
    r = biller.post(f"/api/v1/appeals/{second['id']}/submit")
    assert r.status_code == 200, r.get_json()
    r = biller.post(f"/api/v1/appeals/{second['id']}/decision", json={"outcome": "overturned"})
    assert r.status_code == 200 and r.get_json()["status"] == "won", r.get_json()
    assert r.get_json()["work_item_queue"] == "appeal", r.get_json()
    session.rollback()
    session.expire_all()
    assert session.get(WorkItem, item.id).status is WorkItemStatus.RESOLVED


def test_bad_input_names_the_field_and_changes_nothing(session, ids, api_client):
    claim, _ = _denied(session, ids)
    session.commit()
    biller = api_client("biller")
    appeal = biller.post(f"/api/v1/claims/{claim.public_id}/appeals", json={}).get_json()
    path = f"/api/v1/appeals/{appeal['id']}"
    cases = [
        ({"letter_text": "<p>Dear payer</p>"}, "letter_text"),
        ({"letter_text": "x" * 20001}, "letter_text"),
        ({"attachments": [{"name": "Office note", "kind": "photo"}]}, "attachments[0].kind"),
        ({"attachments": [{"name": "", "kind": "other"}]}, "attachments[0].name"),
    ]
    for body, field in cases:
        r = biller.patch(path, json=body)
        assert r.status_code == 422, (body, r.get_json())
        assert any(f and f.startswith(field.split("[")[0]) for f in _fields(r)), (body, r.get_json())
    after = biller.get(path).get_json()
    assert after["letter_text"] == appeal["letter_text"] and after["attachments"] == []
    r = biller.post(f"{path}/decision", json={"outcome": "maybe"})
    assert r.status_code == 422 and "outcome" in _fields(r)
    # a denial date in the future is refused on opening
    other, _ = _denied(session, ids, number="ICN-APL-2")
    session.commit()
    r = biller.post(
        f"/api/v1/claims/{other.public_id}/appeals",
        json={"determined": (TODAY + timedelta(days=3)).isoformat()},
    )
    assert r.status_code == 422 and "determined" in _fields(r)
    session.rollback()
    session.expire_all()
    assert session.scalar(select(Appeal).where(Appeal.claim_id == other.id)) is None


def test_a_passed_deadline_refuses_the_submission(session, ids, api_client):
    claim, _ = _denied(session, ids, day=TODAY - timedelta(days=400))
    session.commit()
    biller = api_client("biller")
    appeal = biller.post(f"/api/v1/claims/{claim.public_id}/appeals", json={}).get_json()
    assert appeal["overdue"] is True and appeal["days_left"] < 0
    r = biller.post(f"/api/v1/appeals/{appeal['id']}/submit")
    assert r.status_code == 422 and "deadline" in _fields(r)
    assert biller.get(f"/api/v1/appeals/{appeal['id']}").get_json()["status"] == "draft"
    listed = biller.get("/api/v1/appeals?overdue=true").get_json()["items"]
    assert [a["id"] for a in listed] == [appeal["id"]]


def test_the_list_by_deadline_with_filters_and_pages(session, ids, api_client):
    days = [30, 5, 60, 12]
    claims = []
    for n, ago in enumerate(days):
        claim, _ = _denied(session, ids, number=f"ICN-LIST-{n}", day=TODAY - timedelta(days=ago))
        claims.append(claim)
    session.commit()
    biller = api_client("biller")
    made = [biller.post(f"/api/v1/claims/{c.public_id}/appeals", json={}).get_json() for c in claims]
    assert all("id" in a for a in made), made
    biller.post(f"/api/v1/appeals/{made[1]['id']}/submit")

    seen: list[dict] = []
    cursor = None
    while True:
        url = "/api/v1/appeals?limit=3" + (f"&cursor={cursor}" if cursor else "")
        page = biller.get(url).get_json()
        seen.extend(page["items"])
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert [a["deadline"] for a in seen] == sorted(a["deadline"] for a in made)
    assert all(a["letter_text"] is None for a in seen)  # lists leave the letter out
    # The appeal queue reads by deadline too (its items' due date is the appeal's deadline).
    queue = biller.get("/api/v1/workqueue/items?queue=appeal&sort=due_date").get_json()["items"]
    assert [i["due_date"] for i in queue] == sorted(a["deadline"] for a in made)
    page_html = biller.get("/ui/queues?queue=appeal").get_data(as_text=True)  # no sort chosen
    by_deadline = [a["claim_number"] for a in sorted(made, key=lambda a: a["deadline"])]
    assert sorted(by_deadline, key=page_html.index) == by_deadline
    drafts = biller.get("/api/v1/appeals?status=draft").get_json()["items"]
    assert {a["id"] for a in drafts} == {a["id"] for a in made} - {made[1]["id"]}
    assert biller.get("/api/v1/appeals?level=second").get_json()["items"] == []
    r = biller.get(f"/api/v1/appeals?claim={claims[2].public_id}")
    assert [a["id"] for a in r.get_json()["items"]] == [made[2]["id"]]
    assert biller.get("/api/v1/appeals?level=fourth").status_code == 422
    # a cursor of another filter is refused
    page = biller.get("/api/v1/appeals?limit=1").get_json()
    assert biller.get(f"/api/v1/appeals?limit=1&status=draft&cursor={page['next_cursor']}").status_code == 422


def test_roles(session, ids, api_client):
    claim, _ = _denied(session, ids)
    session.commit()
    auditor = api_client("auditor")
    assert auditor.post(f"/api/v1/claims/{claim.public_id}/appeals", json={}).status_code == 403
    appeal = api_client("biller").post(f"/api/v1/claims/{claim.public_id}/appeals", json={}).get_json()
    assert auditor.get("/api/v1/appeals").status_code == 200
    assert auditor.get(f"/api/v1/appeals/{appeal['id']}").status_code == 200
    assert auditor.patch(f"/api/v1/appeals/{appeal['id']}", json={"letter_text": "x"}).status_code == 403
    assert auditor.post(f"/api/v1/appeals/{appeal['id']}/submit").status_code == 403
    assert (
        auditor.post(f"/api/v1/appeals/{appeal['id']}/decision", json={"outcome": "withdrawn"}).status_code
        == 403
    )
    assert auditor.post(f"/api/v1/appeals/{appeal['id']}/next-level").status_code == 403
    session.rollback()
    session.expire_all()
    assert session.scalar(select(Appeal.status).where(Appeal.public_id == appeal["id"])) is AppealStatus.DRAFT
