"""The queue list sorted by each column (API and workspace), with filters and pages.

Five claims of different patients, payers, dates of service and amounts (two alike, to see
the tie-break), each with a denial item, plus an unmatched payment (no claim: its blanks
sort last in both orders). Expected orders are computed here from the rows' own values.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import select

from claims_server.models import Coverage, Payer, WorkItem
from claims_server.models.workqueue import WorkQueue
from claims_server.workqueue.services import SORT_COLUMNS, open_work_item
from tests.integration.workqueue.support import make_claim, post_charge

TODAY = datetime.now(UTC).date()


def _line(day: date, charge: str) -> list[dict]:
    return [
        {
            "procedure": "99213",
            "charge": charge,
            "units": "1",
            "service_date": day.isoformat(),
            "diagnosis_pointers": [1],
        }
    ]


@pytest.fixture
def queue(session, ids):
    """item public id → the item, in creation (id) order."""
    coverages = session.scalars(
        select(Coverage).where(Coverage.coverage_order == 1).order_by(Coverage.id)
    ).all()
    assert len(coverages) >= 4, "the seeded practice has fewer patients than the test needs"
    plan = [  # (coverage index, days before today of the DOS, charge, due in days or None, opened days ago)
        (0, 40, "120.00", 30, 3),
        (1, 10, "80.00", None, 9),
        (2, 40, "120.00", 5, 3),  # same DOS and amount as the first: the tie-break decides
        (3, 25, "300.00", 60, 1),
        (1, 60, "15.00", 10, 20),
    ]
    items = []
    for n, (index, days_ago, charge, due_in, opened_ago) in enumerate(plan):
        cov = coverages[index]
        claim = make_claim(
            session,
            ids,
            patient=cov.patient.public_id,
            coverage=cov.public_id,
            lines=_line(TODAY - timedelta(days=days_ago), charge),
        )
        post_charge(session, claim)
        item = open_work_item(
            session,
            queue=WorkQueue.DENIED,
            claim=claim,
            reason_codes=["CO-50"],
            recommended_action="appeal",
            explanation="denied",
            dedupe_key=f"sort:{n}",
            due_date=TODAY + timedelta(days=due_in) if due_in is not None else None,
        )
        item.opened_at = datetime.now(UTC) - timedelta(days=opened_ago)
        items.append(item)
    unmatched = open_work_item(
        session,
        queue=WorkQueue.UNMATCHED,
        reason_codes=[],
        recommended_action="review",
        explanation="CLP01 matched no claim",
        dedupe_key="sort:unmatched",
    )
    unmatched.opened_at = datetime.now(UTC) - timedelta(days=2)
    items.append(unmatched)
    session.commit()
    return items


def _items(response) -> list[dict]:
    assert response.status_code == 200, response.get_json()
    return response.get_json()["items"]


def _key(sort: str, row: dict, names: dict[str, tuple[str, str]]):
    """The value a row sorts by (None: blank)."""
    if sort == "claim":
        return row["claim"] and row["claim_number"]
    if sort == "patient":
        return names.get(row["id"])
    if sort == "status":
        return (row["claim_state"], row["status"]) if row["claim_state"] else None
    if sort == "amount":
        return int(row["amount"].replace(".", ""))
    return {
        "payer": row["payer_name"],
        "date_of_service": row["date_of_service"],
        "filing_deadline": row["filing_deadline"],
        "days_in_queue": row["opened_at"],  # by the moment it opened (the earliest: most days)
        "due_date": row["due_date"],
    }[sort]


def _expected(rows: list[dict], sort: str, order: str, names, creation: list[str]) -> list[str]:
    """Blanks last in both orders; ties in creation (id) order."""
    filled = [r for r in rows if _key(sort, r, names) is not None]
    blank = [r for r in rows if _key(sort, r, names) is None]
    filled.sort(key=lambda r: creation.index(r["id"]))
    descending = (order == "desc") != (sort == "days_in_queue")
    filled.sort(key=lambda r: _key(sort, r, names), reverse=descending)
    blank.sort(key=lambda r: creation.index(r["id"]))
    return [r["id"] for r in filled + blank]


@pytest.mark.parametrize("order", ["asc", "desc"])
@pytest.mark.parametrize("sort", SORT_COLUMNS)
def test_each_column_sorts_both_ways_with_blanks_last_and_ties_in_id_order(
    session, api_client, queue, sort, order
):
    client = api_client("biller")
    creation = [i.public_id for i in queue]
    every = _items(client.get("/api/v1/workqueue/items?limit=200"))
    assert [r["id"] for r in every] == creation  # no sort: id order, as before
    numbers = {i.public_id: i.claim.patient_control_number for i in queue if i.claim is not None}
    names = {
        i.public_id: (i.claim.patient.last_name.casefold(), i.claim.patient.first_name.casefold())
        for i in queue
        if i.claim is not None
    }
    for row in every:
        row["claim_number"] = numbers.get(row["id"])
    got = _items(client.get(f"/api/v1/workqueue/items?sort={sort}&order={order}&limit=200"))
    assert [r["id"] for r in got] == _expected(every, sort, order, names, creation)


def test_the_row_shows_date_of_service_filing_deadline_and_a_positive_amount(session, api_client, queue):
    first = queue[0]
    payer = session.get(Payer, first.claim.coverage.payer_id)
    row = next(
        r for r in _items(api_client("biller").get("/api/v1/workqueue/items")) if r["id"] == first.public_id
    )
    dos = TODAY - timedelta(days=40)
    assert row["date_of_service"] == dos.isoformat()
    assert row["filing_deadline"] == (dos + timedelta(days=payer.timely_filing_days)).isoformat()
    assert row["payer_name"] == payer.name
    assert row["amount"] == "120.00"


def test_filters_sort_and_pages_together(session, api_client, queue):
    client = api_client("biller")
    base = "/api/v1/workqueue/items?queue=denied&min_amount=50.00&sort=amount&order=desc&limit=2"
    first = client.get(base)
    page1 = _items(first)
    cursor = first.get_json()["next_cursor"]
    second = client.get(f"{base}&cursor={cursor}")
    page2 = _items(second)
    assert second.get_json()["next_cursor"] is None
    # 300.00, then the two 120.00 in id order, 80.00 left out? no: 80.00 >= 50.00 is in.
    want = [queue[3], queue[0], queue[2], queue[1]]
    assert [r["id"] for r in page1 + page2] == [i.public_id for i in want]
    assert [r["amount"] for r in page1 + page2] == ["300.00", "120.00", "120.00", "80.00"]
    # A cursor of one sort used with another is refused, naming the cursor.
    other = client.get(
        f"/api/v1/workqueue/items?queue=denied&min_amount=50.00&sort=claim&limit=2&cursor={cursor}"
    )
    assert other.status_code == 422
    assert any(e.get("field") == "cursor" for e in other.get_json()["errors"])


@pytest.mark.parametrize(("query", "field"), [("sort=colour", "sort"), ("sort=amount&order=up", "order")])
def test_an_unknown_sort_or_order_is_a_422_naming_it(api_client, queue, query, field):
    answer = api_client("biller").get(f"/api/v1/workqueue/items?{query}")
    assert answer.status_code == 422
    body = answer.get_json()
    assert field in str(body), body


def _row_order(html: str) -> list[str]:
    return re.findall(r'<tr data-item="([0-9a-f]{32})"', html)


def test_the_workspace_sorts_by_a_header_and_says_what_is_wrong_with_a_bad_sort(api_client, queue):
    client = api_client("biller")
    html = client.get("/ui/queues?sort=amount&order=desc").get_data(as_text=True)
    assert _row_order(html)[:3] == [queue[3].public_id, queue[0].public_id, queue[2].public_id]
    assert 'aria-sort="descending"' in html
    # The header of the sorted column offers the other order; the others start ascending.
    assert "sort=amount&amp;order=asc" in html and "sort=claim&amp;order=asc" in html
    assert "Filing deadline" in html and "Date of service" in html
    bad = client.get("/ui/queues?sort=colour")
    text = bad.get_data(as_text=True)
    assert "sort by one of the table&#39;s columns" in text or "sort by one of the table's columns" in text
    assert _row_order(text) == []


def test_the_workspace_pages_by_50(session, api_client, ids):
    claim = make_claim(session, ids)
    for n in range(53):
        open_work_item(
            session,
            queue=WorkQueue.OTHER,
            claim=claim,
            reason_codes=[],
            recommended_action="review",
            explanation="x",
            dedupe_key=f"page:{n}",
        )
    session.commit()
    client = api_client("biller")
    page1 = client.get("/ui/queues?queue=other&sort=due_date").get_data(as_text=True)
    page2 = client.get("/ui/queues?queue=other&sort=due_date&page=2").get_data(as_text=True)
    assert len(_row_order(page1)) == 50 and len(_row_order(page2)) == 3
    assert not set(_row_order(page1)) & set(_row_order(page2))
    assert "page 1 of 2" in page1 and 'rel="next"' in page1
    ids_in_order = session.scalars(
        select(WorkItem.public_id).where(WorkItem.queue == WorkQueue.OTHER).order_by(WorkItem.id)
    ).all()
    assert _row_order(page1) + _row_order(page2) == list(ids_in_order)  # all blank due dates: id order


def test_the_command_line_lists_sorted_items_without_names(queue, database_url, monkeypatch):
    import json

    from click.testing import CliRunner

    from claims_server.cli import main

    monkeypatch.setenv("DATABASE_URL", database_url)
    runner = CliRunner()
    answer = runner.invoke(
        main, ["workqueue", "list", "--queue", "denied", "--sort", "amount", "--order", "desc", "--json"]
    )
    assert answer.exit_code == 0, answer.output
    rows = json.loads(answer.output)["items"]
    assert [r["id"] for r in rows] == [queue[i].public_id for i in (3, 0, 2, 1, 4)]
    assert [r["amount"] for r in rows] == ["300.00", "120.00", "120.00", "80.00", "15.00"]
    assert queue[0].claim.patient.last_name not in answer.output
    bad = runner.invoke(main, ["workqueue", "list", "--sort", "colour"])
    assert bad.exit_code == 2 and "--sort" in bad.output
