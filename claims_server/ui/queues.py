"""Work queues: counts per queue, a filtered list, assign and snooze (one row or the selected rows).

Reads and changes go through ``claims_server.workqueue.services`` (the same functions as
``/api/v1/workqueue``). The filters are payer, age, amount, assignee and reason code: no
PHI, so they may live in the query string.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any
from urllib.parse import urlencode

from flask import Response, flash, redirect, request, url_for
from sqlalchemy import select

from claims_server.api_common.fields import money_text_to_cents
from claims_server.api_common.transactions import mutation
from claims_server.app import db_session
from claims_server.errors import ApiError
from claims_server.models import Payer, Role, User, WorkItem
from claims_server.models.common import utcnow
from claims_server.models.workqueue import WorkQueue
from claims_server.remittance import held
from claims_server.ui.blueprint import bp, current_user, field_errors, page
from claims_server.workqueue import saved_filters, services

QUEUE_LABELS = {
    WorkQueue.REJECTED: "Rejected (999/277CA)",
    WorkQueue.DENIED: "Denied (835)",
    WorkQueue.UNMATCHED: "Unmatched payments",
    WorkQueue.UNPAID: "Unpaid",
    WorkQueue.NEEDS_SECONDARY: "Needs secondary",
    WorkQueue.PATIENT_BALANCE: "Patient balance",
    WorkQueue.POSSIBLE_DUPLICATE: "Possible duplicates",
    WorkQueue.RECONCILIATION: "Reconciliation (PLB)",
    WorkQueue.APPEAL: "Under appeal",
    WorkQueue.APPROVAL: "Waiting for approval",  # over-limit write-offs and refunds (ui/approvals.py)
    WorkQueue.OTHER: "Other",
}
ACTION_LABELS = {
    "correct_and_resubmit": "Correct and resubmit",
    "appeal": "Appeal",
    "bill_secondary": "Bill secondary",
    "bill_patient": "Bill the patient",
    "write_off": "Write off",
    "review": "Review",
    # a denial under appeal (corrections/appeals.py): never "Write off" while the appeal is live
    "submit_appeal": "Submit the appeal",
    "await_appeal_decision": "Await the appeal decision",
}
#: Users an item may be assigned to: people who work claims.
ASSIGNABLE_ROLES = (Role.BILLER, Role.BILLING_SUPERVISOR, Role.ADMIN)
#: Who may post or reject a held possible duplicate (security/policy.py: ui.held_decision).
DECIDING_ROLES = (Role.BILLING_SUPERVISOR, Role.ADMIN)


@dataclass
class Row:
    item: WorkItem
    payer: str
    amount_cents: int
    days: int
    snoozed: bool
    date_of_service: date | None = None
    filing_deadline: date | None = None


#: Rows per page of the queue table.
PAGE_SIZE = 50
#: Sortable columns (``sort=`` key → header label), in the table's order.
SORTABLE = {
    "claim": "Claim",
    "patient": "Patient",
    "payer": "Payer",
    "date_of_service": "Date of service",
    "filing_deadline": "Filing deadline",
    "status": "Status",
    "amount": "Amount",
    "days_in_queue": "Days",
    "due_date": "Due",
}


def _money_cents(text: str) -> int:
    cents, problem = money_text_to_cents(text, allow_zero=True)
    if cents is None:
        raise ValueError(problem)
    return cents


def _whole_days(text: str) -> int:
    text = text.strip()
    if not (text.isascii() and text.isdigit()) or len(text) > 5:
        raise ValueError("enter a whole number of days")
    return int(text)


def _filters(args: Any, me: User) -> tuple[services.WorkItemFilters, dict[str, str], dict[str, str]]:
    """The query string as service filters, the values to show back, and messages per field."""
    values = {
        name: args.get(name, "").strip()
        for name in (
            "queue",
            "payer",
            "assignee",
            "reason",
            "min_age",
            "max_age",
            "min_amount",
            "max_amount",
            "sort",
            "order",
        )
    }
    errors: dict[str, str] = {}
    filters = services.WorkItemFilters(status=args.get("status", "active"))
    if values["sort"]:
        if values["sort"] in services.SORT_COLUMNS:
            filters.sort = values["sort"]
        else:
            errors["sort"] = "sort by one of the table's columns (click its header)"
    if values["order"]:
        if values["order"] in services.SORT_ORDERS:
            filters.order = values["order"]
        else:
            errors["order"] = "the order is asc or desc"
    if values["queue"]:
        try:
            filters.queue = WorkQueue(values["queue"])
        except ValueError:
            errors["queue"] = "choose a queue from the list"
    if values["payer"]:
        payer_id = db_session().scalar(select(Payer.id).where(Payer.public_id == values["payer"]))
        if payer_id is None:
            errors["payer"] = "choose a payer from the list"
        filters.payer_id = payer_id
    if values["assignee"] == "me":
        filters.assignee_user_id = me.id
    elif values["assignee"] == "unassigned":
        filters.unassigned = True
    elif values["assignee"]:
        user_id = db_session().scalar(select(User.id).where(User.public_id == values["assignee"]))
        if user_id is None:
            errors["assignee"] = "choose a person from the list"
        filters.assignee_user_id = user_id
    if values["reason"]:
        filters.reason = values["reason"]
    for name, attribute, parse in (
        ("min_age", "min_age_days", _whole_days),
        ("max_age", "max_age_days", _whole_days),
        ("min_amount", "min_amount_cents", _money_cents),
        ("max_amount", "max_amount_cents", _money_cents),
    ):
        if values[name]:
            try:
                setattr(filters, attribute, parse(values[name]))
            except ValueError as exc:
                errors[name] = str(exc)
    return filters, values, errors


def _rows(items: list[WorkItem]) -> list[Row]:
    """The table's rows: payer, amount, date of service and filing deadline read in one query."""
    session = db_session()
    facts = services.item_rows(session, items)
    today = utcnow().date()
    rows = []
    for item in items:
        fact = facts.get(item.id)
        rows.append(
            Row(
                item=item,
                payer=(fact.payer_name or "") if fact else "",
                amount_cents=fact.amount_cents if fact else 0,
                days=services.days_in_queue(item, today),
                snoozed=services.is_snoozed(item),
                date_of_service=fact.date_of_service if fact else None,
                filing_deadline=fact.filing_deadline if fact else None,
            )
        )
    return rows


def _page_number(args: Any) -> tuple[int, str | None]:
    """``page`` (1 and up), or 1 and the message for a bad one."""
    text = args.get("page", "").strip()
    if not text:
        return 1, None
    if not (text.isascii() and text.isdigit()) or not 1 <= int(text) <= 100000:
        return 1, "the page is a whole number from 1"
    return int(text), None


def _assignees() -> list[User]:
    return list(
        db_session().scalars(
            select(User).where(User.active.is_(True), User.role.in_(ASSIGNABLE_ROLES)).order_by(User.username)
        )
    )


def _render(
    status: int = 200,
    action_errors: dict[str, str] | None = None,
    form: Any = None,
    *,
    saved_errors: dict[str, str] | None = None,
    saved_form: dict[str, str] | None = None,
) -> Response:
    """The queue page for the current query string (plus the errors of a refused action)."""
    session = db_session()
    me = current_user()
    filters, values, filter_errors = _filters(request.args, me)
    page_number, page_error = _page_number(request.args)
    if page_error:
        filter_errors["_form"] = page_error
    total = 0
    if filter_errors:
        items: list[WorkItem] = []
    else:
        try:
            # One page of the table (default order: priority, then the longest waiting).
            items = services.sorted_work_items(
                session, filters, offset=(page_number - 1) * PAGE_SIZE, limit=PAGE_SIZE
            )
            total = services.count_work_items(session, filters)
        except ApiError as exc:
            filter_errors = field_errors(exc, {"reason": "reason", "status": "_form", "sort": "sort"})
            items = []
    payers = session.scalars(select(Payer).order_by(Payer.name)).all()
    assignees = _assignees()
    # Possible duplicates: each held adjudication beside the current one it would duplicate.
    comparisons = held.comparisons_for_items(session, items)
    return page(
        "queues.html",
        status,
        counts=services.queue_counts(session),
        rows=_rows(items),
        values=values,
        status_filter=filters.status,
        filter_errors=filter_errors,
        errors=action_errors or {},
        form=form or {},
        queue_labels=QUEUE_LABELS,
        queue_options=[("", "All queues"), *((q.value, label) for q, label in QUEUE_LABELS.items())],
        payer_options=[(p.public_id, p.name) for p in payers],
        assignee_options=[(u.public_id, u.username) for u in assignees],
        selected=set(form.getlist("items")) if form is not None else set(),
        action_labels=ACTION_LABELS,
        me=me,
        can_change=me.role in ASSIGNABLE_ROLES,
        can_decide=me.role in DECIDING_ROLES,
        comparisons=comparisons,
        today=date.today(),
        total=total,
        page_number=page_number,
        page_count=max(1, -(-total // PAGE_SIZE)),
        page_size=PAGE_SIZE,
        sortable=SORTABLE,
        sort=filters.sort,
        order=filters.order,
        current_query=urlencode(_query_args(values, filters.status)),
        sort_links=_sort_links(values, filters),
        page_links=_page_links(values, filters.status, page_number, max(1, -(-total // PAGE_SIZE))),
        saved=saved_filters.list_saved_filters(session, me),
        saved_errors=saved_errors or {},
        saved_form=saved_form or {},
    )


def _query_args(values: dict[str, str], status: str) -> dict[str, str]:
    """The current filters as query arguments (blank ones left out): for sort and page links."""
    args = {k: v for k, v in values.items() if v}
    if status != "active":
        args["status"] = status
    return args


def _sort_links(values: dict[str, str], filters: services.WorkItemFilters) -> dict[str, str]:
    """Per sortable column, the page sorted by it: ascending first, descending when it is already
    sorted ascending by it (the first page: a new order starts at the top)."""
    args = _query_args(values, filters.status)
    links = {}
    for key in SORTABLE:
        order = "desc" if filters.sort == key and filters.order == "asc" else "asc"
        links[key] = url_for("ui.queues", **{**args, "sort": key, "order": order})
    return links


def _page_links(values: dict[str, str], status: str, number: int, count: int) -> dict[str, str]:
    """``previous`` and ``next`` page links (when there is such a page)."""
    args = _query_args(values, status)
    links = {}
    if number > 1:
        links["previous"] = url_for("ui.queues", **args, **({"page": str(number - 1)} if number > 2 else {}))
    if number < count:
        links["next"] = url_for("ui.queues", **args, page=str(number + 1))
    return links


@bp.route("/queues", methods=["GET"], endpoint="queues")
def queues() -> Response:
    """Counts per queue and the items matching the filters."""
    return _render()


def _selected(form: Any) -> tuple[str, list[str]]:
    """(action, item public ids): a row's own button wins over the bulk bar."""
    row = form.get("row_action", "")
    if row:
        action, _, item_id = row.partition(":")
        return action, [item_id]
    return form.get("bulk_action", ""), form.getlist("items")


@bp.route("/queues/action", methods=["POST"], endpoint="queue_action")
@mutation()
def queue_action() -> Response:
    """Assign (to me, to someone, back to the queue) or snooze one row or the selected rows."""
    session = db_session()
    form = request.form
    action, item_ids = _selected(form)
    errors: dict[str, str] = {}
    if not item_ids:
        errors["items"] = "Select at least one item."
    if action not in ("assign_me", "assign", "unassign", "snooze"):
        errors["bulk_action"] = "Choose what to do with the selected items."
    assignee: User | None = None
    until: date | None = None
    if action == "assign":
        assignee = session.scalar(select(User).where(User.public_id == form.get("assign_to", "")))
        if assignee is None or assignee.role not in ASSIGNABLE_ROLES:
            errors["assign_to"] = "Choose the person to assign to."
    if action == "snooze":
        try:
            until = date.fromisoformat(form.get("until", ""))
        except ValueError:
            errors["until"] = "Enter the date the items come back, e.g. 2026-04-30."
    if action == "assign_me":
        assignee = current_user()
    items = (
        list(session.scalars(select(WorkItem).where(WorkItem.public_id.in_(item_ids)))) if item_ids else []
    )
    if len(items) != len(set(item_ids)):
        errors["items"] = "Some selected items no longer exist; reload the page."
    if not errors:
        try:
            for item in items:
                if action == "snooze":
                    assert until is not None
                    services.snooze(session, item, until, today=utcnow().date())
                else:
                    services.assign(session, item, assignee)
        except ApiError as exc:
            errors = field_errors(exc, {"until": "until", "assignee": "assign_to", "status": "items"})
    if errors:
        return _render(422, errors, form)
    done = {
        "assign_me": "assigned to you",
        "assign": f"assigned to {assignee.username if assignee else ''}",
        "unassign": "returned to the shared queue",
        "snooze": f"snoozed until {until}",
    }[action]
    flash(f"{len(items)} item{'s' if len(items) != 1 else ''} {done}.", "success")
    return redirect(url_for("ui.queues", **{k: v for k, v in request.args.items()}), 303)


@bp.route("/queues/<item_id>/decision", methods=["POST"], endpoint="held_decision")
@mutation()
def held_decision(item_id: str) -> Response:
    """Post or reject a held possible duplicate (supervisors and admins), as
    ``POST /api/v1/held-adjudications/<item id>/decision`` does."""
    session = db_session()
    decision = request.form.get("decision", "")
    try:
        item = held.get_item(session, item_id)
        held.decide_item(session, item, decision, actor=current_user().username)
    except ApiError as exc:
        session.rollback()  # the engine refused: nothing it flushed may show on the page
        return _render(exc.status if exc.status in (404, 409, 422) else 422, {"_form": exc.detail})
    done = "posted: it replaces the current adjudication" if decision == "post" else "rejected"
    flash(f"The held adjudication was {done}.", "success")
    return redirect(url_for("ui.queues", queue=WorkQueue.POSSIBLE_DUPLICATE.value), 303)
