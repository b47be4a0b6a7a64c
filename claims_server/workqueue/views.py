"""``/api/v1/workqueue``: queues and counts, item lists with filters, assign, snooze, comment, resolve."""

from __future__ import annotations

from typing import Any

from flask_smorest import Blueprint
from sqlalchemy import select

from claims_server.api_common.fields import cents_to_money
from claims_server.api_common.transactions import mutation
from claims_server.app import db_session
from claims_server.errors import Unprocessable
from claims_server.models import Payer, User
from claims_server.models.common import utcnow
from claims_server.models.workqueue import WorkQueue
from claims_server.security.principal import current_principal
from claims_server.workqueue import services
from claims_server.workqueue.schemas import (
    AssignSchema,
    CommentSchema,
    QueueCountsSchema,
    ResolveSchema,
    SnoozeSchema,
    SweepArgsSchema,
    SweepResultSchema,
    UnpaidArgsSchema,
    UnpaidSchema,
    WorkItemListArgsSchema,
    WorkItemPageSchema,
    WorkItemSchema,
)

blp = Blueprint(
    "workqueue",
    __name__,
    url_prefix="/api/v1/workqueue",
    description="Denials, rejections, unmatched payments, unpaid claims, secondary billing and patient "
    "balances: each item with its codes explained and a recommended action.",
)


def _by_public_id(model: type[Any], public_id: str, field: str) -> Any:
    row = db_session().scalar(select(model).where(model.public_id == public_id))
    if row is None:
        raise Unprocessable(
            f"no {field} has this id", errors=[{"field": field, "rule": "exists", "message": "unknown id"}]
        )
    return row


def _render(item: Any) -> dict[str, Any]:
    session = db_session()
    session.flush()
    facts = services.item_facts(session, [item]).get(item.id)
    return services.item_to_json(item, facts)


@blp.route("/queues", methods=["GET"])
@blp.response(200, QueueCountsSchema)
def queue_counts() -> dict[str, Any]:
    """Active and snoozed items per queue, the amount at stake and the oldest item's days in queue."""
    counts = services.queue_counts(db_session())
    return {
        "queues": [
            {
                "queue": c.queue.value,
                "active": c.active,
                "snoozed": c.snoozed,
                "amount": cents_to_money(c.amount_cents),
                "oldest_days": c.oldest_days,
            }
            for c in counts
        ]
    }


@blp.route("/items", methods=["GET"])
@blp.arguments(WorkItemListArgsSchema, location="query")
@blp.response(200, WorkItemPageSchema)
def list_items(args: dict[str, Any]) -> dict[str, Any]:
    """List items (filters: queue, status, payer, assignee, reason code, age in days, amount), in id
    order or sorted (``sort``: claim, patient, payer, date_of_service, filing_deadline, status,
    amount, days_in_queue, due_date; ``order``: asc or desc)."""
    session = db_session()
    limit, cursor = args.pop("limit"), args.pop("cursor")
    filters = services.WorkItemFilters(
        queue=WorkQueue(args["queue"]) if args["queue"] else None,
        status=args["status"],
        payer_id=_by_public_id(Payer, args["payer"], "payer").id if args["payer"] else None,
        assignee_user_id=_by_public_id(User, args["assignee"], "assignee").id if args["assignee"] else None,
        unassigned=args["unassigned"],
        reason=args["reason"],
        min_age_days=args["min_age_days"],
        max_age_days=args["max_age_days"],
        min_amount_cents=args["min_amount"],
        max_amount_cents=args["max_amount"],
        sort=args["sort"],
        order=args["order"],
    )
    page = services.list_work_items(session, filters, limit=limit, cursor=cursor)
    facts = services.item_facts(session, page.items)
    rows = services.item_rows(session, page.items)
    return {
        "items": [
            {**services.item_to_json(i, facts.get(i.id)), **services.row_to_json(rows.get(i.id))}
            for i in page.items
        ],
        "next_cursor": page.next_cursor,
    }


@blp.route("/items/<item_id>", methods=["GET"])
@blp.response(200, WorkItemSchema)
def get_item(item_id: str) -> dict[str, Any]:
    """Read one item with its explanation and comments."""
    return _render(services.get_work_item(db_session(), item_id))


@blp.route("/items/<item_id>/assign", methods=["POST"])
@mutation()
@blp.arguments(AssignSchema)
@blp.response(200, WorkItemSchema)
def assign_item(data: dict[str, Any], item_id: str) -> dict[str, Any]:
    """Assign the item to a user (``null``: back to the shared queue)."""
    session = db_session()
    item = services.get_work_item(session, item_id)
    user = _by_public_id(User, data["assignee"], "assignee") if data["assignee"] else None
    return _render(services.assign(session, item, user))


@blp.route("/items/<item_id>/snooze", methods=["POST"])
@mutation()
@blp.arguments(SnoozeSchema)
@blp.response(200, WorkItemSchema)
def snooze_item(data: dict[str, Any], item_id: str) -> dict[str, Any]:
    """Hide the item until a date; it comes back by itself that day."""
    session = db_session()
    item = services.get_work_item(session, item_id)
    return _render(services.snooze(session, item, data["until"], today=utcnow().date()))


@blp.route("/items/<item_id>/comments", methods=["POST"])
@mutation()
@blp.arguments(CommentSchema)
@blp.response(201, WorkItemSchema)
def comment_item(data: dict[str, Any], item_id: str) -> dict[str, Any]:
    """Add a note to the item, signed by the caller."""
    session = db_session()
    item = services.get_work_item(session, item_id)
    user_id = current_principal().user_id
    author = session.get(User, user_id) if user_id is not None else None
    services.add_comment(session, item, data["body"], author=author)
    return _render(item)


@blp.route("/items/<item_id>/resolve", methods=["POST"])
@mutation()
@blp.arguments(ResolveSchema)
@blp.response(200, WorkItemSchema)
def resolve_item(data: dict[str, Any], item_id: str) -> dict[str, Any]:
    """Close the item with how it ended (corrected_and_resubmitted, appealed, written_off, ...)."""
    session = db_session()
    item = services.get_work_item(session, item_id)
    return _render(services.resolve(session, item, data["resolution"], data["note"]))


@blp.route("/unpaid", methods=["GET"])
@blp.arguments(UnpaidArgsSchema, location="query")
@blp.response(200, UnpaidSchema)
def unpaid(args: dict[str, Any]) -> dict[str, Any]:
    """Claims with the payer more than ``days`` days without an 835, per payer (computed live)."""
    as_of = args["as_of"] or utcnow().date()
    rows = services.unpaid_by_payer(db_session(), days=args["days"], as_of=as_of)
    return {
        "days": args["days"],
        "as_of": as_of.isoformat(),
        "payers": [
            {
                "payer": r.payer_public_id,
                "payer_name": r.payer_name,
                "claims": r.claims,
                "amount": cents_to_money(r.amount_cents),
                "oldest_days": r.oldest_days,
            }
            for r in rows
        ],
    }


@blp.route("/sweep", methods=["POST"])
@mutation()
@blp.arguments(SweepArgsSchema)
@blp.response(200, SweepResultSchema)
def sweep(data: dict[str, Any]) -> dict[str, Any]:
    """Open (and close) the computed queues' items: unpaid, needs secondary, patient balance."""
    result = services.sweep(
        db_session(), as_of=data["as_of"] or utcnow().date(), unpaid_days=data["unpaid_days"]
    )
    return {"opened": result.opened, "resolved": result.resolved}
