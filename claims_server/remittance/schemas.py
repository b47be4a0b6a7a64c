"""Request and response shapes of ``/api/v1/remittances`` (money is a decimal string)."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from claims_server.api_common.fields import StrictBoolean, StrictInteger
from claims_server.api_common.pagination import PageArgsSchema, PageSchema


class UploadArgsSchema(Schema):
    """``?dry_run=true``: compute and show the posting, change nothing."""

    dry_run = StrictBoolean(load_default=False, metadata={"description": "show what would be posted only"})


class RemittanceListArgsSchema(PageArgsSchema):
    state = fields.String(
        load_default=None,
        validate=validate.OneOf(["received", "posted", "failed"]),
        metadata={"description": "received, posted or failed"},
    )


class RemittanceSummarySchema(Schema):
    id = fields.String(required=True)
    state = fields.String(required=True)
    edi_file = fields.String(required=True)
    trace_number = fields.String(required=True)
    payer_identifier = fields.String(required=True)
    payer = fields.String(allow_none=True)
    payer_name = fields.String(allow_none=True)
    payment = fields.String(required=True, metadata={"example": "1234.50"})
    payment_method = fields.String(required=True)
    payment_date = fields.String(allow_none=True)
    posted_at = fields.String(allow_none=True)
    claims = StrictInteger(required=True)
    unmatched_claims = StrictInteger(required=True)


class RemittancePageSchema(PageSchema):
    items = fields.List(fields.Nested(RemittanceSummarySchema), required=True)


class RemittanceDetailSchema(RemittanceSummarySchema):
    claim_payments = fields.List(fields.Dict(), required=True)
    provider_adjustments = fields.List(fields.Dict(), required=True)
    remittance_postings = fields.List(fields.Dict(), required=True)
    unmatched = fields.List(fields.Dict(), required=True)


class PostingReportSchema(Schema):
    edi_file = fields.String(required=True)
    status = fields.String(required=True, metadata={"description": "posted, duplicate, dry_run or failed"})
    dry_run = StrictBoolean(required=True)
    duplicate = StrictBoolean(required=True)
    summary = fields.Dict(required=True)
    remittances = fields.List(fields.Dict(), required=True)
    findings = fields.List(fields.Dict(), required=True)
    error = fields.Dict(allow_none=True)
