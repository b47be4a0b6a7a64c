"""Work-queue JSON: list filters, item actions and the item shape."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from claims_server.api_common.fields import Money, PublicId, StrictBoolean, StrictInteger
from claims_server.api_common.pagination import PageArgsSchema, PageSchema
from claims_server.models.workqueue import WorkQueue
from claims_server.workqueue.services import SORT_COLUMNS, SORT_ORDERS, STATUS_FILTERS, ResolutionCode


class WorkItemListArgsSchema(PageArgsSchema):
    """Filters of ``GET /api/v1/workqueue/items``."""

    queue = fields.String(load_default=None, validate=validate.OneOf([q.value for q in WorkQueue]))
    status = fields.String(load_default="active", validate=validate.OneOf(STATUS_FILTERS))
    payer = PublicId(load_default=None, metadata={"description": "payer public id"})
    assignee = PublicId(load_default=None, metadata={"description": "user public id"})
    unassigned = StrictBoolean(load_default=False)
    reason = fields.String(load_default=None, validate=validate.Length(max=10), metadata={"example": "CO-16"})
    min_age_days = StrictInteger(load_default=None, validate=validate.Range(min=0, max=10000))
    max_age_days = StrictInteger(load_default=None, validate=validate.Range(min=0, max=10000))
    min_amount = Money(
        load_default=None, metadata={"description": "amount (see the item's amount) at least this much"}
    )
    max_amount = Money(load_default=None)
    sort = fields.String(
        load_default=None,
        validate=validate.OneOf(SORT_COLUMNS),
        metadata={"description": "sort column (blanks last, ties in id order); default: id order"},
    )
    order = fields.String(load_default="asc", validate=validate.OneOf(SORT_ORDERS))


class CommentOutSchema(Schema):
    author = fields.String(allow_none=True)
    system = StrictBoolean()
    body = fields.String()
    created_at = fields.String()


class WorkItemSchema(Schema):
    """A work item as the queue shows it."""

    class Meta:
        ordered = True

    id = fields.String()
    queue = fields.String()
    status = fields.String()
    claim = fields.String(allow_none=True)
    claim_state = fields.String(allow_none=True)
    payer = fields.String(allow_none=True)
    payer_name = fields.String(allow_none=True)
    date_of_service = fields.String(
        allow_none=True, metadata={"description": "the claim's first date of service"}
    )
    filing_deadline = fields.String(
        allow_none=True,
        metadata={"description": "date of service + the claim's payer's timely-filing days (365 if unset)"},
    )
    amount = fields.String(
        allow_none=True,
        metadata={
            "description": "open A/R of the claim; a PLB reconciliation item: the adjustment's size; "
            "a held remittance: its payment; an unmatched claim payment: CLP03"
        },
    )
    reason_codes = fields.List(fields.String())
    recommended_action = fields.String(allow_none=True)
    explanation = fields.String(allow_none=True)
    priority = StrictInteger()
    assignee = fields.String(allow_none=True)
    snoozed_until = fields.String(allow_none=True)
    due_date = fields.String(allow_none=True)
    opened_at = fields.String()
    days_in_queue = StrictInteger()
    resolved_at = fields.String(allow_none=True)
    resolution = fields.String(allow_none=True)
    comments = fields.List(fields.Nested(CommentOutSchema))


class WorkItemPageSchema(PageSchema):
    items = fields.List(fields.Nested(WorkItemSchema), required=True)


class QueueCountSchema(Schema):
    queue = fields.String()
    active = StrictInteger()
    snoozed = StrictInteger()
    amount = fields.String()
    oldest_days = StrictInteger()


class QueueCountsSchema(Schema):
    queues = fields.List(fields.Nested(QueueCountSchema))


class AssignSchema(Schema):
    assignee = PublicId(required=True, allow_none=True, metadata={"description": "user public id, or null"})


class SnoozeSchema(Schema):
    until = fields.Date(required=True, metadata={"description": "the item comes back on this day"})


class CommentSchema(Schema):
    body = fields.String(required=True, validate=validate.Length(min=1, max=4000))


class ResolveSchema(Schema):
    resolution = fields.String(required=True, validate=validate.OneOf([r.value for r in ResolutionCode]))
    note = fields.String(load_default=None, validate=validate.Length(max=4000))


class UnpaidArgsSchema(Schema):
    days = StrictInteger(load_default=30, validate=validate.Range(min=0, max=3650))
    as_of = fields.Date(load_default=None)


class UnpaidRowSchema(Schema):
    payer = fields.String()
    payer_name = fields.String()
    claims = StrictInteger()
    amount = fields.String()
    oldest_days = StrictInteger()


class UnpaidSchema(Schema):
    days = StrictInteger()
    as_of = fields.String()
    payers = fields.List(fields.Nested(UnpaidRowSchema))


class SweepArgsSchema(Schema):
    as_of = fields.Date(load_default=None)
    unpaid_days = StrictInteger(load_default=30, validate=validate.Range(min=0, max=3650))


class SweepResultSchema(Schema):
    opened = fields.Dict(keys=fields.String(), values=StrictInteger())
    resolved = fields.Dict(keys=fields.String(), values=StrictInteger())
