"""Saved work-queue filters: save, list, delete (API and workspace), each user's own only,
and bad input refused with the field named and nothing stored."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select, text

from claims_server.models import Payer, SavedFilter
from tests.integration.ui.support import csrf_token_of

URL = "/api/v1/saved-filters"


def _count(session) -> int:
    session.rollback()
    return session.scalar(select(func.count()).select_from(SavedFilter))


def test_save_list_and_delete_with_a_canonical_query(session, api_client, ids):
    client = api_client("biller")
    payer = session.scalar(select(Payer).order_by(Payer.id))
    answer = client.post(
        URL,
        json={
            "name": "  Big denials  ",
            "query": f"?order=desc&sort=amount&min_amount=100.00&queue=denied&payer={payer.public_id}&reason=",
        },
    )
    assert answer.status_code == 201, answer.get_json()
    saved = answer.get_json()
    assert saved["name"] == "Big denials"
    # Known keys in the page's order, blanks dropped: the same filter always reads the same.
    assert saved["query"] == f"queue=denied&payer={payer.public_id}&min_amount=100.00&sort=amount&order=desc"
    listed = client.get(URL).get_json()["items"]
    assert [f["id"] for f in listed] == [saved["id"]]
    # The saved query is a valid list query of the API too.
    assert client.get("/api/v1/workqueue/items?queue=denied&sort=amount&order=desc").status_code == 200
    # Stored encrypted: the name is not in the row's raw column.
    raw = session.execute(text("SELECT name, query FROM saved_filters")).one()
    assert "Big denials" not in str(raw[0]) and "denied" not in str(raw[1])
    assert client.delete(f"{URL}/{saved['id']}").status_code == 204
    assert client.get(URL).get_json()["items"] == []
    assert client.delete(f"{URL}/{saved['id']}").status_code == 404


def test_each_user_sees_and_deletes_only_their_own(session, api_client):
    alice, bob = api_client("biller"), api_client("biller")
    mine = alice.post(URL, json={"name": "Mine", "query": "queue=denied"}).get_json()
    bob.post(URL, json={"name": "Mine", "query": "queue=unpaid"})  # the same name is fine for another user
    assert [f["query"] for f in alice.get(URL).get_json()["items"]] == ["queue=denied"]
    assert [f["query"] for f in bob.get(URL).get_json()["items"]] == ["queue=unpaid"]
    assert bob.delete(f"{URL}/{mine['id']}").status_code == 404
    assert [f["id"] for f in alice.get(URL).get_json()["items"]] == [mine["id"]]


@pytest.mark.parametrize(
    ("body", "field", "rule"),
    [
        ({"name": "", "query": "queue=denied"}, "name", "required"),
        ({"name": "   ", "query": "queue=denied"}, "name", "required"),
        ({"name": "x" * 81, "query": "queue=denied"}, "name", "length"),
        ({"name": "two\nlines", "query": "queue=denied"}, "name", "characters"),
        ({"name": "Bad key", "query": "patient=Smith"}, "query", "filter_keys"),
        ({"name": "Twice", "query": "queue=denied&queue=unpaid"}, "query", "filter_keys"),
        ({"name": "Bad queue", "query": "queue=everything"}, "query", "filter"),
        ({"name": "Bad sort", "query": "sort=colour"}, "query", "filter"),
        ({"name": "Bad order", "query": "sort=amount&order=up"}, "query", "filter"),
        ({"name": "Bad amount", "query": "min_amount=ten"}, "query", "filter"),
        ({"name": "Bad age", "query": "min_age=-1"}, "query", "filter"),
        ({"name": "Bad reason", "query": "reason=CO-16%25"}, "query", "filter"),
        ({"name": "Bad payer", "query": "payer=" + "0" * 32}, "query", "filter"),
        ({"name": "Too long", "query": "reason=CO-16&" + "x" * 600}, "query", "length"),
    ],
)
def test_bad_input_is_a_422_naming_the_field_and_stores_nothing(session, api_client, ids, body, field, rule):
    client = api_client("biller")
    before = _count(session)
    answer = client.post(URL, json=body)
    assert answer.status_code == 422, answer.get_json()
    errors = answer.get_json()["errors"]
    assert any(e["field"] == field and e["rule"] == rule for e in errors), errors
    assert _count(session) == before


def test_a_taken_name_is_refused(session, api_client):
    client = api_client("biller")
    assert client.post(URL, json={"name": "Denials", "query": "queue=denied"}).status_code == 201
    again = client.post(URL, json={"name": "denials", "query": "queue=unpaid"})
    assert again.status_code == 422
    assert again.get_json()["errors"][0] == {
        "field": "name",
        "rule": "unique",
        "message": again.get_json()["errors"][0]["message"],
    }
    assert _count(session) == 1


def test_the_workspace_saves_lists_and_deletes(session, api_client, ids):
    client = api_client("biller")
    token = csrf_token_of(client)
    answer = client.post(
        "/ui/queues/saved-filters",
        data={
            "csrf_token": token,
            "name": "Denied by amount",
            "query": "queue=denied&sort=amount&order=desc",
        },
    )
    assert answer.status_code == 303
    assert answer.headers["Location"].endswith("/ui/queues?queue=denied&sort=amount&order=desc")
    page = client.get("/ui/queues?queue=denied&sort=amount&order=desc").get_data(as_text=True)
    assert (
        'href="/ui/queues?queue=denied&amp;sort=amount&amp;order=desc" aria-current="true">Denied by amount</a>'
        in page
    )
    # Bad input: the page again with the message beside the name field, nothing stored.
    bad = client.post(
        "/ui/queues/saved-filters", data={"csrf_token": token, "name": "", "query": "queue=denied"}
    )
    assert bad.status_code == 422
    assert 'id="f-name-error"' in bad.get_data(as_text=True) and "give the filter a name" in bad.get_data(
        as_text=True
    )
    assert _count(session) == 1
    saved = session.scalar(select(SavedFilter))
    other = api_client("biller")
    refused = other.post(
        f"/ui/queues/saved-filters/{saved.public_id}/delete", data={"csrf_token": csrf_token_of(other)}
    )
    assert refused.status_code == 404 and _count(session) == 1
    gone = client.post(f"/ui/queues/saved-filters/{saved.public_id}/delete", data={"csrf_token": token})
    assert gone.status_code == 303 and _count(session) == 0
